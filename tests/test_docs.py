"""The manual agrees with the code: keys, defaults, commands, exit codes."""

import argparse
import json
import os
import re
import subprocess

import pytest
import yaml

from jdss import config, errors
from tests.conftest import ROOT

DOCS = os.path.join(ROOT, "docs")
PLUGIN = "PVE::Storage::Custom::OpenEJovianDSSPlugin"
# cliff's own commands and options every display command has
CLIFF_COMMANDS = {"help", "complete"}
FORMATTER_OPTIONS = {"-f", "-c", "--noindent", "--prefix", "--max-width",
                     "--fit-width", "--print-empty", "--quote",
                     "--sort-column", "--sort-ascending",
                     "--sort-descending", "-h"}


def read(name):
    with open(os.path.join(DOCS, name)) as handle:
        return handle.read()


def section(text, heading):
    """The text under ``## heading`` up to the next heading of that level."""
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else len(text)]


def table_rows(text):
    """``[cells]`` of the markdown table rows whose first cell is code."""
    rows = []
    for line in text.splitlines():
        if line.startswith("| `"):
            cells = [c.strip() for c in
                     re.split(r"(?<!\\)\|", line.strip().strip("|"))]
            rows.append(cells)
    return rows


def code(cell):
    match = re.match(r"^`([^`]*)`", cell)
    return match.group(1) if match else None


def test_every_yaml_key_is_documented_with_its_default():
    table = table_rows(section(read("configuration.md"), "The YAML file"))
    rows = {code(key): default for key, default, _ in table}
    meanings = {code(key): meaning for key, _, meaning in table}
    assert set(rows) == set(config.OPTIONS_BY_NAME), \
        "docs/configuration.md and config.OPTIONS differ"
    for option in config.OPTIONS:
        documented = code(rows[option.name])
        if option.default is None:
            assert documented is None or not documented[0].isdigit(), \
                option.name
            continue
        assert documented is not None, f"{option.name}: no default given"
        assert option.parse(yaml.safe_load(documented)) == option.default, \
            option.name
    text = read("configuration.md")
    for alias in config.ALIASES:
        assert f"`{alias}`" in text
    for key in config.DEPRECATED:
        assert "deprecated" in meanings[key], key


def plugin_keys():
    script = (f"my $c = '{PLUGIN}'; my $p = $c->properties;"
              "print JSON::PP->new->canonical->encode({"
              "options => [sort keys %{$c->options}],"
              "defaults => {map { $_ => $p->{$_}{default} }"
              " grep { defined $p->{$_}{default} } keys %$p}})")
    proc = subprocess.run(
        ["perl", "-I", os.path.join(ROOT, "tests", "perl", "lib"),
         "-MJSON::PP", "-MRealPVE", "-e", script], capture_output=True,
        text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    if proc.stdout.startswith("1..0 # SKIP"):
        pytest.skip(proc.stdout.strip())
    return json.loads(proc.stdout)


def test_every_storage_cfg_key_is_documented_with_its_default():
    keys = plugin_keys()
    rows = {code(key): default for key, default, _ in
            table_rows(section(read("configuration.md"), "storage.cfg"))}
    assert set(rows) == set(keys["options"]), \
        "docs/configuration.md and the plugin's options() differ"
    for key, default in keys["defaults"].items():
        assert code(rows[key]) == str(default), key


@pytest.fixture(scope="module")
def app_commands():
    """``{name: set of option strings}`` of every jdss command."""
    from jdss.app import JdssApp
    app = JdssApp()
    app.options = argparse.Namespace(debug=False, verbose_level=1,
                                     overrides=[], pool=None, config=None)
    commands = {}
    for name, entry in app.command_manager:
        if name in CLIFF_COMMANDS:
            continue
        command = entry.load()(app, None, cmd_name=name)
        parser = command.get_parser(f"jdss {name}")
        assert command.get_description(), f"{name} has no description"
        options = set()
        for action in parser._actions:
            strings = set(action.option_strings)
            if strings & FORMATTER_OPTIONS:
                continue
            assert action.help, f"jdss {name}: {action.dest} has no help"
            options.update(s for s in strings if s.startswith("--"))
        commands[name] = options
    return commands


def test_commands_page_lists_every_command_and_option(app_commands):
    documented = {}
    for cells in table_rows(read("commands.md")):
        usage = code(cells[0]).replace("\\|", "|")
        words = usage.split()
        assert words[0] == "jdss"
        name = " ".join(w for w in words[1:3] if re.match(r"^[a-z-]+$", w))
        documented[name] = usage
    assert set(documented) == set(app_commands)
    for name, options in app_commands.items():
        for option in options:
            assert option in documented[name], f"jdss {name} {option}"


def test_help_shows_every_exit_code():
    from jdss.app import JdssApp
    epilog = JdssApp().parser.epilog
    for code_ in set(errors.EXIT_CODES.values()):
        assert re.search(rf"^\s*{code_}\s+\S", epilog, re.M), code_


def test_troubleshooting_covers_every_exit_code():
    rows = {line.split("|")[1].strip() for line in
            read("troubleshooting.md").splitlines()
            if re.match(r"^\| \d+ \|", line)}
    assert {str(c) for c in errors.EXIT_CODES.values()} | {"0"} == rows


def test_manual_links_resolve():
    pages = sorted(f for f in os.listdir(DOCS) if f.endswith(".md"))
    index = read("index.md")
    for page in pages:
        if page != "index.md":
            assert f"({page})" in index, f"index.md does not link {page}"
    for page in pages:
        for target in re.findall(r"\]\(([^)#:]+\.md)\)", read(page)):
            assert os.path.exists(os.path.join(DOCS, target)), \
                f"{page} links {target}"
    with open(os.path.join(ROOT, "README.md")) as handle:
        assert "(docs/index.md)" in handle.read()
