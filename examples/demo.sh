#!/usr/bin/env bash
# A volume's life, one jdss command a step: first on the embedded fake
# backend, then through the REST backend against a jdss-emulator started
# here on 127.0.0.1 (HTTPS, certificate verified). Expected refusals are
# shown with their exit codes.
set -u
cd "$(dirname "$0")/.."
JDSS=${JDSS:-jdss}
BIN=$(dirname "$(command -v "$JDSS")")
STATE=demo-state
rm -rf "$STATE"
mkdir -p "$STATE"
EMULATOR_PID=
stop_emulator() {
    [ -n "$EMULATOR_PID" ] || return 0
    kill "$EMULATOR_PID" 2>/dev/null && wait "$EMULATOR_PID" 2>/dev/null
    return 0
}
trap stop_emulator EXIT

run() {
    echo
    echo "\$ jdss $*"
    "$JDSS" -c "$CONFIG" "$@"
}
must() { run "$@" || { echo "demo: step failed" >&2; exit 1; }; }
expect_fail() {
    run "$@"
    local rc=$?
    [ "$rc" -ne 0 ] || { echo "demo: this should have failed" >&2; exit 1; }
    echo "(refused as expected, exit code $rc)"
}

lifecycle() {
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
}

echo "== Part 1: jdss $("$JDSS" --version 2>&1 | awk '{print $2}') on the embedded fake backend"
# the example configuration, with its pools kept in ./demo-state
CONFIG=$STATE/jdss-fake.yaml
{ cat examples/jdss-fake.yaml; echo "fake_state_dir: ."; } > "$CONFIG"
lifecycle

echo
echo "== Part 2: the same through the REST API, against jdss-emulator on 127.0.0.1"
PORT=$("$BIN/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
umask 077
head -c 24 /dev/urandom | base64 | tr -d '/+=' > "$STATE/emulator.pw"
"$BIN/jdss-emulator" --listen "127.0.0.1:$PORT" --state-dir "$STATE/emulator" \
    --password-file "$STATE/emulator.pw" --pool Pool-0 --pool-size $((100 << 30)) \
    > "$STATE/emulator.out" 2>&1 &
EMULATOR_PID=$!
for _ in $(seq 100); do
    grep -q '^ready$' "$STATE/emulator.out" 2>/dev/null && break
    sleep 0.1
done
grep -q '^ready$' "$STATE/emulator.out" || { cat "$STATE/emulator.out"; exit 1; }
CONFIG=$STATE/jdss-rest.yaml
cat > "$CONFIG" <<YAML
backend: joviandss
pool: Pool-0
rest_api_addresses: [127.0.0.1]
rest_api_port: $PORT
rest_api_login: admin
rest_api_password_file: emulator.pw
driver_ssl_cert_path: emulator/emulator-cert.pem
thin_provision: True
YAML
lifecycle
echo
echo "REST requests the emulator served: $(wc -l < "$STATE/emulator/requests.log")"
echo
echo "== demo finished: both backends behaved as expected"
