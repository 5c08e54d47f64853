"""The ``joviandss`` backend: a JovianDSS appliance over its REST API."""

import functools

from jdss import errors
from jdss.backends import appliance
from jdss.backends.base import Backend
from jdss.backends.rest_client import RestClient, path
from jdss.progress import Progress

PAGE_SIZE = 500
TARGET_PAGE_SIZE = 100


class JovianBackend(Backend):
    """A pool of a JovianDSS appliance."""

    def __init__(self, config):
        super().__init__(config)
        self.client = RestClient(config)

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

    def _create(self, path_, body, created_path):
        """POST that is never blindly repeated: see RestClient.request."""
        return self.client.request(
            "POST", path_, body, safe_to_repeat=False,
            exists=functools.partial(self._exists, created_path))

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
                data = self._get(f"{path_}?page={page}&per_page={per_page}")
                batch = data.get("entries", []) if isinstance(data, dict) \
                    else (data or [])
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

    def rename_volume(self, name, new_name):
        self.client.request(
            "PUT", self._pool_path("volumes", name), {"name": new_name},
            safe_to_repeat=False,
            exists=functools.partial(self._exists,
                                     self._pool_path("volumes", new_name)))

    # snapshots ------------------------------------------------------------
    def list_snapshots(self, volume):
        records = self._paged(self._pool_path("volumes", volume,
                                              "snapshots"))
        return [appliance.snapshot_info(volume, r) for r in records]

    def create_snapshot(self, volume, snapshot):
        self._create(self._pool_path("volumes", volume, "snapshots"),
                     {"snapshot_name": snapshot},
                     self._pool_path("volumes", volume, "snapshots",
                                     snapshot))

    def delete_snapshot(self, volume, snapshot):
        self._delete(self._pool_path("volumes", volume, "snapshots",
                                     snapshot))

    def rollback_snapshot(self, volume, snapshot):
        self.client.request("POST", self._pool_path(
            "volumes", volume, "snapshots", snapshot, "rollback"),
            safe_to_repeat=True)

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
                    r, self._get(self._target_path(r["name"], "luns")) or [],
                    []) for r in records]

    def get_target(self, iqn):
        record = self._get(self._target_path(iqn))
        luns = self._get(self._target_path(iqn, "luns")) or []
        users = []
        if record.get("incoming_users_active"):
            users = self._get(self._target_path(iqn, "incoming-users")) or []
        return appliance.target_info(record, luns, users)

    def find_volume_target(self, volume):
        owners = self._get(path("san", "iscsi", "luns")
                           + f"?where=name=={volume}") or []
        for owner in owners:
            if owner.get("pool", self.pool) == self.pool:
                try:
                    record = self._get(self._target_path(owner["target"]))
                except errors.NotFound:
                    return None
                return appliance.target_info(
                    record, [{"name": volume, "lun": owner.get("lun")}], [])
        return None

    def target_luns(self, iqn):
        luns = self._get(self._target_path(iqn, "luns")) or []
        return {lun["name"]: int(lun.get("lun", 0)) for lun in luns}

    def create_target(self, iqn, chap):
        self._create(self._pool_path("san", "iscsi", "targets"),
                     {"name": iqn, "active": True,
                      "incoming_users_active": chap},
                     self._target_path(iqn))

    def delete_target(self, iqn):
        self._delete(self._target_path(iqn))

    def add_lun(self, iqn, volume, lun):
        self._create(self._target_path(iqn, "luns"),
                     {"name": volume, "lun": lun},
                     self._target_path(iqn, "luns", volume))

    def delete_lun(self, iqn, volume):
        self._delete(self._target_path(iqn, "luns", volume))

    def target_sessions(self, iqn):
        try:
            sessions = self._get(self._target_path(iqn, "sessions")) or []
        except errors.NotFound:
            return []
        return [s.get("initiator_name") or s.get("ip") or "?"
                for s in sessions]

    def add_chap_user(self, iqn, user, password):
        users_path = self._target_path(iqn, "incoming-users")

        def exists():
            return any(u.get("name") == user
                       for u in self._get(users_path) or [])

        self.client.request("POST", users_path,
                            {"name": user, "password": password},
                            safe_to_repeat=False, exists=exists)

    # NAS volumes and shares -----------------------------------------------
    def list_nas_volumes(self):
        return [appliance.nas_volume_info(r)
                for r in self._paged(self._pool_path("nas-volumes"))]

    def get_nas_volume(self, name):
        return appliance.nas_volume_info(
            self._get(self._pool_path("nas-volumes", name)))

    def create_nas_volume(self, name, quota):
        self._create(self._pool_path("nas-volumes"),
                     {"name": name, "quota": str(quota)},
                     self._pool_path("nas-volumes", name))

    def delete_nas_volume(self, name):
        self._delete(self._pool_path("nas-volumes", name))

    def list_shares(self):
        return [appliance.share_info(r)
                for r in self._paged(path("shares"), TARGET_PAGE_SIZE)]

    def create_share(self, name, path_):
        self._create(path("shares"),
                     {"name": name, "path": path_, "active": True,
                      "nfs": {"enabled": True, "no_root_squash": True,
                              "synchronous_data_record": True}},
                     path("shares", name))

    def delete_share(self, name):
        self._delete(path("shares", name))
