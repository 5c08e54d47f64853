"""Checks of this node for ``jdss doctor``: software, host settings, agent.

Each check returns :class:`Result`. ``Host`` is the node as the checks see
it: files under a root (``$JDSS_HOST_ROOT`` in tests, else ``/``), tools
found on PATH, processes under /proc.
"""

import glob
import json
import os
import re
import shutil
import socket
import subprocess
import time

from jdss import __version__, lvmfilter

PACKAGE = "open-e-joviandss-proxmox-plugin"
PLUGIN = "/usr/share/perl5/PVE/Storage/Custom/OpenEJovianDSSPlugin.pm"
DROPIN = "/etc/multipath/conf.d/jdss.conf"
UDEV_RULE = "56-jdss.rules"
UDEV_DIRS = ("/etc/udev/rules.d", "/run/udev/rules.d", "/lib/udev/rules.d",
             "/usr/lib/udev/rules.d")
INITIATOR_FILE = "/etc/iscsi/initiatorname.iscsi"
AGENT_SOCKET = "/run/jdss/agent.sock"
VENDOR = "SCST_BIO"
FAILOVER = 120          # seconds a pool failover may take
HOST_ROOT_ENV = "JDSS_HOST_ROOT"


class Result(dict):
    """One line of the report: check, status (ok|FAIL|skip), detail, fix."""

    def __init__(self, check, status, detail, fix=""):
        super().__init__(check=check, status=status, detail=detail,
                         fix=fix if status == "FAIL" else "")

    @property
    def failed(self):
        return self["status"] == "FAIL"


def ok(check, detail):
    return Result(check, "ok", detail)


def fail(check, detail, fix):
    return Result(check, "FAIL", detail, fix)


def skip(check, detail):
    return Result(check, "skip", detail)


class Host:
    """This node: files under ``root``, tools on ``PATH``."""

    def __init__(self, root=None, search_path=None, proc="/proc"):
        self.root = root or os.environ.get(HOST_ROOT_ENV) or "/"
        self.search_path = search_path if search_path is not None \
            else os.environ.get("PATH", os.defpath)
        self.proc = proc

    def file(self, path):
        return os.path.join(self.root, path.lstrip("/"))

    def which(self, tool):
        return shutil.which(tool, path=self.search_path)

    def run(self, tool, *args, timeout=20, env=None):
        """``(returncode, stdout, stderr)``, or None without the tool."""
        found = self.which(tool)
        if found is None:
            return None
        try:
            proc = subprocess.run([found, *args], capture_output=True,
                                  text=True, timeout=timeout,
                                  env=dict(os.environ, **(env or {})))
        except (OSError, subprocess.TimeoutExpired) as exc:
            return 1, "", str(exc)
        return proc.returncode, proc.stdout, proc.stderr


# software ---------------------------------------------------------------
def versions(host):
    module = host.file(PLUGIN)
    package = host.run("dpkg-query", "-W", "-f=${Version}", PACKAGE)
    package = package[1] if package and package[0] == 0 and package[1] \
        else None
    if package:
        origin = f"package {package}"
    elif os.path.exists(host.file("/usr/share/jdss/installed-files")):
        origin = "installed by make install"
    else:
        origin = "not from the package or make install"
    detail = f"jdss {__version__}, {origin}"
    if not os.path.exists(module):
        return fail("versions", f"{detail}; no plugin at {PLUGIN}",
                    f"install {PACKAGE} (or make install) on this node")
    return ok("versions", f"{detail}, plugin {PLUGIN}")


def _processes(proc, name):
    """``[(pid, start seconds since boot)]`` of processes called ``name``."""
    ticks = os.sysconf("SC_CLK_TCK")
    found = []
    for stat in glob.glob(os.path.join(proc, "[0-9]*", "stat")):
        try:
            with open(stat) as handle:
                text = handle.read()
        except OSError:
            continue
        comm = text[text.index("(") + 1:text.rindex(")")]
        if comm == name or comm.startswith(name + " "):
            fields = text[text.rindex(")") + 2:].split()
            found.append((int(stat.split(os.sep)[-2]), comm,
                          int(fields[19]) / ticks))
    return found


def _boot_time(proc):
    with open(os.path.join(proc, "stat")) as handle:
        for line in handle:
            if line.startswith("btime "):
                return int(line.split()[1])
    raise OSError("no btime in /proc/stat")


def pvedaemon_plugin(host):
    """Does pvedaemon run the plugin installed now?

    pvedaemon loads the plugin at start; ``systemctl reload pvedaemon``
    re-executes it (same PID, same start time) and starts new workers. The
    plugin is in force when the daemon or all of its workers started after
    the module file was last written.
    """
    name = "pvedaemon"
    module = host.file(PLUGIN)
    processes = _processes(host.proc, name)
    if not processes:
        return skip("pvedaemon", "pvedaemon does not run here")
    if not os.path.exists(module):
        return fail("pvedaemon", f"no plugin at {PLUGIN}",
                    f"install {PACKAGE}")
    boot = _boot_time(host.proc)
    written = os.stat(module).st_mtime
    master = [start for _, comm, start in processes if comm == name]
    workers = [start for _, comm, start in processes if comm != name]
    latest = max(min(master, default=0) + boot,
                 min(workers) + boot if workers else 0)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(written))
    if latest >= written:
        return ok("pvedaemon", f"runs the plugin written {stamp}")
    return fail("pvedaemon", f"started before the plugin was written "
                f"({stamp})", "systemctl reload pvedaemon pveproxy pvestatd")


# iSCSI ------------------------------------------------------------------
def iscsiadm(host):
    found = host.which("iscsiadm")
    if found is None:
        return fail("iscsiadm", "iscsiadm is not on PATH",
                    "apt install open-iscsi")
    return ok("iscsiadm", found)


def initiator_name(host):
    path = host.file(INITIATOR_FILE)
    try:
        with open(path) as handle:
            for line in handle:
                key, _, value = line.strip().partition("=")
                if key == "InitiatorName" and value:
                    return ok("initiator name", value)
    except OSError:
        pass
    return fail("initiator name", f"no InitiatorName in {INITIATOR_FILE}",
                "apt install open-iscsi (it writes one), or add "
                "InitiatorName=iqn.... and restart iscsid")


# multipath ---------------------------------------------------------------
def parse_multipath_config(text):
    """``{section: [entries]}`` of multipath's config dump (``-t``).

    Top-level sections map to a list with one dict of their own keys and,
    for sections of ``device`` entries, one dict per entry (key
    ``"device"``).
    """
    sections, stack = {}, []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("{"):
            name = line[:-1].strip()
            if not stack:
                sections.setdefault(name, [{}])
                stack.append(sections[name][0])
            else:
                entry = {}
                sections[_top(sections, stack)].append(entry)
                stack.append(entry)
            continue
        if line == "}":
            if stack:
                stack.pop()
            continue
        key, _, value = line.partition(" ")
        if stack:
            stack[-1][key] = value.strip().strip('"')
    return sections


def _top(sections, stack):
    for name, entries in sections.items():
        if entries[0] is stack[0]:
            return name
    raise ValueError("unbalanced multipath config")


def multipathd(host):
    result = host.run("multipathd", "show", "daemon")
    if result is None:
        return fail("multipathd", "multipathd is not installed",
                    "apt install multipath-tools sg3-utils")
    code, out, _ = result
    match = re.search(r"pid (\d+) (\w+)", out)
    if code != 0 or not match:
        return fail("multipathd", "multipathd does not run",
                    "systemctl enable --now multipathd")
    return ok("multipathd", f"pid {match.group(1)} {match.group(2)}")


def multipath_dropin(host, daemon_runs):
    check = "multipath drop-in"
    if not os.path.exists(host.file(DROPIN)):
        return fail(check, f"{DROPIN} is missing",
                    f"apt install --reinstall {PACKAGE}, or copy "
                    "examples/multipath.conf there; then systemctl reload "
                    "multipathd")
    if daemon_runs:
        result = host.run("multipathd", "show", "config")
        source = "multipathd"
    else:
        result = host.run("multipath", "-t")
        source = "multipath -t"
    if result is None or result[0] != 0:
        return fail(check, f"{source} failed", "apt install multipath-tools")
    complaints = [line for line in result[2].splitlines()
                  if "jdss.conf" in line]
    if complaints:
        return fail(check, complaints[0].split("| ", 1)[-1],
                    f"fix {DROPIN} (apt install --reinstall {PACKAGE} puts "
                    "the packaged one back)")
    config = parse_multipath_config(result[1])
    problem = _dropin_problem(config) or _wwid_blacklist(result[1])
    if problem:
        return fail(check, problem, f"keep {DROPIN} as packaged; set your "
                    "own values in /etc/multipath.conf, then systemctl "
                    "reload multipathd")
    entry = _jovian_entry(config)
    interval = int(config.get("defaults", [{}])[0].get("polling_interval",
                                                       5))
    retries = int(entry["no_path_retry"])
    return ok(check, f"{source}: SCST_BIO queues {retries} x {interval} s "
              f"= {retries * interval} s without a path, then fails")


def _jovian_entry(config):
    entries = [e for e in config.get("devices", [])[1:]
               if e.get("vendor") == VENDOR]
    return entries[-1] if entries else None


def _dropin_problem(config):
    defaults = config.get("defaults", [{}])[0]
    entry = _jovian_entry(config)
    if entry is None:
        return "the effective configuration has no SCST_BIO device " \
               "(multipathd not reloaded since the drop-in came?)"
    retry = entry.get("no_path_retry", defaults.get("no_path_retry", ""))
    if not retry.isdigit():
        return f"no_path_retry is {retry or 'unset'} for SCST_BIO: I/O " \
               "would queue for ever or never"
    interval = int(defaults.get("polling_interval", 5))
    if int(retry) * interval < FAILOVER:
        return (f"no_path_retry {retry} x polling_interval {interval} s = "
                f"{int(retry) * interval} s is shorter than a pool failover "
                f"({FAILOVER} s)")
    if entry.get("user_friendly_names",
                 defaults.get("user_friendly_names")) == "yes":
        return "user_friendly_names yes: maps would not be named by WWID"
    attrs = defaults.get("uid_attrs", "")
    sd_attr = re.search(r"\bsd:(\S+)", attrs)
    if attrs and (not sd_attr or sd_attr.group(1) != "ID_SERIAL"):
        return f"uid_attrs {attrs!r} names SCSI paths other than by " \
               "ID_SERIAL, the WWID jdss looks maps up by"
    if not any(e.get("vendor") == VENDOR
               for e in config.get("blacklist_exceptions", [])[1:]):
        return "SCST_BIO is not in blacklist_exceptions"
    return None


def _wwid_blacklist(text):
    """A blacklist of every WWID hides every JovianDSS volume."""
    match = re.search(r"^blacklist \{\n(.*?)^\}", text, re.M | re.S)
    if match and re.search(r'^\s*wwid "?\.\*"?\s*$', match.group(1), re.M):
        return 'the blacklist has wwid ".*", which hides every JovianDSS ' \
            "volume; blacklist by vendor instead"
    return None


# udev and LVM -------------------------------------------------------------
def udev_rule(host):
    check = "udev rule"
    found = [d for d in UDEV_DIRS
             if os.path.lexists(host.file(os.path.join(d, UDEV_RULE)))]
    if not found:
        return fail(check, f"no {UDEV_RULE} in /lib/udev/rules.d",
                    f"apt install --reinstall {PACKAGE}")
    path = host.file(os.path.join(found[0], UDEV_RULE))
    if os.path.realpath(path) == "/dev/null" or \
            os.path.getsize(path) == 0:
        return fail(check, f"{found[0]}/{UDEV_RULE} masks the rule",
                    f"rm {found[0]}/{UDEV_RULE}; udevadm control --reload")
    missing = [name for name in jovian_devices(host)
               if not os.path.lexists(host.file(f"/dev/jdss/{name}"))]
    if missing:
        return fail(check, "udev has not applied the rule to "
                    + ", ".join(missing),
                    "udevadm control --reload; udevadm trigger "
                    "--action=change " + " ".join(
                        f"/sys/class/block/{n}" for n in missing))
    return ok(check, f"{found[0]}/{UDEV_RULE}")


def jovian_devices(host):
    """Kernel names of the JovianDSS LUNs and maps on this node."""
    names = []
    for block in sorted(glob.glob(host.file("/sys/block/*"))):
        name = os.path.basename(block)
        vendors = glob.glob(os.path.join(block, "device", "vendor")) + \
            glob.glob(os.path.join(block, "slaves", "*", "device", "vendor"))
        for path in vendors:
            try:
                with open(path) as handle:
                    if handle.read().strip() == VENDOR:
                        names.append(name)
                        break
            except OSError:
                continue
    return names


def lvm_filter(host):
    check = "LVM filter"
    try:
        in_force, detail = lvmfilter.status(host.file(lvmfilter.LVM_DIR))
    except lvmfilter.FilterError as exc:
        return fail(check, str(exc), "fix /etc/lvm/lvm.conf")
    if in_force is None:
        return skip(check, detail)
    if not in_force:
        return fail(check, detail, "python3 -m jdss.lvmfilter add "
                    "(the package runs it when installed)")
    return ok(check, detail)


# the agent ----------------------------------------------------------------
def agent(host):
    path = host.file(AGENT_SOCKET)
    fix = "systemctl enable --now jdss-agent"
    if not os.path.exists(path):
        return fail("agent", f"no socket {AGENT_SOCKET}", fix)
    try:
        with socket.socket(socket.AF_UNIX) as conn:
            conn.settimeout(5)
            conn.connect(path)
            conn.sendall(json.dumps({"protocol": 3, "argv": ["--version"]})
                         .encode() + b"\n")
            lines = conn.makefile()
            reply = json.loads(lines.readline())
            if isinstance(reply, dict) and reply.get("accepted"):
                reply = json.loads(lines.readline())
    except (OSError, ValueError) as exc:
        return fail("agent", f"{AGENT_SOCKET} does not answer: {exc}", fix)
    if not isinstance(reply, dict) or reply.get("protocol") != 3 \
            or reply.get("exit") != 0:
        return fail("agent", f"{AGENT_SOCKET} answers {reply!r}", fix)
    from jdss import __version__
    running = str(reply.get("stdout", "")).strip()
    if running != f"jdss {__version__}":
        return fail("agent", f"it runs {running or 'an unknown jdss'}, "
                    f"installed is jdss {__version__}",
                    "systemctl restart jdss-agent")
    return ok("agent", f"answers on {AGENT_SOCKET}")
