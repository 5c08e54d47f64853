import pytest
from hypothesis import given, strategies as st

from jdss.errors import InvalidInput
from jdss.sizes import format_size, parse_size, round_up


@pytest.mark.parametrize("text, value", [
    ("4096", 4096), ("1K", 1024), ("16k", 16384), ("10G", 10 << 30),
    ("2T", 2 << 40), ("1P", 1 << 50), ("3M", 3 << 20), ("5GiB", 5 << 30),
    ("7 MB", 7 << 20), (" 12 ", 12), (8192, 8192)])
def test_parse_size_accepts_bytes_and_binary_suffixes(text, value):
    assert parse_size(text) == value


@pytest.mark.parametrize("text", [
    "", "0", "-1G", "1.5G", "10Q", "G", "1e9", "10 G B", "ten", True, 0,
    "99999999999P"])
def test_parse_size_rejects_bad_input_with_its_value(text):
    with pytest.raises(InvalidInput) as info:
        parse_size(text)
    assert repr(text) in str(info.value) or str(text) in str(info.value)


@given(st.integers(min_value=1, max_value=1 << 60))
def test_format_then_parse_round_trips(value):
    assert parse_size(format_size(value)) == value


def test_round_up():
    assert round_up(1, 16384) == 16384
    assert round_up(16384, 16384) == 16384
    assert round_up(16385, 16384) == 32768
