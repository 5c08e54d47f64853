"""Storage operations in Proxmox terms, on top of any backend.

This is where names are mapped, sizes rounded, rollbacks checked and
multi-step operations (exports, clones) undone when a step fails, so every
backend behaves the same. Errors name the Proxmox objects, not the
appliance's.
"""

import dataclasses
import functools
import logging

from jdss import errors, locks, naming
from jdss.backends.base import TargetInfo, VolumeInfo
from jdss.progress import Waiting
from jdss.sizes import parse_size, round_up

LOG = logging.getLogger(__name__)
BLOCK_BYTES = {"16K": 16 << 10, "32K": 32 << 10, "64K": 64 << 10,
               "128K": 128 << 10, "256K": 256 << 10, "512K": 512 << 10,
               "1M": 1 << 20}


def _one_change_per_volume(method):
    """Run ``method(self, volume, ...)`` under this node's volume lock."""

    @functools.wraps(method)
    def locked(self, volume, *args, **kwargs):
        with locks.volume_lock(self.config.pool, volume):
            return method(self, volume, *args, **kwargs)
    return locked


class Storage:
    """The pool of one configuration, addressed by Proxmox names."""

    def __init__(self, config, backend):
        self.config = config
        self.backend = backend

    # views ----------------------------------------------------------------
    def _volume_view(self, name, info):
        origin = None
        if info.origin:
            source, snap = info.origin
            source = naming.from_appliance_volume(source) or source
            origin = f"{source}@{naming.from_appliance_snapshot(snap) or snap}"
        return {"name": name, "appliance_name": info.name, "size": info.size,
                "used": info.used, "thin": info.sparse,
                "block_size": info.block_size, "origin": origin,
                "creation": info.creation, "readonly": info.readonly}

    @staticmethod
    def _snapshot_view(info, clones):
        return {"name": naming.from_appliance_snapshot(info.name),
                "volume": naming.from_appliance_volume(info.volume),
                "appliance_name": info.name, "creation": int(info.creation),
                "used": info.used, "clones": clones}

    # pool -----------------------------------------------------------------
    def pool(self):
        info = self.backend.get_pool()
        return {"name": info.name, "size": info.size, "free": info.free,
                "used": info.used, "health": info.health}

    # volumes --------------------------------------------------------------
    def list_volumes(self):
        views = []
        for info in self.backend.list_volumes():
            name = naming.from_appliance_volume(info.name)
            if name is not None:
                views.append(self._volume_view(name, info))
        return sorted(views, key=lambda view: view["name"])

    def _get_volume(self, name):
        naming.validate_volume_name(name)
        try:
            return self.backend.get_volume(naming.to_appliance_volume(name))
        except errors.NotFound:
            raise errors.NotFound(f"volume {name!r} not found") from None

    def volume(self, name):
        return self._volume_view(name, self._get_volume(name))

    def _made(self, name, made):
        """The view of volume ``name`` that a change just made.

        Read back from the appliance; if another call removed it meanwhile,
        the change still happened, so ``made`` (the VolumeInfo the change
        gave it) is shown rather than turning success into "not found".
        """
        try:
            return self.volume(name)
        except errors.NotFound:
            return self._volume_view(name, made)

    def _sparse(self, thin):
        return self.config.thin_provision if thin is None else thin

    def create_volume(self, name, size, thin=None, block_size=None):
        naming.validate_volume_name(name)
        block_size = (block_size or self.config.jovian_block_size).upper()
        if block_size not in BLOCK_BYTES:
            raise errors.InvalidInput(
                f"invalid block size {block_size!r}; expected one of "
                + ", ".join(BLOCK_BYTES))
        size = round_up(parse_size(size), BLOCK_BYTES[block_size])
        aname = naming.to_appliance_volume(name)
        try:
            self.backend.create_volume(aname, size, self._sparse(thin),
                                       block_size)
        except errors.AlreadyExists:
            raise errors.AlreadyExists(
                f"volume {name!r} already exists") from None
        except errors.NoSpace as exc:
            raise errors.NoSpace(f"not enough space for volume {name!r} "
                                 f"({size} bytes): {exc}") from None
        return self._made(name, VolumeInfo(aname, size, 0, block_size,
                                           self._sparse(thin)))

    @_one_change_per_volume
    def delete_volume(self, name, recursive=False):
        info = self._get_volume(name)
        try:
            self.backend.delete_volume(info.name, recursive=recursive)
        except errors.NotFound:
            # deleted meanwhile by another call: this one did not delete it
            raise errors.NotFound(f"volume {name!r} not found") from None
        except errors.Busy as exc:
            raise self._why_busy(name, info.name, exc) from None
        if info.origin and info.origin[1].startswith("c_"):
            self._drop_hidden_snapshot(*info.origin)

    def _drop_hidden_snapshot(self, volume, snap):
        try:
            self.backend.delete_snapshot(volume, snap)
        except (errors.NotFound, errors.Busy):
            pass
        except errors.JdssError as exc:
            LOG.warning("could not delete snapshot %s@%s that a deleted "
                        "clone used: %s", volume, snap, exc)

    def _why_busy(self, name, aname, exc):
        text = str(exc)
        if "exported" in text or "dataset is busy" in text:
            return errors.Busy(f"volume {name!r} is exported as an iSCSI "
                               f"target; run 'jdss target delete {name}' "
                               "first")
        snapshots = self.backend.list_snapshots(aname)
        clones = [c for s in snapshots
                  for c in self._clone_names(aname, s.name)]
        if clones:
            return errors.Busy(f"volume {name!r} has clones that depend on "
                               f"its snapshots: {', '.join(clones)}; delete "
                               "them first")
        names = [naming.from_appliance_snapshot(s.name) or s.name
                 for s in snapshots]
        return errors.Busy(f"volume {name!r} has snapshots: "
                           f"{', '.join(names)}; delete them or use "
                           "--recursive")

    @_one_change_per_volume
    def resize_volume(self, name, size):
        info = self._get_volume(name)
        size = round_up(parse_size(size),
                        BLOCK_BYTES.get(info.block_size, 1))
        if size < info.size:
            raise errors.InvalidInput(
                f"volume {name!r} is {info.size} bytes; shrinking to {size} "
                "would destroy data, only growing is supported")
        if size > info.size:
            try:
                self.backend.resize_volume(info.name, size)
            except errors.NoSpace as exc:
                raise errors.NoSpace(f"not enough space to grow volume "
                                     f"{name!r} to {size} bytes: {exc}") \
                    from None
        return self._made(name, dataclasses.replace(info, size=size))

    @_one_change_per_volume
    def rename_volume(self, name, new_name):
        naming.validate_volume_name(new_name)
        info = self._get_volume(name)
        try:
            self.backend.rename_volume(
                info.name, naming.to_appliance_volume(new_name))
        except errors.AlreadyExists:
            raise errors.AlreadyExists(
                f"volume {new_name!r} already exists") from None
        except errors.Busy:
            raise errors.Busy(f"volume {name!r} is exported as an iSCSI "
                              f"target; run 'jdss target delete {name}' "
                              "first") from None
        return self._made(new_name, dataclasses.replace(
            info, name=naming.to_appliance_volume(new_name)))

    @_one_change_per_volume
    def clone_volume(self, source, new_name, snapshot=None, thin=None):
        naming.validate_volume_name(new_name)
        info = self._get_volume(source)
        clone = naming.to_appliance_volume(new_name)
        if snapshot is None:
            snap = naming.clone_origin_snapshot(clone)
            try:
                self._create_snapshot(source, info.name, snap, hidden=True)
            except errors.AlreadyExists:
                self._renew_hidden_snapshot(source, info.name, snap, clone,
                                            new_name)
        else:
            naming.validate_snapshot_name(snapshot)
            snap = naming.snapshot_name(snapshot)
        try:
            self.backend.clone_volume(info.name, snap, clone,
                                      sparse=self._sparse(thin))
        except errors.JdssError as exc:
            if snapshot is None:
                self._drop_hidden_snapshot(info.name, snap)
            if isinstance(exc, errors.AlreadyExists):
                raise errors.AlreadyExists(
                    f"volume {new_name!r} already exists") from None
            if isinstance(exc, errors.NotFound):
                raise errors.NotFound(f"snapshot {snapshot!r} of volume "
                                      f"{source!r} not found") from None
            raise
        return self._made(new_name, VolumeInfo(
            clone, info.size, 0, info.block_size, self._sparse(thin),
            origin=(info.name, snap)))

    def _renew_hidden_snapshot(self, source, aname, snap, clone, new_name):
        """A hidden snapshot without its clone is left from an interrupted
        clone: replace it, since the clone must show the current state."""
        try:
            self.backend.get_volume(clone)
        except errors.NotFound:
            pass
        else:
            raise errors.AlreadyExists(
                f"volume {new_name!r} already exists") from None
        try:
            self.backend.delete_snapshot(aname, snap)
        except errors.Busy:
            raise errors.Busy(f"volume {source!r} has a clone snapshot "
                              f"{snap} that other volumes depend on; run "
                              "'jdss cleanup --dry-run'") from None
        self._create_snapshot(source, aname, snap, hidden=True)

    # snapshots ------------------------------------------------------------
    def _clone_names(self, aname, snap):
        """Proxmox names of the clones of ``aname@snap``, as the appliance
        answers them (list entries do not reliably carry clones)."""
        return [naming.from_appliance_volume(c) or c
                for c in self.backend.snapshot_clones(aname, snap)]

    def list_snapshots(self, volume):
        info = self._get_volume(volume)
        return [self._snapshot_view(s, self._clone_names(info.name, s.name))
                for s in self.backend.list_snapshots(info.name)
                if naming.from_appliance_snapshot(s.name) is not None]

    def _create_snapshot(self, volume, aname, snap, hidden=False):
        try:
            self.backend.create_snapshot(aname, snap)
        except errors.NotFound:
            raise errors.NotFound(f"volume {volume!r} not found") from None
        except errors.AlreadyExists:
            if hidden:
                raise errors.AlreadyExists(
                    f"volume {volume!r} has a clone snapshot {snap} left "
                    "from an earlier attempt; run 'jdss cleanup' or delete "
                    "it") from None
            raise errors.AlreadyExists(
                f"snapshot {naming.from_appliance_snapshot(snap)!r} of "
                f"volume {volume!r} already exists") from None

    @_one_change_per_volume
    def create_snapshot(self, volume, snapshot):
        naming.validate_volume_name(volume)
        naming.validate_snapshot_name(snapshot)
        aname = naming.to_appliance_volume(volume)
        snap = naming.snapshot_name(snapshot)
        self._create_snapshot(volume, aname, snap)
        try:
            info = self.backend.get_snapshot(aname, snap)
        except errors.NotFound:
            raise errors.NotFound(f"snapshot {snapshot!r} of volume "
                                  f"{volume!r} vanished right after it was "
                                  "made") from None
        return self._snapshot_view(info, [])    # just made: no clones yet

    @_one_change_per_volume
    def delete_snapshot(self, volume, snapshot):
        naming.validate_volume_name(volume)
        naming.validate_snapshot_name(snapshot)
        aname = naming.to_appliance_volume(volume)
        snap = naming.snapshot_name(snapshot)
        try:
            self.backend.delete_snapshot(aname, snap)
        except errors.NotFound:
            self._get_volume(volume)
            raise errors.NotFound(f"snapshot {snapshot!r} of volume "
                                  f"{volume!r} not found") from None
        except errors.Busy:
            clones = self._clone_names(aname, snap)
            raise errors.Busy(f"snapshot {snapshot!r} of volume {volume!r} "
                              f"has clones: {', '.join(clones)}; delete them "
                              "first") from None

    def _snapshot_missing(self, volume, snapshot):
        self._get_volume(volume)           # volume not found, if it is not
        return errors.NotFound(f"snapshot {snapshot!r} of volume {volume!r} "
                               "not found")

    def _rollback_plan(self, volume, snapshot, aname, counts):
        """A :class:`jdss.rollback.Plan` named from creation times."""
        from jdss import rollback
        snap = naming.snapshot_name(snapshot)
        plan = rollback.plan(self.backend.list_snapshots(aname), snap,
                             counts)
        if plan is None:
            raise self._snapshot_missing(volume, snapshot)
        if plan.clones:
            plan.clone_names = [c for s in plan.newer + plan.maybe
                                for c in self._clone_names(aname, s.name)]
        return plan

    def _rollback_view(self, volume, snapshot, aname, plan):
        return {"volume": volume, "snapshot": snapshot,
                "appliance_name": aname, "blockers": plan.blockers(),
                "clones": plan.clone_names,
                "destroys": {"snapshots": plan.snapshots,
                             "clones": plan.clones}}

    def rollback_check(self, volume, snapshot):
        """What a rollback would destroy, as the appliance counts it:
        ``{blockers, clones, destroys: {snapshots, clones}}``."""
        naming.validate_volume_name(volume)
        naming.validate_snapshot_name(snapshot)
        aname = naming.to_appliance_volume(volume)
        try:
            counts = self.backend.rollback_check(
                aname, naming.snapshot_name(snapshot))
        except errors.NotFound:
            raise self._snapshot_missing(volume, snapshot) from None
        plan = self._rollback_plan(volume, snapshot, aname, counts)
        return self._rollback_view(volume, snapshot, aname, plan)

    def _refuse_rollback(self, volume, snapshot, plan, force,
                         changed=False):
        what = f"rolling back volume {volume!r} to {snapshot!r}"
        if changed:
            what += (" was refused: what it destroys changed meanwhile "
                     "(made or deleted elsewhere); nothing was rolled back."
                     " Now it")
        if plan.clones:
            names = ", ".join(plan.clone_names) or f"{plan.clones} clones"
            raise errors.Busy(f"{what} would destroy clones of newer "
                              f"snapshots: {names}; delete them first")
        if changed or (plan.snapshots and not force):
            hint = "; use --force to destroy them" if plan.snapshots \
                else ""
            raise errors.RollbackBlocked(
                f"{what} would destroy newer snapshots: "
                f"{plan.describe() or 'none'}{hint}", plan.blockers())

    @_one_change_per_volume
    def rollback(self, volume, snapshot, force=False):
        """Roll back; refused (unless ``force``) while the appliance says
        newer snapshots would go, always while clones would. The appliance
        is asked again right before the rollback, which happens only if
        its answer is still the one accepted: a snapshot or clone made
        meanwhile (from another node) is never destroyed."""
        from jdss.backends.base import RollbackChanged
        naming.validate_volume_name(volume)
        naming.validate_snapshot_name(snapshot)
        aname = naming.to_appliance_volume(volume)
        snap = naming.snapshot_name(snapshot)
        counts = (0, 0)
        while True:
            try:
                self.backend.rollback_snapshot(aname, snap, counts)
                break
            except errors.NotFound:
                raise self._snapshot_missing(volume, snapshot) from None
            except RollbackChanged as exc:
                accepted = counts != (0, 0)
                plan = self._rollback_plan(volume, snapshot, aname,
                                           exc.found)
                if accepted:
                    # made or deleted meanwhile, from another node:
                    # refused, never destroyed unaccepted
                    self._refuse_rollback(volume, snapshot, plan, False,
                                          changed=True)
                self._refuse_rollback(volume, snapshot, plan, force)
                counts = exc.found
        view = {"volume": volume, "snapshot": snapshot,
                "appliance_name": aname, "destroyed": [], "clones": []}
        if counts != (0, 0):
            left = {s.name for s in self.backend.list_snapshots(aname)}
            view["destroyed"] = [display for info, display in zip(
                plan.newer + plan.maybe, plan.blockers())
                if info.name not in left]
        return view

    # iSCSI exports --------------------------------------------------------
    def iqn(self, name):
        return self.config.target_prefix + naming.target_suffix(name)

    def _export_view(self, name, target, aname):
        view = {"name": name, "target": target.name,
                "lun": target.luns[aname], "portals": self._portals(),
                "scsi_id": target.scsi_ids.get(aname),
                "chap_user": None, "chap_password": None}
        if target.chap:
            user = self.config.chap_user
            if target.users and user not in target.users:
                user = next(iter(target.users))
            view["chap_user"] = user
            view["chap_password"] = (target.users.get(user)
                                     or self._chap_password(target.name))
        return view

    def _chap_password(self, iqn):
        from jdss import chap
        return chap.target_password(
            chap.load_or_create_key(self.config.chap_key_path), iqn)

    def target(self, name):
        naming.validate_volume_name(name)
        aname = naming.to_appliance_volume(name)
        target = self.backend.find_volume_target(aname)
        if target is None:
            self._get_volume(name)
            raise errors.NotFound(f"volume {name!r} is not exported")
        return self._export_view(name, target, aname)

    def create_target(self, name):
        """Export ``name``; an existing export is kept and returned."""
        naming.validate_volume_name(name)
        aname = naming.to_appliance_volume(name)
        try:
            target, _ = self._ensure_export(aname, self.iqn(name))
        except errors.NotFound:
            raise errors.NotFound(f"volume {name!r} not found") from None
        return self._export_view(name, target, aname)

    def _ensure_export(self, aname, iqn):
        """``(target, created)``: the export of ``aname``, made if needed."""
        target = self.backend.find_volume_target(aname)
        if target is not None:
            return target, False
        chap_on = self.config.chap_enabled
        lun = self.backend.export_lun
        users = {}
        created = False
        try:
            try:
                self.backend.create_target(iqn, chap_on,
                                           self.backend.list_vips())
                created = True
            except errors.AlreadyExists:
                if self.backend.target_luns(iqn):
                    raise errors.Busy(f"target {iqn} exists and exports "
                                      "another volume") from None
            scsi_id = self.backend.add_lun(iqn, aname, lun)
            if chap_on:
                users[self.config.chap_user] = self._chap_password(iqn)
                self.backend.add_chap_user(iqn, self.config.chap_user,
                                           users[self.config.chap_user])
        except errors.JdssError:
            if created:
                self._undo_target(iqn)
            raise
        # described from what was sent: no need to read it back
        return TargetInfo(name=iqn, chap=chap_on, luns={aname: lun},
                          users=users,
                          scsi_ids={aname: scsi_id} if scsi_id else {}), \
            created

    def _undo_target(self, iqn):
        try:
            self.backend.delete_target(iqn)
        except errors.JdssError as exc:
            LOG.warning("could not remove half-made target %s: %s", iqn, exc)

    def delete_target(self, name):
        """Stop exporting ``name``; nothing to do if it is not exported."""
        info = self._get_volume(name)
        target = self.backend.find_volume_target(info.name)
        if target is not None:
            self._remove_export(target, info.name)

    def _remove_export(self, target, aname):
        try:
            if set(self.backend.target_luns(target.name)) - {aname}:
                # a target shared with other volumes (original plugin's
                # target groups): remove only this volume's LUN
                self.backend.delete_lun(target.name, aname)
            else:
                self.backend.delete_target(target.name)
        except errors.NotFound:
            pass

    # attaching on this node -----------------------------------------------
    @staticmethod
    def connection_properties(export):
        """os-brick connection properties of an export view."""
        portals = list(export["portals"])
        properties = {
            "target_portal": portals[0], "target_iqn": export["target"],
            "target_lun": export["lun"], "target_portals": portals,
            "target_iqns": [export["target"]] * len(portals),
            "target_luns": [export["lun"]] * len(portals),
            "volume_id": export["name"], "discard": True}
        if export.get("chap_user"):
            properties.update(auth_method="CHAP",
                              auth_username=export["chap_user"],
                              auth_password=export["chap_password"])
        return properties

    def _export_names(self, name, snapshot=None):
        """``(appliance name, IQN)`` of what exports ``name`` or its
        ``snapshot`` (the snapshot's temporary ``se_`` clone)."""
        naming.validate_volume_name(name)
        if snapshot is None:
            return naming.to_appliance_volume(name), self.iqn(name)
        naming.validate_snapshot_name(snapshot)
        return (naming.snapshot_clone_name(name, snapshot),
                self.iqn(f"{name}@{snapshot}"))

    def attach_volume(self, name, transport, snapshot=None,
                      exclusive=False):
        """Export ``name`` (or its ``snapshot``) and connect it here.

        Returns ``{name, snapshot, path, transport, target, lun}``. What this
        call created (clone, export) is removed again if a later step fails.
        ``exclusive`` refuses while another initiator has a session: a
        local file system must never be mounted by two nodes.
        """
        aname, iqn = self._export_names(name, snapshot)
        created_clone = False
        if snapshot is not None:
            created_clone = self._ensure_snapshot_clone(
                name, naming.to_appliance_volume(name), snapshot, aname)
        try:
            try:
                target, created_target = self._ensure_export(aname, iqn)
            except errors.NotFound:
                raise errors.NotFound(f"volume {name!r} not found") from None
            export = self._export_view(name, target, aname)
            try:
                if exclusive:
                    self._check_no_other_initiator(name, target, transport)
                with Waiting(f"attaching {name} ({export['target']})"):
                    path = transport.connect(
                        self.connection_properties(export))
            except Exception:
                if created_target:
                    self._undo_target(target.name)
                raise
        except Exception:
            if created_clone:
                self._drop_volume(aname)
            raise
        return {"name": name, "snapshot": snapshot, "path": path,
                "transport": type(transport).__name__,
                "target": export["target"], "lun": export["lun"]}

    def _check_no_other_initiator(self, name, target, transport):
        own = transport.initiator_name()
        others = [s for s in self.backend.target_sessions(target.name)
                  if s != own]
        if others:
            users = ", ".join(sorted(set(others)))
            raise errors.Busy(
                f"volume {name!r} is in use by {users}; it holds a local "
                "file system, which only one node may mount (use an NFS "
                "content volume to share content between nodes)")
        if own is None:
            raise errors.AttachFailed(
                f"cannot attach {name!r} exclusively: transport "
                f"{type(transport).__name__} has no initiator name")

    def _ensure_snapshot_clone(self, name, aname, snapshot, clone):
        """Make the read-only clone exposing ``name@snapshot``; new?"""
        try:
            self.backend.clone_volume(aname, naming.snapshot_name(snapshot),
                                      clone, sparse=True, readonly=True)
            return True
        except errors.AlreadyExists:
            return False
        except errors.NotFound:
            raise errors.NotFound(f"snapshot {snapshot!r} of volume "
                                  f"{name!r} not found") from None

    def _drop_volume(self, aname):
        try:
            self.backend.delete_volume(aname)
        except errors.NotFound:
            pass
        except errors.JdssError as exc:
            LOG.warning("could not remove temporary volume %s: %s", aname,
                        exc)

    def detach_volume(self, name, transport, snapshot=None):
        """Disconnect ``name`` here and remove its export; idempotent."""
        aname, target, export = self._export_of(name, snapshot)
        transport.disconnect(self.connection_properties(export))
        if target is None:
            return
        others = self.backend.target_sessions(target.name)
        if others:
            # another node still uses it (live migration): keep the export
            LOG.info("keeping export %s: still in use by %s", target.name,
                     ", ".join(others))
            return
        self._remove_export(target, aname)
        if snapshot is not None:
            self._drop_volume(aname)

    def attached_path(self, name, transport):
        """The path of ``name`` if it is exported and attached here."""
        _, target, export = self._export_of(name)
        properties = self.connection_properties(export)
        if target is not None and transport.is_attached(properties):
            return transport.path(properties)
        return None

    def _properties_for(self, name, snapshot=None):
        """Connection properties of ``name``'s export, made or not."""
        return self.connection_properties(self._export_of(name, snapshot)[2])

    def _export_of(self, name, snapshot=None):
        """``(appliance name, target or None, export view)`` of ``name``.

        Without a target the view is the one an export would have.
        """
        aname, iqn = self._export_names(name, snapshot)
        target = self.backend.find_volume_target(aname)
        if target is not None:
            return aname, target, self._export_view(name, target, aname)
        export = {"name": name, "target": iqn, "lun": self.backend.export_lun,
                  "portals": self._portals(), "scsi_id": None,
                  "chap_user": None, "chap_password": None}
        if self.config.chap_enabled:
            export.update(chap_user=self.config.chap_user,
                          chap_password=self._chap_password(iqn))
        return aname, None, export

    def volume_path(self, name, transport, snapshot=None):
        """Where ``name`` is (or will be once attached) on this node."""
        self._get_volume(name)
        return {"name": name, "snapshot": snapshot,
                "path": transport.path(self._properties_for(name, snapshot))}

    def rescan_volume(self, name, transport):
        """Let this node see ``name``'s current size, if attached here."""
        transport.extend(self._properties_for(name))

    def _addresses(self):
        """The appliance's addresses: iSCSI portals and NFS servers."""
        return self.config.rest_api_addresses or ("127.0.0.1",)

    def _portals(self):
        return [f"{address}:{self.config.target_port}"
                for address in self._addresses()]

    def _nfs_exports(self, share_path):
        """``ADDR:/<pool>/<nas volume>`` of a share, one per address."""
        return [f"{address}:/{share_path}" for address in self._addresses()]

    # NAS volumes and shares -----------------------------------------------
    def _nas_view(self, info):
        return {"name": info.name, "quota": info.quota, "used": info.used,
                "reservation": info.reservation, "creation": info.creation}

    def list_nas_volumes(self):
        return [self._nas_view(i) for i in self.backend.list_nas_volumes()]

    def nas_volume(self, name):
        naming.validate_nas_volume_name(name)
        try:
            return self._nas_view(self.backend.get_nas_volume(name))
        except errors.NotFound:
            raise errors.NotFound(f"NAS volume {name!r} not found") from None

    def create_nas_volume(self, name, size):
        naming.validate_nas_volume_name(name)
        size = parse_size(size)
        try:
            self.backend.create_nas_volume(name, size)
        except errors.AlreadyExists:
            raise errors.AlreadyExists(
                f"a volume named {name!r} already exists in pool "
                f"{self.config.pool}") from None
        return self.nas_volume(name)

    def delete_nas_volume(self, name):
        self.nas_volume(name)
        path = f"{self.config.pool}/{name}"
        for share in self.backend.list_shares():
            if share.path == path:
                self.backend.delete_share(share.name)
        self.backend.delete_nas_volume(name)

    def _share_view(self, share):
        _, _, volume = share.path.partition("/")
        return {"name": share.name, "nas_volume": volume, "path": share.path,
                "active": share.active, "nfs": share.nfs,
                "exports": self._nfs_exports(share.path)}

    def list_shares(self):
        prefix = f"{self.config.pool}/"
        return [self._share_view(s) for s in self.backend.list_shares()
                if s.path.startswith(prefix)]

    def _find_share(self, name):
        path = f"{self.config.pool}/{name}"
        for share in self.backend.list_shares():
            if share.path == path:
                return share
        return None

    def share(self, name):
        self.nas_volume(name)
        share = self._find_share(name)
        if share is None:
            raise errors.NotFound(f"NAS volume {name!r} is not shared")
        return self._share_view(share)

    def create_share(self, name):
        """Share NAS volume ``name`` over NFS; an existing share is kept."""
        self.nas_volume(name)
        share = self._find_share(name)
        if share is None:
            self.backend.create_share(name, f"{self.config.pool}/{name}")
        return self.share(name)

    def attach_nas_volume(self, name, mountpoint, transport):
        """Share NAS volume ``name`` (if not yet) and mount it here."""
        share = self.create_share(name)
        properties = {"export": share["exports"][0],
                      "exports": share["exports"], "mountpoint": mountpoint}
        with Waiting(f"mounting {share['exports'][0]} at {mountpoint}"):
            path = transport.connect(properties)
        return {"name": name, "path": path, "export": share["exports"][0],
                "transport": type(transport).__name__}

    def detach_nas_volume(self, name, mountpoint, transport):
        """Unmount ``name`` here; the share stays for the other nodes."""
        naming.validate_nas_volume_name(name)
        exports = self._nfs_exports(f"{self.config.pool}/{name}")
        transport.disconnect({"export": exports[0], "exports": exports,
                              "mountpoint": mountpoint})

    def delete_share(self, name):
        """Stop sharing ``name``; nothing to do if it is not shared."""
        self.nas_volume(name)
        share = self._find_share(name)
        if share is not None:
            self.backend.delete_share(share.name)
