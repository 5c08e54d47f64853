"""Multipath transport for jdss, registered under ``jdss.transports``."""
