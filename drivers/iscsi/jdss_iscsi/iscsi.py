"""``iscsi``: a kernel iSCSI session through os-brick's ISCSIConnector."""

import logging
import os
import shutil

from jdss.errors import AttachFailed, JdssError
from jdss.transport import Transport
from jdss_iscsi import brick

LOG = logging.getLogger(__name__)


class ISCSITransport(Transport):
    """Logs in to the volume's target and returns its block device."""

    use_multipath = False

    def __init__(self, config, executor=None):
        super().__init__(config)
        self._executor = executor
        self._connector = None

    @property
    def connector(self):
        if self._connector is None:
            self._connector = brick.make_connector(
                self.config, self.use_multipath, self._executor)
        return self._connector

    def _properties(self, properties):
        """Only the portals this transport uses (one without multipath)."""
        return dict(properties)

    def connect(self, properties):
        properties = self._properties(properties)
        try:
            device = self.connector.connect_volume(properties)
        except JdssError:
            raise
        except Exception as exc:
            self._clean_up(properties)
            raise AttachFailed(
                f"iSCSI login to {properties['target_iqn']} at "
                f"{', '.join(properties['target_portals'])} failed: "
                f"{_one_line(exc)}") from None
        path = device.get("path") if isinstance(device, dict) else None
        if not path:
            self._clean_up(properties)
            raise AttachFailed(f"no block device appeared for "
                               f"{properties['target_iqn']} within "
                               f"{self.config.attach_timeout:g} s")
        return self.check_device(path, properties)

    def check_device(self, path, properties):
        """Hook for subclasses: verify or replace the device found."""
        return path

    @staticmethod
    def by_path(properties):
        """udev's links to the LUN, one per portal."""
        return ["/dev/disk/by-path/ip-%s-iscsi-%s-lun-%s" % (
                    portal.replace("[", "").replace("]", ""), iqn, lun)
                for portal, iqn, lun in zip(properties["target_portals"],
                                            properties["target_iqns"],
                                            properties["target_luns"])]

    def path(self, properties):
        links = self.by_path(properties)
        return next((link for link in links if os.path.exists(link)),
                    links[0])

    def is_attached(self, properties):
        return any(os.path.exists(link) for link in self.by_path(properties))

    def extend(self, properties):
        if not self.is_attached(properties):
            return
        try:
            self.connector.extend_volume(self._properties(properties))
        except Exception as exc:
            raise AttachFailed(f"rescanning {properties['target_iqn']} for "
                               f"its new size failed: {_one_line(exc)}") \
                from None

    def disconnect(self, properties):
        properties = self._properties(properties)
        if self._executor is None and shutil.which("iscsiadm") is None:
            LOG.debug("no iscsiadm here: %s cannot be attached",
                      properties["target_iqn"])
            return
        try:
            self.connector.disconnect_volume(properties, None, force=True,
                                             ignore_errors=False)
        except Exception as exc:
            raise AttachFailed(f"iSCSI logout from "
                               f"{properties['target_iqn']} failed: "
                               f"{_one_line(exc)}") from None

    def _clean_up(self, properties):
        """Log out and drop node records after a failed connect."""
        try:
            self.connector.disconnect_volume(properties, None, force=True,
                                             ignore_errors=True)
        except Exception as exc:
            LOG.warning("clean-up after failed attach of %s: %s",
                        properties["target_iqn"], _one_line(exc))


def _one_line(exc):
    text = " ".join(str(exc).split())
    return text[:300] or type(exc).__name__
