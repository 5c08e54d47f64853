"""The appliance's error model and record formats, shared by every face.

JovianDSS answers errors as ``{"class", "errno", "message"}`` plus an HTTP
status. The model raises them as :class:`ApplianceError`; the REST backend
receives them in envelopes. :func:`to_jdss_error` maps both, in one place,
to the exceptions of :mod:`jdss.errors`. The ``*_info`` functions turn the
appliance's records (strings for numbers) into the backend info types.
"""

import re
import time

from jdss import errors
from jdss.backends.base import (NasVolumeInfo, PoolInfo, ShareInfo,
                                SnapshotInfo, TargetInfo, VolumeInfo)

NOT_FOUND_CLASS = "opene.exceptions.ItemNotFoundError"
WERKZEUG_NOT_FOUND = "werkzeug.exceptions.NotFound"
CONFLICT_CLASS = "opene.exceptions.ItemConflictError"
ZFS_CMD_CLASS = "zfslib.wrap.zfs.ZfsCmdError"
ZFS_RESOURCE_CLASS = "zfslib.zfsapi.resources.ZfsResourceError"
ZFS_OE_CLASS = "opene.storage.zfs.ZfsOeError"
ZFS_OE_CLASS_OLDER = "opene.storage.zfs.zfs.ZfsOeError"
VALIDATION_CLASS = "opene.exceptions.ValidationError"
CFGPARSER_CLASS = "opene.cfgparser.CfgParserError"
SCSTADMIN_CLASS = "opene.tools.scstadmin.ScstAdminError"
OS_ERROR_CLASS = "exceptions.OSError"

ERRNO_NOT_FOUND = 1
ERRNO_EXISTS = 5
ERRNO_CONFIG = 13
ERRNO_ZFS = 100
ERRNO_BUSY = 1000

#: errors of a configuration rewritten meanwhile or a busy SCST: the same
#: request succeeds when sent again
TRANSIENT_CLASSES = (CFGPARSER_CLASS, SCSTADMIN_CLASS)
_UNEXPECTED = re.compile(r"Additional properties are not allowed \((.*) "
                         r"(?:was|were) unexpected\)")


class Transient(errors.BackendError):
    """An appliance error that goes away if the request is sent again."""


class FieldRefused(errors.InvalidInput):
    """The firmware does not know a field of the request (older firmware
    and ``vip_allowed_portals``); ``fields`` names them."""

    def __init__(self, message, fields=()):
        super().__init__(message)
        self.fields = list(fields)


# (pattern, exception) pairs tried in order before status and errno.
_MESSAGES = [
    (re.compile(r"^New zvol size\(\d+\) exceeds available space on pool "
                r".+\(\d+\)\.$"), errors.NoSpace),
    (re.compile(r"out of space|exceeds (available|quota)", re.I),
     errors.NoSpace),
    (re.compile(r"^In order to delete a zvol, you must delete all of its "
                r"clones first\.$"), errors.Busy),
    (re.compile(r"^cannot destroy '.*': volume has children"), errors.Busy),
    (re.compile(r"has dependent clones|dataset is busy|is already used\.$"),
     errors.Busy),
    (re.compile(r"^Zfs resource: .* not found in this collection\.$"),
     errors.NotFound),
    (re.compile(r"^cannot open '.*': dataset does not exist$"),
     errors.NotFound),
    (re.compile(r"^Share .* not exists\.$"), errors.NotFound),
    (re.compile(r"^Resource .* already exists\.$|"
                r"^cannot (create|rename to) '.*': dataset already exists$|"
                r"^Share .* already exists\.$"), errors.AlreadyExists),
]


class ApplianceError(Exception):
    """An error as the appliance reports it."""

    def __init__(self, status, cls, errno, message):
        super().__init__(message)
        self.status = status
        self.cls = cls
        self.errno = errno
        self.message = message

    def envelope(self):
        """The ``error`` member of the JSON envelope."""
        return {"class": self.cls, "errno": self.errno,
                "message": self.message}


def to_jdss_error(status, cls, errno, message):
    """Map an appliance error to the jdss exception for it."""
    message = str(message or "").strip() or f"HTTP {status}"
    first_line = message.splitlines()[0]
    try:
        errno = int(errno)
    except (TypeError, ValueError):
        errno = None
    if status == 401:
        return errors.AuthFailed("the appliance refused the login: check "
                                 "rest_api_login and the password")
    if cls in TRANSIENT_CLASSES or (errno == ERRNO_CONFIG and status >= 500):
        return Transient(f"appliance error ({cls or 'unknown'}, errno "
                         f"{errno}): {first_line}")
    unexpected = _UNEXPECTED.search(message)
    if unexpected:
        fields = re.findall(r"'([^']*)'", unexpected.group(1))
        return FieldRefused("the appliance rejected the request: "
                            + first_line, fields)
    for pattern, exc_type in _MESSAGES:
        if pattern.search(message):
            return exc_type(_describe(message))
    if status == 409 or errno == ERRNO_EXISTS:
        return errors.AlreadyExists(first_line)
    if status == 404 or errno == ERRNO_NOT_FOUND or cls in (
            NOT_FOUND_CLASS, WERKZEUG_NOT_FOUND):
        return errors.NotFound(first_line)
    if errno == ERRNO_BUSY:
        return errors.Busy(_describe(message))
    if status == 400:
        return errors.InvalidInput("the appliance rejected the request: "
                                   + first_line)
    return errors.BackendError(f"appliance error ({cls or 'unknown'}, "
                               f"errno {errno}): {first_line}")


def _describe(message):
    """One line out of a possibly multi-line ZFS message."""
    return "; ".join(line.strip() for line in message.splitlines()
                     if line.strip())


def _int(value, default=0):
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def parse_snapshot_time(value):
    """Epoch seconds of a snapshot's creation, in either firmware's form:
    a number (newer) or ``2015-5-27 16:8:35`` text (older)."""
    if isinstance(value, bool):
        return 0.0
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value or "").strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return time.mktime(time.strptime(text, "%Y-%m-%d %H:%M:%S"))
    except ValueError:
        return 0.0


def format_snapshot_time(epoch):
    """The appliance's snapshot time format (fields are not zero-padded)."""
    t = time.localtime(epoch)
    return (f"{t.tm_year}-{t.tm_mon}-{t.tm_mday} "
            f"{t.tm_hour}:{t.tm_min}:{t.tm_sec}")


def split_origin(origin):
    """``(volume, snapshot)`` of an origin ``pool/vol@snap``, or ``None``."""
    if not origin or "@" not in origin:
        return None
    dataset, _, snap = origin.partition("@")
    return dataset.rpartition("/")[2], snap


def pool_info(record):
    size = _int(record.get("size"))
    free = _int(record.get("available"))
    return PoolInfo(name=record.get("name", ""), size=size, free=free,
                    used=max(size - free, 0),
                    health=record.get("health") or "UNKNOWN",
                    id=None if record.get("id") is None
                    else str(record["id"]))


def block_size_label(value):
    """``16K`` for the appliance's ``16384`` (a label passes unchanged)."""
    text = str(value or "").upper()
    if text.isdigit():
        from jdss.sizes import format_size
        return format_size(int(text))
    return text


def volume_info(record):
    return VolumeInfo(
        name=record["name"],
        size=_int(record.get("volsize")),
        used=_int(record.get("used")),
        block_size=block_size_label(record.get("volblocksize")),
        sparse=_int(record.get("refreservation")) == 0,
        origin=split_origin(record.get("origin")),
        creation=_int(record.get("creation")),
        readonly=str(record.get("readonly")).lower() in ("on", "true", "1"),
        scsi_id=record.get("default_scsi_id"))


def entries(data):
    """The records of a list answer: a plain list, or a page
    ``{"results", "entries"}``."""
    if isinstance(data, dict):
        return [e for e in data.get("entries") or [] if isinstance(e, dict)]
    if isinstance(data, list):
        return [e for e in data if isinstance(e, dict)]
    return []


def _properties(record):
    properties = record.get("properties")
    return properties if isinstance(properties, dict) else {}


def snapshot_info(volume, record):
    """A snapshot entry of either firmware: newer nests ``creation`` (epoch
    seconds), ``guid`` and the rest under ``properties``; older has a flat
    ``creation`` text. A ``clones`` field is never read: the appliance
    answers that through ``.../snapshots/<s>/clones``."""
    properties = _properties(record)
    creation = properties.get("creation", record.get("creation"))
    return SnapshotInfo(
        name=record["name"], volume=volume,
        creation=parse_snapshot_time(creation),
        used=_int(properties.get("used", record.get("used"))),
        guid=properties.get("guid", record.get("guid")),
        size=_int(properties.get("volsize", record.get("volsize")), None))


def clone_names(records):
    """Volume names of a ``.../snapshots/<s>/clones`` answer."""
    names = []
    for record in entries(records):
        name = record.get("name") or str(record.get("full_name") or "")
        if name:
            names.append(name.rpartition("/")[2])
    return names


def lun_owner(record):
    """What a ``GET /san/iscsi/luns`` record says: ``(pool, iqn, LUN
    record, target record or None, volume or None)``. Real appliances nest
    the target and the LUN (``iscsi_target.name``, ``lun.lun``); a flat
    ``{target, lun}`` form is read too."""
    target = record.get("iscsi_target")
    lun = record.get("lun")
    if isinstance(target, dict):
        iqn, target_record = target.get("name"), target
    else:
        iqn = record.get("target") or target
        target_record = None
    volume = record.get("name")
    if not isinstance(lun, dict):
        lun = {"lun": lun}
    return (record.get("pool"), iqn, lun, target_record,
            lun.get("name", volume))


def vips(records):
    """``[{"name", "address"}]`` of a ``GET /pools/<p>/vips`` answer."""
    return [{"name": r["name"], "address": r.get("address")}
            for r in entries(records) if r.get("name")]


def users(records):
    """``{name: password or None}`` of a ``.../incoming-users`` answer."""
    return {r["name"]: r.get("password") for r in entries(records)
            if r.get("name")}


def target_info(record, luns, users):
    """A target record with its LUN records and ``users`` (as
    :func:`users` gives them)."""
    vips = record.get("vip_allowed_portals")
    if isinstance(vips, dict):
        vips = list(vips.get("assigned_vips") or []) \
            if vips.get("enabled") else []
    else:
        vips = None                   # firmware without VIP restriction
    return TargetInfo(
        name=record["name"], active=bool(record.get("active", True)),
        chap=bool(record.get("incoming_users_active")),
        luns={lun["name"]: _int(lun.get("lun")) for lun in entries(luns)
              if "name" in lun},
        scsi_ids={lun["name"]: lun["scsi_id"] for lun in entries(luns)
                  if "name" in lun and lun.get("scsi_id")},
        users=users,
        vips=vips)


def nas_volume_info(record):
    available = record.get("available")
    return NasVolumeInfo(name=record["name"], quota=_int(record.get("quota")),
                         used=_int(record.get("used")),
                         reservation=_int(record.get("reservation")),
                         creation=_int(record.get("creation")),
                         available=None if available is None
                         else _int(available),
                         origin=split_origin(record.get("origin")))


def share_info(record):
    nfs = record.get("nfs") or {}
    return ShareInfo(name=record["name"], path=record.get("path", ""),
                     active=bool(record.get("active", True)),
                     nfs=bool(nfs.get("enabled")),
                     real_path=record.get("real_path"))
