"""NFS transport for jdss, registered under ``jdss.transports``."""

__version__ = "0.1.0"
