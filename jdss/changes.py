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


def one_change_per_nas_volume(method):
    """As :func:`one_change_per_volume`, for ``method(self, nas_volume,
    ...)``: under the NAS volume's lock."""

    @functools.wraps(method)
    def locked(self, name, *args, **kwargs):
        naming.validate_nas_volume_name(name)
        with locks.nas_lock(self.config, name), self.backend.changing():
            return method(self, name, *args, **kwargs)
    return locked
