"""The log of a storage: request ids, REST exchanges, rotation, no secrets."""

import glob
import os
import re
import subprocess
import sys

from jdss import log, pvecfg
from tests.conftest import jdss_command, write_config
from tests.emulator import PASSWORD, Emulator


def test_a_failure_names_the_request_to_find_in_the_log(tmp_path):
    emulator = Emulator(str(tmp_path), plain_http=True)
    try:
        logfile = tmp_path / "jdss-store.log"
        config = write_config(tmp_path / "j.yaml", **emulator.config(
            logfile=str(logfile), loglevel="info"))
        proc = subprocess.run([jdss_command(), "-c", str(config), "volume",
                               "show", "vm-1-disk-0"], capture_output=True,
                              text=True, timeout=60)
    finally:
        emulator.stop()
    assert proc.returncode == 4
    match = re.search(r"\[request ([0-9a-f]{6}) in (\S+)\]$",
                      proc.stderr.strip())
    assert match, proc.stderr
    request, path = match.groups()
    assert path == str(logfile)
    lines = [line for line in logfile.read_text().splitlines()
             if f" {request} " in line]
    assert any("jdss -c" in line and "volume show" in line for line in lines)
    assert any("GET /pools/Pool-0/volumes/v_vm-1-disk-0" in line
               and "HTTP 500" in line for line in lines), lines
    assert any("not found" in line for line in lines)
    assert PASSWORD not in logfile.read_text()


def test_each_run_has_its_own_request_id(tmp_path):
    config = write_config(tmp_path / "j.yaml", logfile=str(tmp_path / "l"),
                          loglevel="info")
    ids = set()
    for _ in range(3):
        proc = subprocess.run([jdss_command(), "-c", str(config), "volume",
                               "show", "nope"], capture_output=True,
                              text=True, timeout=60)
        ids.add(re.search(r"\[request (\w+) in", proc.stderr).group(1))
    assert len(ids) == 3


WRITER = """
import logging, sys
from jdss import log
handler = log.SharedRotatingFileHandler(sys.argv[1], max_bytes=4000, keep=50)
logger = logging.getLogger("w")
logger.addHandler(handler)
logger.setLevel(logging.INFO)
for n in range(300):
    logger.info("%s line %d %s", sys.argv[2], n, "x" * 40)
"""


def test_several_processes_share_one_rotated_log(tmp_path):
    path = tmp_path / "shared.log"
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(path),
                                 f"w{n}"]) for n in range(4)]
    assert all(w.wait(timeout=120) == 0 for w in writers)
    files = glob.glob(f"{path}*")
    files = [f for f in files if not f.endswith(".lock")]
    assert 2 < len(files) <= 51
    lines = []
    for name in files:
        with open(name) as handle:
            lines += handle.read().splitlines()
    assert len(lines) == 4 * 300                     # nothing lost
    assert all(os.path.getsize(f) < 8000 for f in files)


def test_a_storage_logs_where_the_package_made_the_directory(tmp_path,
                                                             monkeypatch):
    monkeypatch.setenv(pvecfg.PVE_ROOT_ENV, str(tmp_path))
    (tmp_path / "storage.cfg").write_text(
        "joviandss: store-a\n\tpool_name Pool-0\n\tcontrol_addresses x1\n\n"
        "joviandss: store-b\n\tpool_name Pool-0\n\tcontrol_addresses x1\n"
        "\tlog_file /elsewhere/b.log\n")
    monkeypatch.setattr(pvecfg, "LOG_DIR", str(tmp_path / "nolog"))
    assert pvecfg.load_config("store-a").logfile is None
    monkeypatch.setattr(pvecfg, "LOG_DIR", str(tmp_path))
    a = pvecfg.load_config("store-a")
    assert (a.logfile, a.loglevel) == (str(tmp_path / "store-a.log"), "info")
    assert pvecfg.load_config("store-b").logfile == "/elsewhere/b.log"


def test_request_reference_is_empty_without_a_log():
    log.start_request()
    assert log.request_reference() == ""


COUNTER = """
import logging, sys
from jdss.app import JdssApp
made = []
factory = logging.getLogRecordFactory()
def counted(*args, **kwargs):
    record = factory(*args, **kwargs)
    made.append(record.levelno)
    return record
logging.setLogRecordFactory(counted)
code = JdssApp().run(sys.argv[1:])
print(code, sum(1 for level in made if level < logging.WARNING))
"""


def _records_below_warning(*argv):
    proc = subprocess.run([sys.executable, "-c", COUNTER, *map(str, argv)],
                          capture_output=True, text=True, timeout=60)
    code, made = proc.stdout.split()[-2:]
    assert code == "0", proc.stderr
    return int(made)


def test_debug_records_are_made_only_for_a_log_that_takes_them(tmp_path):
    """Nothing below a warning is made for a console that shows warnings
    only; a log file at debug, or -vv, still gets every line."""
    quiet = write_config(tmp_path / "q.yaml")
    assert _records_below_warning("-c", quiet, "pool", "show") == 0
    assert _records_below_warning("-vv", "-c", quiet, "pool", "show") > 0
    logged = write_config(tmp_path / "l.yaml", logfile=str(tmp_path / "log"),
                          loglevel="debug")
    assert _records_below_warning("-c", logged, "pool", "show") > 0
    with open(tmp_path / "log") as handle:
        assert " DEBUG " in handle.read()
