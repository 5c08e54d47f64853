"""``multipath``: one iSCSI session per portal, joined by multipathd.

One path per address of ``rest_api_addresses``; the device is found by its
SCSI WWID and returned as ``/dev/mapper/<map name>``; detach flushes and
removes the map before logging out (os-brick does both).
"""

import glob
import logging
import os
import re

from jdss.errors import AttachFailed
from jdss_iscsi.iscsi import ISCSITransport

LOG = logging.getLogger(__name__)
CONF_FILES = ("/etc/multipath.conf", "/etc/multipath/conf.d/*.conf")
_BLACKLIST = re.compile(r"blacklist\s*\{(?P<body>(?:[^{}]|\{[^{}]*\})*)\}",
                        re.S)
_WWID_ALL = re.compile(r"^\s*wwid\s+\"?\.\*\"?\s*$", re.M)


def hidden_by_blacklist(conf_globs=CONF_FILES):
    """Files whose blacklist has ``wwid .*``, which hides our devices."""
    culprits = []
    for pattern in conf_globs:
        for path in sorted(glob.glob(pattern)):
            try:
                with open(path, encoding="utf-8", errors="replace") as f:
                    text = re.sub(r"#.*", "", f.read())
            except OSError:
                continue
            for match in _BLACKLIST.finditer(text):
                if _WWID_ALL.search(re.sub(r"\{[^{}]*\}", "",
                                           match.group("body"))):
                    culprits.append(path)
    return culprits


class MultipathTransport(ISCSITransport):
    use_multipath = True
    conf_files = CONF_FILES

    def connect(self, properties):
        for path in hidden_by_blacklist(self.conf_files):
            LOG.warning("%s blacklists 'wwid .*': multipath will ignore "
                        "JovianDSS volumes; blacklist by vendor and except "
                        "SCST_BIO instead (see the shipped multipath.conf)",
                        path)
        return super().connect(properties)

    def check_device(self, path, properties):
        name = path.rsplit("/", 1)[-1]
        if not name.startswith("dm-"):
            self._clean_up(properties)
            raise AttachFailed(
                f"no multipath device appeared for "
                f"{properties['target_iqn']} (only {path}); check that "
                "multipathd runs and that multipath.conf does not "
                "blacklist the volume")
        mapped = self.connector._linuxscsi.get_dm_name(name)
        return f"/dev/mapper/{mapped}" if mapped else path

    def path(self, properties):
        for link in self.by_path(properties):
            if not os.path.exists(link):
                continue
            disk = os.path.basename(os.path.realpath(link))
            for holder in glob.glob(f"/sys/block/{disk}/holders/dm-*"):
                name = self.connector._linuxscsi.get_dm_name(
                    os.path.basename(holder))
                if name:
                    return f"/dev/mapper/{name}"
        raise AttachFailed(f"{properties['target_iqn']} has no multipath "
                           "device on this node; activate it first")
