"""The abstract backend interface and the records it returns.

A backend speaks in appliance names (``v_vm-100-disk-0``, ``s_snap1``);
mapping from Proxmox names is the job of :mod:`jdss.storage`. Every method
raises only :class:`jdss.errors.JdssError` subclasses.
"""

import abc
from dataclasses import dataclass, field


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


@dataclass
class SnapshotInfo:
    name: str
    volume: str
    creation: float
    used: int = 0
    clones: list = field(default_factory=list)
    size: int = None              # volsize when taken, where told
    guid: str = None


@dataclass
class TargetInfo:
    name: str                     # the IQN
    active: bool = True
    chap: bool = False
    luns: dict = field(default_factory=dict)    # volume -> LUN id
    users: dict = field(default_factory=dict)   # CHAP user -> password


@dataclass
class NasVolumeInfo:
    name: str
    quota: int
    used: int = 0
    reservation: int = 0
    creation: int = 0


@dataclass
class ShareInfo:
    name: str
    path: str                     # <pool>/<nas volume>
    active: bool = True
    nfs: bool = True


class Backend(abc.ABC):
    """A JovianDSS pool, as jdss needs it."""

    #: LUN id a volume is exported as (JovianDSS: 0)
    export_lun = 0

    def __init__(self, config):
        self.config = config
        self.pool = config.pool

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
    def rollback_snapshot(self, volume, snapshot):
        """Roll back to ``snapshot``, destroying newer snapshots."""

    @abc.abstractmethod
    def clone_volume(self, source, snapshot, name, sparse, readonly=False):
        """Create volume ``name`` from ``source@snapshot``."""

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
    def create_target(self, iqn, chap):
        """Create an active target; ``chap`` requires CHAP logins."""

    @abc.abstractmethod
    def delete_target(self, iqn):
        """Delete a target with its LUNs and CHAP users."""

    @abc.abstractmethod
    def add_lun(self, iqn, volume, lun):
        """Export ``volume`` as LUN ``lun`` of target ``iqn``."""

    @abc.abstractmethod
    def delete_lun(self, iqn, volume):
        """Stop exporting ``volume`` through target ``iqn``."""

    def target_sessions(self, iqn):
        """Initiator names with a session on target ``iqn`` now."""
        return []

    @abc.abstractmethod
    def add_chap_user(self, iqn, user, password):
        """Allow CHAP user ``user`` on target ``iqn``."""

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
    def delete_nas_volume(self, name):
        """Delete a NAS volume."""

    @abc.abstractmethod
    def list_shares(self):
        """Return every share as :class:`ShareInfo`."""

    @abc.abstractmethod
    def create_share(self, name, path):
        """Share the NAS volume at ``path`` (``<pool>/<name>``) over NFS."""

    @abc.abstractmethod
    def delete_share(self, name):
        """Stop sharing ``name``."""
