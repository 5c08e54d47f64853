"""NFS transport for jdss, registered under ``jdss.transports``."""
