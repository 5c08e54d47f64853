"""The ``raw+size`` stream of Proxmox storage migration.

An 8-byte little-endian size, then that many bytes of raw data. jdss reads
and writes it from a block device, or through a temporary sparse file and
``qemu-img`` when the transport gives an ``iscsi://`` URL.

A stream has no total time limit: a large disk takes as long as it takes.
It fails when no byte moves for ``idle`` seconds (the peer hung or died).
Streams are read and written at the file descriptor, never through Python's
buffers, so nothing is read ahead of what the stream holds.
"""

import contextlib
import os
import select
import shutil
import stat
import struct
import subprocess
import tempfile

from jdss.errors import AttachFailed, InvalidInput, NoSpace
from jdss.progress import Progress

HEADER = struct.Struct("<Q")
CHUNK = 4 << 20
IDLE_TIMEOUT = 300.0


class Stalled(AttachFailed):
    """No byte moved on a stream for the inactivity timeout."""


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


def _staging_dir(size):
    """A temporary directory with room for ``size`` bytes, or NoSpace."""
    base = tempfile.gettempdir()
    free = shutil.disk_usage(base).free
    if free < size:
        raise NoSpace(f"an iscsi:// volume of {size} bytes is copied through "
                      f"a temporary file in {base}, which has only {free} "
                      "bytes free; set TMPDIR to a larger file system")
    return tempfile.TemporaryDirectory(prefix="jdss-copy-", dir=base)


@contextlib.contextmanager
def _local_copy_of(url, size):
    with _staging_dir(size) as tmp, _qemu_image(url) as (options, image):
        copy = os.path.join(tmp, "volume.raw")
        if image is None:
            _qemu_img("convert", "-f", "raw", "-O", "raw", url, copy)
        else:
            _qemu_img("convert", *options, "--image-opts", image,
                      "-O", "raw", copy)
        yield copy


def _is_url(path):
    return "://" in path


def _wait(fd, for_write, idle, what):
    readers, writers = ([], [fd]) if for_write else ([fd], [])
    if not any(select.select(readers, writers, [], idle)):
        raise Stalled(f"the {what} stream moved no data for {idle:g} s")


def _write_all(fd, data, idle):
    view = memoryview(data)
    while view:
        _wait(fd, True, idle, "export")
        view = view[os.write(fd, view):]


def read_exact(fd, size, idle=IDLE_TIMEOUT):
    """Up to ``size`` bytes from ``fd``; fewer only at the end."""
    chunks, got = [], 0
    while got < size:
        _wait(fd, False, idle, "import")
        chunk = os.read(fd, size - got)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def export(path, size, out_fd, block=CHUNK, idle=IDLE_TIMEOUT):
    """Write the header and ``size`` bytes of ``path`` to ``out_fd``."""
    _write_all(out_fd, HEADER.pack(size), idle)
    source = _local_copy_of(path, size) if _is_url(path) else \
        contextlib.nullcontext(path)
    with source as local, open(local, "rb", buffering=0) as handle, \
            Progress("exporting", size) as progress:
        left = size
        while left:
            chunk = handle.read(min(block, left))
            if not chunk:
                raise AttachFailed(f"{path} ended {left} bytes early")
            _write_all(out_fd, chunk, idle)
            left -= len(chunk)
            progress.update(size - left)


def read_header(in_fd, idle=IDLE_TIMEOUT):
    """The size announced by a raw+size stream."""
    header = read_exact(in_fd, HEADER.size, idle)
    if len(header) != HEADER.size:
        raise InvalidInput("the import stream has no raw+size header")
    return HEADER.unpack(header)[0]


def import_into(path, size, in_fd, fresh, block=CHUNK, idle=IDLE_TIMEOUT):
    """Copy ``size`` bytes from ``in_fd`` onto ``path``.

    All-zero chunks are skipped only on a ``fresh`` volume (one this
    import made, which reads as zeros): on an existing one every byte of
    ``[0, size)`` is written, or old data would show through.
    """
    if _is_url(path):
        with _staging_dir(size) as tmp:
            local = os.path.join(tmp, "volume.raw")
            with open(local, "wb") as handle:
                _copy(in_fd, handle, size, True, block, idle)
            with _qemu_image(path) as (options, image):
                if image is None:
                    _qemu_img("convert", "-n", "-f", "raw", "-O", "raw",
                              *([] if fresh else ["-S", "0"]), local, path)
                else:
                    _qemu_img("convert", "-n", *options, "-f", "raw",
                              *([] if fresh else ["-S", "0"]),
                              "--target-image-opts", local, image)
        return
    with open(path, "r+b") as handle:
        _copy(in_fd, handle, size, fresh, block, idle)
        handle.flush()
        os.fsync(handle.fileno())


def _copy(in_fd, handle, size, skip_zeros, block, idle):
    """Copy, seeking over zero chunks if allowed; a file ends at ``size``."""
    left = size
    zero = bytes(block)
    with Progress("importing", size) as progress:
        while left:
            chunk = read_exact(in_fd, min(block, left), idle)
            if not chunk:
                raise InvalidInput(
                    f"the import stream ended {left} bytes early")
            if skip_zeros and chunk == zero[:len(chunk)]:
                handle.seek(len(chunk), os.SEEK_CUR)
            else:
                handle.write(chunk)
            left -= len(chunk)
            progress.update(size - left)
    if not stat.S_ISBLK(os.fstat(handle.fileno()).st_mode):
        handle.truncate(size)
