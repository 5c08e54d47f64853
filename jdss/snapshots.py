"""Snapshots of volumes, and rollbacks decided by the appliance's answer.

A part of :class:`jdss.storage.Storage`. A rollback asks the appliance
what it would destroy (``GET .../rollback``), names it from creation
times (:mod:`jdss.rollback`), never destroys clones, and is sent only
while the appliance's answer is the one accepted.
"""

from jdss import errors, naming
from jdss.changes import one_change_per_volume


class SnapshotOperations:
    """Snapshots of the volumes of ``self.backend``."""

    def _snapshot_view(self, info, clones):
        return {"name": naming.from_appliance_snapshot(info.name),
                "volume": self.names.from_appliance_volume(info.volume),
                "appliance_name": info.name, "creation": int(info.creation),
                "used": info.used, "clones": clones, "size": info.size,
                "guid": info.guid}

    def _clone_names(self, aname, snap):
        """Proxmox names of the clones of ``aname@snap``, as the appliance
        answers them (list entries do not reliably carry clones)."""
        return [self.names.from_appliance_volume(c) or c
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

    @one_change_per_volume
    def create_snapshot(self, volume, snapshot):
        naming.validate_snapshot_name(snapshot)
        snap = naming.snapshot_name(snapshot)

        def make(aname):
            self._create_snapshot(volume, aname, snap)
            return aname

        aname = self._on_volume(volume, make)
        try:
            info = self.backend.get_snapshot(aname, snap)
        except errors.NotFound:
            raise errors.NotFound(f"snapshot {snapshot!r} of volume "
                                  f"{volume!r} vanished right after it was "
                                  "made") from None
        return self._snapshot_view(info, [])    # just made: no clones yet

    @one_change_per_volume
    def delete_snapshot(self, volume, snapshot):
        naming.validate_snapshot_name(snapshot)
        snap = naming.snapshot_name(snapshot)

        def delete(aname):
            try:
                self.backend.delete_snapshot(aname, snap)
            except errors.Busy:
                clones = self._clone_names(aname, snap)
                raise errors.Busy(
                    f"snapshot {snapshot!r} of volume {volume!r} has "
                    f"clones: {', '.join(clones)}; delete them first") \
                    from None

        try:
            self._on_volume(volume, delete)
        except errors.NotFound:
            raise self._snapshot_missing(volume, snapshot) from None

    def _snapshot_missing(self, volume, snapshot):
        self._get_volume(volume)           # volume not found, if it is not
        return errors.NotFound(f"snapshot {snapshot!r} of volume {volume!r} "
                               "not found")

    def _rollback_plan(self, volume, snapshot, aname, counts):
        """A :class:`jdss.rollback.Plan` named from creation times."""
        from jdss import rollback
        if tuple(counts) == (0, 0):
            return rollback.Plan(0, 0)          # nothing to name
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
        naming.validate_snapshot_name(snapshot)
        snap = naming.snapshot_name(snapshot)
        try:
            aname, counts = self._on_volume(volume, lambda aname: (
                aname, self.backend.rollback_check(aname, snap)))
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

    @one_change_per_volume
    def rollback(self, volume, snapshot, force=False):
        """Roll back; refused (unless ``force``) while the appliance says
        newer snapshots would go, always while clones would. The appliance
        is asked again right before the rollback, which happens only if
        its answer is still the one accepted: a snapshot or clone made
        meanwhile (from another node) is never destroyed."""
        from jdss.backends.base import RollbackChanged
        naming.validate_snapshot_name(snapshot)
        snap = naming.snapshot_name(snapshot)

        def nothing_newer(aname):
            # the common case: the check right before the rollback says
            # nothing would be destroyed
            try:
                self.backend.rollback_snapshot(aname, snap, (0, 0))
                return aname, None
            except RollbackChanged as exc:
                return aname, exc.found

        try:
            aname, counts = self._on_volume(volume, nothing_newer)
        except errors.NotFound:
            raise self._snapshot_missing(volume, snapshot) from None
        view = {"volume": volume, "snapshot": snapshot,
                "appliance_name": aname, "destroyed": [], "clones": []}
        if counts is None:
            return view
        plan = self._rollback_plan(volume, snapshot, aname, counts)
        self._refuse_rollback(volume, snapshot, plan, force)
        try:
            self.backend.rollback_snapshot(aname, snap, counts)
        except RollbackChanged as exc:
            # made or deleted meanwhile, from another node: refused,
            # nothing unaccepted destroyed
            plan = self._rollback_plan(volume, snapshot, aname, exc.found)
            self._refuse_rollback(volume, snapshot, plan, False,
                                  changed=True)
        left = {s.name for s in self.backend.list_snapshots(aname)}
        view["destroyed"] = [display for info, display in zip(
            plan.newer + plan.maybe, plan.blockers())
            if info.name not in left]
        return view
