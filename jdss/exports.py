"""iSCSI exports of volumes, and attaching them on this node.

A part of :class:`jdss.storage.Storage`: an export is a target with the
volume as one LUN (CHAP as configured); what an attach made is removed
again when a later step fails, and a detach keeps an export another node
still holds (activation records in pmxcfs, sessions on the appliance).
"""

import logging
import re

from jdss import errors, locks, naming
from jdss.activations import Activations
from jdss.backends.base import TargetInfo
from jdss.changes import changes
from jdss.progress import Waiting

LOG = logging.getLogger(__name__)
MAX_GROUP_TARGETS = 64      # per-guest targets tried before giving up


class ExportOperations:
    """Exports and attachments of the volumes of ``self.backend``."""

    def iqn(self, name):
        """Target name of a new export of ``name`` (existing exports are
        found, whatever their name, through the LUN-owner lookup)."""
        return naming.target_name(self.config.target_prefix,
                                  self.config.pool, name)

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
        if self.config.chap_password:          # one for all (storage.cfg)
            return self.config.chap_password
        from jdss import chap
        return chap.target_password(
            chap.load_or_create_key(self.config.chap_key_path), iqn)

    def target(self, name):
        aname, target, export = self._export_of(name)
        if target is None:
            self._get_volume(name)
            raise errors.NotFound(f"volume {name!r} is not exported")
        return export

    @changes
    def create_target(self, name):
        """Export ``name``; an existing export is kept and returned."""
        aname, target, _ = self._export(name, self.iqn(name))
        return self._export_view(name, target, aname)

    def _export(self, name, iqn):
        """``(appliance name, target, created)`` of volume ``name``'s
        export, made if needed (under an older name if it has one); with
        ``luns_per_target``, a guest's volumes share per-guest targets."""
        group = self._target_group(name)
        try:
            if group is not None:
                return self._on_volume(name, lambda aname: (
                    aname, *self._ensure_group_export(aname, group)))
            return self._on_volume(name, lambda aname: (
                aname, *self._ensure_export(aname, iqn)))
        except errors.NotFound:
            raise errors.NotFound(f"volume {name!r} not found") from None

    # per-guest targets (the vendor's layout) --------------------------------
    _GUEST = re.compile(r"^(?:vm|base)-(\d+)-")

    def _target_group(self, name):
        """``vm-<vmid>`` when ``luns_per_target`` puts ``name`` in a
        per-guest target, else None (a target of its own)."""
        match = self._GUEST.match(name)
        if not self.config.luns_per_target or match is None:
            return None
        return f"vm-{match.group(1)}"

    def _group_iqn(self, group, number):
        prefix = self.config.target_prefix
        return f"{prefix}{'' if prefix.endswith(':') else ':'}{group}-{number}"

    def _in_group(self, aname, group):
        name = self.names.from_appliance_volume(aname)
        return name is not None and self._target_group(name) == group

    def _ensure_group_export(self, aname, group):
        """``(target, created)``: the export of ``aname`` as a LUN of the
        first per-guest target ``<target_prefix>:vm-<vmid>-<n>`` with room
        (up to ``luns_per_target`` LUNs of that guest's volumes only),
        made when none has. ``created`` is "lun" when a LUN was added to
        an existing target."""
        target = self.backend.find_volume_target(aname)
        if target is not None:
            return self._converge(target, aname), False
        for number in range(MAX_GROUP_TARGETS):
            iqn = self._group_iqn(group, number)
            try:
                existing = self.backend.get_target(iqn)
            except errors.NotFound:
                try:
                    return self._ensure_export(aname, iqn)
                except errors.Busy:
                    # made meanwhile for another volume of this guest
                    existing = self.backend.get_target(iqn)
            if len(existing.luns) >= self.config.luns_per_target or any(
                    not self._in_group(other, group)
                    for other in existing.luns):
                continue                 # full, or not only this guest's
            target = self._converge(existing, aname)
            lun, scsi_id = self._add_lun(iqn, aname)
            target.luns = {aname: lun}
            target.scsi_ids = {aname: scsi_id} if scsi_id else {}
            return target, "lun"
        raise errors.Busy(f"guest {group} has {MAX_GROUP_TARGETS} full "
                          "targets; raise luns_per_target")

    def _undo_export(self, target, aname, created):
        """Remove what an export step made: its LUN, or its target."""
        if created == "lun":
            try:
                self.backend.delete_lun(target.name, aname)
            except errors.JdssError as exc:
                LOG.warning("could not remove half-made LUN %s of %s: %s",
                            aname, target.name, exc)
        elif created:
            self._undo_target(target.name)

    def _ensure_export(self, aname, iqn):
        """``(target, created)``: the export of ``aname``, made if needed.

        An existing export, or an empty target of the same name, is
        reused and brought to the configuration (:meth:`_converge`).
        """
        target = self.backend.find_volume_target(aname)
        if target is not None:
            return self._converge(target, aname), False
        chap_on = self.config.chap_enabled
        created = False
        try:
            try:
                self.backend.create_target(iqn, chap_on,
                                           self._bindable_vips())
                created = True
                target = TargetInfo(name=iqn, chap=chap_on)
                if chap_on:
                    password = self._chap_password(iqn)
                    self.backend.add_chap_user(iqn, self.config.chap_user,
                                               password)
                    target.users = {self.config.chap_user: password}
            except errors.AlreadyExists:
                target = self._converge(self._reusable_target(iqn, aname),
                                        aname)
            lun, scsi_id = self._add_lun(iqn, aname)
        except errors.JdssError:
            if created:
                self._undo_target(iqn)
            raise
        target.luns = {aname: lun}
        target.scsi_ids = {aname: scsi_id} if scsi_id else {}
        return target, created

    def _add_lun(self, iqn, aname):
        """Export ``aname`` through target ``iqn``: ``(lun, scsi_id)``. The
        backend's LUN id, or the next free one where the appliance has it
        taken (409)."""
        lun = self.backend.export_lun
        while True:
            try:
                return lun, self.backend.add_lun(iqn, aname, lun)
            except errors.AlreadyExists:
                luns = self.backend.target_luns(iqn)
                if aname in luns:           # made by an earlier attempt
                    return luns[aname], None
                if lun >= 255:
                    raise
                lun = max([lun] + list(luns.values())) + 1

    def _reusable_target(self, iqn, aname):
        """Target ``iqn`` that exists already: reused when it exports
        nothing (left by an interrupted attach), refused when it exports
        another volume."""
        target = self.backend.get_target(iqn)
        if target.luns:
            name = self.names.from_appliance_volume(aname)
            if name is not None and all(
                    self.names.from_appliance_volume(lun) == name
                    for lun in target.luns):
                # the export of this very volume under its older name:
                # not found under this one (see Storage._on_volume)
                raise errors.NotFound(f"{aname} is exported as {iqn} "
                                      "under an older name")
            others = ", ".join(sorted(target.luns))
            raise errors.Busy(
                f"target {iqn} exists and exports other volumes ({others}):"
                " jdss never puts two volumes behind one target name; "
                "choose another target_prefix or remove that target")
        return target

    def _bindable_vips(self):
        """Names of the pool's VIPs to bind a new target to: all of them
        when every address initiators are given is one of them; none
        otherwise, since a bound target is not offered on other
        addresses (and none when the pool has no VIPs)."""
        vips = self.backend.list_vips()
        if not vips:
            return []
        if set(self._addresses()) <= {v["address"] for v in vips}:
            return [v["name"] for v in vips]
        LOG.info("targets are not bound to the pool's virtual IPs (%s): "
                 "rest_api_addresses (%s) are not all among them",
                 ", ".join(v["address"] for v in vips),
                 ", ".join(self._addresses()))
        return []

    def _converge(self, target, aname):
        """Bring a reused target to the configuration: CHAP required or
        not, the configured CHAP user as its only user, bound to the
        pool's VIPs where the firmware can. A change of a target that
        exports other volumes too (the original plugin's per-guest
        targets) is logged with their names."""
        chap_on = self.config.chap_enabled
        user, password, users = self.config.chap_user, None, {}
        if chap_on:
            password = self._chap_password(target.name)
            users = self.backend.target_users(target.name)
        drop = [u for u, p in users.items()
                if u != user or p not in (None, password)]
        add = chap_on and (user not in users or user in drop)
        vips = self._bindable_vips() if target.vips == [] else []
        if target.chap == chap_on and not drop and not add and not vips:
            return target
        others = sorted(set(self.backend.target_luns(target.name))
                        - {aname})
        if others:
            LOG.warning("changing target %s, which also exports %s: CHAP "
                        "%s, user %s%s", target.name, ", ".join(others),
                        "required" if chap_on else "off",
                        user if chap_on else "-",
                        ", bound to " + ", ".join(vips) if vips else "")
        if not chap_on and target.chap:
            self.backend.set_target(target.name, chap=False)
        for name in drop:
            self.backend.delete_chap_user(target.name, name)
        if add:
            self.backend.add_chap_user(target.name, user, password)
        if (chap_on and not target.chap) or vips:
            self.backend.set_target(
                target.name, chap=chap_on if chap_on != target.chap
                else None, vips=vips or None)
        target.chap = chap_on
        target.users = {user: password} if chap_on else {}
        if vips:
            target.vips = vips
        return target

    def _undo_target(self, iqn):
        try:
            self.backend.delete_target(iqn)
        except errors.JdssError as exc:
            LOG.warning("could not remove half-made target %s: %s", iqn, exc)

    @changes
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
            return self.names.to_appliance_volume(name), self.iqn(name)
        naming.validate_snapshot_name(snapshot)
        return (self.names.snapshot_clone_name(name, snapshot),
                self.iqn(f"{name}@{snapshot}"))

    @changes
    def attach_volume(self, name, transport, snapshot=None,
                      exclusive=False):
        """Export ``name`` (or its ``snapshot``) and connect it here.

        Returns ``{name, snapshot, path, transport, target, lun}``. The
        export and this node's activation record are made under the
        volume's (cluster-wide) lock, so no other node's detach removes the
        export between them; the login happens after. What this call made
        (clone, export, record) is removed again if a later step fails.
        ``exclusive`` refuses while another node holds the volume: a local
        file system must never be mounted by two nodes.
        """
        records = Activations(self.config)
        key = self._activation_key(name, snapshot)
        own = transport.initiator_name()
        with locks.volume_lock(self.config, name):
            aname, target, export, made = self._export_here(
                name, snapshot, transport, exclusive, records, key)
            records.add(key, own)
        try:
            with Waiting(f"attaching {name} ({export['target']})"):
                path = transport.connect(self.connection_properties(export))
        except Exception:
            with locks.volume_lock(self.config, name):
                records.remove(key)
                if any(made) and not self._users(records, key, target, own):
                    self._undo_export(target, aname, made[0])
                    if made[1]:
                        self._drop_volume(aname)
            raise
        return {"name": name, "snapshot": snapshot, "path": path,
                "transport": type(transport).__name__,
                "target": export["target"], "lun": export["lun"]}

    @staticmethod
    def _activation_key(name, snapshot):
        return name if snapshot is None else f"{name}@{snapshot}"

    def _export_here(self, name, snapshot, transport, exclusive, records,
                     key):
        """``(aname, target, export view, made)`` of what attach uses."""
        aname, iqn = self._export_names(name, snapshot)
        created_clone = False
        if snapshot is not None:
            created_clone = self._on_volume(
                name, lambda source: self._ensure_snapshot_clone(
                    name, source, snapshot, aname))
        try:
            if snapshot is None:
                aname, target, created_target = self._export(name, iqn)
            else:
                target, created_target = self._ensure_export(aname, iqn)
            export = self._export_view(name, target, aname)
            if exclusive:
                try:
                    self._check_no_other_user(name, target, transport,
                                              records, key)
                except Exception:
                    self._undo_export(target, aname, created_target)
                    raise
        except Exception:
            if created_clone:
                self._drop_volume(aname)
            raise
        return aname, target, export, (created_target, created_clone)

    def _users(self, records, key, target, own):
        """Who else uses ``target`` now: other nodes holding an activation
        of ``key``, and initiators of sessions no node's record explains."""
        sessions = [s for s in self.backend.target_sessions(target.name)
                    if s != own]
        users = records.holders(key, sessions)
        known = records.initiators(key)
        users += sorted({s for s in sessions if s not in known})
        return users

    def _check_no_other_user(self, name, target, transport, records, key):
        own = transport.initiator_name()
        if own is None:
            raise errors.AttachFailed(
                f"cannot attach {name!r} exclusively: transport "
                f"{type(transport).__name__} has no initiator name")
        users = self._users(records, key, target, own)
        if users:
            raise errors.Busy(
                f"volume {name!r} is in use by {', '.join(users)}; it holds "
                "a local file system, which only one node may mount (use an "
                "NFS content volume to share content between nodes)")

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

    @changes
    def detach_volume(self, name, transport, snapshot=None):
        """Disconnect ``name`` here, and remove its export unless another
        node holds it (an activation record that still counts, see
        :mod:`jdss.activations`, or a session no record explains);
        idempotent."""
        export = self._export_of(name, snapshot)[2]
        transport.disconnect(self.connection_properties(export))
        records = Activations(self.config)
        key = self._activation_key(name, snapshot)
        with locks.volume_lock(self.config, name):
            records.remove(key)
            aname, target, _ = self._export_of(name, snapshot)
            if target is None:
                # an exposed snapshot's clone outlives a lost export only
                # while another node holds it
                if snapshot is not None and not records.holders(key, []):
                    self._drop_volume(aname)
                return
            users = self._users(records, key, target,
                                transport.initiator_name())
            if users:
                # another node uses it (a live migration, a guest starting
                # there): keep the export
                LOG.info("keeping export %s: still in use by %s",
                         target.name, ", ".join(users))
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

    def _export_of(self, name, snapshot=None, aname=None):
        """``(appliance name, target or None, export view)`` of ``name``
        (``aname``: its appliance name, where known).

        Without a target the view is the one an export would have.
        """
        canonical, iqn = self._export_names(name, snapshot)
        aname = aname or canonical
        target = self.backend.find_volume_target(aname)
        if target is None and snapshot is None and aname == canonical:
            legacy = self._legacy_volume(name)   # named by an older release
            if legacy is not None:
                aname = legacy.name
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

    def exported_size(self, name, snapshot=None):
        """Bytes of ``name``, or of its ``snapshot`` as it was taken (the
        size of the clone that exposes it, made by attaching it)."""
        if snapshot is None:
            return self._get_volume(name).size
        aname, _ = self._export_names(name, snapshot)
        try:
            return self.backend.get_volume(aname).size
        except errors.NotFound:
            raise errors.NotFound(f"snapshot {snapshot!r} of volume {name!r} "
                                  "is not attached") from None

    def volume_path(self, name, transport, snapshot=None):
        """Where ``name`` is (or will be once attached) on this node."""
        info = self._get_volume(name)
        aname = info.name if snapshot is None else None
        export = self._export_of(name, snapshot, aname)[2]
        return {"name": name, "snapshot": snapshot,
                "path": transport.path(self.connection_properties(export))}

    def rescan_volume(self, name, transport):
        """Let this node see ``name``'s current size, if attached here."""
        transport.extend(self._properties_for(name))

    def _addresses(self):
        """The appliance's data addresses: iSCSI portals, NFS servers."""
        return (self.config.data_addresses or self.config.rest_api_addresses
                or ("127.0.0.1",))

    def _portals(self):
        return [f"{address}:{self.config.target_port}"
                for address in self._addresses()]
