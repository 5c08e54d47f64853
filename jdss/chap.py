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
import tempfile

from jdss.errors import ConfigError

LOG = logging.getLogger(__name__)
PASSWORD_LENGTH = 24


def _read_key(path):
    with open(path, "rb") as handle:
        key = handle.read().strip()
    if len(key) < 32:
        raise ConfigError(f"CHAP key file {path} is too short; remove it "
                          "to have a new one made")
    return key


def load_or_create_key(path):
    """Return the key at ``path``, making it first if there is none."""
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise ConfigError(f"cannot read CHAP key file {path}: "
                          f"{exc.strerror}") from None
    directory = os.path.dirname(path) or "."
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".chap-")
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32) + "\n")
        try:
            os.link(tmp, path)          # atomic; loses to a concurrent maker
            LOG.info("made CHAP key file %s", path)
        except FileExistsError:
            pass
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        return _read_key(path)
    except OSError as exc:
        raise ConfigError(f"cannot create CHAP key file {path}: "
                          f"{exc.strerror}") from None


def target_password(key, iqn):
    """The CHAP password of target ``iqn`` (letters and digits only)."""
    digest = hmac.new(key, iqn.encode(), hashlib.sha256).digest()
    return base64.b32encode(digest).decode().lower()[:PASSWORD_LENGTH]
