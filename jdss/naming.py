"""Names on Proxmox and names on the appliance.

The conventions are those of the original plugin, so that volumes it made
are recognised:

* volume: ``v_<name>`` when the name has only letters, digits, ``_`` and
  ``-``; otherwise ``vh_<name, other characters as _>_<base32 of name>``
  (base32 padding ``=`` written as ``-``). Older releases wrote
  ``vb_<base32 of name>``; such names are read and used, never made, and
  one Proxmox name has one appliance volume at a time.
* snapshot: ``s_<name>``.
* temporary clone that exposes a snapshot: ``se_<snap>_<base32 of volume>``.
* hidden snapshot that a clone made without ``--snapshot`` hangs from:
  ``c_<clone's appliance name>``.
* ``t_`` is reserved for temporary objects, such as the clone of a NAS
  snapshot that a file is restored from: ``t_restore_<16 hex digits>``,
  ``t_<cluster prefix>_restore_<16 hex digits>`` with a cluster prefix
  (see :func:`restore_clone_name`).
* NAS volumes keep their name as given; so do NAS snapshots (the Proxmox
  plugin names them ``<vmid>_<snapshot>``).
* iSCSI target of a new export: ``<prefix><pool>:<volume>`` (lowercase,
  see :func:`target_name`), so that volumes of the same name in two
  pools never share a target name.
"""

import base64
import binascii
import hashlib
import re

from jdss.errors import ConfigError, InvalidInput

MAX_APPLIANCE_NAME = 255
#: longest iSCSI name (RFC 3720), in bytes
MAX_IQN = 223

_PLAIN = re.compile(r"^[A-Za-z0-9_-]+$")
_NOT_PLAIN = re.compile(r"[^A-Za-z0-9_-]")
_VOLUME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:+-]*$")
_SNAPSHOT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*$")
_NAS_VOLUME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_NAS_SNAPSHOT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]*$")
_RESTORE_HASH = re.compile(r"^[0-9a-f]{16}$")
_IQN_SAFE = re.compile(r"^[a-z0-9][a-z0-9.-]*$")
_NOT_IQN = re.compile(r"[^a-z0-9.-]")


def b32encode(text):
    """Base32 of ``text`` with ``=`` padding written as ``-``."""
    return base64.b32encode(text.encode()).decode().replace("=", "-")


def b32decode(text):
    """Inverse of :func:`b32encode`; ``None`` if ``text`` is not one."""
    try:
        return base64.b32decode(text.replace("-", "=")).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None


def _check(name, pattern, what, allowed):
    if not isinstance(name, str) or not name:
        raise InvalidInput(f"{what} name must not be empty")
    if not pattern.match(name):
        raise InvalidInput(f"invalid {what} name {name!r}: {allowed}")


def validate_volume_name(name):
    """Raise InvalidInput unless ``name`` is an acceptable volume name."""
    _check(name, _VOLUME, "volume",
           "use letters, digits and _ . : + -, not starting with . : + -")
    to_appliance_volume(name)


def validate_snapshot_name(name):
    """Raise InvalidInput unless ``name`` is an acceptable snapshot name."""
    _check(name, _SNAPSHOT, "snapshot",
           "use letters, digits, _ and -, not starting with -")
    if len(snapshot_name(name)) > MAX_APPLIANCE_NAME:
        raise InvalidInput(f"snapshot name {name!r} is too long")


def validate_nas_volume_name(name):
    """Raise InvalidInput unless ``name`` is an acceptable NAS volume name."""
    _check(name, _NAS_VOLUME, "NAS volume",
           "use letters, digits, _ . and -, starting with a letter or digit")
    if len(name) > MAX_APPLIANCE_NAME:
        raise InvalidInput(f"NAS volume name {name!r} is too long")


def validate_new_nas_volume_name(name):
    """As :func:`validate_nas_volume_name`, and not a temporary name."""
    validate_nas_volume_name(name)
    if name.startswith("t_"):
        raise InvalidInput(f"invalid NAS volume name {name!r}: t_ is "
                           "reserved for jdss's temporary objects")


def validate_nas_snapshot_name(name):
    """Raise InvalidInput unless ``name`` is an acceptable NAS snapshot
    name (the appliance's own: ZFS's characters)."""
    _check(name, _NAS_SNAPSHOT, "NAS snapshot",
           "use letters, digits and _ . : -, not starting with . : -")
    if len(name) > MAX_APPLIANCE_NAME:
        raise InvalidInput(f"NAS snapshot name {name!r} is too long")


MAX_DISKS_PER_GUEST = 1024       # Proxmox's $MAX_VOLUMES_PER_GUEST


def next_disk_name(names, vmid):
    """The name Proxmox gives guest ``vmid``'s next disk among volumes
    ``names``: ``vm-<vmid>-disk-<n>`` with the lowest ``n`` that no name
    holds as ``vm-`` or ``base-<vmid>-disk-<n>`` (anywhere in the name,
    the number as written, as Proxmox's get_next_vm_diskname matches);
    None when all are taken."""
    held = re.compile(rf"(vm|base)-{int(vmid)}-disk-(\d+)")
    taken = {found.group(2) for found in map(held.search, names) if found}
    for number in range(MAX_DISKS_PER_GUEST):
        if str(number) not in taken:
            return f"vm-{int(vmid)}-disk-{number}"
    return None


def _restore_head(cluster_prefix):
    """``t_restore_``; ``t_<prefix>_restore_`` for a cluster's prefix (no
    prefix has a ``_``: the forms of two clusters never overlap)."""
    return f"t_{cluster_prefix}_restore_" if cluster_prefix else "t_restore_"


def restore_clone_name(pool, nas_volume, path, cluster_prefix=None):
    """The temporary clone a file ``path`` of ``pool/nas_volume`` is
    restored from: one name per file, so that a rerun finds what an
    interrupted restore left, and shares (global on the appliance) of two
    pools never collide; a cluster's prefix keeps clusters apart."""
    digest = hashlib.sha256(f"{pool}/{nas_volume}/{path}".encode())
    return _restore_head(cluster_prefix) + digest.hexdigest()[:16]


def is_restore_clone(name, cluster_prefix=None):
    """Whether NAS volume ``name`` has the form of a restore clone of the
    cluster with ``cluster_prefix`` (of no prefix: without one)."""
    head = _restore_head(cluster_prefix)
    return name.startswith(head) and \
        bool(_RESTORE_HASH.match(name[len(head):]))


def to_appliance_volume(name):
    """Appliance name of the Proxmox volume ``name``."""
    if _PLAIN.match(name):
        result = "v_" + name
    else:
        result = "vh_%s_%s" % (_NOT_PLAIN.sub("_", name), b32encode(name))
    if len(result) > MAX_APPLIANCE_NAME:
        raise InvalidInput(f"volume name {name!r} is too long")
    return result


def legacy_volume_names(name):
    """Appliance names that older releases gave Proxmox volume ``name``."""
    return ["vb_" + b32encode(name)]


def from_appliance_volume(aname):
    """Proxmox name of appliance volume ``aname``; ``None`` if not ours.

    Only the forms :func:`to_appliance_volume` and
    :func:`legacy_volume_names` give are ours, so that every name listed
    can be addressed.
    """
    name = None
    if aname.startswith("v_") and len(aname) > 2:
        name = aname[2:]
    elif aname.startswith("vh_"):
        name = b32decode(aname.rpartition("_")[2])
    elif aname.startswith("vb_"):
        name = b32decode(aname[3:])
    if not name or not _VOLUME.match(name):
        return None
    try:
        forms = [to_appliance_volume(name)] + legacy_volume_names(name)
    except InvalidInput:
        return None
    return name if aname in forms else None


class Names:
    """Proxmox names and appliance names of one storage.

    With a ``cluster_prefix`` (several Proxmox clusters on one pool), the
    volume ``x`` of this cluster is ``v_<prefix>_x`` on the appliance (and
    so are the other forms), and only volumes with that prefix are this
    storage's: the prefix never shows in Proxmox.
    """

    def __init__(self, cluster_prefix=None):
        self.prefix = cluster_prefix

    def _inner(self, name):
        return f"{self.prefix}_{name}" if self.prefix else name

    def _outer(self, name):
        if name is None or not self.prefix:
            return name
        head = self.prefix + "_"
        if name.startswith(head) and len(name) > len(head):
            return name[len(head):]
        return None

    def to_appliance_volume(self, name):
        return to_appliance_volume(self._inner(name))

    def legacy_volume_names(self, name):
        return legacy_volume_names(self._inner(name))

    def from_appliance_volume(self, aname):
        return self._outer(from_appliance_volume(aname))

    def snapshot_clone_name(self, volume, snap):
        return snapshot_clone_name(self._inner(volume), snap)

    def parse_snapshot_clone_name(self, aname):
        parsed = parse_snapshot_clone_name(aname)
        if parsed is None:
            return None
        volume = self._outer(parsed[0])
        return None if volume is None else (volume, parsed[1])

    def restore_clone_name(self, pool, nas_volume, path):
        return restore_clone_name(pool, nas_volume, path, self.prefix)

    def is_restore_clone(self, name):
        return is_restore_clone(name, self.prefix)

    def is_own_hidden_volume(self, aname):
        """Whether a ``t_`` zvol is this storage's to clean up: with a
        cluster prefix only ``t_<prefix>_...`` (the form of every other
        name of the cluster); without one, any."""
        return aname.startswith(f"t_{self.prefix}_" if self.prefix
                                else "t_")


def snapshot_name(snap):
    """Appliance name of the Proxmox snapshot ``snap``."""
    return "s_" + snap


def from_appliance_snapshot(aname):
    """Proxmox name of appliance snapshot ``aname``; ``None`` if hidden."""
    if aname.startswith("s_") and len(aname) > 2:
        return aname[2:]
    return None


def snapshot_clone_name(volume, snap):
    """Appliance name of the temporary clone that exposes ``volume@snap``."""
    return "se_%s_%s" % (snap, b32encode(volume))


def parse_snapshot_clone_name(aname):
    """``(volume, snap)`` of a ``se_`` clone name, or ``None``."""
    if not aname.startswith("se_"):
        return None
    snap, sep, encoded = aname[3:].rpartition("_")
    volume = b32decode(encoded) if sep else None
    if not volume or not snap:
        return None
    return volume, snap


def clone_origin_snapshot(clone_aname):
    """Hidden snapshot name for a clone made without a named snapshot."""
    return "c_" + clone_aname


def target_suffix(name):
    """The part of the IQN after the prefix for Proxmox volume ``name``.

    IQNs allow only lowercase letters, digits, ``.``, ``-`` and ``:``; names
    of lowercase letters, digits, ``.`` and ``-`` are used as they are,
    others as ``vh:`` and lowercase base32 (the ``:`` keeps the two apart).
    """
    if _IQN_SAFE.match(name):
        return name
    return "vh:" + base64.b32encode(name.encode()).decode().rstrip("=").lower()


def target_name(prefix, pool, name):
    """The IQN of a new export of Proxmox volume ``name`` of ``pool``.

    ``<prefix><pool>:<suffix>``: the pool in lowercase with other
    characters than letters, digits, ``.`` and ``-`` as ``-``, and
    :func:`target_suffix` of the name. Longer than an iSCSI name may be,
    it is cut and ends in a hash of the whole, so it stays unique.
    """
    iqn = f"{prefix}{_NOT_IQN.sub('-', pool.lower())}:{target_suffix(name)}"
    if len(iqn.encode()) <= MAX_IQN:
        return iqn
    digest = hashlib.sha256(iqn.encode()).hexdigest()[:16]
    keep = MAX_IQN - len(digest) - 1
    if len(prefix.encode()) >= keep:
        raise ConfigError(f"target_prefix {prefix!r} is too long: target "
                          f"names are at most {MAX_IQN} bytes")
    return f"{iqn[:keep]}.{digest}"
