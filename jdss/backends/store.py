"""Persistent, process-safe state of a model pool: a JSON file and a lock.

Writers take an exclusive lock for the whole read-modify-write, and a
change is written to a temporary file that replaces the state atomically,
so readers read the last committed state without a lock. A transaction
that raises writes nothing, so a failed operation leaves the pool as it
was. The files of the pool's NAS volumes live beside the state
(:mod:`jdss.backends.nasdata`).
"""

import contextlib
import fcntl
import json
import logging
import os
import tempfile

from jdss.backends.model import STATE_VERSION, PoolModel, new_state
from jdss.backends.nasdata import NasData
from jdss.errors import BackendError

LOG = logging.getLogger(__name__)


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

    @contextlib.contextmanager
    def _locked(self, mode):
        try:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise BackendError(f"fake backend: cannot use state directory "
                               f"{self.directory}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, mode)
            yield
        finally:
            os.close(fd)

    def _load(self):
        try:
            with open(self.path, encoding="utf-8") as handle:
                state = json.load(handle)
        except FileNotFoundError:
            return new_state(self.pool, self.size)
        except (OSError, ValueError) as exc:
            raise BackendError(f"fake backend: state file {self.path} is "
                               f"unreadable: {exc}") from None
        if state.get("version") != STATE_VERSION:
            raise BackendError(f"fake backend: state file {self.path} has "
                               f"version {state.get('version')}, expected "
                               f"{STATE_VERSION}")
        return state

    def _save(self, state):
        """Write ``state`` to a new file, flushed, that then replaces the
        state at once: a crash, even of the machine, leaves the old state
        or the new one, never a part."""
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".state-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                # dumps, not dump: one write from the C encoder, a fifth of
                # the time, and the pool stays locked for less
                handle.write(json.dumps(state, separators=(",", ":")))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def _sync_directory(self):
        """Make the last rename in the directory durable (a failure leaves
        the change made, maybe not on disk: said, not raised)."""
        try:
            directory = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        except OSError as exc:
            LOG.warning("fake backend: the state of %s may not be on disk "
                        "yet: %s", self.path, exc.strerror)

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
            yield PoolModel(self._load(), **self.model_options)

    @contextlib.contextmanager
    def transaction(self):
        """A :class:`PoolModel` whose changes are saved if no error rises;
        on disk, its name included, when the transaction returns. The
        directory is flushed once the pool is free again, so that the next
        change does not wait for that flush too."""
        with self._locked(fcntl.LOCK_EX):
            model = PoolModel(self._load(), **self.model_options)
            yield model
            self.nas_data.apply(model)
            self._save(model.state)
            if self.mirror is not None:
                self.mirror.apply(model)
        self._sync_directory()
