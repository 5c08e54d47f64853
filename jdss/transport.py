"""The abstract transport interface: making a volume usable on this node.

A transport turns connection properties into something QEMU or a mount can
use: a block device path, an ``iscsi://`` URL, or a mounted directory.
Block transports get the os-brick shape of properties::

    {"target_portal": "ADDR:PORT", "target_iqn": IQN, "target_lun": N,
     "target_portals": [...], "target_iqns": [...], "target_luns": [...],
     "auth_method": "CHAP", "auth_username": U, "auth_password": P}

the NFS transport gets ``{"export": "ADDR:/pool/volume", "exports": [...],
"mountpoint": PATH}``. Both operations are idempotent, and a failed
``connect`` leaves nothing behind on the node.
"""

import abc


class Transport(abc.ABC):
    """One way of attaching volumes, registered under jdss.transports."""

    #: what ``connect`` returns: "block" device, "url" or "mount" point
    kind = "block"

    def __init__(self, config):
        self.config = config

    @abc.abstractmethod
    def connect(self, properties):
        """Attach; return the device path, URL or mount point."""

    @abc.abstractmethod
    def disconnect(self, properties):
        """Detach what ``connect`` attached; nothing to do is fine."""

    def path(self, properties):
        """The path ``connect`` gives (or gave), without attaching."""
        from jdss.errors import AttachFailed
        raise AttachFailed(f"{type(self).__name__} cannot tell the path of "
                           f"{properties['target_iqn']} without attaching")

    def is_attached(self, properties):
        """Whether the volume is attached on this node now."""
        return False

    def extend(self, properties):
        """Make this node see a volume's new size (after a resize)."""

    def initiator_name(self):
        """The name this node's initiators log in with: open-iscsi's, which
        Proxmox also gives QEMU for ``iscsi`` disks (None: not configured)."""
        return node_initiator_name()


INITIATOR_FILE = "/etc/iscsi/initiatorname.iscsi"


def node_initiator_name():
    """InitiatorName of open-iscsi's configuration on this node, or None."""
    try:
        with open(INITIATOR_FILE) as handle:
            for line in handle:
                key, _, value = line.strip().partition("=")
                if key == "InitiatorName" and value:
                    return value
    except OSError:
        pass
    return None
