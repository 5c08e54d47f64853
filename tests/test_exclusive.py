"""volume attach --exclusive: a local file system is never mounted twice."""

import pytest

from jdss import errors
from jdss.transport import Transport


class RecordingTransport(Transport):
    """Attaches nothing; says which initiator this node is."""

    def __init__(self, config, initiator):
        super().__init__(config)
        self.initiator = initiator
        self.connected = []

    def connect(self, properties):
        self.connected.append(properties["target_iqn"])
        return "/dev/sdx"

    def disconnect(self, properties):
        pass

    def initiator_name(self):
        return self.initiator


def test_exclusive_attach_refuses_a_second_node(storage, monkeypatch):
    storage.create_volume("content", "1G")
    here = RecordingTransport(storage.config, "iqn.2024-01.node:a")
    sessions = []
    monkeypatch.setattr(storage.backend, "target_sessions",
                        lambda iqn: list(sessions))
    assert storage.attach_volume("content", here,
                                 exclusive=True)["path"] == "/dev/sdx"
    sessions[:] = ["iqn.2024-01.node:a", "iqn.2024-01.node:a"]  # multipath
    assert storage.attach_volume("content", here, exclusive=True)

    other = RecordingTransport(storage.config, "iqn.2024-01.node:b")
    with pytest.raises(errors.Busy) as refused:
        storage.attach_volume("content", other, exclusive=True)
    assert "in use by iqn.2024-01.node:a" in str(refused.value)
    assert other.connected == []                 # never logged in
    assert storage.target("content")             # the export stays
    assert storage.attach_volume("content", other)   # not exclusive: fine


def test_exclusive_needs_an_initiator_name(storage):
    storage.create_volume("content", "1G")
    anonymous = RecordingTransport(storage.config, None)
    with pytest.raises(errors.AttachFailed):
        storage.attach_volume("content", anonymous, exclusive=True)
    with pytest.raises(errors.NotFound):       # the export made is undone
        storage.target("content")


@pytest.mark.parametrize("driver", ["iscsi", "iscsi-direct"])
def test_transports_know_the_nodes_initiator_name(driver, tmp_path,
                                                  monkeypatch):
    """iscsi-direct too: QEMU logs in with the node's name (the plugin puts
    it in the blockdev), so sessions are attributed to nodes."""
    from jdss import drivers, transport
    name_file = tmp_path / "initiatorname.iscsi"
    name_file.write_text("## generated\nInitiatorName=iqn.1993-08.org."
                         "debian:01:abc\n")
    monkeypatch.setattr(transport, "INITIATOR_FILE", str(name_file))
    cls = drivers.load_driver_class(drivers.TRANSPORTS, driver,
                                    transport.Transport)
    assert cls(None).initiator_name() == "iqn.1993-08.org.debian:01:abc"
    monkeypatch.setattr(transport, "INITIATOR_FILE",
                        str(tmp_path / "missing"))
    assert cls(None).initiator_name() is None
