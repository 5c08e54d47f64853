"""jdss --storage: storage.cfg, the YAML file and Proxmox's password file."""

import json
import os
import subprocess

import pytest
import yaml

from jdss import errors, pvecfg
from tests.conftest import jdss_command

VENDOR = """\
# a comment
dir: local
\tpath /var/lib/vz
\tcontent iso

joviandss: jdss-Pool-0
        pool_name Pool-0
        content images,rootdir
        shared 1
        target_prefix iqn.2025-06.proxmox.pool-0
        user_name operator
        ssl_cert_verify 0
        control_addresses 192.0.2.10, 192.0.2.11
        control_port 8443
        data_addresses 192.0.2.20
        data_port 3261
        thin_provisioning 0
        luns_per_target 4
        block_size 8K
        # lock tuning of the vendor's plugin
        multipath_lock_hold_timeout 60
        log_file /var/log/joviandss/jdss-Pool-0.log
        data_copy_bs 1M
"""


@pytest.fixture
def pve(tmp_path, monkeypatch):
    monkeypatch.setenv(pvecfg.PVE_ROOT_ENV, str(tmp_path))
    (tmp_path / "storage.cfg").write_text(VENDOR)
    return tmp_path


def write_passwords(root, storeid, text, type_="joviandss"):
    path = root / "priv" / "storage" / type_ / f"{storeid}.pw"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o600)
    return path


def test_parse_storage_cfg_reads_sections_like_section_config():
    sections = pvecfg.parse_storage_cfg(VENDOR)
    assert set(sections) == {"local", "jdss-Pool-0"}
    section = sections["jdss-Pool-0"]
    assert section["type"] == "joviandss"
    assert section["control_addresses"] == "192.0.2.10, 192.0.2.11"
    assert "# lock tuning of the vendor's plugin" not in section.values()


def test_vendor_section_maps_to_jdss_keys(pve):
    write_passwords(pve, "jdss-Pool-0", "user_password s3cret-pw\n")
    config = pvecfg.load_config("jdss-Pool-0")
    assert config.storage_id == "jdss-Pool-0"
    assert config.backend == "joviandss"
    assert config.pool == "Pool-0"
    assert config.rest_api_addresses == ["192.0.2.10", "192.0.2.11"]
    assert config.rest_api_port == 8443
    assert config.data_addresses == ["192.0.2.20"]
    assert config.target_port == 3261
    assert config.rest_api_login == "operator"
    assert config.rest_api_password == "s3cret-pw"
    assert config.driver_ssl_cert_verify is False
    assert config.thin_provision is False
    assert config.luns_per_target == 4
    assert config.jovian_block_size == "8K"
    assert config.copy_block_size == 1 << 20
    assert config.target_prefix == "iqn.2025-06.proxmox.pool-0"
    assert config.logfile == "/var/log/joviandss/jdss-Pool-0.log"
    assert config.loglevel == "info"
    assert str(pve / "storage.cfg") in config.sources


def test_password_file_wins_over_an_inline_password(pve):
    (pve / "storage.cfg").write_text(VENDOR.replace(
        "user_name operator", "user_name operator\n        user_password old"))
    assert pvecfg.load_config("jdss-Pool-0").rest_api_password == "old"
    path = write_passwords(pve, "jdss-Pool-0",
                           "# kept by Proxmox\n\nuser_password new-one\n"
                           "chap_user_password 0123456789abcdef\n")
    config = pvecfg.load_config("jdss-Pool-0")
    assert config.rest_api_password == "new-one"
    assert config.chap_password == "0123456789abcdef"
    assert str(path) in config.sources


def test_without_thin_provisioning_a_storage_cfg_only_storage_is_thin(pve):
    (pve / "storage.cfg").write_text(VENDOR.replace(
        "        thin_provisioning 0\n", ""))
    assert pvecfg.load_config("jdss-Pool-0").thin_provision is True


def test_yaml_of_the_user_guide_and_storage_cfg_winning(pve):
    yaml_path = pve / "jdss-Pool-1.yaml"
    yaml_path.write_text(yaml.safe_dump({
        "rest_api_addresses": ["192.0.2.30"], "rest_api_password": "from-yaml",
        "thin_provision": False, "jovian_block_size": "4K",
        "target_prefix": "iqn.2021-10.iscsi:"}))
    (pve / "storage.cfg").write_text(
        "joviandss: guide\n\tpool_name Pool-1\n\tcontent images\n\n"
        "joviandss: mixed\n\tpool_name Pool-1\n\tconfig "
        f"{yaml_path}\n\tblock_size 64K\n\tthin_provisioning 1\n")
    guide = pvecfg.load_config("guide")        # the default YAML path
    assert (guide.jovian_block_size, guide.thin_provision) == ("4K", False)
    assert guide.rest_api_password == "from-yaml"
    assert guide.path == str(yaml_path)
    mixed = pvecfg.load_config("mixed")
    assert (mixed.jovian_block_size, mixed.thin_provision) == ("64K", True)
    assert mixed.rest_api_addresses == ["192.0.2.30"]


def test_errors_name_the_storage_and_the_key(pve):
    (pve / "storage.cfg").write_text(VENDOR.replace("block_size 8K",
                                                    "block_size 3K"))
    with pytest.raises(errors.ConfigError,
                       match=r"storage.cfg, storage jdss-Pool-0: block_size: "
                             r"unknown block size '3K'"):
        pvecfg.load_config("jdss-Pool-0")
    with pytest.raises(errors.ConfigError, match="'nope' is not a joviandss"):
        pvecfg.load_config("nope")
    with pytest.raises(errors.ConfigError, match="'local' is not a joviandss"):
        pvecfg.load_config("local")


def test_missing_named_yaml_file_is_an_error(pve):
    (pve / "storage.cfg").write_text(
        f"joviandss: j1\n\tpool_name Pool-0\n\tconfig {pve}/missing.yaml\n")
    with pytest.raises(errors.ConfigError, match="missing.yaml not found"):
        pvecfg.load_config("j1")


def test_section_given_by_the_caller_before_it_is_written(pve):
    section = pvecfg.parse_section_argument(json.dumps({
        "type": "joviandss", "pool_name": "Pool-3", "shared": 1,
        "control_addresses": "127.0.0.1", "user_name": "admin"}))
    config = pvecfg.load_config("new-one", section,
                                passwords={"user_password": "typed-pw"})
    assert (config.pool, config.rest_api_password) == ("Pool-3", "typed-pw")


def test_no_password_ever_on_the_command_line():
    for key in ("user_password", "chap_user_password"):
        with pytest.raises(errors.ConfigError, match="password file"):
            pvecfg.parse_section_argument(json.dumps({key: "x"}))


def test_iscsi_direct_with_chap_is_refused_for_a_proxmox_storage(pve):
    yaml_path = pve / "jdss-Pool-0.yaml"
    yaml_path.write_text(yaml.safe_dump({
        "rest_api_addresses": ["192.0.2.30"], "transport": "iscsi-direct",
        "chap_enabled": True}))
    (pve / "storage.cfg").write_text("joviandss: d\n\tpool_name Pool-0\n")
    with pytest.raises(errors.ConfigError, match="CHAP does not work with "
                                                 "transport iscsi-direct"):
        pvecfg.load_config("d")


def run(*args, env):
    proc = subprocess.run([jdss_command(), *args], capture_output=True,
                          text=True, timeout=60, env=dict(os.environ, **env))
    return proc.returncode, proc.stdout, proc.stderr


def test_jdss_storage_option_end_to_end(pve, tmp_path):
    (pve / "storage.cfg").write_text(
        f"joviandss: fake-store\n\tpool_name Pool-0\n\tconfig "
        f"{pve}/fake.yaml\n\tblock_size 32K\n")
    (pve / "fake.yaml").write_text(yaml.safe_dump({
        "backend": "fake", "fake_state_dir": str(tmp_path / "state"),
        "rest_api_addresses": ["127.0.0.1"]}))
    env = {pvecfg.PVE_ROOT_ENV: str(pve)}
    code, out, err = run("--storage", "fake-store", "volume", "create",
                         "vm-1-disk-0", "--size", "1M", "-f", "json", env=env)
    assert code == 0, err
    assert json.loads(out)["block_size"] == "32K"
    code, _, err = run("--storage", "fake-store", "-c", "x.yaml", "pool",
                       "show", env=env)
    assert code == 3 and "-c and --storage both given" in err
    code, _, err = run("--passwords-from-stdin", "pool", "show", env=env)
    assert code == 3 and "need --storage" in err


NFS_SECTION = """
joviandss-nfs: jdss-nfs
        server 192.0.2.30
        export /Pools/Pool-1/datastore-pve-01
        path /mnt/pve/jdss-nfs
        content images,iso
        user_name operator
        control_addresses 192.0.2.10
"""


def test_nfs_section_takes_pool_and_server_from_export(pve):
    (pve / "storage.cfg").write_text(VENDOR + NFS_SECTION)
    write_passwords(pve, "jdss-nfs", "user_password nfs-pw\n",
                    "joviandss-nfs")
    config = pvecfg.load_config("jdss-nfs")
    assert config.pool == "Pool-1"
    assert config.data_addresses == ["192.0.2.30"]
    assert config.rest_api_addresses == ["192.0.2.10"]
    assert config.rest_api_password == "nfs-pw"
    assert pvecfg.parse_export("/Pool-1/ds/") == ("Pool-1", "ds")
    assert pvecfg.parse_export("/Pool-1") is None


def test_nfs_section_with_a_bad_export_is_refused(pve):
    (pve / "storage.cfg").write_text(
        VENDOR + NFS_SECTION.replace("/Pools/Pool-1/datastore-pve-01",
                                     "/Pools/Pool-1/a/b"))
    with pytest.raises(errors.ConfigError,
                       match="export: '/Pools/Pool-1/a/b' is not"):
        pvecfg.load_config("jdss-nfs")
