"""Decorators of the Storage methods that change the pool."""

import functools

from jdss import locks, naming


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
    """Run ``method(self, volume, ...)`` under the volume's lock (cluster-
    wide on a Proxmox node), as a change (:func:`changes`); the name is
    checked before any lock is made."""

    @functools.wraps(method)
    def locked(self, volume, *args, **kwargs):
        naming.validate_volume_name(volume)
        with locks.volume_lock(self.config, volume), \
                self.backend.changing():
            return method(self, volume, *args, **kwargs)
    return locked
