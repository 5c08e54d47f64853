"""A thread that runs ahead of its own nice level for a while.

Linux keeps a nice level per thread, so raising one thread's priority
leaves the process's other threads as they were. Raising it needs root,
CAP_SYS_NICE or a high enough RLIMIT_NICE: a thread that may not runs as
it did, and the process stops asking. Commands started meanwhile inherit
the raised level; :func:`at_own_level` starts one at the level from
before instead, for one that outlives the moment (a daemon).
"""

import contextlib
import logging
import os
import threading

LOG = logging.getLogger(__name__)

_may_raise = True                  # until the kernel refuses once
_before = threading.local()        # the level each raised thread came from


def _level():
    return os.getpriority(os.PRIO_PROCESS, 0)     # the calling thread's


def raise_by(levels):
    """Run the calling thread up to ``levels`` nice levels higher (-20 at
    most) from now on, if it may: False if the kernel refused (the
    process then stops asking)."""
    global _may_raise
    own = _level()
    if levels <= 0 or own == -20:
        return True
    if not _may_raise:
        return False
    try:
        os.setpriority(os.PRIO_PROCESS, 0, max(-20, own - levels))
    except OSError as exc:           # not allowed, or no such call here
        _may_raise = False
        LOG.debug("running at nice %d, not higher: %s", own, exc.strerror)
        return False
    return True


@contextlib.contextmanager
def ahead(levels):
    """Run the calling thread up to ``levels`` nice levels higher (-20 at
    most) meanwhile, if it may; at its own level again afterwards."""
    own = _level()
    if not raise_by(levels):
        yield
        return
    outermost = not hasattr(_before, "level")
    if outermost:
        _before.level = own
    try:
        yield
    finally:
        if outermost:
            del _before.level
        with contextlib.suppress(OSError):   # lowering one's own: allowed
            os.setpriority(os.PRIO_PROCESS, 0, own)


def at_own_level(command):
    """``command`` to start at the calling thread's level from before
    :func:`ahead` raised it (as it is when it did not)."""
    current = _level()
    lower_by = getattr(_before, "level", current) - current
    return ["nice", "-n", str(lower_by), *command] if lower_by > 0 \
        else list(command)
