"""iSCSI transports for jdss, registered under ``jdss.transports``."""
