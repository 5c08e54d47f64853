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
    checked before any lock is made. Also for a method that makes volume
    ``volume``: so no other jdss makes a volume of that name meanwhile,
    which a request whose answer was lost relies on (it is looked up by
    name before it is sent again: a volume of that name must then be this
    call's)."""
    return _under_volume_locks(method, 1)


def makes_volume_from(method):
    """As :func:`one_change_per_volume`, for ``method(self, volume, name,
    ...)`` that makes volume ``name`` out of ``volume`` (rename, clone):
    under the locks of both."""
    return _under_volume_locks(method, 2)


def _under_volume_locks(method, count):
    @functools.wraps(method)
    def locked(self, *args, **kwargs):
        names = args[:count]
        for name in names:
            naming.validate_volume_name(name)
        with locks.volume_locks(self.config, names), \
                self.backend.changing():
            return method(self, *args, **kwargs)
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
