"""What a rollback destroys, worked out from the appliance's own answers.

The appliance counts what a rollback to a snapshot would destroy
(``GET .../snapshots/<s>/rollback``) but does not name it, and lists
snapshots in no promised order. The snapshots it destroys are the ones
created after the target. ZFS keeps creation times in whole seconds, so
snapshots made in the same second as the target are told apart only by
the count: when the count leaves a choice, every candidate is named.
"""

from dataclasses import dataclass, field

from jdss import naming


@dataclass
class Plan:
    """A rollback as the appliance counts it, with the names found."""

    snapshots: int                          # the appliance's counts
    clones: int
    newer: list = field(default_factory=list)       # SnapshotInfo, sure
    maybe: list = field(default_factory=list)       # same second: some
    clone_names: list = field(default_factory=list)

    @property
    def destroys_nothing(self):
        return self.snapshots == 0 and self.clones == 0

    def blockers(self):
        """Proxmox (or appliance) names of the snapshots it may destroy."""
        return [display_snapshot(s.name) for s in self.newer + self.maybe]

    def identity(self):
        """What was accepted: names and ZFS guids of the candidates."""
        return sorted((s.name, s.guid or "") for s in self.newer + self.maybe)

    def describe(self):
        """``s2, s3`` or, when the count leaves a choice, says so."""
        sure = [display_snapshot(s.name) for s in self.newer]
        if not self.maybe:
            return ", ".join(sure)
        left = self.snapshots - len(self.newer)
        maybe = ", ".join(display_snapshot(s.name) for s in self.maybe)
        text = f"{left} of {maybe} (made in the same second as the target)"
        return ", ".join(sure + [text])


def display_snapshot(aname):
    return naming.from_appliance_snapshot(aname) or aname


def plan(snapshots, target, counts):
    """The :class:`Plan` of a rollback to snapshot ``target`` (appliance
    name) given the volume's ``snapshots`` (any order) and the appliance's
    ``counts`` ``(snapshots, clones)``. None if ``target`` is not listed."""
    count, clones = counts
    result = Plan(count, clones)
    if count == 0:
        return result
    reference = next((s for s in snapshots if s.name == target), None)
    if reference is None:
        return None
    result.newer = sorted((s for s in snapshots
                           if s.creation > reference.creation),
                          key=lambda s: (s.creation, s.name))
    if len(result.newer) < count:
        tied = sorted((s for s in snapshots
                       if s.creation == reference.creation
                       and s.name != target), key=lambda s: s.name)
        if len(result.newer) + len(tied) == count:
            # the count leaves no choice: they all are newer
            result.newer = sorted(tied + result.newer,
                                  key=lambda s: (s.creation, s.name))
        else:
            result.maybe = tied
    return result
