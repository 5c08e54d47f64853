"""Driver discovery through entry points, including third-party packages."""

import os
import subprocess
import sys

import pytest

from jdss import drivers
from jdss.errors import ConfigError
from tests.conftest import ROOT, jdss_command, write_config

EXAMPLE = os.path.join(ROOT, "tests", "thirdparty", "jdss-example-backend")


def test_builtin_backends_are_listed():
    rows = drivers.list_drivers()
    assert ("backend", "fake", "jdss.backends.fake:FakeBackend", "ok") in rows


def test_unknown_backend_names_the_installed_ones():
    from jdss.config import parse
    with pytest.raises(ConfigError) as info:
        drivers.load_backend(parse({"backend": "nosuch"}))
    assert "'nosuch'" in str(info.value) and "fake" in str(info.value)


@pytest.fixture(scope="module")
def example_site(tmp_path_factory):
    """The example package, installed by pip into a directory of its own.

    It is built from a copy: setuptools writes build/ beside setup.py, and
    the tests must not write into the source tree.
    """
    import shutil
    source = tmp_path_factory.mktemp("src") / "jdss-example-backend"
    shutil.copytree(EXAMPLE, source,
                    ignore=shutil.ignore_patterns("build", "*.egg-info"))
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    "--disable-pip-version-check", "--no-deps",
                    "--no-build-isolation", "--target", str(target),
                    str(source)], check=True, timeout=300)
    return str(target)


def _run(site, config, *args):
    env = dict(os.environ, PYTHONPATH=site)
    return subprocess.run([jdss_command(), "-c", str(config)] + list(args),
                          capture_output=True, text=True, env=env,
                          timeout=60)


def test_third_party_backend_is_listed_and_used(example_site, tmp_path):
    config = write_config(tmp_path / "jdss.yaml", backend="example")
    listed = _run(example_site, config, "driver", "list", "-f", "value")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert "backend example jdss_example_backend:ExampleBackend ok" in lines
    assert "backend fake jdss.backends.fake:FakeBackend ok" in lines
    broken = [line for line in lines if line.startswith("backend broken ")]
    assert broken and "failed: ModuleNotFoundError" in broken[0]

    shown = _run(example_site, config, "pool", "show", "-f", "value", "-c",
                 "health")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == "EXAMPLE"


def test_broken_backend_fails_with_its_import_error(example_site, tmp_path):
    config = write_config(tmp_path / "jdss.yaml", backend="broken")
    result = _run(example_site, config, "pool", "show")
    assert result.returncode == ConfigError.exit_code
    assert "driver 'broken' failed to load: ModuleNotFoundError" in \
        result.stderr


@pytest.mark.parametrize("values, content, expected", [
    ({}, False, "iscsi"),
    ({"multipath": True}, False, "multipath"),
    ({"transport": "iscsi-direct"}, False, "iscsi-direct"),
    ({"transport": "example"}, False, "example"),
    ({"content_volume_type": "nfs"}, True, "nfs"),
    ({"content_volume_type": "nfs"}, False, "iscsi"),
    ({"content_volume_type": "iscsi", "multipath": True}, True, "multipath"),
])
def test_transport_chosen_from_config(values, content, expected):
    from jdss.config import parse
    cfg = parse(dict({"backend": "fake"}, **values))
    assert drivers.transport_name(cfg, content) == expected


def test_direct_and_multipath_exclude_each_other():
    from jdss.config import parse
    with pytest.raises(ConfigError, match="iscsi-direct cannot be used"):
        parse({"backend": "fake", "multipath": True,
               "transport": "iscsi-direct"})


def test_builtin_transports_are_their_own_distributions():
    from importlib.metadata import entry_points
    found = {ep.name: ep.dist.name for ep in
             entry_points(group="jdss.transports")}
    assert found["iscsi"] == "jdss-iscsi"
    assert found["iscsi-direct"] == "jdss-iscsi"
    assert found["multipath"] == "jdss-multipath"
    assert found["nfs"] == "jdss-nfs"


def test_third_party_transport_is_selectable(example_site, tmp_path):
    config = write_config(tmp_path / "jdss.yaml")
    assert _run(example_site, config, "volume", "create", "v", "--size",
                "1G").returncode == 0
    attached = _run(example_site, config, "--set", "transport=example",
                    "volume", "attach", "v", "-f", "value", "-c", "path")
    assert attached.returncode == 0, attached.stderr
    assert attached.stdout.strip() == "example://iqn.2021-10.iscsi:pool-0:v/0"
    unknown = _run(example_site, config, "--set", "transport=nosuch",
                   "volume", "attach", "v")
    assert unknown.returncode == ConfigError.exit_code
    assert "no jdss.transports driver named 'nosuch'" in unknown.stderr


def test_set_rejects_unknown_keys(tmp_path):
    config = write_config(tmp_path / "jdss.yaml")
    result = subprocess.run([jdss_command(), "-c", str(config), "--set",
                             "nope=1", "pool", "show"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == ConfigError.exit_code
    assert "--set 'nope=1'" in result.stderr
