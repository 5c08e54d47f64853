"""Building os-brick connectors: imported only when a volume is attached."""

import contextlib
import logging
import os

from jdss import locks
from jdss.errors import AttachFailed

LOG = logging.getLogger(__name__)


def scan_attempts(timeout):
    """os-brick device scan attempts (exponential back-off) for a timeout."""
    attempts, waited = 1, 0.0
    while waited + 2 ** attempts <= timeout and attempts < 12:
        waited += 2 ** attempts
        attempts += 1
    return attempts


def make_connector(config, use_multipath, executor=None):
    """An os-brick ISCSIConnector with ``executor`` running its commands."""
    import shutil
    import warnings
    if executor is None and shutil.which("iscsiadm") is None:
        raise AttachFailed("iscsiadm not found: install open-iscsi "
                           "(apt install open-iscsi) on this node")
    # oslo.privsep imports eventlet, which warns on stderr that it is
    # deprecated: nothing an admin can act on, and it would end up in
    # every Proxmox task log.
    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
    try:
        import os_brick
        from os_brick.initiator import connector
        from oslo_concurrency import lockutils, processutils
        from oslo_config import cfg
    except ImportError as exc:
        raise AttachFailed(f"os-brick is not installed ({exc}); install "
                           "python3-os-brick") from None
    # os-brick's own locks: in jdss's root-only directory, never in the
    # world-writable /run/lock
    lock_dir = os.environ.get("OSLO_LOCK_PATH") or os.path.join(
        locks.lock_dir(), "os-brick")
    with contextlib.suppress(FileExistsError):
        os.mkdir(lock_dir, 0o700)
    lockutils.set_defaults(lock_path=lock_dir)
    if hasattr(os_brick, "setup"):
        os_brick.setup(cfg.CONF)
    return connector.InitiatorConnector.factory(
        "ISCSI", root_helper=None,
        execute=executor or processutils.execute,
        use_multipath=use_multipath,
        device_scan_attempts=scan_attempts(config.attach_timeout))
