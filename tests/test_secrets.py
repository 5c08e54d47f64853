"""Passwords never reach logs, errors or output."""

import logging
import os

from jdss import log
from tests.conftest import write_config

PASSWORD = "Sup3r-Secret-Passw0rd"


def test_redacting_filter_hides_known_secrets(tmp_path):
    handler = logging.FileHandler(tmp_path / "out.log")
    log.protect(handler)
    log.add_secrets([PASSWORD])
    logger = logging.getLogger("jdss.test.redact")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        logger.debug("login with %s", PASSWORD)
        try:
            raise ValueError(f"bad {PASSWORD}")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
        handler.close()
    text = (tmp_path / "out.log").read_text()
    assert "login with ***" in text and "bad ***" in text
    assert PASSWORD not in text


def test_cli_debug_log_has_no_password(tmp_path, run_jdss):
    logfile = tmp_path / "jdss.log"
    config = write_config(tmp_path / "jdss.yaml", rest_api_password=PASSWORD,
                          loglevel="debug", logfile=str(logfile))
    config.chmod(0o600)
    outputs = []
    for args in (("volume", "create", "v", "--size", "1G"),
                 ("--debug", "volume", "show", "missing"),
                 ("target", "create", "v", "-f", "json"),
                 ("volume", "list")):
        result = run_jdss(*args, config=config)
        outputs += [result.out, result.err]
    text = logfile.read_text()
    assert text, "debug logging should have written something"
    assert PASSWORD not in text
    assert not any(PASSWORD in output for output in outputs)


def test_chap_key_is_random_private_and_shared_by_racing_makers(tmp_path):
    import stat
    from concurrent.futures import ThreadPoolExecutor
    from jdss import chap
    path = tmp_path / "priv" / "jdss-Pool-0.chap"
    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: chap.load_or_create_key(str(path)),
                            range(8)))
    assert len(keys) == 1                         # every maker got the same
    key = keys.pop()
    assert len(key) == 64 and int(key, 16)        # 32 bytes from secrets
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert [p.name for p in path.parent.iterdir()] == [path.name]
    other = chap.load_or_create_key(str(tmp_path / "other.chap"))
    assert other != key
    first = chap.target_password(key, "iqn.2021-10.iscsi:vm-1-disk-0")
    assert first == chap.target_password(key, "iqn.2021-10.iscsi:vm-1-disk-0")
    assert first != chap.target_password(key, "iqn.2021-10.iscsi:vm-2-disk-0")


CHAP_MAKER = """
import os, sys
def no_link(*args, **kwargs):                  # as on pmxcfs
    raise OSError(38, "Function not implemented")
os.link = no_link
from jdss import chap
print(chap.load_or_create_key(sys.argv[1]).decode())
"""


def test_chap_key_is_made_where_hard_links_do_not_exist(tmp_path,
                                                       monkeypatch):
    """pmxcfs (/etc/pve) has no link(2): racing nodes still end with one
    key, each having read the one on disk."""
    import subprocess
    import sys
    from jdss import chap

    def no_link(*args, **kwargs):
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(os, "link", no_link)
    path = tmp_path / "priv" / "jdss-Pool-0.chap"
    makers = [subprocess.Popen([sys.executable, "-c", CHAP_MAKER, str(path)],
                               stdout=subprocess.PIPE, text=True)
              for _ in range(8)]
    keys = {m.communicate(timeout=60)[0].strip() for m in makers}
    assert all(m.returncode == 0 for m in makers)
    assert len(keys) == 1
    assert keys == {chap.load_or_create_key(str(path)).decode()}
    assert [p.name for p in path.parent.iterdir()] == [path.name]
