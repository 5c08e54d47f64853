"""``jdss doctor --bundle FILE``: what support needs, without any secret.

A gzip'd tar (mode 0600) of the doctor's results, versions, the jdss
sections of storage.cfg and the YAML files (secret values masked), the
jdss logs, iSCSI sessions, multipath and LVM state, journal lines and the
appliance's answers for the pool and its targets. Every secret known to
the node (REST passwords, CHAP keys and the passwords derived from them,
values of secret-looking keys in storage.cfg and /etc/pve/priv) is
replaced by ``***`` in every member, private keys are cut out, and the
bundle is refused if a secret still shows.
"""

import glob
import io
import json
import os
import platform
import re
import tarfile
import time

import yaml

from jdss import __version__, doctor, errors, hostcheck, pvecfg
from jdss import config as jconfig

MAX_LOG = 4 << 20                 # bytes kept from the end of each log
MAX_TARGET_PAGES = 20
SECRET_KEY = re.compile(r"pass|secret|token|(^|_)key($|_)", re.I)
PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?"
                         r"(-----END [A-Z ]*PRIVATE KEY-----|\Z)", re.S)
MASK = "***"
PACKAGES = ("open-e-joviandss-proxmox-plugin", "pve-manager",
            "libpve-storage-perl", "qemu-server", "open-iscsi",
            "multipath-tools", "sg3-utils", "lvm2", "udev")
JOURNAL_UNITS = ("pvedaemon", "pvestatd", "pveproxy", "pve-ha-lrm",
                 "jdss-agent", "iscsid", "multipathd")
JOURNAL_WORDS = re.compile(r"jdss|joviandss|jovian|iscsi|multipath|scst",
                           re.I)
README = """jdss support bundle, made by `jdss doctor --bundle` on {host}
at {when}. Secrets were replaced by *** and private keys removed.

doctor.json        the checks and their results
versions.txt       jdss, packages, system
storage.cfg        the joviandss sections of /etc/pve/storage.cfg
config/            the YAML file of each storage
logs/              the jdss log files (their last {max_log} MiB)
commands/          iscsiadm, multipath, LVM and udev state
journal.txt        journal lines about jdss, iSCSI and multipath
rest/              the appliance's answers: pool and iSCSI targets
"""


class Secrets:
    """Everything that must not leave the node."""

    def __init__(self):
        self.values = set()

    def add(self, value):
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if isinstance(value, str) and value.strip():
            self.values.add(value.strip())

    def redact(self, text):
        text = PRIVATE_KEY.sub("[private key removed]", text)
        for value in sorted(self.values, key=len, reverse=True):
            text = text.replace(value, MASK)
        return text

    def leaked(self, text):
        return [v for v in self.values if v in text] or \
            (["a private key"] if PRIVATE_KEY.search(text) else [])


def write(path, storages, results, host=None):
    """Write the bundle for ``storages`` and the doctor's ``results``."""
    host = host or hostcheck.Host()
    secrets = Secrets()
    configs = [(s, c) for s, c in storages if not isinstance(c, Exception)]
    for _, config in configs:
        _config_secrets(config, secrets)
    members = {
        "doctor.json": json.dumps(results, indent=2),
        "versions.txt": _versions(host),
        "storage.cfg": _storage_cfg(secrets),
    }
    _pw_files(secrets)
    for storeid, config in configs:
        members[f"config/{storeid}.yaml"] = _yaml(config)
        if config.logfile:
            members[f"logs/{storeid}-{os.path.basename(config.logfile)}"] = \
                _tail(config.logfile)
        if config.backend == "joviandss":
            members.update(_rest(storeid, config, secrets))
    members.update(_commands(host))
    members["journal.txt"] = _journal(host)
    members["README.txt"] = README.format(
        host=platform.node(), when=time.strftime("%Y-%m-%d %H:%M:%S %z"),
        max_log=MAX_LOG >> 20)
    clean = {name: secrets.redact(text) for name, text in members.items()}
    for name, text in clean.items():
        if secrets.leaked(text):
            raise errors.JdssError(f"bundle not written: {name} would "
                                   "still hold a secret")
    _tar(path, clean)
    return sorted(clean)


def _config_secrets(config, secrets):
    for value in config.secrets():
        secrets.add(value)
    if config.rest_api_password_file:
        secrets.add(_read(config.rest_api_password_file))
    key = _read(config.chap_key_path)
    if key:
        secrets.add(key)


def _read(path, limit=None):
    try:
        with open(path, "rb") as handle:
            if limit is not None:
                size = os.fstat(handle.fileno()).st_size
                handle.seek(max(0, size - limit))
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return None


def _tail(path):
    text = _read(path, MAX_LOG)
    return text if text is not None else f"({path} cannot be read)\n"


def _storage_cfg(secrets):
    root = pvecfg.pve_root()
    lines = []
    for storeid, keys in pvecfg.sections().items():
        lines.append(f"{keys['type']}: {storeid}")
        for key, value in keys.items():
            if key == "type":
                continue
            if SECRET_KEY.search(key):
                secrets.add(value)
                value = MASK
            lines.append(f"\t{key} {value}")
        lines.append("")
    return "\n".join(lines) or \
        f"(no joviandss section in {root}/storage.cfg)\n"


def _pw_files(secrets):
    """Values of the vendor's per-storage secret files under priv/."""
    pattern = os.path.join(pvecfg.pve_root(), "priv", "storage",
                           "joviandss*", "*.pw")
    for path in glob.glob(pattern):
        for line in (_read(path) or "").splitlines():
            key, _, value = line.strip().partition(" ")
            if line.strip() and not line.startswith("#"):
                secrets.add(value or key)


def _yaml(config):
    if not config.path:
        return "(no file)\n"
    text = _read(config.path)
    if text is None:
        return f"({config.path} cannot be read)\n"
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError:
        return f"({config.path} is not valid YAML)\n"
    if isinstance(raw, dict):
        for key in list(raw):
            option = jconfig.OPTIONS_BY_NAME.get(key)
            if (option is not None and option.secret) or \
                    (SECRET_KEY.search(str(key)) and not str(key).endswith(
                        ("_file", "_path"))):
                raw[key] = MASK
    return f"# {config.path}\n" + yaml.safe_dump(raw, sort_keys=False)


def _rest(storeid, config, secrets):
    """The appliance's answers for the pool and its targets."""
    from jdss import chap
    from jdss.backends.rest_client import RestClient, path
    client = RestClient(doctor._probe_config(config))
    pool_path = path("pools", config.pool)
    answers = {}
    try:
        answers["pool"] = client.request("GET", pool_path).data
        targets = []
        for page in range(MAX_TARGET_PAGES):
            data = client.request(
                "GET", f"{pool_path}/san/iscsi/targets?page={page}"
                "&per_page=100").data
            batch = data.get("entries", []) if isinstance(data, dict) \
                else (data or [])
            if not batch:
                break
            targets.extend(batch)
        answers["targets"] = targets
    except errors.JdssError as exc:
        answers["error"] = str(exc)
    key = _read(config.chap_key_path)
    for target in answers.get("targets", []):
        name = target.get("name") if isinstance(target, dict) else None
        if key and name:
            secrets.add(chap.target_password(key.strip().encode(), name))
    return {f"rest/{storeid}/{what}.json":
            json.dumps(_mask_json(data), indent=2, sort_keys=True)
            for what, data in answers.items()}


def _mask_json(data):
    if isinstance(data, dict):
        return {k: MASK if SECRET_KEY.search(str(k)) and v else _mask_json(v)
                for k, v in data.items()}
    if isinstance(data, list):
        return [_mask_json(item) for item in data]
    return data


def _versions(host):
    lines = [f"jdss {__version__}", f"python {platform.python_version()}",
             f"kernel {' '.join(platform.uname())}"]
    release = _read("/etc/os-release") or ""
    lines += [f"os {line}" for line in release.splitlines()
              if line.startswith(("PRETTY_NAME", "VERSION_ID"))]
    listed = host.run("dpkg-query", "-W", "-f=${Package} ${Version}\\n",
                      *PACKAGES)
    if listed is not None:
        lines += listed[1].splitlines()
    return "\n".join(lines) + "\n"


COMMANDS = {
    "iscsiadm-session.txt": ("iscsiadm", "-m", "session", "-P", "1"),
    "multipath-ll.txt": ("multipath", "-ll"),
    "multipath-t.txt": ("multipath", "-t"),
    "multipathd-status.txt": ("multipathd", "show", "status"),
    "lvm-global-filter.txt": ("lvmconfig", "--type", "full",
                              "devices/global_filter"),
    "dev-jdss.txt": ("ls", "-l", "/dev/jdss", "/dev/disk/by-path"),
}


def _commands(host):
    members = {}
    for name, argv in COMMANDS.items():
        result = host.run(*argv, timeout=30)
        text = f"$ {' '.join(argv)}\n"
        if result is None:
            text += f"({argv[0]} is not installed)\n"
        else:
            code, out, err = result
            text += out + err + (f"(exit {code})\n" if code else "")
        members[f"commands/{name}"] = text
    return members


def _journal(host):
    argv = ["journalctl", "--no-pager", "-o", "short-iso", "--since",
            "-2 days", "-n", "20000"]
    for unit in JOURNAL_UNITS:
        argv += ["-u", unit]
    result = host.run(*argv, timeout=60)
    if result is None:
        return "(journalctl is not installed)\n"
    lines = [line for line in (result[1] + result[2]).splitlines()
             if JOURNAL_WORDS.search(line)]
    return "\n".join(lines) + "\n"


def _tar(path, members):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    stamp = time.time()
    with os.fdopen(fd, "wb") as handle, \
            tarfile.open(fileobj=handle, mode="w:gz") as tar:
        for name, text in sorted(members.items()):
            data = text.encode("utf-8")
            info = tarfile.TarInfo(f"jdss-bundle/{name}")
            info.size, info.mtime, info.mode = len(data), stamp, 0o600
            tar.addfile(info, io.BytesIO(data))
