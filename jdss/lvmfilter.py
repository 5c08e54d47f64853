"""The LVM filter that hides JovianDSS volumes from the host's LVM.

Guests put LVM inside their disks; a host that scans them sees their
volume groups, and one that activates them corrupts them while the guest
runs on another node. LVM reads no drop-in directory and takes a filter
list whole from the first file of its cascade that sets it (lvmlocal.conf
before lvm.conf), so adding patterns means editing the list that is in
force. This module does that reversibly: it puts its patterns at the
front of the last ``global_filter`` of the file that wins (Proxmox VE sets
one in lvm.conf), or appends a ``devices`` section to lvm.conf when no file
sets one, between marker lines, and takes exactly that out again.

Run as ``python3 -m jdss.lvmfilter add|remove|status`` by the package's
maintainer scripts and ``make install``.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

LVM_DIR = "/etc/lvm"
FILES = ("lvmlocal.conf", "lvm.conf")        # the first that sets it wins
#: every block device of a JovianDSS appliance (the package's udev rule
#: links it there), and iSCSI paths of targets with jdss's default prefix
PATTERNS = ('r|^/dev/jdss/|',
            r'r|^/dev/disk/by-path/.*-iscsi-iqn\.2021-10\.iscsi:|')
BEGIN = "# BEGIN open-e-joviandss-proxmox-plugin (jdss)"
END = "# END open-e-joviandss-proxmox-plugin (jdss)"
SINGLE = " [was a single string]"
_ASSIGNMENT = re.compile(r"^[ \t]*global_filter[ \t]*=[ \t]*", re.M)


class FilterError(Exception):
    """The file cannot be edited safely; it is left as it was."""


def quoted(patterns=PATTERNS):
    """The patterns as LVM config strings, comma-separated."""
    return ", ".join('"%s"' % p for p in patterns)


def _scan(text):
    """``[(start, end)]`` of each active ``devices/global_filter`` value.

    A small reader of LVM's config syntax: sections, comments, quoted
    strings (which may hold ``#``, ``[``, ``]`` and braces) and lists.
    """
    found, sections = [], []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "#":
            i = text.find("\n", i)
            i = n if i < 0 else i
        elif c == '"':
            i = _string_end(text, i)
        elif c == "{":
            line_start = text.rfind("\n", 0, i) + 1
            sections.append(text[line_start:i].strip())
            i += 1
        elif c == "}":
            if sections:
                sections.pop()
            i += 1
        elif c == "g" and sections == ["devices"] and \
                not text[text.rfind("\n", 0, i) + 1:i].strip():
            match = _ASSIGNMENT.match(text, text.rfind("\n", 0, i) + 1)
            if match is None:
                i += 1
                continue
            end = _value_end(text, match.end())
            found.append((match.end(), end))
            i = end
        else:
            i += 1
    return found


def _string_end(text, i):
    i += 1
    while i < len(text) and text[i] != '"':
        i += 2 if text[i] == "\\" else 1
    if i >= len(text):
        raise FilterError("unterminated string")
    return i + 1


def _value_end(text, i):
    if text.startswith('"', i):
        return _string_end(text, i)
    if not text.startswith("[", i):
        raise FilterError("global_filter is neither a list nor a string")
    i += 1
    while i < len(text):
        c = text[i]
        if c == '"':
            i = _string_end(text, i)
        elif c == "#":
            i = text.find("\n", i)
            if i < 0:
                break
        elif c == "]":
            return i + 1
        else:
            i += 1
    raise FilterError("unterminated global_filter list")


def marked(text):
    return BEGIN in text


def _insertion(patterns):
    """What :func:`add` puts right after the ``[`` of a list."""
    return f" {quoted(patterns)},"


def add(text, patterns=PATTERNS, append=True):
    """``text`` with the patterns in force; unchanged if they are there.

    When the text sets no global_filter, a devices section with one is
    appended if ``append`` (lvm.conf, which LVM reads last), else None is
    returned.
    """
    if marked(text):
        if _insertion(patterns) in _block(text) or \
                f"[ {quoted(patterns)} ]" in _block(text):
            return text
        text = remove(text)
    values = _scan(text)
    if not values:
        if not append:
            return None
        tail = "" if text.endswith("\n") or not text else "\n"
        return (f"{text}{tail}\n{BEGIN}: hides JovianDSS volumes from LVM; "
                f"removed with the package\ndevices {{\n"
                f"\tglobal_filter = [ {quoted(patterns)} ]\n}}\n{END}\n")
    start, end = values[-1]
    value, note = text[start:end], ""
    if value.startswith('"'):
        value, note = f"[ {value} ]", SINGLE
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    line_end = len(text) if line_end < 0 else line_end
    indent = re.match(r"[ \t]*", text[line_start:]).group()
    return (f"{text[:line_start]}{indent}{BEGIN}: the first "
            f"{len(patterns)} patterns below hide JovianDSS volumes from "
            f"LVM; removed with the package{note}\n"
            f"{text[line_start:start]}[{_insertion(patterns)}{value[1:]}"
            f"{text[end:line_end]}\n{indent}{END}{text[line_end:]}")


def _block(text):
    begin = text.index(BEGIN)
    end = text.find(END, begin)
    return text[begin:end if end >= 0 else len(text)]


def remove(text):
    """``text`` without what :func:`add` put in (edits around it stay)."""
    while marked(text):
        begin = text.index(BEGIN)
        line_start = text.rfind("\n", 0, begin) + 1
        end = text.find(END, begin)
        if end < 0:
            raise FilterError(f"{BEGIN!r} without {END!r}")
        after = text.find("\n", end)
        after = len(text) if after < 0 else after + 1
        header_end = text.index("\n", begin) + 1
        header = text[begin:header_end]
        body = text[header_end:text.rfind("\n", 0, end) + 1]
        if body.startswith("devices {"):
            # the section add() appended, and the blank line before it
            if text[:line_start].endswith("\n\n"):
                line_start -= 1
            text = text[:line_start] + text[after:]
            continue
        if _insertion(PATTERNS) in body:
            body = body.replace("[" + _insertion(PATTERNS), "[", 1)
        else:       # the list was edited since: take out any of ours
            for pattern in PATTERNS:
                body = re.sub(r'[ \t]*"%s",?' % re.escape(pattern), "",
                              body)
        if SINGLE in header:
            body = re.sub(r'\[ ("(?:[^"\\]|\\.)*") \]', r"\1", body,
                          count=1)
        text = text[:line_start] + body + text[after:]
    return text


# the files --------------------------------------------------------------
def _read(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _write(path, text):
    """Replace ``path`` atomically, keeping its mode and owner."""
    info = os.stat(path)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".jdss-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, info.st_mode & 0o7777)
        os.chown(tmp, info.st_uid, info.st_gid)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _lvmconfig(lvm_dir, *args):
    """Run lvmconfig on ``lvm_dir``: ``(returncode, stdout, stderr)``."""
    lvmconfig = shutil.which("lvmconfig") or shutil.which(
        "lvmconfig", path="/usr/sbin:/sbin")
    if lvmconfig is None:
        return None
    proc = subprocess.run(
        [lvmconfig, *args], capture_output=True, text=True, timeout=60,
        env=dict(os.environ, LVM_SYSTEM_DIR=lvm_dir,
                 LVM_SUPPRESS_FD_WARNINGS="1"))
    return proc.returncode, proc.stdout, " ".join(proc.stderr.split())


def effective(lvm_dir=LVM_DIR):
    """The global_filter patterns LVM uses; None when LVM is not installed."""
    result = _lvmconfig(lvm_dir, "--type", "full", "devices/global_filter")
    if result is None:
        return None
    code, out, err = result
    if code != 0:
        raise FilterError(f"lvmconfig cannot read the configuration: "
                          f"{err[:300]}")
    return [re.sub(r"\\(.)", r"\1", item)
            for item in re.findall(r'"((?:[^"\\]|\\.)*)"', out)]


def install(lvm_dir=LVM_DIR):
    """Put the patterns in force; returns what was done, in words."""
    main_path = os.path.join(lvm_dir, "lvm.conf")
    if _read(main_path) is None:
        return f"no {main_path}: LVM is not installed, nothing to filter"
    for name in FILES:
        path = os.path.join(lvm_dir, name)
        text = _read(path)
        new = None if text is None else add(text, append=name == "lvm.conf")
        if new is None:
            continue
        if new == text:
            return f"{path} already hides JovianDSS volumes"
        _checked_write(lvm_dir, path, text, new)
        return f"{path}: global_filter now hides JovianDSS volumes"
    raise FilterError(f"cannot place the filter in {main_path}")


def uninstall(lvm_dir=LVM_DIR):
    done = []
    for name in FILES:
        path = os.path.join(lvm_dir, name)
        text = _read(path)
        if text is None or not marked(text):
            continue
        _checked_write(lvm_dir, path, text, remove(text))
        done.append(path)
    return ("removed the JovianDSS patterns from " + ", ".join(done)
            if done else "no JovianDSS patterns in the LVM configuration")


def _checked_write(lvm_dir, path, old, new):
    """Write ``new``; put ``old`` back if LVM cannot read the result."""
    effective(lvm_dir)             # refuses a configuration broken already
    _write(path, new)
    try:
        effective(lvm_dir)
    except FilterError:
        _write(path, old)
        raise


def status(lvm_dir=LVM_DIR):
    """``(in_force, detail)``: are the patterns in the effective filter?

    ``in_force`` is None when LVM is not installed.
    """
    patterns = effective(lvm_dir)
    if patterns is None:
        return None, "lvmconfig not found: LVM is not installed"
    shown = "global_filter = [ " + quoted(patterns) + " ]"
    missing = [p for p in PATTERNS if p not in patterns]
    if missing:
        return False, f"{shown} lacks {quoted(missing)}"
    accepts = [p for p in patterns if p.startswith("a")]
    if accepts:
        # a device is accepted when any of its names is: /dev/sdX or
        # /dev/dm-N would let it in past the patterns for its other names
        return False, (f"{shown}: the accept pattern {accepts[0]} lets "
                       "JovianDSS volumes in under their kernel names; "
                       "remove it (global_filter only needs r patterns)")
    return True, shown


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python3 -m jdss.lvmfilter",
        description="Hide JovianDSS volumes from the host's LVM.")
    parser.add_argument("action", choices=("add", "remove", "status"))
    parser.add_argument("--lvm-dir", default=LVM_DIR,
                        help="LVM configuration directory (default /etc/lvm)")
    args = parser.parse_args(argv)
    try:
        if args.action == "add":
            print(install(args.lvm_dir))
        elif args.action == "remove":
            print(uninstall(args.lvm_dir))
        else:
            in_force, detail = status(args.lvm_dir)
            print({True: "in force: ", False: "not in force: ",
                   None: ""}[in_force] + detail)
            return 0 if in_force else 1
    except (FilterError, OSError, subprocess.SubprocessError) as exc:
        print(f"LVM filter: {exc}; the LVM configuration was not changed",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
