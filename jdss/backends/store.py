"""Persistent, process-safe state of a model pool: a JSON file and a lock.

Writers take an exclusive lock for the whole read-modify-write, and a
change is written to a temporary file that replaces the state atomically,
so readers read the last committed state without a lock. A transaction
that raises writes nothing, so a failed operation leaves the pool as it
was. The files of the pool's NAS volumes live beside the state
(:mod:`jdss.backends.nasdata`).

Each saved state begins with its serial, higher than the state's it
replaced and the flushed copy's. The state is flushed to disk after the
pool's lock is released (a flush under load takes tens of milliseconds,
and every writer of the pool would wait for each): a transaction returns
once a flushed copy, ``<pool>.json.flushed`` (a hard link of the newest
state), holds a serial at least its own, unless a flush fails (a warning
then says so). One flush covers every change committed before it (group
commit), so writers that commit while another flushes mostly find their
change on disk already. After a machine's crash the state file may be
left empty or half written (a file system may keep a rename but not the
data renamed); it is then read from the flushed copy, which holds every
change answered as done while flushes succeeded.

Every change of a pool waits for the one holding its lock, so the holding
thread runs up to ``AHEAD`` nice levels above its own while it holds it,
where it may (:mod:`jdss.priority`): on a machine whose CPUs are all busy,
a holder that the scheduler sets aside for others makes every waiting
change wait that long too. Waiting for the lock, and the flush afterwards,
run at the thread's own level; so does a tgtd the mirror starts meanwhile.
"""

import contextlib
import errno
import fcntl
import json
import logging
import os
import re
import shutil

from jdss import priority
from jdss.backends.model import STATE_VERSION, PoolModel, new_state
from jdss.backends.nasdata import NasData
from jdss.errors import BackendError

LOG = logging.getLogger(__name__)

_SERIAL = re.compile(rb'^\{"serial":(\d+),')
LINK_TRIES = 100
AHEAD = 10                      # nice levels a pool's lock holder gains


class StateStore:
    """The state of pool ``pool`` under ``directory``.

    ``model_options`` go to every :class:`PoolModel` made (firmware, VIPs).
    A ``mirror`` (see :mod:`jdss.backends.tgt`) replays each committed
    change on real data and targets while the lock is still held, so
    concurrent changes reach it in the order they were made.
    """

    def __init__(self, directory, pool, size, mirror=None, **model_options):
        self.directory = directory
        self.pool = pool
        self.size = size
        self.mirror = mirror
        self.nas_data = NasData(directory, pool)
        if mirror is not None:
            model_options.setdefault("reserved_luns", mirror.reserved_luns)
        model_options.setdefault("nas_usage", self.nas_data.usage)
        self.model_options = model_options
        self.path = os.path.join(directory, f"{pool}.json")
        self.lock_path = os.path.join(directory, f"{pool}.lock")
        self.next_path = f"{self.path}.new"
        self.flushed_path = f"{self.path}.flushed"
        self.flushing_path = f"{self.flushed_path}.new"
        self.flush_lock_path = f"{self.lock_path}.flush"

    @contextlib.contextmanager
    def _locked(self, mode, path=None):
        try:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
            fd = os.open(path or self.lock_path, os.O_RDWR | os.O_CREAT,
                         0o600)
        except OSError as exc:
            raise BackendError(f"fake backend: cannot use state directory "
                               f"{self.directory}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, mode)
            yield
        finally:
            os.close(fd)

    def _load(self):
        """The last committed state and its serial (0 for a new pool: a
        transaction counts on from the flushed copy's)."""
        try:
            return self._parse(self.path)
        except FileNotFoundError:
            return new_state(self.pool, self.size), 0
        except OSError as exc:      # not the content: no reason to go back
            raise BackendError(f"fake backend: state file {self.path} is "
                               f"unreadable: {exc}") from None
        except ValueError as exc:   # what a crash of the machine can leave
            damage = exc
        try:
            flushed = self._parse(self.flushed_path)
        except (OSError, ValueError):
            raise BackendError(f"fake backend: state file {self.path} is "
                               f"unreadable: {damage}") from None
        LOG.warning("fake backend: state file %s is unreadable (%s), as a "
                    "crash of the machine can leave it; read from %s",
                    self.path, damage, self.flushed_path)
        return flushed

    def _parse(self, path):
        with open(path, "rb") as handle:
            state = json.loads(handle.read())
        if not isinstance(state, dict):
            raise ValueError(f"not a JSON object: {type(state).__name__}")
        if state.get("version") != STATE_VERSION:
            raise BackendError(f"fake backend: state file {path} has "
                               f"version {state.get('version')}, expected "
                               f"{STATE_VERSION}")
        return state, state.pop("serial", 0)

    def _save(self, state, serial):
        """Write ``state`` to a new file that then replaces the state at
        once: a crash of a process leaves the old state or the new one,
        never a part (a crash of the machine: see :meth:`_flush`)."""
        try:
            # only the pool lock's holder writes it: one left is a killed
            # writer's
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.next_path)
            fd = os.open(self.next_path,
                         os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                # dumps, not dump: one write from the C encoder, a fifth of
                # the time, and the pool stays locked for less
                handle.write(json.dumps({"serial": serial, **state},
                                        separators=(",", ":")))
            os.replace(self.next_path, self.path)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(self.next_path)
            if isinstance(exc, OSError):
                raise BackendError(f"fake backend: cannot save the state of "
                                   f"pool {self.pool} in {self.directory}: "
                                   f"{exc.strerror}") from None
            raise

    def _flushed_serial(self):
        try:
            with open(self.flushed_path, "rb") as handle:
                found = _SERIAL.match(handle.read(32))
        except FileNotFoundError:
            return 0
        except OSError as exc:
            raise BackendError(f"fake backend: cannot read "
                               f"{self.flushed_path}: {exc.strerror}") \
                from None
        return int(found.group(1)) if found else 0

    def _flush(self, serial):
        """Return once change ``serial`` is on disk: once the flushed copy
        holds it, or after flushing the newest state as that copy. A
        failure leaves the change made (the pool already shows it), maybe
        not on disk, nor the changes this flush would have covered: said,
        not raised."""
        try:
            with self._locked(fcntl.LOCK_EX, self.flush_lock_path):
                if self._flushed_serial() >= serial:
                    return
                # the newest state holds this change and every one before
                # it; its inode is linked, so a later change that replaces
                # the state file cannot take it away while it is flushed
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.flushing_path)
                self._link_newest(self.flushing_path)
                fd = os.open(self.flushing_path, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.replace(self.flushing_path, self.flushed_path)
                self._sync_directory()
        except (OSError, BackendError) as exc:
            LOG.warning("fake backend: the state of %s may not be on disk "
                        "yet: %s", self.path,
                        getattr(exc, "strerror", None) or exc)

    def _link_newest(self, linked):
        """Link the state file's inode as ``linked`` (copy it where the
        file system has no hard links). link() fails with ENOENT when a
        rename replaces the state meanwhile, though the name is never
        missing: the next try finds the newer state."""
        for _ in range(LINK_TRIES):
            try:
                os.link(self.path, linked)
                return
            except FileNotFoundError:
                continue
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP):
                    raise
                # as private as the state (it holds CHAP secrets)
                with open(self.path, "rb") as source, open(
                        os.open(linked, os.O_WRONLY | os.O_CREAT |
                                os.O_EXCL, 0o600), "wb") as copy:
                    shutil.copyfileobj(source, copy)
                return
        raise OSError(errno.ENOENT, f"{self.path} was replaced at each of "
                      f"{LINK_TRIES} tries to link it")

    def _sync_directory(self):
        directory = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    @contextlib.contextmanager
    def read(self):
        """A :class:`PoolModel` to read from: the last committed state.

        A change replaces the state file in one rename, so a reader needs
        no lock and never waits for a writer, as the appliance answers
        reads while it changes a pool. Where a change also has files to
        change (a pool with NAS volumes, whose usage is read from their
        files) or tgtd to follow (a mirror), it is whole only once those
        are done too: readers then wait for the writer."""
        whole_in_state = self.mirror is None and \
            not os.path.isdir(self.nas_data.volumes)
        with contextlib.nullcontext() if whole_in_state \
                else self._locked(fcntl.LOCK_SH):
            yield PoolModel(self._load()[0], **self.model_options)

    @contextlib.contextmanager
    def transaction(self):
        """A :class:`PoolModel` whose changes are saved if no error rises;
        on disk when the transaction returns, flushed once the pool is
        free again (see the module's notes)."""
        with self._locked(fcntl.LOCK_EX), priority.ahead(AHEAD):
            state, serial = self._load()
            # a state file put back from a copy may have an older serial;
            # the new one must pass the flushed copy's or it would count
            # as flushed
            serial = max(serial, self._flushed_serial())
            model = PoolModel(state, **self.model_options)
            yield model
            self.nas_data.apply(model)
            self._save(model.state, serial + 1)
            if self.mirror is not None:
                self.mirror.apply(model)
        self._flush(serial + 1)
