"""iscsi and multipath through the real os-brick, on a stand-in node.

os-brick runs its real connect and disconnect logic; the node it talks to
(iscsiadm, multipathd, sysfs) is tests.initiator.Node, because these
machines have no kernel initiator or device-mapper.
"""

import types

import pytest

from jdss import config as jconfig
from jdss import drivers, errors
from jdss.storage import Storage
from tests.conftest import write_config

pytest.importorskip("os_brick")
from os_brick.initiator.connectors import iscsi as brick_iscsi  # noqa: E402

from tests.initiator import Node, StandInSCSI  # noqa: E402


@pytest.fixture(autouse=True)
def fast_and_local(monkeypatch, tmp_path):
    monkeypatch.setenv("OSLO_LOCK_PATH", str(tmp_path / "locks"))
    monkeypatch.setattr("time.sleep", lambda _s: None)


def make(tmp_path, monkeypatch, name="iscsi", node_args=None, **values):
    values.setdefault("rest_api_addresses", ["127.0.0.1"])
    path = write_config(tmp_path / "jdss.yaml", **values)
    cfg = jconfig.load(str(path))
    storage = Storage(cfg, drivers.load_backend(cfg))

    def san(iqn):
        try:
            target = storage.backend.get_target(iqn)
        except errors.NotFound:
            return None
        chap = None
        if target.chap:
            user = next(iter(target.users))
            chap = (user, target.users[user])
        return {"luns": list(target.luns.values()), "chap": chap}

    node = Node(san, **(node_args or {}))
    transport = drivers.load_transport(cfg, name=name)
    transport._executor = node.execute
    transport.connector._linuxscsi = StandInSCSI(node, None,
                                                 execute=node.execute)
    monkeypatch.setattr(brick_iscsi, "glob",
                        types.SimpleNamespace(glob=node.glob))
    storage.create_volume("vm-100-disk-0", "1G")
    return storage, transport, node


def logins(node):
    return [c for c in node.calls if "--login" in c]


def test_single_path_attach_and_detach(tmp_path, monkeypatch):
    storage, transport, node = make(tmp_path, monkeypatch)
    attached = storage.attach_volume("vm-100-disk-0", transport)
    assert attached["path"] == "/dev/sda"
    assert list(node.sessions.values()) == [
        ("127.0.0.1:3260", "iqn.2021-10.iscsi:pool-0:vm-100-disk-0")]
    again = storage.attach_volume("vm-100-disk-0", transport)
    assert again["path"] == "/dev/sda" and len(logins(node)) == 1
    storage.detach_volume("vm-100-disk-0", transport)
    assert node.sessions == {} and node.nodes == {} and node.disks == {}
    with pytest.raises(errors.NotFound, match="not exported"):
        storage.target("vm-100-disk-0")
    storage.detach_volume("vm-100-disk-0", transport)     # idempotent


def test_login_timeout_leaves_nothing(tmp_path, monkeypatch):
    storage, transport, node = make(
        tmp_path, monkeypatch, node_args={"down": {"127.0.0.1:3260"}})
    with pytest.raises(errors.AttachFailed) as info:
        storage.attach_volume("vm-100-disk-0", transport)
    assert "iqn.2021-10.iscsi:pool-0:vm-100-disk-0" in str(info.value)
    assert "127.0.0.1:3260" in str(info.value)
    assert node.sessions == {} and node.nodes == {}
    with pytest.raises(errors.NotFound, match="not exported"):
        storage.target("vm-100-disk-0")


def test_chap_secrets_reach_the_initiator(tmp_path, monkeypatch):
    storage, transport, node = make(tmp_path, monkeypatch,
                                    chap_enabled=True, chap_user="pve")
    storage.attach_volume("vm-100-disk-0", transport)
    settings = next(iter(node.nodes.values()))
    assert settings["node.session.auth.authmethod"] == "CHAP"
    assert settings["node.session.auth.username"] == "pve"
    assert len(settings["node.session.auth.password"]) >= 12


def test_chap_mismatch_fails_cleanly(tmp_path, monkeypatch):
    storage, transport, node = make(tmp_path, monkeypatch,
                                    chap_enabled=True)
    real_san = node.san
    node.san = lambda iqn: dict(real_san(iqn) or {},
                                chap=("jdss", "other-secret-123"))
    with pytest.raises(errors.AttachFailed):
        storage.attach_volume("vm-100-disk-0", transport)
    assert node.sessions == {} and node.nodes == {}


def test_single_path_fails_over_to_the_next_portal(tmp_path, monkeypatch):
    storage, transport, node = make(
        tmp_path, monkeypatch, node_args={"down": {"127.0.0.2:3260"}},
        rest_api_addresses=["127.0.0.2", "127.0.0.3"])
    attached = storage.attach_volume("vm-100-disk-0", transport)
    assert attached["path"] == "/dev/sda"
    assert [p for p, _ in node.sessions.values()] == ["127.0.0.3:3260"]
    assert ("127.0.0.2:3260", "iqn.2021-10.iscsi:pool-0:vm-100-disk-0") \
        not in node.nodes


def test_stale_session_from_a_crash_is_reused(tmp_path, monkeypatch):
    storage, transport, node = make(tmp_path, monkeypatch)
    node.leave_stale_session("127.0.0.1:3260",
                             "iqn.2021-10.iscsi:pool-0:vm-100-disk-0", [0])
    attached = storage.attach_volume("vm-100-disk-0", transport)
    assert attached["path"] == "/dev/sda"
    assert logins(node) == [] and len(node.sessions) == 1
    storage.detach_volume("vm-100-disk-0", transport)
    assert node.sessions == {} and node.disks == {}


def test_multipath_joins_one_path_per_address(tmp_path, monkeypatch):
    storage, transport, node = make(
        tmp_path, monkeypatch, name="multipath",
        rest_api_addresses=["127.0.0.2", "127.0.0.3"], multipath=True)
    transport.conf_files = ()
    attached = storage.attach_volume("vm-100-disk-0", transport)
    wwid = Node.wwid("iqn.2021-10.iscsi:pool-0:vm-100-disk-0", 0)
    assert attached["path"] == f"/dev/mapper/{wwid}"
    assert sorted(p for p, _ in node.sessions.values()) == \
        ["127.0.0.2:3260", "127.0.0.3:3260"]
    assert list(node.maps.values()) == [wwid]
    storage.detach_volume("vm-100-disk-0", transport)
    assert node.maps == {} and node.sessions == {} and node.disks == {}


def test_multipath_with_one_path_down(tmp_path, monkeypatch):
    storage, transport, node = make(
        tmp_path, monkeypatch, name="multipath",
        node_args={"down": {"127.0.0.3:3260"}},
        rest_api_addresses=["127.0.0.2", "127.0.0.3"], multipath=True)
    transport.conf_files = ()
    attached = storage.attach_volume("vm-100-disk-0", transport)
    assert attached["path"].startswith("/dev/mapper/36")
    assert [p for p, _ in node.sessions.values()] == ["127.0.0.2:3260"]


def test_multipath_hidden_by_blacklist_fails_cleanly(tmp_path, monkeypatch,
                                                     caplog):
    conf = tmp_path / "multipath.conf"
    conf.write_text("defaults {\n  user_friendly_names no\n}\n"
                    "blacklist {\n    wwid .*\n}\n")
    storage, transport, node = make(
        tmp_path, monkeypatch, name="multipath",
        node_args={"blacklist_all": True},
        rest_api_addresses=["127.0.0.2", "127.0.0.3"], multipath=True)
    transport.conf_files = (str(conf),)
    with pytest.raises(errors.AttachFailed, match="multipath.conf"):
        storage.attach_volume("vm-100-disk-0", transport)
    assert f"{conf} blacklists 'wwid .*'" in caplog.text
    assert node.sessions == {} and node.nodes == {} and node.disks == {}


def test_shipped_multipath_snippet_does_not_hide_our_devices():
    from jdss_multipath.multipath import hidden_by_blacklist
    from tests.conftest import ROOT
    snippet = f"{ROOT}/drivers/multipath/configs/multipath.conf"
    assert hidden_by_blacklist((snippet,)) == []
    assert 'vendor "SCST_BIO"' in open(snippet).read()


def test_attach_only_imports_os_brick_when_attaching(config_file):
    from tests.conftest import modules_after
    loaded = modules_after("-c", str(config_file), "volume", "list",
                           "-f", "json")
    assert "jdss.backends.fake" in loaded
    assert not {m for m in loaded
                if m.split(".")[0] in ("os_brick", "requests")}
