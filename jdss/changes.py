"""Decorators of the Storage methods that change the pool."""

import functools

from jdss import locks


def changes(method):
    """A method of an object with a ``backend`` that changes the pool: its
    requests ride out an appliance failover (:meth:`Backend.changing`)
    instead of giving up at the read deadline."""

    @functools.wraps(method)
    def changing(self, *args, **kwargs):
        with self.backend.changing():
            return method(self, *args, **kwargs)
    return changing


def one_change_per_volume(method):
    """Run ``method(self, volume, ...)`` under this node's volume lock, as
    a change (:func:`changes`)."""

    @functools.wraps(method)
    def locked(self, volume, *args, **kwargs):
        with locks.volume_lock(self.config.pool, volume), \
                self.backend.changing():
            return method(self, volume, *args, **kwargs)
    return locked
