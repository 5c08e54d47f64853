"""The nfs transport: mounting a NAS volume's share, with a stand-in mount."""

import errno

import pytest

from jdss import errors
from jdss_nfs import nfs as nfs_module
from jdss_nfs.nfs import NFSTransport


class MountTable:
    """mount/umount that keep a mounts file, like /proc/self/mounts."""

    def __init__(self, path, unreachable=()):
        self.path = path
        self.unreachable = set(unreachable)
        self.calls = []
        path.write_text("proc /proc proc rw 0 0\n")

    def __call__(self, *command):
        self.calls.append(command)
        lines = self.path.read_text().splitlines()
        if command[0] == "mount":
            source, target = command[-2], command[-1]
            if source.split(":")[0] in self.unreachable:
                return 32, "", "mount.nfs: Connection timed out\n"
            lines.append(f"{source} {target} nfs4 rw 0 0")
        elif command[0] == "umount":             # umount [-l] TARGET
            kept = [line for line in lines if line.split()[1] != command[-1]]
            if kept == lines:
                return 32, "", f"umount: {command[-1]}: not mounted.\n"
            lines = kept
        self.path.write_text("\n".join(lines) + "\n")
        return 0, "", ""


@pytest.fixture
def nfs(storage, tmp_path):
    def make(unreachable=()):
        table = MountTable(tmp_path / "mounts", unreachable)
        transport = NFSTransport(storage.config, executor=table)
        transport.mounts_file = str(table.path)
        return transport, table
    return make


@pytest.fixture
def two_addresses(make_storage):
    return make_storage(rest_api_addresses=["127.0.0.1", "127.0.0.2"])


def test_mount_and_unmount(storage, nfs, tmp_path):
    transport, table = nfs()
    storage.create_nas_volume("content", "10G")
    mountpoint = str(tmp_path / "mnt")
    attached = storage.attach_nas_volume("content", mountpoint, transport)
    assert attached["path"] == mountpoint
    assert attached["export"] == "127.0.0.1:/Pool-0/content"
    assert storage.share("content")["path"] == "Pool-0/content"
    storage.attach_nas_volume("content", mountpoint, transport)
    assert [c[0] for c in table.calls] == ["mount"]          # idempotent
    storage.detach_nas_volume("content", mountpoint, transport)
    storage.detach_nas_volume("content", mountpoint, transport)
    assert [c[0] for c in table.calls] == ["mount", "umount"]
    assert storage.share("content")          # the share stays for others


def test_next_address_when_one_is_unreachable(two_addresses, tmp_path):
    storage = two_addresses
    table = MountTable(tmp_path / "mounts", unreachable={"127.0.0.1"})
    transport = NFSTransport(storage.config, executor=table)
    transport.mounts_file = str(table.path)
    storage.create_nas_volume("content", "10G")
    storage.attach_nas_volume("content", str(tmp_path / "m"), transport)
    assert transport.mounted(str(tmp_path / "m")) == \
        "127.0.0.2:/Pool-0/content"


def test_unreachable_share_is_a_clear_error(storage, nfs, tmp_path):
    transport, _ = nfs(unreachable={"127.0.0.1"})
    storage.create_nas_volume("content", "10G")
    with pytest.raises(errors.AttachFailed) as info:
        storage.attach_nas_volume("content", str(tmp_path / "m"), transport)
    assert "Connection timed out" in str(info.value)
    assert info.value.exit_code == 12


def test_something_else_mounted_there(storage, nfs, tmp_path):
    transport, table = nfs()
    mountpoint = tmp_path / "busy"
    mountpoint.mkdir()
    with open(table.path, "a") as handle:
        handle.write(f"/dev/sdz1 {mountpoint} ext4 rw 0 0\n")
    storage.create_nas_volume("content", "10G")
    with pytest.raises(errors.AttachFailed, match="already has /dev/sdz1"):
        storage.attach_nas_volume("content", str(mountpoint), transport)


def test_a_stale_mount_is_replaced(storage, nfs, tmp_path, monkeypatch):
    """A mount of the share that answers ESTALE (the share was made again)
    is unmounted (lazily: it cannot be used) and mounted again."""
    transport, table = nfs()
    storage.create_nas_volume("content", "10G")
    mountpoint = str(tmp_path / "mnt")
    storage.attach_nas_volume("content", mountpoint, transport)
    monkeypatch.setattr(nfs_module, "stat_errno",
                        lambda path, timeout: errno.ESTALE)
    storage.attach_nas_volume("content", mountpoint, transport)
    assert [c[:2] for c in table.calls] == \
        [("mount", "-t"), ("umount", "-l"), ("mount", "-t")]
    assert transport.mounted(mountpoint) == "127.0.0.1:/Pool-0/content"
