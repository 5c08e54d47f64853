"""The reliability suite: every scenario records runs, failures, data lost.

``make reliability`` runs this directory and prints the summary table that
the README carries; ``make test`` runs it as part of the whole suite.
"""

import json
import os

import pytest

RESULTS = {}


def pytest_collection_modifyitems(items):
    for item in items:
        if item.nodeid.startswith("tests/reliability/"):
            item.add_marker(pytest.mark.reliability)


@pytest.fixture
def scenario():
    """``scenario(name, failed=False, lost=0)`` counts one run of ``name``."""

    def record(name, failed=False, lost=0):
        row = RESULTS.setdefault(name, {"runs": 0, "failures": 0, "lost": 0})
        row["runs"] += 1
        row["failures"] += int(bool(failed))
        row["lost"] += lost

    return record


def table():
    lines = ["| scenario | runs | failures | data lost |",
             "|---|---|---|---|"]
    for name, row in RESULTS.items():
        lines.append(f"| {name} | {row['runs']} | {row['failures']} | "
                     f"{row['lost']} |")
    return "\n".join(lines)


def pytest_terminal_summary(terminalreporter):
    if not RESULTS:
        return
    terminalreporter.write_line("")
    terminalreporter.write_line(table())
    report = os.environ.get("JDSS_RELIABILITY_REPORT")
    if report:
        with open(report, "w") as handle:
            json.dump(RESULTS, handle, indent=2)
