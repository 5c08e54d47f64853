import logging
import os

import pytest

from jdss import config
from jdss.errors import ConfigError

GUIDE_EXAMPLE = """\
driver_use_ssl: True
driver_ssl_cert_verify: False
target_prefix: 'iqn.2021-10.iscsi:'
jovian_block_size: '16K'
jovian_rest_send_repeats: 3
rest_api_addresses:
  - '192.0.2.10'
rest_api_port: 82
target_port: 3260
rest_api_login: 'admin'
rest_api_password: 'admin'
thin_provision: True
loglevel: info
logfile: /var/log/jdss-Pool-0.log
"""


def load_text(tmp_path, text, **overrides):
    path = tmp_path / "jdss.yaml"
    path.write_text(text)
    path.chmod(0o600)
    return config.load(str(path), overrides=overrides)


def test_user_guide_example_loads(tmp_path, caplog):
    cfg = load_text(tmp_path, GUIDE_EXAMPLE)
    assert cfg.driver_use_ssl is True
    assert cfg.driver_ssl_cert_verify is False
    assert cfg.target_prefix == "iqn.2021-10.iscsi:"
    assert cfg.rest_api_addresses == ["192.0.2.10"]
    assert cfg.rest_api_port == 82 and cfg.target_port == 3260
    assert cfg.thin_provision is True
    assert cfg.loglevel == "info"
    assert "jovian_rest_send_repeats is deprecated" in caplog.text


def test_documented_defaults(tmp_path):
    cfg = load_text(tmp_path, "rest_api_addresses: [a.example]\n")
    assert cfg.backend == "joviandss"
    assert cfg.pool == "Pool-0"
    assert cfg.driver_use_ssl is True and cfg.driver_ssl_cert_verify is True
    assert cfg.target_prefix == "iqn.2021-10.iscsi:"
    assert cfg.jovian_block_size == "16K"
    assert cfg.rest_api_port == 82 and cfg.target_port == 3260
    assert cfg.rest_api_login == "admin"
    assert cfg.thin_provision is False
    assert cfg.loglevel is None and cfg.logfile is None


def test_iscsi_target_prefix_is_an_alias(tmp_path):
    cfg = load_text(tmp_path, "backend: fake\n"
                              "iscsi_target_prefix: 'iqn.2000-01.x:'\n")
    assert cfg.target_prefix == "iqn.2000-01.x:"


def test_both_prefix_spellings_conflict(tmp_path):
    with pytest.raises(ConfigError, match="both given"):
        load_text(tmp_path, "backend: fake\ntarget_prefix: a\n"
                            "iscsi_target_prefix: b\n")


def test_pool_override_wins(tmp_path):
    cfg = load_text(tmp_path, "backend: fake\npool: Pool-0\n", pool="Pool-1")
    assert cfg.pool == "Pool-1"


@pytest.mark.parametrize("text, key, expected", [
    ("rest_api_port: 70000\n", "rest_api_port", "out of range"),
    ("target_port: 0\n", "target_port", "out of range"),
    ("rest_api_port: eighty\n", "rest_api_port", "whole number"),
    ("jovian_block_size: 24K\n", "jovian_block_size", "unknown block size"),
    ("rest_api_addresses: []\n", "rest_api_addresses", "empty"),
    ("rest_api_addresses: {a: 1}\n", "rest_api_addresses", "list"),
    ("rest_api_addresses: ['a b']\n", "rest_api_addresses", "not a host"),
    ("thin_provision: maybe\n", "thin_provision", "true or false"),
    ("driver_use_ssl: 2\n", "driver_use_ssl", "true or false"),
    ("loglevel: loud\n", "loglevel", "expected one of"),
    ("pool: 'a/b'\n", "pool", "not a valid pool name"),
    ("rest_api_login: [x]\n", "rest_api_login", "expected a string"),
    ("fake_pool_size: lots\n", "fake_pool_size", "invalid size"),
    ("chap_user: '-x-'\n", "chap_user", "letters"),
])
def test_errors_name_file_key_and_expectation(tmp_path, text, key,
                                              expected):
    with pytest.raises(ConfigError) as info:
        load_text(tmp_path, "backend: fake\n" + text)
    message = str(info.value)
    assert str(tmp_path / "jdss.yaml") in message
    assert key in message and expected in message


def test_joviandss_backend_needs_addresses(tmp_path):
    with pytest.raises(ConfigError, match="rest_api_addresses: required"):
        load_text(tmp_path, "rest_api_login: admin\n")


def test_bad_yaml_names_line(tmp_path):
    with pytest.raises(ConfigError, match=r"jdss.yaml: line 2, column 8: mapping values"):
        load_text(tmp_path, "backend: fake\npool: a: b\n")


def test_top_level_must_be_mapping(tmp_path):
    with pytest.raises(ConfigError, match="mapping"):
        load_text(tmp_path, "- a\n- b\n")


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        config.load(str(tmp_path / "nope.yaml"))


def test_unreadable_file(tmp_path):
    path = tmp_path / "dir.yaml"
    path.mkdir()
    with pytest.raises(ConfigError, match="cannot read"):
        config.load(str(path))


def test_unknown_keys_warn(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        load_text(tmp_path, "backend: fake\nrest_api_pasword: x\n")
    assert "unknown key 'rest_api_pasword' ignored" in caplog.text


def test_password_file_wins_and_is_read(tmp_path, caplog):
    secret = tmp_path / "pw"
    secret.write_text("s3cret-from-file\n")
    secret.chmod(0o600)
    cfg = load_text(tmp_path, f"backend: fake\nrest_api_password: inline\n"
                              f"rest_api_password_file: {secret}\n")
    assert cfg.rest_api_password == "s3cret-from-file"
    assert "readable by every user" not in caplog.text


def test_world_readable_secrets_warn(tmp_path, caplog):
    secret = tmp_path / "pw"
    secret.write_text("pw\n")
    secret.chmod(0o644)
    load_text(tmp_path, f"backend: fake\nrest_api_password_file: {secret}\n")
    assert f"{secret} holds a secret and is readable" in caplog.text
    caplog.clear()
    path = tmp_path / "open.yaml"
    path.write_text("backend: fake\nrest_api_password: x\n")
    path.chmod(0o644)
    config.load(str(path))
    assert "holds a secret and is readable" in caplog.text


def test_missing_password_file(tmp_path):
    with pytest.raises(ConfigError, match="rest_api_password_file: cannot "
                                          "read"):
        load_text(tmp_path, "backend: fake\nrest_api_password_file: "
                            f"{tmp_path}/none\n")


def test_repr_never_shows_password(tmp_path):
    cfg = load_text(tmp_path, "backend: fake\nrest_api_password: "
                              "hunter2-secret\n")
    assert "hunter2-secret" not in repr(cfg)
    assert cfg.secrets() == ["hunter2-secret"]


def test_half_logging_config_warns(tmp_path, caplog):
    load_text(tmp_path, "backend: fake\nloglevel: debug\n")
    assert "needs both loglevel and logfile" in caplog.text


def test_env_names_default_config(tmp_path, monkeypatch):
    path = tmp_path / "env.yaml"
    path.write_text("backend: fake\npool: FromEnv\n")
    monkeypatch.setenv(config.CONFIG_ENV, str(path))
    assert config.load().pool == "FromEnv"


def test_state_dir_default_follows_xdg(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    cfg = config.parse({"backend": "fake"})
    assert cfg.state_dir == os.path.join(str(tmp_path), "jdss", "fake")


def test_chap_key_lives_in_priv_beside_config(tmp_path):
    cfg = load_text(tmp_path, "backend: fake\npool: P1\n")
    assert cfg.chap_key_path == str(tmp_path / "priv" / "jdss-P1.chap")


def test_relative_paths_are_relative_to_the_file(tmp_path, monkeypatch):
    (tmp_path / "priv").mkdir()
    (tmp_path / "priv" / "pw").write_text("s3cret\n")
    (tmp_path / "priv" / "pw").chmod(0o600)
    path = tmp_path / "jdss.yaml"
    path.write_text("backend: fake\nrest_api_password_file: priv/pw\n"
                    "logfile: log/jdss.log\nloglevel: info\n")
    monkeypatch.chdir("/")
    cfg = config.load(str(path))
    assert cfg.rest_api_password == "s3cret"
    assert cfg.logfile == str(tmp_path / "log" / "jdss.log")
    # a --set value is the caller's: relative to the current directory
    cfg = config.load(str(path), overrides={"logfile": "other.log"})
    assert cfg.logfile == "other.log"
