"""Parsing and printing of sizes: bytes, or K/M/G/T/P binary multiples."""

import re

from jdss.errors import InvalidInput

UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40,
         "P": 1 << 50}
_SIZE = re.compile(r"^\s*(\d+)\s*([KMGTP]?)(?:I?B)?\s*$", re.IGNORECASE)

#: Largest size accepted anywhere (ZFS's volsize limit is 2**63 - 1).
MAX_SIZE = (1 << 63) - 1


def parse_size(text, what="size"):
    """Return the number of bytes in ``text`` (``4096``, ``16K``, ``10G``)."""
    if isinstance(text, bool):
        raise InvalidInput(f"{what} must be a number of bytes, not {text!r}")
    if isinstance(text, int):
        value = text
    else:
        match = _SIZE.match(str(text))
        if not match:
            raise InvalidInput(
                f"invalid {what} {text!r}: expected a whole number of bytes "
                "with an optional K, M, G, T or P suffix (powers of 1024)")
        value = int(match.group(1)) * UNITS[match.group(2).upper()]
    if value <= 0:
        raise InvalidInput(f"invalid {what} {text!r}: must be greater than 0")
    if value > MAX_SIZE:
        raise InvalidInput(f"invalid {what} {text!r}: too large")
    return value


def format_size(value):
    """Return ``value`` bytes as the shortest exact K/M/G/T/P text."""
    for suffix in ("P", "T", "G", "M", "K"):
        unit = UNITS[suffix]
        if value >= unit and value % unit == 0:
            return f"{value // unit}{suffix}"
    return str(value)


def round_up(value, multiple):
    """Round ``value`` up to a multiple of ``multiple``."""
    return -(-value // multiple) * multiple
