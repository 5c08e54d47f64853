"""Proxmox's ``storage.cfg`` as a source of jdss configuration.

``jdss --storage ID`` reads the section ``ID`` of ``/etc/pve/storage.cfg``,
the YAML file of the user guide when the section names one (``config``) or
when ``/etc/pve/jdss-<pool_name>.yaml`` exists, and the passwords Proxmox
keeps in ``/etc/pve/priv/storage/<type>/<ID>.pw``. storage.cfg wins over
the YAML file, the password file over a password written inline in an older
storage.cfg. The Perl plugin passes its section with ``--section JSON``
(no secrets in it), since Proxmox asks the plugin to check and activate a
storage before it writes the section to storage.cfg.

A ``joviandss-nfs`` section may name its pool in ``export``
(``/<pool>/<NAS volume>`` or ``/Pools/<pool>/<NAS volume>``) rather than
in ``pool_name``, and its NFS server in ``server`` rather than in
``data_addresses``.

``JDSS_PVE_ROOT`` replaces ``/etc/pve`` (tests, or a copy of a node's
configuration).
"""

import json
import logging
import os
import re

from jdss import config as jconfig
from jdss.errors import ConfigError

LOG = logging.getLogger(__name__)
PVE_ROOT_ENV = "JDSS_PVE_ROOT"
LOG_DIR = "/var/log/joviandss"
TYPES = ("joviandss", "joviandss-nfs")
SECRETS = {"user_password": "rest_api_password",
           "chap_user_password": "chap_password"}

#: storage.cfg key -> jdss configuration key, for keys jdss itself needs
KEYS = {
    "pool_name": "pool",
    "control_addresses": "rest_api_addresses",
    "control_port": "rest_api_port",
    "data_addresses": "data_addresses",
    "data_port": "target_port",
    "user_name": "rest_api_login",
    "ssl_cert_verify": "driver_ssl_cert_verify",
    "target_prefix": "target_prefix",
    "luns_per_target": "luns_per_target",
    "block_size": "jovian_block_size",
    "thin_provisioning": "thin_provision",
    "chap_enabled": "chap_enabled",
    "chap_user_name": "chap_user",
    "cluster_prefix": "cluster_prefix",
    "log_file": "logfile",
    "multipath": "multipath",
    "content_volume_type": "content_volume_type",
    "data_copy_bs": "copy_block_size",
}
#: keys whose value is a comma-separated list in storage.cfg
LISTS = ("control_addresses", "data_addresses")
NFS_TYPE = "joviandss-nfs"
_EXPORT = re.compile(r"^/(?:Pools/)?([A-Za-z0-9_][A-Za-z0-9_.:-]*)/"
                     r"([A-Za-z0-9][A-Za-z0-9_.-]*)/?$")


def parse_export(export):
    """``(pool, NAS volume)`` of a joviandss-nfs ``export``, or None."""
    match = _EXPORT.match(export or "")
    return (match.group(1), match.group(2)) if match else None


def nfs_section(section, where):
    """A joviandss-nfs section with its pool and data addresses as jdss
    reads them: from ``export`` and ``server`` when not given otherwise."""
    section = dict(section)
    if section.get("export"):
        parsed = parse_export(section["export"])
        if parsed is None:
            raise ConfigError(f"{where}: export: {section['export']!r} is "
                              "not /<pool>/<NAS volume> or "
                              "/Pools/<pool>/<NAS volume>")
        if not section.get("pool_name"):
            section["pool_name"] = parsed[0]
    if section.get("server") and not section.get("data_addresses"):
        section["data_addresses"] = section["server"]
    return section


def pve_root():
    """``/etc/pve``, or the directory ``$JDSS_PVE_ROOT`` names."""
    return os.environ.get(PVE_ROOT_ENV) or "/etc/pve"


def storage_cfg_path(root=None):
    return os.path.join(root or pve_root(), "storage.cfg")


def password_file(storeid, type_="joviandss", root=None):
    """Where Proxmox keeps the secrets of storage ``storeid``."""
    return os.path.join(root or pve_root(), "priv", "storage", type_,
                        f"{storeid}.pw")


def parse_storage_cfg(text):
    """``{storeid: {"type": TYPE, key: value}}`` of storage.cfg text.

    The format of PVE::SectionConfig: ``TYPE: ID`` opens a section, its
    indented ``key value`` lines follow, a blank line ends it, ``#``
    lines are comments. Values stay text.
    """
    sections, current = {}, None
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        if not line.strip():
            current = None
            continue
        if not line[0].isspace():
            type_, sep, storeid = line.partition(":")
            if sep and type_.strip() and storeid.strip():
                current = {"type": type_.strip()}
                sections[storeid.strip()] = current
            else:
                current = None
            continue
        if current is not None:
            key, _, value = line.strip().partition(" ")
            current[key] = value.strip() if value.strip() else "1"
    return sections


def sections(root=None):
    """The jdss sections of storage.cfg: ``{storeid: section}``."""
    path = storage_cfg_path(root)
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    return {sid: s for sid, s in parse_storage_cfg(text).items()
            if s["type"] in TYPES}


def parse_passwords(text):
    """``{key: value}`` of password file text (``key value`` lines)."""
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition(" ")
        values[key] = value.strip()
    return values


def read_password_file(path):
    """``{key: value}`` of a password file."""
    with open(path, encoding="utf-8") as handle:
        info = os.fstat(handle.fileno())
        text = handle.read()
    jconfig.warn_if_world_readable(path, info)
    return parse_passwords(text)


def section_values(storeid, section, where):
    """jdss configuration values of a storage.cfg section, validated."""
    values = {}
    for key, value in section.items():
        name = KEYS.get(key)
        if name is None or value is None or value == "":
            continue
        if key in LISTS:
            value = [v.strip() for v in str(value).split(",") if v.strip()]
        try:
            values[name] = jconfig.OPTIONS_BY_NAME[name].parse(value)
        except ValueError as exc:
            raise ConfigError(f"{where}: {key}: {exc}") from None
    return values


def load_config(storeid, section=None, root=None, overrides=None,
                passwords=None):
    """The effective :class:`~jdss.config.Config` of storage ``storeid``.

    ``section`` is the storage.cfg section as the caller has it (the
    plugin, before Proxmox writes it); without it storage.cfg is read.
    ``passwords`` (password file keys) replace the password file.
    """
    root = root or pve_root()
    cfg_path = storage_cfg_path(root)
    on_disk = sections(root).get(storeid)
    if section is None:
        if on_disk is None:
            raise ConfigError(f"storage {storeid!r} is not a joviandss "
                              f"section of {cfg_path}")
        section = on_disk
    where = f"{cfg_path}, storage {storeid}"
    type_ = section.get("type", "joviandss")
    if type_ == NFS_TYPE:
        section = nfs_section(section, where)
    values = section_values(storeid, section, where)
    pool = values.get("pool", "Pool-0")
    yaml_path = section.get("config") or os.path.join(root,
                                                      f"jdss-{pool}.yaml")
    if not section.get("config") and not os.path.isfile(yaml_path):
        yaml_path = None                 # storage.cfg only (vendor 1.0)
    sources = [cfg_path] if on_disk is not None else []
    if passwords is None:
        secrets = _secrets(storeid, type_, root, on_disk, where, sources)
    else:
        secrets = {name: passwords[key] for key, name in SECRETS.items()
                   if passwords.get(key)}
    if yaml_path is None:
        raw, path = {}, where
        values.setdefault("thin_provision", True)    # the vendor's default
        values.setdefault("backend", "joviandss")
    else:
        raw, path = jconfig.read_yaml(yaml_path), yaml_path
    values.update(secrets)
    for key, value in (overrides or {}).items():
        if value is not None:
            values[key] = value
    yaml_logs = isinstance(raw, dict) and raw.get("logfile")
    if not values.get("logfile") and not yaml_logs \
            and os.path.isdir(LOG_DIR):
        # one log per storage where the package made the directory
        values["logfile"] = os.path.join(LOG_DIR, f"{storeid}.log")
    if values.get("logfile") and not values.get("loglevel") \
            and not (isinstance(raw, dict) and raw.get("loglevel")):
        values["loglevel"] = "info"
    config = jconfig.parse(raw, path, values)
    if config.transport == "iscsi-direct" and config.chap_enabled:
        raise ConfigError(
            f"{where}: CHAP does not work with transport iscsi-direct on "
            "Proxmox VE: QEMU would need the CHAP password, which Proxmox "
            "cannot hand it without a command line; use transport iscsi "
            "or multipath, or turn chap_enabled off")
    config.storage_id = storeid
    config.sources.extend(sources)
    return config


def _secrets(storeid, type_, root, on_disk, where, sources):
    """Passwords: the password file, else inline in an old storage.cfg."""
    found = {}
    for key, name in SECRETS.items():
        if on_disk and on_disk.get(key):
            found[name] = on_disk[key]
    path = password_file(storeid, type_, root)
    try:
        stored = read_password_file(path)
    except FileNotFoundError:
        return found
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read {path}: "
                          f"{exc.strerror}") from None
    sources.append(path)
    for key, name in SECRETS.items():
        if stored.get(key):
            found[name] = stored[key]
    return found


def parse_section_argument(text):
    """The ``--section`` JSON: a mapping of storage.cfg keys to values."""
    try:
        section = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"--section: not JSON: {exc}") from None
    if not isinstance(section, dict):
        raise ConfigError("--section: expected a JSON object")
    for key in SECRETS:
        if key in section:
            raise ConfigError(f"--section: {key} does not belong on a "
                              "command line; Proxmox keeps it in the "
                              "password file")
    return {str(k): (None if v is None else str(v))
            for k, v in section.items()}
