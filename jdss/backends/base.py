"""The abstract backend interface and the records it returns.

A backend speaks in appliance names (``v_vm-100-disk-0``, ``s_snap1``);
mapping from Proxmox names is the job of :mod:`jdss.storage`. Every method
raises only :class:`jdss.errors.JdssError` subclasses.
"""

import abc
import contextlib
from dataclasses import dataclass, field

from jdss import errors


class RollbackChanged(errors.RollbackBlocked):
    """What a rollback would destroy is not what the caller accepted;
    ``found`` is the appliance's count ``(snapshots, clones)`` now."""

    def __init__(self, message, found):
        super().__init__(message)
        self.found = tuple(found)


@dataclass
class PoolInfo:
    name: str
    size: int
    free: int
    used: int
    health: str
    id: str = None


@dataclass
class VolumeInfo:
    name: str
    size: int
    used: int
    block_size: str
    sparse: bool
    origin: tuple = None          # (volume, snapshot) for a clone
    creation: int = 0
    readonly: bool = False
    scsi_id: str = None           # the SCSI id a LUN of it gets


@dataclass
class SnapshotInfo:
    name: str
    volume: str
    creation: float               # epoch seconds (whole seconds on ZFS)
    used: int = 0
    guid: str = None              # ZFS guid, where the firmware tells it
    size: int = None              # volsize when taken, where it tells it


@dataclass
class TargetInfo:
    name: str                     # the IQN
    active: bool = True
    chap: bool = False
    luns: dict = field(default_factory=dict)    # volume -> LUN id
    users: dict = field(default_factory=dict)   # CHAP user -> password
    vips: list = None             # VIP names it is bound to; None: unknown
    scsi_ids: dict = field(default_factory=dict)  # volume -> SCSI id


@dataclass
class NasVolumeInfo:
    name: str
    quota: int
    used: int = 0
    reservation: int = 0
    creation: int = 0
    available: int = None         # bytes left (quota and pool), if told
    origin: tuple = None          # (NAS volume, snapshot) for a clone


@dataclass
class ShareInfo:
    name: str
    path: str                     # <pool>/<nas volume>
    active: bool = True
    nfs: bool = True
    real_path: str = None         # the export path on the appliance


class Backend(abc.ABC):
    """A JovianDSS pool, as jdss needs it."""

    #: LUN id a volume is exported as (JovianDSS: 0)
    export_lun = 0

    def __init__(self, config):
        self.config = config
        self.pool = config.pool

    def changing(self):
        """Context of an operation that changes the pool; a backend that
        can be unreachable for a while (an HA failover) keeps retrying
        within it."""
        return contextlib.nullcontext()

    # pool
    @abc.abstractmethod
    def get_pool(self):
        """Return :class:`PoolInfo`."""

    # volumes (zvols)
    @abc.abstractmethod
    def list_volumes(self):
        """Return every volume of the pool as :class:`VolumeInfo`."""

    @abc.abstractmethod
    def get_volume(self, name):
        """Return :class:`VolumeInfo` of volume ``name``."""

    @abc.abstractmethod
    def create_volume(self, name, size, sparse, block_size):
        """Create a volume of ``size`` bytes."""

    @abc.abstractmethod
    def delete_volume(self, name, recursive=False):
        """Delete a volume; ``recursive`` deletes its snapshots too."""

    @abc.abstractmethod
    def resize_volume(self, name, size):
        """Set the size of a volume to ``size`` bytes."""

    @abc.abstractmethod
    def rename_volume(self, name, new_name):
        """Rename a volume; its snapshots and clones follow."""

    # snapshots
    @abc.abstractmethod
    def list_snapshots(self, volume):
        """Return the snapshots of ``volume``, oldest first."""

    @abc.abstractmethod
    def create_snapshot(self, volume, snapshot):
        """Snapshot ``volume``."""

    @abc.abstractmethod
    def delete_snapshot(self, volume, snapshot):
        """Delete a snapshot without clones."""

    @abc.abstractmethod
    def get_snapshot(self, volume, snapshot):
        """Return :class:`SnapshotInfo` of ``volume@snapshot``."""

    @abc.abstractmethod
    def snapshot_clones(self, volume, snapshot):
        """Names of the volumes cloned from ``volume@snapshot``."""

    @abc.abstractmethod
    def rollback_check(self, volume, snapshot):
        """The appliance's own count of what a rollback to ``snapshot``
        destroys: ``(newer snapshots, their clones)``."""

    @abc.abstractmethod
    def rollback_snapshot(self, volume, snapshot, expect):
        """Roll back to ``snapshot``, destroying newer snapshots.

        ``expect`` is the :meth:`rollback_check` answer the caller
        accepted; an attempt whose outcome was lost is sent again only
        while the check still gives it.
        """

    @abc.abstractmethod
    def clone_volume(self, source, snapshot, name, sparse, readonly=False):
        """Create volume ``name`` from ``source@snapshot``."""

    @abc.abstractmethod
    def set_provisioning(self, name, sparse):
        """Make volume ``name`` thin (``sparse``) or thick."""

    def list_vips(self):
        """The pool's virtual IPs: ``[{"name", "address"}]``."""
        return []

    # iSCSI targets
    @abc.abstractmethod
    def list_targets(self):
        """Every target of the pool as :class:`TargetInfo` (with LUNs)."""

    @abc.abstractmethod
    def get_target(self, iqn):
        """Return :class:`TargetInfo` of target ``iqn``."""

    @abc.abstractmethod
    def find_volume_target(self, volume):
        """The :class:`TargetInfo` that exports ``volume``, or None.

        Its ``luns`` need hold only ``volume``'s; :meth:`target_luns`
        gives them all.
        """

    def target_luns(self, iqn):
        """Every LUN of target ``iqn``: ``{volume: lun}``."""
        return self.get_target(iqn).luns

    @abc.abstractmethod
    def create_target(self, iqn, chap, vips=()):
        """Create an active target; ``chap`` requires CHAP logins; with
        ``vips`` it is offered only on those virtual IPs."""

    @abc.abstractmethod
    def set_target(self, iqn, chap=None, vips=None):
        """Change a target's CHAP requirement and VIP binding (None:
        leave as it is)."""

    @abc.abstractmethod
    def delete_target(self, iqn):
        """Delete a target with its LUNs and CHAP users."""

    @abc.abstractmethod
    def add_lun(self, iqn, volume, lun):
        """Export ``volume`` as LUN ``lun`` of target ``iqn``; returns the
        LUN's SCSI id when the appliance's answer tells it, else None."""

    @abc.abstractmethod
    def delete_lun(self, iqn, volume):
        """Stop exporting ``volume`` through target ``iqn``."""

    def target_sessions(self, iqn):
        """Initiator names with a session on target ``iqn`` now."""
        return []

    @abc.abstractmethod
    def add_chap_user(self, iqn, user, password):
        """Allow CHAP user ``user`` on target ``iqn``."""

    @abc.abstractmethod
    def delete_chap_user(self, iqn, user):
        """Stop allowing CHAP user ``user`` on target ``iqn``."""

    @abc.abstractmethod
    def target_users(self, iqn):
        """CHAP users of target ``iqn``: ``{name: password or None}``
        (None where the appliance does not tell the password)."""

    # NAS volumes and NFS shares
    @abc.abstractmethod
    def list_nas_volumes(self):
        """Return every NAS volume as :class:`NasVolumeInfo`."""

    @abc.abstractmethod
    def get_nas_volume(self, name):
        """Return :class:`NasVolumeInfo` of ``name``."""

    @abc.abstractmethod
    def create_nas_volume(self, name, quota):
        """Create a NAS volume limited to ``quota`` bytes."""

    @abc.abstractmethod
    def resize_nas_volume(self, name, quota):
        """Set the quota of a NAS volume to ``quota`` bytes."""

    @abc.abstractmethod
    def delete_nas_volume(self, name):
        """Delete a NAS volume."""

    @abc.abstractmethod
    def list_nas_snapshots(self, name):
        """Snapshots of NAS volume ``name`` as :class:`SnapshotInfo`."""

    @abc.abstractmethod
    def get_nas_snapshot(self, name, snapshot):
        """Return :class:`SnapshotInfo` of ``name@snapshot``."""

    @abc.abstractmethod
    def create_nas_snapshot(self, name, snapshot):
        """Snapshot NAS volume ``name``."""

    @abc.abstractmethod
    def delete_nas_snapshot(self, name, snapshot):
        """Delete a NAS snapshot without clones."""

    @abc.abstractmethod
    def nas_snapshot_clones(self, name, snapshot):
        """Names of the NAS volumes cloned from ``name@snapshot``."""

    @abc.abstractmethod
    def create_nas_clone(self, name, snapshot, clone):
        """Create NAS volume ``clone`` from ``name@snapshot``."""

    @abc.abstractmethod
    def delete_nas_clone(self, name, snapshot, clone):
        """Delete NAS volume ``clone`` made from ``name@snapshot``."""

    @abc.abstractmethod
    def list_shares(self):
        """Return every share as :class:`ShareInfo`."""

    @abc.abstractmethod
    def create_share(self, name, path):
        """Share the NAS volume at ``path`` (``<pool>/<name>``) over NFS;
        returns the new share's :class:`ShareInfo` when the appliance's
        answer tells it, else None."""

    @abc.abstractmethod
    def delete_share(self, name):
        """Stop sharing ``name``."""
