"""The joviandss backend against a real emulator process over the network."""

import json
import logging
import os
import subprocess
import time

import pytest

from jdss import config as jconfig
from jdss import drivers, errors
from jdss.storage import Storage
from tests.conftest import jdss_command, write_config
from tests.emulator import PASSWORD, Emulator, free_port


def storage_for(tmp_path, **values):
    path = write_config(tmp_path / "rest.yaml", **values)
    cfg = jconfig.load(str(path))
    return Storage(cfg, drivers.load_backend(cfg))


@pytest.fixture
def pair(tmp_path, tls_cert):
    """One emulator listening on both 127.0.0.2 and 127.0.0.3."""
    running = Emulator(str(tmp_path), *tls_cert,
                       listens=["127.0.0.2", "127.0.0.3"])
    yield running
    running.stop()


def paths(emulator, listen=None):
    return [(l, m, p, s) for l, m, p, s in emulator.requests()
            if listen is None or l.startswith(listen)]


def test_pool_show_is_one_request(emulator, tmp_path):
    storage = storage_for(tmp_path, **emulator.config())
    assert storage.pool()["name"] == "Pool-0"
    assert [(m, p) for _, m, p, _ in emulator.requests()] == \
        [("GET", "/api/v4/pools/Pool-0")]


def test_unknown_pool_is_not_found(emulator, tmp_path):
    storage = storage_for(tmp_path, **emulator.config(pool="Nope"))
    with pytest.raises(errors.NotFound, match="Pool Nope"):
        storage.pool()


def test_wrong_password_is_an_auth_error(emulator, tmp_path):
    wrong = tmp_path / "wrong.pw"
    wrong.write_text("not-the-password\n")
    wrong.chmod(0o600)
    storage = storage_for(tmp_path, **emulator.config(
        rest_api_password_file=str(wrong)))
    with pytest.raises(errors.AuthFailed) as info:
        storage.pool()
    assert "refused the login" in str(info.value)
    assert "not-the-password" not in str(info.value)
    assert len(emulator.requests()) == 1          # no retries on 401


def test_wrong_ca_fails_clearly_and_fast(emulator, tmp_path):
    from jdss.emulator.server import make_self_signed
    other = tmp_path / "other"
    other.mkdir()
    other_cert, _ = make_self_signed(str(other), ["127.0.0.1:1"])
    storage = storage_for(tmp_path, **emulator.config(
        driver_ssl_cert_path=other_cert))
    started = time.monotonic()
    with pytest.raises(errors.TlsError) as info:
        storage.pool()
    assert time.monotonic() - started < 3
    assert "certificate verify failed" in str(info.value)
    assert "driver_ssl_cert_path" in str(info.value)


def test_default_verification_rejects_self_signed(emulator, tmp_path):
    values = emulator.config()
    del values["driver_ssl_cert_path"]
    with pytest.raises(errors.TlsError):
        storage_for(tmp_path, **values).pool()


@pytest.fixture
def system_cas(tmp_path, monkeypatch):
    """A system CA store (a bundle and OpenSSL's hashed directory of the
    same CAs) that Python's ssl and requests both report."""
    import ssl

    import requests.utils

    def install(cert, requests_bundle=None):
        bundle = tmp_path / "ca-certificates.crt"
        directory = tmp_path / "certs"
        directory.mkdir(exist_ok=True)
        bundle.write_bytes(open(cert, "rb").read())
        name = subprocess.run(["openssl", "x509", "-hash", "-noout", "-in",
                               cert], check=True, capture_output=True,
                              text=True).stdout.strip()
        (directory / f"{name}.0").write_bytes(bundle.read_bytes())
        paths = ssl.get_default_verify_paths()._replace(
            openssl_cafile=str(bundle), openssl_capath=str(directory))
        monkeypatch.setattr(ssl, "get_default_verify_paths", lambda: paths)
        monkeypatch.setattr(requests.utils, "DEFAULT_CA_BUNDLE_PATH",
                            requests_bundle or str(bundle))
        return directory
    return install


def test_default_verification_reads_the_system_ca_directory(
        emulator, tmp_path, system_cas):
    """The system's CAs as OpenSSL's hashed directory (openssl's own hash
    names): read for the one CA needed, not parsed whole per call."""
    directory = system_cas(emulator.cert)
    values = emulator.config()
    del values["driver_ssl_cert_path"]
    storage = storage_for(tmp_path, **values)
    assert storage.pool()["name"] == "Pool-0"
    assert storage.backend.client.verify == str(directory)


def test_requests_own_cas_are_kept_when_they_are_not_the_systems(
        emulator, tmp_path, system_cas):
    """requests with certifi's bundle (a pip install): its CAs, not the
    system's, as before; the emulator's CA is only in the system's."""
    system_cas(emulator.cert, requests_bundle="/nonexistent/cacert.pem")
    values = emulator.config()
    del values["driver_ssl_cert_path"]
    storage = storage_for(tmp_path, **values)
    assert storage.backend.client.verify is True


def test_the_environment_does_not_choose_the_cas(emulator, tmp_path,
                                                 monkeypatch, system_cas):
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path / "elsewhere"))
    system_cas(emulator.cert)       # its capath is now the variable's
    values = emulator.config()
    del values["driver_ssl_cert_path"]
    assert storage_for(tmp_path, **values).backend.client.verify == \
        str(tmp_path / "certs")


def test_verification_off_works(emulator, tmp_path):
    values = emulator.config(driver_ssl_cert_verify=False)
    del values["driver_ssl_cert_path"]
    assert storage_for(tmp_path, **values).pool()["name"] == "Pool-0"


def test_environment_cannot_redirect_or_reverify(emulator, tmp_path,
                                                 monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/bundle.pem")
    values = emulator.config(driver_ssl_cert_verify=False)
    del values["driver_ssl_cert_path"]
    assert storage_for(tmp_path, **values).pool()["name"] == "Pool-0"


def test_plain_http(tmp_path):
    running = Emulator(str(tmp_path), plain_http=True)
    try:
        storage = storage_for(tmp_path, **running.config())
        storage.create_volume("v", "1G")
        assert [v["name"] for v in storage.list_volumes()] == ["v"]
    finally:
        running.stop()


def test_failover_to_second_address_and_stay(pair, tmp_path):
    pair.faults({"action": "refuse", "listen": f"127.0.0.2:{pair.port}"})
    storage = storage_for(tmp_path, **pair.config())
    storage.create_volume("v", "1G")
    client = storage.backend.client
    assert client.addresses[client.current] == "127.0.0.3"
    sent = client.requests_sent
    storage.volume("v")
    storage.list_volumes()                       # a page and the empty one
    assert client.requests_sent == sent + 3      # no detour via .2 again
    assert all(listen.startswith("127.0.0.3")
               for listen, _, _, _ in pair.requests())


def test_flapping_address(pair, tmp_path):
    storage = storage_for(tmp_path, **pair.config())
    storage.create_volume("v", "1G")
    for round_ in range(3):
        refused = "127.0.0.2" if round_ % 2 == 0 else "127.0.0.3"
        pair.faults({"action": "refuse", "listen": f"{refused}:{pair.port}"})
        storage.create_snapshot("v", f"s{round_}")
    pair.faults()
    assert [s["name"] for s in storage.list_snapshots("v")] == \
        ["s0", "s1", "s2"]


@pytest.mark.parametrize("rule", [
    {"action": "error", "status": 500},
    {"action": "error", "status": 503},
    {"action": "empty", "method": "GET"},
    {"action": "drop"},
])
def test_bad_answers_fail_over(pair, tmp_path, rule):
    pair.faults(dict(rule, listen=f"127.0.0.2:{pair.port}"))
    storage = storage_for(tmp_path, **pair.config())
    assert storage.pool()["name"] == "Pool-0"
    listens = [listen.split(":")[0] for listen, _, _, _ in pair.requests()]
    assert listens == ["127.0.0.2", "127.0.0.3"]


def test_transient_empty_answer_is_retried_on_one_address(emulator,
                                                          tmp_path):
    emulator.faults({"action": "empty", "method": "GET", "count": 1})
    storage = storage_for(tmp_path, **emulator.config())
    assert storage.pool()["name"] == "Pool-0"
    assert [s for _, _, _, s in emulator.requests()] == ["200-empty", "200"]


def test_slow_address_is_left_for_the_next(pair, tmp_path):
    pair.faults({"action": "delay", "seconds": 3,
                 "listen": f"127.0.0.2:{pair.port}"})
    storage = storage_for(tmp_path, **pair.config(rest_api_read_timeout=0.5))
    started = time.monotonic()
    assert storage.pool()["name"] == "Pool-0"
    assert time.monotonic() - started < 2.5


def test_dead_appliance_fails_within_deadline(tmp_path):
    port = free_port(["127.0.0.2", "127.0.0.3"])
    storage = storage_for(tmp_path, backend="joviandss",
                          rest_api_addresses=["127.0.0.2", "127.0.0.3"],
                          rest_api_port=port, rest_api_deadline=2,
                          driver_ssl_cert_verify=False)
    started = time.monotonic()
    with pytest.raises(errors.Unreachable) as info:
        storage.pool()
    elapsed = time.monotonic() - started
    assert 1 <= elapsed < 4
    assert "127.0.0.2: connection refused" in str(info.value)
    assert "127.0.0.3: connection refused" in str(info.value)


def test_create_dropped_after_apply_is_not_repeated(emulator, tmp_path):
    emulator.faults({"action": "drop_after", "method": "POST",
                     "path": "/volumes$", "count": 1})
    storage = storage_for(tmp_path, **emulator.config())
    view = storage.create_volume("vm-100-disk-0", "1G")
    assert view["name"] == "vm-100-disk-0"
    posts = [(p, s) for _, m, p, s in emulator.requests() if m == "POST"]
    assert posts == [("/api/v4/pools/Pool-0/volumes", "201-dropped")]
    assert [v["name"] for v in storage.list_volumes()] == ["vm-100-disk-0"]


def _applied_late(method, path_):
    """The first attempt's answer is lost before it is applied; the one
    sent again is applied, then refused: to the client, an earlier
    attempt applied after the check that found nothing."""
    refused = {"POST": (409, "Resource already exists"),
               "PUT": (404, "Zfs resource not found")}[method]
    return ({"action": "drop", "method": method, "path": path_,
             "count": 1},
            {"action": "fail", "apply": True, "method": method,
             "path": path_, "count": 1, "status": refused[0],
             "message": refused[1]})


def _after_first(emulator, method):
    """The requests from the first ``method`` on: (method, status)."""
    sent = [(m, str(s)) for _, m, _, s in emulator.requests()]
    first = [m for m, _ in sent].index(method)
    return sent[first:]


def test_create_applied_after_its_check_is_done(emulator, tmp_path, caplog):
    """A create that meets its own volume when sent again is done: not
    refused as existing (nor, through --guest, made under the next name
    beside an orphan)."""
    caplog.set_level(logging.INFO, logger="jdss")
    storage = storage_for(tmp_path, **emulator.config())
    emulator.faults(*_applied_late("POST", "/volumes$"))
    view = storage.create_volume("vm-100-disk-0", "1G")
    assert view["name"] == "vm-100-disk-0"
    sent = _after_first(emulator, "POST")[:4]
    assert [m for m, _ in sent] == ["POST", "GET", "POST", "GET"]
    assert [s for _, s in sent][::2] == ["drop", "409-fail"]
    assert sent[3][1] == "200"          # the check after the refusal
    assert "applied after the check" in caplog.text
    assert [v["name"] for v in storage.list_volumes()] == ["vm-100-disk-0"]


def test_rename_applied_after_its_check_is_done(emulator, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="jdss")
    storage = storage_for(tmp_path, **emulator.config())
    storage.create_volume("vm-100-disk-0", "1G")
    emulator.faults(*_applied_late("PUT", "/volumes/v_vm-100-disk-0$"))
    storage.rename_volume("vm-100-disk-0", "vm-101-disk-0")
    assert "applied after the check" in caplog.text
    assert [v["name"] for v in storage.list_volumes()] == ["vm-101-disk-0"]


def test_a_rename_whose_answer_is_lost_is_not_taken_for_done_by_the_name(
        emulator, tmp_path):
    """After a lost answer, a volume of the new name that was there before
    does not make the rename done while the old name is still there: it
    is sent again, and the appliance's refusal reaches the caller."""
    storage = storage_for(tmp_path, **emulator.config())
    for name in ("vm-100-disk-0", "vm-101-disk-0"):
        storage.create_volume(name, "1G")
    emulator.faults({"action": "drop", "method": "PUT",
                     "path": "/volumes/v_vm-100-disk-0$", "count": 1})
    with pytest.raises(errors.AlreadyExists):
        storage.backend.rename_volume("v_vm-100-disk-0", "v_vm-101-disk-0")
    puts = [s for _, m, _, s in emulator.requests() if m == "PUT"]
    assert puts[0] == "drop" and len(puts) == 2
    assert sorted(v["name"] for v in storage.list_volumes()) == [
        "vm-100-disk-0", "vm-101-disk-0"]


def test_a_guests_target_made_meanwhile_is_not_taken_for_ours(emulator,
                                                               tmp_path):
    """Several attaches of one guest's volumes may make its target at
    once (luns_per_target): a target that appears after the check may be
    another attach's, which must not be taken (and later undone) as this
    one's; the appliance's refusal goes to the caller, which reuses it."""
    storage = storage_for(tmp_path, **emulator.config())
    emulator.faults(*_applied_late("POST", "/targets$"))
    with pytest.raises(errors.AlreadyExists):
        storage.backend.create_target("iqn.2021-10.iscsi:vm-100-0", False)


def test_create_dropped_before_apply_is_sent_again(emulator, tmp_path):
    emulator.faults({"action": "drop", "method": "POST",
                     "path": "/snapshots$", "count": 1})
    storage = storage_for(tmp_path, **emulator.config())
    storage.create_volume("v", "1G")
    storage.create_snapshot("v", "s1")
    posts = [s for _, m, p, s in emulator.requests()
             if m == "POST" and p.endswith("/snapshots")]
    assert posts == ["drop", "201"]
    assert [s["name"] for s in storage.list_snapshots("v")] == ["s1"]


def test_unexpected_bodies_never_crash(emulator, tmp_path):
    emulator.faults({"action": "error", "status": 502})
    storage = storage_for(tmp_path, **emulator.config(rest_api_deadline=1))
    with pytest.raises(errors.Unreachable, match="HTTP 502"):
        storage.pool()


def test_cli_over_rest_and_no_password_anywhere(emulator, tmp_path):
    logfile = tmp_path / "jdss.log"
    config = write_config(tmp_path / "cli.yaml", **emulator.config(
        loglevel="debug", logfile=str(logfile)))
    config.chmod(0o600)

    def run(*args):
        return subprocess.run([jdss_command(), "-c", str(config)]
                              + list(args), capture_output=True, text=True,
                              timeout=60)

    created = run("volume", "create", "vm-100-disk-0", "--size", "1G", "-f",
                  "json")
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["appliance_name"] == "v_vm-100-disk-0"
    missing = run("--debug", "volume", "show", "nope")
    assert missing.returncode == errors.NotFound.exit_code
    emulator.faults({"action": "drop"})
    down = run("-vv", "pool", "show")
    assert down.returncode == errors.Unreachable.exit_code
    texts = [created.stdout, created.stderr, missing.stderr, down.stderr,
             logfile.read_text()]
    assert not any(PASSWORD in text for text in texts)
    with open(f"/proc/{emulator.process.pid}/cmdline", "rb") as handle:
        assert PASSWORD.encode() not in handle.read()


def test_emulator_refuses_missing_auth(emulator):
    import requests
    answer = requests.get(f"https://127.0.0.1:{emulator.port}/api/v4/pools",
                          verify=emulator.cert, timeout=5)
    assert answer.status_code == 401
    assert answer.text == "401 unauthorized"


def test_emulator_stops_on_sigterm(tmp_path, tls_cert):
    running = Emulator(str(tmp_path), *tls_cert)
    running.stop()
    assert running.process.returncode == 0
    assert not os.path.exists(os.path.join(running.state_dir, "x"))


def test_short_pages_are_not_the_end(tmp_path, tls_cert):
    """An appliance may serve fewer entries per page than asked for: the
    walk goes on until a page brings nothing new."""
    running = Emulator(str(tmp_path), *tls_cert, pools=("Pool-0",),
                       max_per_page=7)
    try:
        storage = storage_for(tmp_path, **running.config())
        for n in range(20):
            storage.create_volume(f"vm-{n}-disk-0", "1G")
        for n in range(9):
            storage.create_snapshot("vm-0-disk-0", f"s{n}")
        before = len(running.requests())
        assert len(storage.list_volumes()) == 20
        pages = [p for _, m, p, _ in running.requests()[before:]]
        assert len(pages) == 4                     # 7 + 7 + 6 + empty
        assert [s["name"] for s in storage.list_snapshots("vm-0-disk-0")] \
            == [f"s{n}" for n in range(9)]
    finally:
        running.stop()
