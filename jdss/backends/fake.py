"""The ``fake`` backend: an embedded JovianDSS pool, no hardware needed.

It drives the same :class:`~jdss.backends.model.PoolModel` that the
emulator serves over HTTPS, persisted in ``fake_state_dir``, and maps the
model's appliance errors exactly as the REST backend maps the appliance's.
"""

import functools

from jdss.backends import appliance
from jdss.backends.base import Backend, RollbackChanged
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
        mirror = None
        if config.fake_tgt_portal:
            from jdss.backends.tgt import TgtMirror
            mirror = TgtMirror(config.fake_tgt_portal, config.state_dir,
                               config.pool)
            self.export_lun = 1            # tgt's controller holds LUN 0
        self.tgt = mirror
        self.store = StateStore(config.state_dir, config.pool,
                                config.fake_pool_size, mirror=mirror)

    def _change(self):
        """A model transaction; tgtd follows what it commits."""
        return self.store.transaction()

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

    @_translated
    def delete_volume(self, name, recursive=False):
        with self._change() as model:
            model.delete_volume(name, recursively_children=recursive)

    @_translated
    def resize_volume(self, name, size):
        with self._change() as model:
            model.resize_volume(name, size)

    @_translated
    def rename_volume(self, name, new_name):
        with self._change() as model:
            model.rename_volume(name, new_name)

    @_translated
    def list_snapshots(self, volume):
        with self.store.read() as model:
            infos = [appliance.snapshot_info(volume, r)
                     for r in model.snapshot_records(volume)]
        return sorted(infos, key=lambda info: info.creation)

    @_translated
    def get_snapshot(self, volume, snapshot):
        with self.store.read() as model:
            return appliance.snapshot_info(
                volume, model.snapshot_record(volume, snapshot))

    @_translated
    def snapshot_clones(self, volume, snapshot):
        with self.store.read() as model:
            return appliance.clone_names(
                model.clone_records(volume, snapshot))

    @_translated
    def create_snapshot(self, volume, snapshot):
        with self._change() as model:
            model.create_snapshot(volume, snapshot)

    @_translated
    def delete_snapshot(self, volume, snapshot):
        with self._change() as model:
            model.delete_snapshot(volume, snapshot)

    @_translated
    def rollback_check(self, volume, snapshot):
        with self.store.read() as model:
            record = model.rollback_record(volume, snapshot)
        return record["snapshots"], record["clones"]

    @_translated
    def rollback_snapshot(self, volume, snapshot, expect):
        # check and rollback in one transaction: nothing can come between
        with self._change() as model:
            record = model.rollback_record(volume, snapshot)
            found = (record["snapshots"], record["clones"])
            if found != tuple(expect):
                raise RollbackChanged(
                    f"rollback of {volume} to {snapshot} would now destroy "
                    f"{found[0]} snapshots and {found[1]} clones", found)
            model.rollback(volume, snapshot)

    @_translated
    def clone_volume(self, source, snapshot, name, sparse, readonly=False):
        with self._change() as model:
            model.clone(source, snapshot, name, sparse, readonly)

    @_translated
    def set_provisioning(self, name, sparse):
        with self._change() as model:
            model.set_provisioning(name, "thin" if sparse else "thick")

    @staticmethod
    def _target(model, iqn):
        return appliance.target_info(
            model.target_record(iqn), model.lun_records(iqn),
            appliance.users(model.user_records(iqn)))

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
            for owner in model.lun_owner(volume):
                _, iqn, _, _, _ = appliance.lun_owner(owner)
                return self._target(model, iqn)
            return None

    @_translated
    def create_target(self, iqn, chap, vips=()):
        fields = {}
        if vips:
            fields["vip_allowed_portals"] = {"enabled": True,
                                             "assigned_vips": list(vips)}
        with self._change() as model:
            model.create_target(iqn, active=True, incoming_users_active=chap,
                                **fields)

    @_translated
    def set_target(self, iqn, chap=None, vips=None):
        fields = {}
        if chap is not None:
            fields["incoming_users_active"] = bool(chap)
        if vips is not None:
            fields["vip_allowed_portals"] = {"enabled": bool(vips),
                                             "assigned_vips": list(vips)}
        with self._change() as model:
            model.update_target(iqn, **fields)

    @_translated
    def delete_target(self, iqn):
        with self._change() as model:
            model.delete_target(iqn)

    @_translated
    def add_lun(self, iqn, volume, lun):
        with self._change() as model:
            model.add_lun(iqn, volume, lun)
            return model.lun_record(iqn, volume)["scsi_id"]

    @_translated
    def delete_lun(self, iqn, volume):
        with self._change() as model:
            model.delete_lun(iqn, volume)

    def target_sessions(self, iqn):
        if self.tgt is None:
            return []
        return [s["initiator_name"] or s["ip"] or "?"
                for s in self.tgt.sessions(iqn)]

    @_translated
    def add_chap_user(self, iqn, user, password):
        with self._change() as model:
            model.add_user(iqn, user, password)

    @_translated
    def target_users(self, iqn):
        with self.store.read() as model:
            return appliance.users(model.user_records(iqn))

    @_translated
    def delete_chap_user(self, iqn, user):
        with self._change() as model:
            model.delete_user(iqn, user)

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
    def resize_nas_volume(self, name, quota):
        with self.store.transaction() as model:
            model.resize_nas_volume(name, quota)

    @_translated
    def delete_nas_volume(self, name):
        with self.store.transaction() as model:
            model.delete_nas_volume(name)

    @_translated
    def list_nas_snapshots(self, name):
        with self.store.read() as model:
            infos = [appliance.snapshot_info(name, r)
                     for r in model.nas_snapshot_records(name)]
        return sorted(infos, key=lambda info: info.creation)

    @_translated
    def get_nas_snapshot(self, name, snapshot):
        with self.store.read() as model:
            return appliance.snapshot_info(
                name, model.nas_snapshot_record(name, snapshot))

    @_translated
    def nas_snapshot_clones(self, name, snapshot):
        with self.store.read() as model:
            return appliance.clone_names(
                model.nas_clone_records(name, snapshot))

    @_translated
    def create_nas_snapshot(self, name, snapshot):
        with self.store.transaction() as model:
            model.create_nas_snapshot(name, snapshot)

    @_translated
    def delete_nas_snapshot(self, name, snapshot):
        with self.store.transaction() as model:
            model.delete_nas_snapshot(name, snapshot)

    @_translated
    def create_nas_clone(self, name, snapshot, clone):
        with self.store.transaction() as model:
            model.create_nas_clone(name, snapshot, clone)

    @_translated
    def delete_nas_clone(self, name, snapshot, clone):
        with self.store.transaction() as model:
            model.delete_nas_clone(name, snapshot, clone)

    @_translated
    def list_shares(self):
        with self.store.read() as model:
            return [appliance.share_info(r) for r in model.share_records()]

    @_translated
    def create_share(self, name, path):
        with self.store.transaction() as model:
            model.create_share(name, path)
            return appliance.share_info(model.share_record(name))

    @_translated
    def delete_share(self, name):
        with self.store.transaction() as model:
            model.delete_share(name)
