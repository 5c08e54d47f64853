"""Passwords never reach logs, errors or output."""

import logging

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
