"""jdss: Open-E JovianDSS storage for Proxmox VE."""

__version__ = "0.1.0"
