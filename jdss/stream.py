"""The ``raw+size`` stream of Proxmox storage migration.

An 8-byte little-endian size, then that many bytes of raw data. jdss reads
and writes it from a block device, or through a temporary sparse file and
``qemu-img`` when the transport gives an ``iscsi://`` URL.
"""

import contextlib
import os
import stat
import struct
import subprocess
import tempfile

from jdss.errors import AttachFailed, InvalidInput
from jdss.progress import Progress

HEADER = struct.Struct("<Q")
CHUNK = 4 << 20


def _qemu_img(*args):
    proc = subprocess.run(["qemu-img"] + list(args), capture_output=True,
                          text=True)
    if proc.returncode:
        raise AttachFailed("qemu-img failed: "
                           + " ".join(proc.stderr.split())[:300])


@contextlib.contextmanager
def _qemu_image(url):
    """``(options, image)`` naming ``url`` for qemu-img.

    A CHAP password in the URL would show in ``ps``; it goes to qemu-img
    through a secret file of mode 0600 instead, and the image is given as
    an option string (to be used with --image-opts / --target-image-opts).
    """
    from urllib.parse import unquote, urlsplit
    parts = urlsplit(url)
    # libiscsi's form: iscsi://USER%PASSWORD@PORTAL/IQN/LUN
    credentials, _, portal = parts.netloc.rpartition("@")
    if "%" not in credentials:
        yield [], None
        return
    user, password = credentials.split("%", 1)
    _, iqn, lun = parts.path.split("/")
    with tempfile.TemporaryDirectory(prefix="jdss-secret-") as tmp:
        secret = os.path.join(tmp, "chap")
        handle = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(handle, "w") as out:
            out.write(unquote(password))
        yield (["--object", f"secret,id=jdss-chap,file={secret}"],
               "driver=raw,file.driver=iscsi,file.transport=tcp,"
               f"file.portal={portal},"
               f"file.target={iqn},file.lun={lun},"
               f"file.user={unquote(user)},"
               "file.password-secret=jdss-chap")


@contextlib.contextmanager
def _local_copy_of(url):
    with tempfile.TemporaryDirectory(prefix="jdss-export-") as tmp, \
            _qemu_image(url) as (options, image):
        copy = os.path.join(tmp, "volume.raw")
        if image is None:
            _qemu_img("convert", "-f", "raw", "-O", "raw", url, copy)
        else:
            _qemu_img("convert", *options, "--image-opts", image,
                      "-O", "raw", copy)
        yield copy


def _is_url(path):
    return "://" in path


def export(path, size, out):
    """Write ``size`` bytes of ``path`` to binary file ``out``."""
    out.write(HEADER.pack(size))
    source = _local_copy_of(path) if _is_url(path) else \
        contextlib.nullcontext(path)
    with source as local, open(local, "rb") as handle, \
            Progress("exporting", size) as progress:
        left = size
        while left:
            chunk = handle.read(min(CHUNK, left))
            if not chunk:
                raise AttachFailed(f"{path} ended {left} bytes early")
            out.write(chunk)
            left -= len(chunk)
            progress.update(size - left)
    out.flush()


def read_header(stream):
    """The size announced by a raw+size stream."""
    header = stream.read(HEADER.size)
    if len(header) != HEADER.size:
        raise InvalidInput("the import stream has no raw+size header")
    return HEADER.unpack(header)[0]


def import_into(path, size, stream):
    """Copy ``size`` bytes from ``stream`` onto ``path``, keeping holes."""
    if _is_url(path):
        with tempfile.TemporaryDirectory(prefix="jdss-import-") as tmp:
            local = os.path.join(tmp, "volume.raw")
            with open(local, "wb") as handle:
                _copy_sparse(stream, handle, size)
            with _qemu_image(path) as (options, image):
                if image is None:
                    _qemu_img("convert", "-n", "-f", "raw", "-O", "raw",
                              local, path)
                else:
                    _qemu_img("convert", "-n", *options, "-f", "raw",
                              "--target-image-opts", local, image)
        return
    with open(path, "r+b") as handle:
        _copy_sparse(stream, handle, size)
        handle.flush()
        os.fsync(handle.fileno())


def _copy_sparse(stream, handle, size):
    """Copy, seeking over zero chunks; a regular file ends at ``size``."""
    left = size
    zero = bytes(CHUNK)
    with Progress("importing", size) as progress:
        while left:
            chunk = stream.read(min(CHUNK, left))
            if not chunk:
                raise InvalidInput(
                    f"the import stream ended {left} bytes early")
            if chunk == zero[:len(chunk)]:
                handle.seek(len(chunk), os.SEEK_CUR)
            else:
                handle.write(chunk)
            left -= len(chunk)
            progress.update(size - left)
    if not stat.S_ISBLK(os.fstat(handle.fileno()).st_mode):
        handle.truncate(size)
