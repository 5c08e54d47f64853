"""Backends: what jdss talks to (a JovianDSS appliance or a model of one)."""
