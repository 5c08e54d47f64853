"""``jdss doctor --bundle``: useful to support, and no secret in it.

A storage with CHAP on the emulator, a log file, storage.cfg sections and
priv files with secrets, and tools on the stand-in node that print secrets
(as a careless tool could): the bundle must carry the facts and none of the
secrets, in any member, once decompressed.
"""

import json
import os
import stat
import subprocess
import tarfile

import pytest
import yaml

from jdss import chap
from tests.conftest import jdss_command, write_config
from tests.emulator import PASSWORD
from tests.nodestub import script

REST_INLINE = "Inline-Rest-Secret-77"
STORAGE_CFG_SECRET = "cfg-user-password-5"
PW_FILE_SECRETS = ("priv-chap-password-123", "priv-user-password-456")


@pytest.fixture
def bundle(node, emulator, tls_cert, tmp_path):
    """Make a storage with every kind of secret, then a bundle of it."""
    pve = tmp_path / "pve"
    (pve / "priv" / "storage" / "joviandss").mkdir(parents=True)
    log = tmp_path / "jdss.log"
    values = emulator.config(chap_enabled=True, loglevel="debug",
                             logfile=str(log),
                             chap_secret_file=str(pve / "priv" / "k.chap"))
    config = write_config(pve / "jdss-Pool-0.yaml", **values)
    run = [jdss_command(), "-c", str(config)]
    for args in (["volume", "create", "vm-100-disk-0", "--size", "1G"],
                 ["target", "create", "vm-100-disk-0"]):
        subprocess.run(run + args, check=True, capture_output=True,
                       timeout=60)
    # a second storage whose YAML holds its password inline
    inline = write_config(pve / "jdss-Pool-1.yaml", backend="fake",
                          pool="Pool-1", rest_api_password=REST_INLINE)
    os.chmod(inline, 0o600)
    (pve / "storage.cfg").write_text(
        "joviandss: jdss-Pool-0\n\tpool_name Pool-0\n"
        f"\tconfig {config}\n\tuser_password {STORAGE_CFG_SECRET}\n\n"
        f"joviandss: jdss-Pool-1\n\tpool_name Pool-1\n\tconfig {inline}\n")
    (pve / "priv" / "storage" / "joviandss" / "jdss-Pool-0.pw").write_text(
        f"chap_user_password {PW_FILE_SECRETS[0]}\n"
        f"user_password {PW_FILE_SECRETS[1]}\n")
    key = (pve / "priv" / "k.chap").read_text().strip()
    target_password = chap.target_password(
        key.encode(), "iqn.2021-10.iscsi:pool-0:vm-100-disk-0")
    # tools that print what they should not
    script(node.bin / "iscsiadm",
           "echo 'tcp: [1] 127.0.0.1:3260,1 iqn.2021-10.iscsi:pool-0:vm-100-disk-0'"
           f"\necho 'node.session.auth.password = {target_password}'\n")
    script(node.bin / "journalctl",
           f"echo '2026-12-01T10:00:00 node pvedaemon[1]: jdss login "
           f"{PASSWORD}'\necho 'unrelated line'\n")
    path = tmp_path / "support.tar.gz"
    proc = subprocess.run(
        [jdss_command(), "doctor", "--bundle", str(path), "-f", "json"],
        capture_output=True, text=True, timeout=180,
        env=dict(os.environ, **node.env(), JDSS_PVE_ROOT=str(pve)))
    assert proc.returncode in (0, 1), proc.stderr
    secrets = [PASSWORD, REST_INLINE, STORAGE_CFG_SECRET, key,
               target_password, *PW_FILE_SECRETS]
    with open(tls_cert[1]) as handle:
        secrets += [line for line in handle.read().splitlines()
                    if line and not line.startswith("-----")]
    return path, secrets, proc


def members(path):
    with tarfile.open(path, "r:gz") as tar:
        return {m.name.split("/", 1)[1]: tar.extractfile(m).read().decode()
                for m in tar.getmembers() if m.isfile()}


def test_no_secret_is_in_any_member(bundle):
    path, secrets, proc = bundle
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    found = members(path)
    assert len(found) > 10
    for name, text in found.items():
        for secret in secrets:
            assert secret not in text, (name, secret[:6])
        assert "PRIVATE KEY" not in text, name
    for secret in secrets:
        assert secret not in proc.stdout + proc.stderr


def test_the_bundle_carries_what_support_needs(bundle):
    path, _, _ = bundle
    found = members(path)
    checks = {row["check"]: row for row in json.loads(found["doctor.json"])}
    assert checks["jdss-Pool-0: pool"]["status"] == "ok"
    assert found["versions.txt"].startswith("jdss ")
    cfg = found["storage.cfg"]
    assert "joviandss: jdss-Pool-0\n\tpool_name Pool-0\n" in cfg
    assert "\tuser_password ***\n" in cfg
    pool0 = yaml.safe_load(found["config/jdss-Pool-0.yaml"])
    assert pool0["chap_enabled"] is True
    assert pool0["rest_api_password_file"].endswith("emulator.pw")
    assert yaml.safe_load(found["config/jdss-Pool-1.yaml"])[
        "rest_api_password"] == "***"
    assert "DEBUG" in found["logs/jdss-Pool-0-jdss.log"]
    pool = json.loads(found["rest/jdss-Pool-0/pool.json"])
    assert pool["name"] == "Pool-0"
    targets = json.loads(found["rest/jdss-Pool-0/targets.json"])
    assert [t["name"] for t in targets] == ["iqn.2021-10.iscsi:pool-0:vm-100-disk-0"]
    sessions = found["commands/iscsiadm-session.txt"]
    assert "iqn.2021-10.iscsi:pool-0:vm-100-disk-0" in sessions
    assert "node.session.auth.password = ***" in sessions
    assert found["journal.txt"] == \
        "2026-12-01T10:00:00 node pvedaemon[1]: jdss login ***\n"
    assert "README.txt" in found


def test_redaction_masks_secrets_and_cuts_private_keys():
    from jdss import bundle
    secrets = bundle.Secrets()
    secrets.add("s3cret")
    assert secrets.redact("a s3cret b") == "a *** b"
    key = "-----BEGIN PRIVATE KEY-----\nMIIabc\n-----END PRIVATE KEY-----"
    assert secrets.redact(f"x\n{key}\ny") == "x\n[private key removed]\ny"


def test_a_secret_that_survives_redaction_stops_the_bundle(tmp_path,
                                                           monkeypatch):
    from jdss import bundle, config, errors, hostcheck
    log = tmp_path / "old.log"
    log.write_text("an old log line with s3cret-9 in it\n")
    path = write_config(tmp_path / "jdss.yaml", rest_api_password="s3cret-9",
                        logfile=str(log))
    os.chmod(path, 0o600)
    monkeypatch.setattr(bundle.Secrets, "redact", lambda self, text: text)
    monkeypatch.setenv("JDSS_PVE_ROOT", str(tmp_path))
    storages = [("s", config.load(str(path)))]
    with pytest.raises(errors.JdssError, match="would still hold a secret"):
        # no tools: nothing of this machine is asked
        bundle.write(str(tmp_path / "b.tar.gz"), storages, [],
                     host=hostcheck.Host(root=str(tmp_path), search_path=""))
    assert not (tmp_path / "b.tar.gz").exists()
