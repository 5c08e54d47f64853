"""``-f json`` prints what cliff's own JSON formatter prints."""

import pytest

from jdss.commands import base


@pytest.fixture
def volumes(cli):
    for n in range(3):
        assert cli("volume", "create", f"vm-10{n}-disk-0", "--size",
                   "1G").code == 0
    assert cli("snapshot", "create", "vm-100-disk-0", "s1").code == 0
    return cli


@pytest.mark.parametrize("command", [
    ("volume", "list"), ("pool", "show"), ("volume", "show", "vm-100-disk-0"),
    ("snapshot", "list", "vm-100-disk-0")])
@pytest.mark.parametrize("indent", [(), ("--noindent",)])
def test_the_text_is_cliffs(volumes, monkeypatch, command, indent):
    ours = volumes(*command, "-f", "json", *indent)
    monkeypatch.setattr(base, "_fast_json", lambda formatters: formatters)
    cliffs = volumes(*command, "-f", "json", *indent)
    assert ours.code == cliffs.code == 0
    assert ours.out == cliffs.out and ours.out.strip()


def test_json_is_written_in_one_call(volumes, monkeypatch):
    import json
    calls = []
    monkeypatch.setattr(json, "dump", lambda *a, **k: calls.append(a))
    assert volumes("volume", "list", "-f", "json").json()
    assert calls == []
