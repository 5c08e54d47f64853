"""The YAML configuration of jdss: keys, defaults, validation and loading.

``OPTIONS`` is the one description of every key; the loader, the error
messages and the documentation test all read it.
"""

import logging
import os
import re
import stat

from jdss.errors import ConfigError, InvalidInput

LOG = logging.getLogger(__name__)

DEFAULT_CONFIG = "/etc/jdss/jdss.yaml"
CONFIG_ENV = "JDSS_CONFIG"
BLOCK_SIZES = ("4K", "8K", "16K", "32K", "64K", "128K", "256K", "512K", "1M")
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
_POOL = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]*$")
_HOST = re.compile(r"^[A-Za-z0-9.:_%\[\]-]+$")
_CHAP_USER = re.compile(r"^\w([a-zA-Z0-9-_]*\w)?$")
_CHAP_PASSWORD = re.compile(r"^[a-zA-Z0-9\-_!@%()+?.:;]{12,255}$")
_CLUSTER_PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _bool(value):
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in _TRUE + _FALSE:
        return value.lower() in _TRUE
    raise ValueError("expected true or false")


def _str(value):
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError("expected a string")
    value = str(value)
    if not value or "\0" in value:
        raise ValueError("expected a non-empty string")
    return value


def _int(value):
    if isinstance(value, bool):
        raise ValueError("expected a whole number")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if not isinstance(value, int):
        raise ValueError("expected a whole number")
    return value


def _port(value):
    value = _int(value)
    if not 1 <= value <= 65535:
        raise ValueError(f"port {value} is out of range 1-65535")
    return value


def _addresses(value):
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise ValueError("expected a list of host names or IP addresses")
    if not value:
        raise ValueError("the list is empty: give at least one address")
    result = []
    for item in value:
        if not isinstance(item, str) or not _HOST.match(item):
            raise ValueError(f"{item!r} is not a host name or IP address")
        result.append(item.strip("[]"))
    return result


def _block_size(value):
    text = _str(value).upper()
    if text not in BLOCK_SIZES:
        raise ValueError(f"unknown block size {value!r}; expected one of "
                         + ", ".join(BLOCK_SIZES))
    return text


def _log_level(value):
    text = _str(value).lower()
    if text not in LOG_LEVELS:
        raise ValueError("expected one of " + ", ".join(LOG_LEVELS))
    return text


def _matching(pattern, why):
    """A parser of text that must match ``pattern``; ``why`` says what is
    wanted (``{text!r}`` stands for the value given)."""
    def parse(value):
        text = _str(value)
        if not pattern.match(text):
            raise ValueError(why.format(text=text))
        return text
    return parse


_pool = _matching(_POOL, "{text!r} is not a valid pool name")
_chap_user = _matching(_CHAP_USER,
                       "use letters, digits, _ and -, not at either end")
_chap_password = _matching(_CHAP_PASSWORD,
                           "use 12 to 255 characters of letters, digits and "
                           "-_!@%()+?.:; (the appliance's rule)")
_cluster_prefix = _matching(_CLUSTER_PREFIX,
                            "use letters and digits, starting with a letter")


def _luns_per_target(value):
    value = _int(value)
    if not 1 <= value <= 255:
        raise ValueError("expected 1 to 255 LUNs per target")
    return value


def _size(value):
    from jdss.sizes import parse_size
    try:
        return parse_size(value)
    except InvalidInput as exc:
        raise ValueError(str(exc)) from None


def _seconds(value):
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError("expected a number of seconds")
    try:
        seconds = float(value)
    except ValueError:
        raise ValueError("expected a number of seconds") from None
    if not 0 < seconds <= 3600:
        raise ValueError("expected more than 0 and at most 3600 seconds")
    return seconds


_TRANSPORT_NAME = re.compile(r"[a-z][a-z0-9_-]*$")


def _transport(value):
    text = _str(value)
    if not _TRANSPORT_NAME.match(text):
        raise ValueError(f"{text!r} is not a transport name")
    return text


def _content_type(value):
    text = _str(value).lower()
    if text not in ("iscsi", "nfs"):
        raise ValueError("expected iscsi or nfs")
    return text


def _portal(value):
    text = _str(value)
    host, sep, port = text.rpartition(":")
    if not sep or not _HOST.match(host or "-") or not port.isdigit():
        raise ValueError("expected ADDR:PORT")
    _port(port)
    return text


def _path(value):
    return os.path.expanduser(_str(value))


class Option:
    """One configuration key."""

    def __init__(self, name, parse, default, help, secret=False):
        self.name = name
        self.parse = parse
        self.default = default
        self.help = help
        self.secret = secret


OPTIONS = [
    Option("backend", _str, "joviandss",
           "Backend driver: joviandss (the REST API) or fake (embedded "
           "model), or any driver registered under jdss.backends"),
    Option("pool", _pool, "Pool-0", "JovianDSS pool to use (also --pool)"),
    Option("driver_use_ssl", _bool, True, "Talk HTTPS to the REST API"),
    Option("driver_ssl_cert_verify", _bool, True,
           "Verify the appliance's TLS certificate"),
    Option("driver_ssl_cert_path", _path, None,
           "CA bundle or certificate file to verify the appliance with"),
    Option("target_prefix", _str, "iqn.2021-10.iscsi:",
           "Prefix of the iSCSI target name (IQN) of a volume; "
           "iscsi_target_prefix is accepted too"),
    Option("jovian_block_size", _block_size, "16K",
           "Block size of new volumes: " + ", ".join(BLOCK_SIZES)),
    Option("jovian_rest_send_repeats", _int, None,
           "Deprecated; accepted and ignored"),
    Option("rest_api_addresses", _addresses, None,
           "Addresses of the appliance, in order of preference; also the "
           "iSCSI portals (one path each with multipath)"),
    Option("rest_api_port", _port, 82, "Port of the REST API"),
    Option("data_addresses", _addresses, None,
           "Addresses of iSCSI portals and NFS mounts (the pool's virtual "
           "IPs); default: rest_api_addresses"),
    Option("target_port", _port, 3260, "Port of iSCSI connections"),
    Option("rest_api_login", _str, "admin", "REST API user"),
    Option("rest_api_password", _str, "admin", "REST API password",
           secret=True),
    Option("rest_api_password_file", _path, None,
           "File holding the REST API password (first line); wins over "
           "rest_api_password"),
    Option("rest_api_connect_timeout", _seconds, 3.0,
           "Seconds to wait for a REST connection before trying the next "
           "address"),
    Option("rest_api_read_timeout", _seconds, 60.0,
           "Seconds to wait for a REST answer once the request is sent"),
    Option("rest_api_deadline", _seconds, 20.0,
           "Seconds after which retries over all addresses stop"),
    Option("thin_provision", _bool, False,
           "Create volumes thin (sparse) unless told otherwise"),
    Option("chap_enabled", _bool, False,
           "Require CHAP on the iSCSI targets that jdss creates"),
    Option("chap_user", _chap_user, "jdss", "CHAP user name"),
    Option("chap_password", _chap_password, None,
           "One CHAP password for every target (storage.cfg: "
           "chap_user_password); default: per-target passwords derived "
           "from chap_secret_file", secret=True),
    Option("chap_secret_file", _path, None,
           "Key from which per-target CHAP passwords are derived; made on "
           "first use (mode 0600). Default: priv/jdss-<pool>.chap beside "
           "the config file"),
    Option("cluster_prefix", _cluster_prefix, None,
           "Name volumes <cluster_prefix>_<name> on the appliance and see "
           "only those, so that several Proxmox clusters share a pool"),
    Option("luns_per_target", _luns_per_target, None,
           "Export a guest's volumes as LUNs of per-guest targets "
           "<target_prefix>:vm-<vmid>-<n>, this many per target (the "
           "vendor's layout); default: one target per volume"),
    Option("multipath", _bool, False,
           "Attach volumes through multipath, one path per address of "
           "rest_api_addresses (storage.cfg: multipath 1)"),
    Option("transport", _transport, None,
           "Transport of volumes: iscsi, iscsi-direct (QEMU opens an "
           "iscsi:// URL itself), multipath, or a driver registered under "
           "jdss.transports. Default: multipath if multipath is on, else "
           "iscsi"),
    Option("nas_transport", _transport, "nfs",
           "Transport of NAS volumes: nfs, or nfs-fake (tests: bind mounts "
           "of the fake backend's or the emulator's NAS volume "
           "directories), or a driver registered under jdss.transports"),
    Option("content_volume_type", _content_type, "iscsi",
           "Protocol of the content volume: iscsi or nfs"),
    Option("copy_block_size", _size, 4 << 20,
           "Bytes per read and write when copying volume data (export, "
           "import; storage.cfg: data_copy_bs)"),
    Option("stream_idle_timeout", _seconds, 300.0,
           "Seconds an export or import stream may move no data before "
           "jdss gives up (streams have no total time limit)"),
    Option("lock_timeout", _seconds, 60.0,
           "Seconds a change waits for another change of the same volume "
           "(from this node or another) before it gives up"),
    Option("activation_grace", _seconds, 300.0,
           "Seconds another node's activation of a volume keeps its export "
           "even before that node's initiator has logged in"),
    Option("attach_timeout", _seconds, 30.0,
           "Seconds to wait for a device to appear after a login"),
    Option("loglevel", _log_level, None,
           "Log level of the log file: " + ", ".join(LOG_LEVELS)),
    Option("logfile", _path, None,
           "Log file; logging is on when loglevel and logfile are both set"),
    Option("fake_state_dir", _path, None,
           "Where the fake backend keeps its pools. Default: "
           "$XDG_DATA_HOME/jdss/fake"),
    Option("fake_pool_size", _size, 1 << 40,
           "Capacity of a pool the fake backend creates"),
    Option("fake_nfs_root", _path, None,
           "Directory whose <pool>.nas/<NAS volume> directories the "
           "nfs-fake transport bind-mounts: the emulator's --state-dir; "
           "default: the fake backend's state directory"),
    Option("fake_tgt_portal", _portal, None,
           "ADDR:PORT of a tgtd (started if not running) through which the "
           "fake backend serves its volumes as real iSCSI targets"),
    Option("rest_api_failover_window", _seconds, 150.0,
           "Seconds a changing operation keeps retrying an unreachable "
           "appliance (an HA failover takes 60 to 120 s) before it fails; "
           "reads stop at rest_api_deadline"),
]
OPTIONS_BY_NAME = {option.name: option for option in OPTIONS}
ALIASES = {"iscsi_target_prefix": "target_prefix"}
DEPRECATED = {"jovian_rest_send_repeats":
              "is deprecated and has no effect; remove it"}


class Config:
    """Validated configuration; every key of ``OPTIONS`` is an attribute."""

    def __init__(self, values, path=None):
        self.path = path
        #: the Proxmox storage ID when read from storage.cfg (jdss --storage)
        self.storage_id = None
        #: every file the configuration was read from (YAML, storage.cfg,
        #: password files): what a cache of it must watch
        self.sources = [path] if path and os.path.isfile(path) else []
        for option in OPTIONS:
            setattr(self, option.name, values.get(option.name, option.default))

    def secrets(self):
        """Values that must never be printed or logged."""
        return [getattr(self, o.name) for o in OPTIONS
                if o.secret and getattr(self, o.name)]

    @property
    def state_dir(self):
        """Directory of the fake backend's pools."""
        if self.fake_state_dir:
            return self.fake_state_dir
        base = os.environ.get("XDG_DATA_HOME") or os.path.expanduser(
            "~/.local/share")
        return os.path.join(base, "jdss", "fake")

    @property
    def chap_key_path(self):
        """Path of the CHAP key file."""
        if self.chap_secret_file:
            return self.chap_secret_file
        base = os.path.dirname(os.path.abspath(self.path or DEFAULT_CONFIG))
        return os.path.join(base, "priv", f"jdss-{self.pool}.chap")

    def __repr__(self):
        shown = {o.name: ("***" if o.secret else getattr(self, o.name))
                 for o in OPTIONS}
        return f"Config({self.path!r}, {shown!r})"


def parse(raw, path="<config>", overrides=None):
    """Validate a mapping read from YAML and return a :class:`Config`."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of keys to values at "
                          "the top level")
    values = {}
    # relative paths in the file are relative to the file, not to wherever
    # jdss was started
    base = os.path.dirname(os.path.abspath(path)) \
        if os.path.isfile(path) else None
    for key, value in raw.items():
        name = ALIASES.get(key, key)
        option = OPTIONS_BY_NAME.get(name)
        if option is None:
            LOG.warning("%s: unknown key %r ignored", path, key)
            continue
        if name in DEPRECATED:
            LOG.warning("%s: %s %s", path, key, DEPRECATED[name])
        if name in values and key != name:
            raise ConfigError(f"{path}: {key} and {name} both given; "
                              "keep one")
        if value is None:
            continue
        try:
            values[name] = option.parse(value)
        except ValueError as exc:
            raise ConfigError(f"{path}: {key}: {exc}") from None
        if option.parse is _path and base is not None:
            values[name] = os.path.join(base, values[name])
    for name, value in (overrides or {}).items():
        if value is not None:
            try:
                values[name] = OPTIONS_BY_NAME[name].parse(value)
            except ValueError as exc:
                raise ConfigError(f"override {name}: {exc}") from None
    config = Config(values, path)
    _check_consistency(config, path)
    return config


def parse_assignment(text):
    """``(key, value)`` of a ``KEY=VALUE`` override; VALUE is YAML."""
    key, sep, value = text.partition("=")
    key = ALIASES.get(key.strip(), key.strip())
    if not sep or key not in OPTIONS_BY_NAME:
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE with a "
                          "configuration key")
    import yaml
    try:
        parsed = yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError:
        parsed = value
    if isinstance(parsed, (dict, list)) and key != "rest_api_addresses":
        parsed = value
    return key, parsed


def _check_consistency(config, path):
    if config.transport == "iscsi-direct" and config.multipath:
        raise ConfigError(f"{path}: transport iscsi-direct cannot be used "
                          "with multipath; choose one")
    if config.backend == "joviandss" and not config.rest_api_addresses:
        raise ConfigError(f"{path}: rest_api_addresses: required by the "
                          "joviandss backend (a list of appliance addresses)")
    if bool(config.loglevel) != bool(config.logfile):
        LOG.warning("%s: logging needs both loglevel and logfile; it stays "
                    "off", path)
    if config.rest_api_password_file:
        config.rest_api_password = _read_secret(
            config.rest_api_password_file, "rest_api_password_file", path)
        config.sources.append(config.rest_api_password_file)


def _read_secret(secret_path, key, path):
    try:
        with open(secret_path, encoding="utf-8") as handle:
            info = os.fstat(handle.fileno())
            value = handle.readline().rstrip("\r\n")
    except OSError as exc:
        raise ConfigError(f"{path}: {key}: cannot read {secret_path}: "
                          f"{exc.strerror}") from None
    warn_if_world_readable(secret_path, info)
    if not value:
        raise ConfigError(f"{path}: {key}: {secret_path} is empty")
    return value


def warn_if_world_readable(path, info):
    """Warn when a file holding a secret can be read by everyone."""
    if info.st_mode & stat.S_IROTH:
        LOG.warning("%s holds a secret and is readable by every user; "
                    "chmod o-r it", path)


def load(path=None, overrides=None):
    """Read, validate and return the configuration at ``path``."""
    path = path or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG
    return parse(read_yaml(path), path, overrides)


def read_yaml(path):
    """The mapping in YAML file ``path`` (not validated yet)."""
    try:
        with open(path, encoding="utf-8") as handle:
            info = os.fstat(handle.fileno())
            text = handle.read()
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found (give one with -c "
                          f"or ${CONFIG_ENV})") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(f"config file {path}: cannot read: {reason}") \
            from None
    raw = _load_yaml(text, path)
    if isinstance(raw, dict) and raw.get("rest_api_password") is not None:
        warn_if_world_readable(path, info)
    return raw if raw is not None else {}


def _load_yaml(text, path):
    import yaml
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(text, Loader=loader)  # noqa: S506 (safe loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" \
            if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"config file {path}:{where}: {problem}") from None
