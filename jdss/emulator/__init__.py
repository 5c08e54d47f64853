"""jdss-emulator: the pool model served over the JovianDSS REST API."""
