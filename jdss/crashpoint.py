"""A test hook: die by SIGKILL right after the k-th change on the appliance.

With ``JDSS_CRASH_AFTER=k`` in the environment, the backend is wrapped so
that the process kills itself, as a power cut or an OOM kill would, once
the k-th state-changing backend call has returned. Crash-consistency tests
run a command with k = 1, 2, ... and check that running it again converges.
Without the variable nothing is wrapped and nothing is imported.
"""

import os
import signal

ENV = "JDSS_CRASH_AFTER"
CHANGES = ("create_", "delete_", "clone_", "rollback_", "rename_",
           "resize_", "add_", "remove_", "set_")


def wrap(backend):
    """``backend``, or a proxy that dies after the configured change."""
    limit = os.environ.get(ENV)
    return _CrashAfter(backend, int(limit)) if limit else backend


class _CrashAfter:
    def __init__(self, backend, limit):
        self._backend = backend
        self._left = limit

    def __getattr__(self, name):
        attribute = getattr(self._backend, name)
        if not name.startswith(CHANGES) or not callable(attribute):
            return attribute

        def change(*args, **kwargs):
            result = attribute(*args, **kwargs)
            self._left -= 1
            if self._left == 0:
                os.kill(os.getpid(), signal.SIGKILL)
            return result
        return change
