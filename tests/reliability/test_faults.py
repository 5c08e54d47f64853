"""Appliance faults for every Proxmox operation, through the emulator.

Each operation runs against an emulator on two loopback addresses with one
fault injected. Faults that leave one good path must not be felt at all;
faults that leave none must give a clear error within a bounded time and
leave the pool as it was: no orphan, nothing deleted, nothing made twice.
"""

import time

import pytest

from jdss import config as jconfig
from jdss import drivers, errors
from jdss.emulator.server import make_self_signed
from jdss.storage import Storage
from tests.conftest import FIRMWARES, write_config
from tests.emulator import Emulator

G = 1 << 30
DEADLINE = 1.5


def volume_state(storage, name):
    """What a Proxmox operation on ``name`` may change, read healthily."""
    names = {v["name"]: v["size"] for v in storage.list_volumes()}
    snaps = sorted(s["name"] for s in storage.list_snapshots(name)) \
        if name in names else None
    try:
        exported = storage.target(name) is not None
    except errors.NotFound:
        exported = False
    hidden = sorted(s.name for v in storage.backend.list_volumes()
                    for s in storage.backend.list_snapshots(v.name)
                    if s.name.startswith("c_"))
    related = {n: size for n, size in names.items() if n.startswith(name)}
    return {"volumes": related, "snapshots": snaps, "exported": exported,
            "hidden": hidden}


# operation: (setup, action, expected state after success)
def _vol(storage, name, snapshot=False, export=False):
    storage.create_volume(name, G)
    if snapshot:
        storage.create_snapshot(name, "s1")
    if export:
        storage.create_target(name)


OPERATIONS = {
    "status": (lambda s, n: None, lambda s, n: s.pool(), None),
    "list_images": (lambda s, n: None, lambda s, n: s.list_volumes(), None),
    "alloc": (lambda s, n: None,
              lambda s, n: s.create_volume(n, G),
              {"volumes": {"n": G}, "snapshots": [], "exported": False}),
    "free": (_vol, lambda s, n: s.delete_volume(n),
             {"volumes": {}, "snapshots": None, "exported": False}),
    "snapshot": (_vol, lambda s, n: s.create_snapshot(n, "s2"),
                 {"volumes": {"n": G}, "snapshots": ["s2"],
                  "exported": False}),
    "rollback": (lambda s, n: _vol(s, n, snapshot=True),
                 lambda s, n: s.rollback(n, "s1"),
                 {"volumes": {"n": G}, "snapshots": ["s1"],
                  "exported": False}),
    "clone": (_vol, lambda s, n: s.clone_volume(n, n + "c"),
              {"volumes": {"n": G, "nc": G}, "snapshots": [],
               "exported": False}),
    "resize": (_vol, lambda s, n: s.resize_volume(n, 2 * G),
               {"volumes": {"n": 2 * G}, "snapshots": [],
                "exported": False}),
    "activate": (_vol, lambda s, n: s.create_target(n),
                 {"volumes": {"n": G}, "snapshots": [], "exported": True}),
    "deactivate": (lambda s, n: _vol(s, n, export=True),
                   lambda s, n: s.delete_target(n),
                   {"volumes": {"n": G}, "snapshots": [],
                    "exported": False}),
}


def expected_after(template, name):
    if template is None:
        return None
    volumes = {name + key[1:]: size
               for key, size in template["volumes"].items()}
    return dict(template, volumes=volumes)


class Faults:
    """The fault cases: (rules, config overrides, must the call succeed)."""

    def __init__(self, emulator, wrong_password, wrong_cert):
        first = f"127.0.0.2:{emulator.port}"
        self.cases = {
            "one of two addresses down": (
                [{"action": "refuse", "listen": first}], {}, True),
            "flapping address": (
                [{"action": "drop", "listen": first, "count": 1},
                 {"action": "error", "listen": first, "count": 1}], {}, True),
            "500s from one address": (
                [{"action": "error", "status": 500, "listen": first}], {},
                True),
            "slow answers from one address": (
                [{"action": "delay", "seconds": 2, "listen": first}],
                {"rest_api_read_timeout": 0.5}, True),
            "empty 200s from one address": (
                [{"action": "empty", "method": "GET", "listen": first}], {},
                True),
            "connection dropped after a change was applied": (
                [{"action": "drop_after", "method": method, "count": 1}
                 for method in ("POST", "PUT", "DELETE")], {}, True),
            "appliance down": ([{"action": "refuse"}], {}, False),
            "500s from every address": (
                [{"action": "error", "status": 500}], {}, False),
            "wrong password": (
                [], {"rest_api_password_file": wrong_password}, False),
            "wrong certificate": (
                [], {"driver_ssl_cert_path": wrong_cert}, False),
        }


@pytest.fixture(scope="module", params=list(FIRMWARES))
def appliance(request, tmp_path_factory, tls_cert):
    directory = tmp_path_factory.mktemp("faults")
    cert, key = tls_cert
    other = tmp_path_factory.mktemp("other-ca")
    wrong_cert, _ = make_self_signed(str(other), ["127.0.0.2:1",
                                                  "127.0.0.3:1"])
    emulator = Emulator(str(directory), cert, key,
                        listens=["127.0.0.2", "127.0.0.3"],
                        **FIRMWARES[request.param])
    wrong_password = directory / "wrong.pw"
    wrong_password.write_text("not-the-password\n")
    wrong_password.chmod(0o600)
    yield emulator, Faults(emulator, str(wrong_password), wrong_cert)
    emulator.stop()


def storage_with(directory, emulator, **overrides):
    directory.mkdir(exist_ok=True)
    # changes too give up at DEADLINE here, not after a failover window:
    # these faults do not end (see tests/test_failover.py for one that does)
    path = write_config(directory / "rest.yaml", **emulator.config(
        rest_api_deadline=DEADLINE, rest_api_failover_window=DEADLINE,
        rest_api_connect_timeout=0.5, **overrides))
    cfg = jconfig.load(str(path))
    return Storage(cfg, drivers.load_backend(cfg))


FAULTS = ["one of two addresses down", "flapping address",
          "500s from one address", "slow answers from one address",
          "empty 200s from one address",
          "connection dropped after a change was applied", "appliance down",
          "500s from every address", "wrong password", "wrong certificate"]


@pytest.mark.parametrize("fault", FAULTS)
def test_every_operation_under_fault(fault, appliance, tmp_path, scenario):
    emulator, faults = appliance
    rules, overrides, must_succeed = faults.cases[fault]
    healthy = storage_with(tmp_path, emulator)
    failures = []
    for index, (operation, (setup, action, template)) in enumerate(
            OPERATIONS.items()):
        name = f"vm-{FAULTS.index(fault) * 100 + index}-disk-0"
        setup(healthy, name)
        before = volume_state(healthy, name)
        emulator.faults(*rules)
        started = time.monotonic()
        try:
            faulty = storage_with(tmp_path / operation, emulator,
                                  **overrides)
            action(faulty, name)
            outcome = "ok"
        except errors.JdssError as exc:
            outcome = exc
        finally:
            elapsed = time.monotonic() - started
            emulator.faults()
        after = volume_state(healthy, name)
        expected = expected_after(template, name)
        lost = 0
        if outcome == "ok":
            # a clone of the current state has its hidden origin snapshot
            hidden = before["hidden"] + (
                [f"c_v_{name}c"] if operation == "clone" else [])
            good = must_succeed and (expected is None or after == dict(
                expected, hidden=sorted(hidden)))
        else:
            good = (not must_succeed and after == before
                    and elapsed < DEADLINE + 3
                    and str(outcome) and "\n" not in str(outcome))
            lost = sum(1 for v in before["volumes"]
                       if v not in after["volumes"])
        scenario(f"appliance fault, {emulator.firmware} firmware: {fault} "
                 "(every operation)",
                 failed=not good, lost=lost)
        if not good:
            failures.append((operation, str(outcome), before, after,
                             round(elapsed, 1)))
    assert not failures, failures
