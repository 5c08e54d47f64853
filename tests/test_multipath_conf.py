"""The multipath drop-in, read by multipath-tools' own parser.

``multipath -t`` prints the configuration multipathd would use (it parses
/etc/multipath.conf and /etc/multipath/conf.d/*.conf without needing
device-mapper); the sandbox gives it a throw-away /etc.
"""

import json
import os
import sys

import pytest

from jdss import hostcheck
from tests import sandbox
from tests.conftest import ROOT

DROPIN = os.path.join(ROOT, "drivers", "multipath", "configs",
                      "multipath.conf")
SCRIPT = r"""
install -D -m 0644 "$DROPIN" /etc/multipath/conf.d/jdss.conf
[ -z "$ADMIN_CONF" ] || printf '%s' "$ADMIN_CONF" > /etc/multipath.conf
multipath -t > "$OUT/config" 2> "$OUT/stderr" || echo "exit $?" >> "$OUT/stderr"
"$PYTHON" -c '
import json, sys
from jdss import hostcheck
print(json.dumps(hostcheck.multipath_dropin(hostcheck.Host(), False)))'
"""
ADMIN = """defaults {
    user_friendly_names yes
    polling_interval 10
}
blacklist_exceptions {
    device {
        vendor "DGC"
        product ".*"
    }
}
"""


def effective(tmp_path, admin_conf="", dropin=DROPIN):
    sandbox.require("multipath")
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    proc = sandbox.run(SCRIPT, env={
        "DROPIN": dropin, "ADMIN_CONF": admin_conf, "OUT": str(out),
        "PYTHON": sys.executable, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert proc.returncode == 0, proc.stderr
    text = (out / "config").read_text()
    return (hostcheck.parse_multipath_config(text),
            (out / "stderr").read_text(), json.loads(proc.stdout), text)


def jovian(config):
    entries = [e for e in config["devices"][1:]
               if e.get("vendor") == "SCST_BIO"]
    assert len(entries) == 1
    return entries[0]


def test_multipath_reads_the_drop_in_as_written(tmp_path):
    config, stderr, check, _ = effective(tmp_path)
    assert "jdss.conf" not in stderr and "invalid" not in stderr, stderr
    entry = jovian(config)
    assert entry == {
        "vendor": "SCST_BIO", "product": ".*",
        "path_grouping_policy": "multibus", "uid_attribute": "ID_SERIAL",
        "path_selector": "service-time 0", "path_checker": "tur",
        "prio": "const", "failback": "immediate", "no_path_retry": "26",
        "user_friendly_names": "no", "detect_prio": "no",
        "skip_kpartx": "yes"}
    defaults = config["defaults"][0]
    # queueing: no_path_retry rounds of polling_interval, past a failover
    queued = int(entry["no_path_retry"]) * int(defaults["polling_interval"])
    assert 120 < queued <= 150
    # defaults stay Debian's: the drop-in changes no node-wide setting
    assert defaults["find_multipaths"] == "strict"
    assert defaults["user_friendly_names"] == "no"
    assert "uid_attrs" not in defaults
    # only JovianDSS LUNs are multipathed
    assert {"vendor": ".*", "product": ".*"} in config["blacklist"][1:]
    assert {"vendor": "SCST_BIO", "product": ".*"} in \
        config["blacklist_exceptions"][1:]
    assert check["status"] == "ok", check
    assert "26 x 5 s = 130 s" in check["detail"]


def test_the_admins_settings_stay_and_ours_hold_for_jovian_luns(tmp_path):
    config, stderr, check, _ = effective(tmp_path, ADMIN)
    assert "jdss.conf" not in stderr, stderr
    defaults = config["defaults"][0]
    assert defaults["user_friendly_names"] == "yes"       # the admin's
    assert jovian(config)["user_friendly_names"] == "no"  # ours, per device
    exceptions = config["blacklist_exceptions"][1:]
    assert {"vendor": "DGC", "product": ".*"} in exceptions
    assert {"vendor": "SCST_BIO", "product": ".*"} in exceptions
    assert check["status"] == "ok" and "26 x 10 s = 260 s" in check["detail"]


@pytest.mark.parametrize("admin, problem", [
    ("blacklist {\n    wwid \".*\"\n}\n", "wwid"),
    ("defaults {\n    polling_interval 2\n}\n", "shorter than a pool"),
    ("defaults {\n    uid_attrs \"sd:ID_WWN\"\n}\n", "uid_attrs"),
])
def test_settings_that_defeat_it_are_reported(tmp_path, admin, problem):
    _, _, check, _ = effective(tmp_path, admin)
    assert check["status"] == "FAIL" and problem in check["detail"], check


def test_a_broken_drop_in_is_reported_with_multipaths_words(tmp_path):
    broken = tmp_path / "broken.conf"
    with open(DROPIN) as handle:
        broken.write_text(handle.read().replace(
            "\t\tno_path_retry 26", "\t\tno_path_retries 26"))
    _, stderr, check, _ = effective(tmp_path, dropin=str(broken))
    assert "invalid keyword" in stderr
    assert check["status"] == "FAIL" and "no_path_retries" in check["detail"]
