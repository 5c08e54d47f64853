#!/usr/bin/env bash
# A volume's life on the embedded fake backend, one jdss command a step.
# Expected refusals are shown with their exit codes.
set -u
cd "$(dirname "$0")/.."
JDSS=${JDSS:-jdss}
CONFIG=examples/jdss-fake.yaml
rm -rf demo-state

expect_fail() {
    echo
    echo "\$ jdss $*    # expected to be refused"
    "$JDSS" -c "$CONFIG" "$@"
    local rc=$?
    if [ "$rc" -eq 0 ]; then
        echo "demo: this should have failed" >&2
        exit 1
    fi
    echo "(refused with exit code $rc)"
}
must() {
    echo
    echo "\$ jdss $*"
    "$JDSS" -c "$CONFIG" "$@" || { echo "demo: step failed" >&2; exit 1; }
}

echo "== jdss $("$JDSS" --version 2>&1 | awk '{print $2}') on the fake backend (state in ./demo-state)"
must pool show
must volume create vm-100-disk-0 --size 4G
must volume create vm-100-disk-1 --size 1G --thick
must volume list
must snapshot create vm-100-disk-0 before-upgrade
must snapshot create vm-100-disk-0 after-upgrade
must snapshot list vm-100-disk-0
must volume clone vm-100-disk-0 vm-101-disk-0 --snapshot before-upgrade
must volume resize vm-100-disk-0 --size 8G
expect_fail snapshot rollback vm-100-disk-0 before-upgrade
must snapshot rollback vm-100-disk-0 before-upgrade --force
must snapshot list vm-100-disk-0
must target create vm-100-disk-0
must target show vm-100-disk-0 -f json
expect_fail volume delete vm-100-disk-0 --recursive
must target delete vm-100-disk-0
must volume delete vm-101-disk-0
must volume delete vm-100-disk-0 --recursive
must volume delete vm-100-disk-1
must volume list
must pool show -f json
echo
echo "== demo finished: every step behaved as expected"
