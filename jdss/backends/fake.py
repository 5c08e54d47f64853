"""The ``fake`` backend: an embedded JovianDSS pool, no hardware needed.

It drives the same :class:`~jdss.backends.model.PoolModel` that the
emulator serves over HTTPS, persisted in ``fake_state_dir``, and maps the
model's appliance errors exactly as the REST backend maps the appliance's.
"""

import contextlib
import copy
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
    """A pool of the embedded model, optionally served through tgtd."""

    def __init__(self, config):
        super().__init__(config)
        self.store = StateStore(config.state_dir, config.pool,
                                config.fake_pool_size)
        self.tgt = None
        if config.fake_tgt_portal:
            from jdss.backends.tgt import TgtMirror
            self.tgt = TgtMirror(config.fake_tgt_portal, config.state_dir,
                                 config.pool)
            self.export_lun = 1

    @contextlib.contextmanager
    def _change(self):
        """A model transaction; then tgtd follows the committed targets."""
        with self.store.transaction() as model:
            yield model
            if self.tgt is None:
                return
            targets = copy.deepcopy(model.targets)
            readonly = {name for name, volume in model.volumes.items()
                        if volume.get("readonly")}
        self.tgt.sync(targets, readonly)

    def _data(self, operation, *args):
        if self.tgt is not None:
            getattr(self.tgt, operation)(*args)

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
        with self._change() as model:
            model.create_volume(name, size, sparse, block_size)
            self._data("create", name, int(size))

    @_translated
    def delete_volume(self, name, recursive=False):
        with self._change() as model:
            snaps = list(model.volumes.get(name, {}).get("snapshots", ()))
            model.delete_volume(name, recursively_children=recursive)
            for snap in [None] + snaps:
                self._data("remove", name, snap)

    @_translated
    def resize_volume(self, name, size):
        with self._change() as model:
            model.resize_volume(name, size)
            self._data("resize", name, int(size))

    @_translated
    def rename_volume(self, name, new_name):
        with self._change() as model:
            model.rename_volume(name, new_name)
            self._data("rename", name, new_name,
                       list(model.volumes[new_name]["snapshots"]))

    @_translated
    def list_snapshots(self, volume):
        with self.store.read() as model:
            return [appliance.snapshot_info(volume, r)
                    for r in model.snapshot_records(volume)]

    @_translated
    def create_snapshot(self, volume, snapshot):
        with self._change() as model:
            model.create_snapshot(volume, snapshot)
            self._data("snapshot", volume, snapshot)

    @_translated
    def delete_snapshot(self, volume, snapshot):
        with self._change() as model:
            model.delete_snapshot(volume, snapshot)
            self._data("remove", volume, snapshot)

    @_translated
    def rollback_snapshot(self, volume, snapshot):
        with self._change() as model:
            before = set(model.volumes)
            newer = model._newer(volume, snapshot) \
                if volume in model.volumes else []
            model.rollback(volume, snapshot)
            self._data("rollback", volume, snapshot)
            for snap in newer:
                self._data("remove", volume, snap)
            for gone in before - set(model.volumes):
                self._data("remove", gone)

    @_translated
    def clone_volume(self, source, snapshot, name, sparse, readonly=False):
        with self._change() as model:
            model.clone(source, snapshot, name, sparse, readonly)
            self._data("clone", source, snapshot, name,
                       model.volumes[name]["volsize"])

    @staticmethod
    def _target(model, iqn):
        return appliance.target_info(model.target_record(iqn),
                                     model.lun_records(iqn),
                                     model.user_records(iqn))

    @_translated
    def list_targets(self):
        with self.store.read() as model:
            return [self._target(model, iqn) for iqn in model.targets]

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
        with self._change() as model:
            model.create_target(iqn, active=True, incoming_users_active=chap)

    @_translated
    def delete_target(self, iqn):
        with self._change() as model:
            model.delete_target(iqn)

    @_translated
    def add_lun(self, iqn, volume, lun):
        with self._change() as model:
            model.add_lun(iqn, volume, lun)

    @_translated
    def delete_lun(self, iqn, volume):
        with self._change() as model:
            model.delete_lun(iqn, volume)

    def target_sessions(self, iqn):
        return self.tgt.sessions(iqn) if self.tgt is not None else []

    @_translated
    def add_chap_user(self, iqn, user, password):
        with self._change() as model:
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
