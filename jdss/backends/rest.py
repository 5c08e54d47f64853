"""The ``joviandss`` backend: a JovianDSS appliance over its REST API.

Every answer is read as the appliance's own clients read it (see
:mod:`jdss.backends.appliance`): lists as plain lists or pages, snapshots
in either firmware's form, LUN owners nested or flat.
"""

import functools
import logging

from jdss import errors
from jdss.backends import appliance
from jdss.backends.base import Backend, RollbackChanged
from jdss.backends.rest_client import RestClient, path
from jdss.progress import Progress

LOG = logging.getLogger(__name__)
#: appliances are not asked for more than 100 entries a page
PAGE_SIZE = 100
#: the appliance's own clients page targets by 25
TARGET_PAGE_SIZE = 25


class JovianBackend(Backend):
    """A pool of a JovianDSS appliance."""

    def __init__(self, config):
        super().__init__(config)
        self.client = RestClient(config)
        # older firmware refuses vip_allowed_portals: learnt once a process
        self._vip_field = True

    def changing(self):
        return self.client.patient()

    # plumbing -------------------------------------------------------------
    def _pool_path(self, *segments):
        return path("pools", self.pool, *segments)

    def _get(self, path_):
        return self.client.request("GET", path_).data

    def _exists(self, path_):
        try:
            self._get(path_)
            return True
        except errors.NotFound:
            return False

    def _create(self, path_, body, created_path, name_locked=True):
        """POST that is never blindly repeated: see RestClient.request.
        ``name_locked``: jdss holds the new object's name under a lock
        (volumes, snapshots, NAS volumes and shares; not a guest's target,
        which several of its volumes' attaches may make at once)."""
        return self.client.request(
            "POST", path_, body, safe_to_repeat=False,
            exists=functools.partial(self._exists, created_path),
            name_locked=name_locked)

    def _delete(self, path_, body=None):
        self.client.request("DELETE", path_, body)

    def _paged(self, path_, per_page=PAGE_SIZE):
        """Every entry of a paged list, walking pages until an empty one.

        A short page is not the end: an appliance may serve fewer entries
        per page than asked for. A page with nothing new ends the walk too.
        """
        entries, seen = [], set()
        page = 0
        with Progress(f"listing {path_.rsplit('/', 1)[-1]}",
                      unit="entries") as progress:
            while True:
                batch = appliance.entries(
                    self._get(f"{path_}?page={page}&per_page={per_page}"))
                fresh = [e for e in batch if e.get("name") not in seen]
                seen.update(e.get("name") for e in fresh)
                entries.extend(fresh)
                if not fresh:
                    return entries
                page += 1
                progress.update(len(entries))

    # pool -----------------------------------------------------------------
    def get_pool(self):
        return appliance.pool_info(self._get(self._pool_path()))

    def list_vips(self):
        return appliance.vips(self._get(self._pool_path("vips")))

    # volumes --------------------------------------------------------------
    def list_volumes(self):
        return [appliance.volume_info(r)
                for r in self._paged(self._pool_path("volumes"))]

    def get_volume(self, name):
        return appliance.volume_info(
            self._get(self._pool_path("volumes", name)))

    def create_volume(self, name, size, sparse, block_size):
        self._create(self._pool_path("volumes"),
                     {"name": name, "size": str(size), "sparse": sparse,
                      "blocksize": block_size},
                     self._pool_path("volumes", name))

    def delete_volume(self, name, recursive=False):
        body = {"recursively_children": True} if recursive else None
        self._delete(self._pool_path("volumes", name), body)

    def resize_volume(self, name, size):
        self.client.request("PUT", self._pool_path("volumes", name),
                            {"size": str(size)})

    def set_provisioning(self, name, sparse):
        self.client.request("PUT", self._pool_path("volumes", name),
                            {"provisioning": "thin" if sparse else "thick"})

    def rename_volume(self, name, new_name):
        old_path = self._pool_path("volumes", name)
        new_path = self._pool_path("volumes", new_name)
        self.client.request(
            "PUT", old_path, {"name": new_name}, safe_to_repeat=False,
            name_locked=True,
            # applied: the new name there and the old one gone (a volume
            # of the new name that was there before is not this rename)
            exists=lambda: self._exists(new_path) and
            not self._exists(old_path))

    # snapshots ------------------------------------------------------------
    def _snapshot_path(self, volume, *segments):
        return self._pool_path("volumes", volume, "snapshots", *segments)

    def list_snapshots(self, volume):
        # the appliance promises no order: oldest first by creation time
        infos = [appliance.snapshot_info(volume, r)
                 for r in self._paged(self._snapshot_path(volume))]
        return sorted(infos, key=lambda info: info.creation)

    def get_snapshot(self, volume, snapshot):
        return appliance.snapshot_info(
            volume, self._get(self._snapshot_path(volume, snapshot)))

    def snapshot_clones(self, volume, snapshot):
        return appliance.clone_names(
            self._get(self._snapshot_path(volume, snapshot, "clones")))

    def create_snapshot(self, volume, snapshot):
        self._create(self._snapshot_path(volume), {"snapshot_name": snapshot},
                     self._snapshot_path(volume, snapshot))

    def delete_snapshot(self, volume, snapshot):
        self._delete(self._snapshot_path(volume, snapshot))

    def rollback_check(self, volume, snapshot):
        data = self._get(self._snapshot_path(volume, snapshot, "rollback"))
        if not isinstance(data, dict):
            raise errors.BackendError(f"the appliance's rollback check of "
                                      f"{volume}@{snapshot} is unreadable: "
                                      f"{data!r:.80}")
        return appliance._int(data.get("snapshots")), \
            appliance._int(data.get("clones"))

    def rollback_snapshot(self, volume, snapshot, expect):
        expect = tuple(expect)

        def changed(found):
            return RollbackChanged(
                f"rollback of {volume} to {snapshot} would now destroy "
                f"{found[0]} snapshots and {found[1]} clones", found)

        found = self.rollback_check(volume, snapshot)
        if found != expect:
            raise changed(found)

        def applied():
            # outcome lost: sent again while the check still gives what was
            # accepted (harmless when that is nothing), done once what was
            # accepted is gone, refused if anything else changed
            found = self.rollback_check(volume, snapshot)
            if found == expect:
                return False
            if found == (0, 0):
                return True
            raise changed(found)

        self.client.request(
            "POST", self._snapshot_path(volume, snapshot, "rollback"),
            safe_to_repeat=False, exists=applied)

    def clone_volume(self, source, snapshot, name, sparse, readonly=False):
        body = {"name": name, "snapshot": snapshot, "sparse": sparse}
        if readonly:
            body["readonly"] = True
        self._create(self._pool_path("volumes", source, "clone"), body,
                     self._pool_path("volumes", name))

    # iSCSI targets --------------------------------------------------------
    def _target_path(self, iqn, *segments):
        return self._pool_path("san", "iscsi", "targets", iqn, *segments)

    def list_targets(self):
        records = self._paged(self._pool_path("san", "iscsi", "targets"),
                              TARGET_PAGE_SIZE)
        return [appliance.target_info(
                    r, self._get(self._target_path(r["name"], "luns")), {})
                for r in records]

    def get_target(self, iqn):
        record = self._get(self._target_path(iqn))
        luns = self._get(self._target_path(iqn, "luns"))
        users = self.target_users(iqn) \
            if record.get("incoming_users_active") else {}
        return appliance.target_info(record, luns, users)

    def find_volume_target(self, volume):
        owners = self._get(path("san", "iscsi", "luns")
                           + f"?where=name=={volume}")
        for owner in appliance.entries(owners):
            pool, iqn, lun, record, name = appliance.lun_owner(owner)
            if pool not in (None, self.pool) or not iqn or \
                    name not in (None, volume):
                continue
            if record is None or "incoming_users_active" not in record:
                try:
                    record = self._get(self._target_path(iqn))
                except errors.NotFound:
                    return None
            return appliance.target_info(dict(record, name=iqn),
                                         [dict(lun, name=volume)], {})
        return None

    def target_luns(self, iqn):
        return appliance.target_info(
            {"name": iqn}, self._get(self._target_path(iqn, "luns")),
            {}).luns

    def create_target(self, iqn, chap, vips=()):
        body = {"name": iqn, "active": True, "incoming_users_active": chap}
        if vips and self._vip_field:
            try:
                self._create(self._pool_path("san", "iscsi", "targets"),
                             dict(body, vip_allowed_portals={
                                 "enabled": True,
                                 "assigned_vips": list(vips)}),
                             self._target_path(iqn), name_locked=False)
                return
            except appliance.FieldRefused as exc:
                if "vip_allowed_portals" not in exc.fields:
                    raise
                LOG.info("the appliance's firmware cannot bind targets to "
                         "virtual IPs: creating %s without", iqn)
                self._vip_field = False
        self._create(self._pool_path("san", "iscsi", "targets"), body,
                     self._target_path(iqn), name_locked=False)

    def set_target(self, iqn, chap=None, vips=None):
        body = {"name": iqn}
        if chap is not None:
            body["incoming_users_active"] = bool(chap)
        if vips is not None and self._vip_field:
            body["vip_allowed_portals"] = {"enabled": bool(vips),
                                           "assigned_vips": list(vips)}
        if len(body) > 1:
            self.client.request("PUT", self._target_path(iqn), body)

    def delete_target(self, iqn):
        self._delete(self._target_path(iqn))

    def add_lun(self, iqn, volume, lun):
        answer = self._create(self._target_path(iqn, "luns"),
                              {"name": volume, "lun": lun},
                              self._target_path(iqn, "luns", volume))
        record = answer.data if isinstance(answer.data, dict) else {}
        return record.get("scsi_id")

    def delete_lun(self, iqn, volume):
        self._delete(self._target_path(iqn, "luns", volume))

    def target_sessions(self, iqn):
        try:
            sessions = self._get(self._target_path(iqn, "sessions"))
        except errors.NotFound:
            return []
        return [s.get("initiator_name") or s.get("ip") or "?"
                for s in appliance.entries(sessions)]

    def add_chap_user(self, iqn, user, password):
        users_path = self._target_path(iqn, "incoming-users")

        def exists():
            return any(u.get("name") == user
                       for u in appliance.entries(self._get(users_path)))

        self.client.request("POST", users_path,
                            {"name": user, "password": password},
                            safe_to_repeat=False, exists=exists)

    def delete_chap_user(self, iqn, user):
        self._delete(self._target_path(iqn, "incoming-users", user))

    def target_users(self, iqn):
        return appliance.users(
            self._get(self._target_path(iqn, "incoming-users")))

    # NAS volumes, snapshots, clones and shares ----------------------------
    def _nas_path(self, *segments):
        return self._pool_path("nas-volumes", *segments)

    def list_nas_volumes(self):
        return [appliance.nas_volume_info(r)
                for r in self._paged(self._nas_path())]

    def get_nas_volume(self, name):
        return appliance.nas_volume_info(self._get(self._nas_path(name)))

    def create_nas_volume(self, name, quota):
        self._create(self._nas_path(), {"name": name, "quota": str(quota)},
                     self._nas_path(name))

    def resize_nas_volume(self, name, quota):
        self.client.request("PUT", self._nas_path(name), {"quota": str(quota)})

    def delete_nas_volume(self, name):
        self._delete(self._nas_path(name))

    def list_nas_snapshots(self, name):
        infos = [appliance.snapshot_info(name, r)
                 for r in self._paged(self._nas_path(name, "snapshots"))]
        return sorted(infos, key=lambda info: info.creation)

    def get_nas_snapshot(self, name, snapshot):
        return appliance.snapshot_info(
            name, self._get(self._nas_path(name, "snapshots", snapshot)))

    def nas_snapshot_clones(self, name, snapshot):
        return appliance.clone_names(
            self._get(self._nas_path(name, "snapshots", snapshot, "clones")))

    def create_nas_snapshot(self, name, snapshot):
        self._create(self._nas_path(name, "snapshots"), {"name": snapshot},
                     self._nas_path(name, "snapshots", snapshot))

    def delete_nas_snapshot(self, name, snapshot):
        self._delete(self._nas_path(name, "snapshots", snapshot))

    def create_nas_clone(self, name, snapshot, clone):
        self._create(self._nas_path(name, "snapshots", snapshot, "clones"),
                     {"name": clone}, self._nas_path(clone))

    def delete_nas_clone(self, name, snapshot, clone):
        self._delete(self._nas_path(name, "snapshots", snapshot, "clones",
                                    clone))

    def list_shares(self):
        return [appliance.share_info(r)
                for r in self._paged(path("shares"), PAGE_SIZE)]

    def create_share(self, name, path_):
        answer = self._create(path("shares"),
                              {"name": name, "path": path_, "active": True,
                               "nfs": {"enabled": True,
                                       "no_root_squash": True,
                                       "synchronous_data_record": True}},
                              path("shares", name))
        record = getattr(answer, "data", None)
        if isinstance(record, dict) and record.get("name") == name:
            return appliance.share_info(record)
        return None

    def delete_share(self, name):
        self._delete(path("shares", name))
