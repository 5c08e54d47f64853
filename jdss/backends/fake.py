"""The ``fake`` backend: an embedded JovianDSS pool, no hardware needed.

It drives the same :class:`~jdss.backends.model.PoolModel` that the
emulator serves over HTTPS, persisted in ``fake_state_dir``, and maps the
model's appliance errors exactly as the REST backend maps the appliance's.
"""

import functools

from jdss.backends import appliance
from jdss.backends.base import Backend
from jdss.backends.store import StateStore


def _translated(method):
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except appliance.ApplianceError as exc:
            raise appliance.to_jdss_error(exc.status, exc.cls, exc.errno,
                                          exc.message) from None
    return wrapper


class FakeBackend(Backend):
    """A pool of the embedded model."""

    def __init__(self, config):
        super().__init__(config)
        self.store = StateStore(config.state_dir, config.pool,
                                config.fake_pool_size)

    @_translated
    def get_pool(self):
        with self.store.read() as model:
            return appliance.pool_info(model.pool_record())

    @_translated
    def list_volumes(self):
        with self.store.read() as model:
            return [appliance.volume_info(r) for r in model.volume_records()]

    @_translated
    def get_volume(self, name):
        with self.store.read() as model:
            return appliance.volume_info(model.volume_record(name))

    @_translated
    def create_volume(self, name, size, sparse, block_size):
        with self.store.transaction() as model:
            model.create_volume(name, size, sparse, block_size)

    @_translated
    def delete_volume(self, name, recursive=False):
        with self.store.transaction() as model:
            model.delete_volume(name, recursively_children=recursive)

    @_translated
    def resize_volume(self, name, size):
        with self.store.transaction() as model:
            model.resize_volume(name, size)

    @_translated
    def rename_volume(self, name, new_name):
        with self.store.transaction() as model:
            model.rename_volume(name, new_name)

    @_translated
    def list_snapshots(self, volume):
        with self.store.read() as model:
            return [appliance.snapshot_info(volume, r)
                    for r in model.snapshot_records(volume)]

    @_translated
    def create_snapshot(self, volume, snapshot):
        with self.store.transaction() as model:
            model.create_snapshot(volume, snapshot)

    @_translated
    def delete_snapshot(self, volume, snapshot):
        with self.store.transaction() as model:
            model.delete_snapshot(volume, snapshot)

    @_translated
    def rollback_snapshot(self, volume, snapshot):
        with self.store.transaction() as model:
            model.rollback(volume, snapshot)

    @_translated
    def clone_volume(self, source, snapshot, name, sparse, readonly=False):
        with self.store.transaction() as model:
            model.clone(source, snapshot, name, sparse, readonly)

    @staticmethod
    def _target(model, iqn):
        return appliance.target_info(model.target_record(iqn),
                                     model.lun_records(iqn),
                                     model.user_records(iqn))

    @_translated
    def get_target(self, iqn):
        with self.store.read() as model:
            return self._target(model, iqn)

    @_translated
    def find_volume_target(self, volume):
        with self.store.read() as model:
            owners = model.lun_owner(volume)
            return self._target(model, owners[0]["name"]) if owners else None

    @_translated
    def create_target(self, iqn, chap):
        with self.store.transaction() as model:
            model.create_target(iqn, active=True, incoming_users_active=chap)

    @_translated
    def delete_target(self, iqn):
        with self.store.transaction() as model:
            model.delete_target(iqn)

    @_translated
    def add_lun(self, iqn, volume, lun):
        with self.store.transaction() as model:
            model.add_lun(iqn, volume, lun)

    @_translated
    def delete_lun(self, iqn, volume):
        with self.store.transaction() as model:
            model.delete_lun(iqn, volume)

    @_translated
    def add_chap_user(self, iqn, user, password):
        with self.store.transaction() as model:
            model.add_user(iqn, user, password)

    @_translated
    def list_nas_volumes(self):
        with self.store.read() as model:
            return [appliance.nas_volume_info(r)
                    for r in model.nas_volume_records()]

    @_translated
    def get_nas_volume(self, name):
        with self.store.read() as model:
            return appliance.nas_volume_info(model.nas_volume_record(name))

    @_translated
    def create_nas_volume(self, name, quota):
        with self.store.transaction() as model:
            model.create_nas_volume(name, quota)

    @_translated
    def delete_nas_volume(self, name):
        with self.store.transaction() as model:
            model.delete_nas_volume(name)

    @_translated
    def list_shares(self):
        with self.store.read() as model:
            return [appliance.share_info(r) for r in model.share_records()]

    @_translated
    def create_share(self, name, path):
        with self.store.transaction() as model:
            model.create_share(name, path)

    @_translated
    def delete_share(self, name):
        with self.store.transaction() as model:
            model.delete_share(name)
