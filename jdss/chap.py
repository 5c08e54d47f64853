"""CHAP passwords for the targets jdss creates.

One random key per storage, kept with mode 0600 (by default under
``priv/`` beside the config, i.e. ``/etc/pve/priv`` on Proxmox, which every
cluster node shares). Each target's password is derived from the key and
the target's IQN, so every node computes the same password and nothing
per volume needs storing.
"""

import base64
import contextlib
import hashlib
import hmac
import logging
import os
import secrets
import time

from jdss.errors import ConfigError

LOG = logging.getLogger(__name__)
PASSWORD_LENGTH = 24


KEY_WAIT = 5.0     # seconds a reader waits for a racing maker to finish


def _read_key(path):
    with open(path, "rb") as handle:
        return handle.read().strip()


def load_or_create_key(path):
    """Return the key at ``path``, making it first if there is none.

    Made with O_CREAT|O_EXCL (pmxcfs, where the key lives on Proxmox, has
    no hard links): of racing makers, on this node or others, one creates
    the file and the others read what it wrote.
    """
    directory = os.path.dirname(path) or "."
    try:
        with contextlib.suppress(FileExistsError):
            os.makedirs(directory, mode=0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL
                         | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            return _wait_for_key(path)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        LOG.info("made CHAP key file %s", path)
        return _read_key(path)
    except OSError as exc:
        raise ConfigError(f"cannot create or read CHAP key file {path}: "
                          f"{exc.strerror}") from None


def _wait_for_key(path):
    """The key of an existing file, once its maker has written it."""
    deadline = time.monotonic() + KEY_WAIT
    while True:
        key = _read_key(path)
        if len(key) >= 32:
            return key
        if time.monotonic() >= deadline:
            raise ConfigError(f"CHAP key file {path} is too short; remove "
                              "it to have a new one made")
        time.sleep(0.05)


def target_password(key, iqn):
    """The CHAP password of target ``iqn`` (letters and digits only)."""
    digest = hmac.new(key, iqn.encode(), hashlib.sha256).digest()
    return base64.b32encode(digest).decode().lower()[:PASSWORD_LENGTH]
