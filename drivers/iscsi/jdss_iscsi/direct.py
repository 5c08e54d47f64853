"""``iscsi-direct``: no kernel session; QEMU opens an iscsi:// URL itself.

As Proxmox's own ZFS-over-iSCSI storage does: the path of a volume is
``iscsi://[user%password@]PORTAL/IQN/LUN`` and QEMU's libiscsi initiator
logs in when the guest starts, with the node's initiator name (the Proxmox
plugin puts it in the blockdev), so the appliance tells nodes apart. For VM
disks, without multipath.
"""

from urllib.parse import quote

from jdss.transport import Transport


class DirectTransport(Transport):
    kind = "url"

    def connect(self, properties):
        credentials = ""
        if properties.get("auth_method") == "CHAP":
            credentials = "%s%%%s@" % (
                quote(properties["auth_username"], safe=""),
                quote(properties["auth_password"], safe=""))
        return "iscsi://%s%s/%s/%d" % (
            credentials, properties["target_portal"],
            properties["target_iqn"], properties["target_lun"])

    def disconnect(self, properties):
        """Nothing is attached on the node: QEMU's session ends with it."""

    path = connect

    def is_attached(self, properties):
        return True
