#!/usr/bin/env bash
# Install the .deb with apt (Debian's own cliff, stevedore, requests,
# os-brick), use it with the system python3, purge it, and check that
# nothing of it remains and /etc/pve was not touched. Needs root.
set -euo pipefail
deb=$(readlink -f "$1")
root=$(cd "$(dirname "$0")/../.." && pwd)
pkg=open-e-joviandss-proxmox-plugin
version=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$root/jdss/__init__.py")
work=$(mktemp -d)
made_etc_pve=
agent=
cleanup() {
    if [ -n "$agent" ]; then kill "$agent" 2>/dev/null || true; wait "$agent" || true; fi
    rm -rf "$work"
    [ -z "$made_etc_pve" ] || rm -rf /etc/pve
}
trap cleanup EXIT
step() { echo "package-test: $*"; }
fail() { echo "package-test: FAILED: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "must run as root (apt-get install, purge)"

step "file list of $(basename "$deb")"
list=$(dpkg-deb -c "$deb" | awk '{print $6}')
for file in ./usr/bin/jdss ./usr/bin/jdss-emulator \
        ./usr/share/perl5/PVE/Storage/Custom/OpenEJovianDSSPlugin.pm \
        ./usr/lib/python3/dist-packages/jdss/app.py \
        ./usr/lib/python3/dist-packages/jdss/backends/rest.py \
        ./usr/lib/python3/dist-packages/jdss_iscsi/iscsi.py \
        ./usr/lib/python3/dist-packages/jdss_multipath/multipath.py \
        ./usr/lib/python3/dist-packages/jdss_nfs/nfs.py \
        "./usr/share/doc/$pkg/examples/multipath.conf" \
        "./usr/share/doc/$pkg/examples/jdss-Pool-0.yaml" \
        "./usr/share/doc/$pkg/examples/storage.cfg"; do
    grep -qxF "$file" <<<"$list" || fail "the package lacks $file"
done
grep -qE '^\./(usr/)?lib/systemd/system/jdss-agent\.service$' <<<"$list" \
    || fail "the package lacks the jdss-agent unit"
grep -qxF ./usr/bin/jdss-agent <<<"$list" || fail "the package lacks jdss-agent"
! grep -q '^\./etc/pve' <<<"$list" || fail "the package ships files under /etc/pve"

step "lintian"
lintian --fail-on error "$deb" || fail "lintian reports errors"

step "/etc/pve before"
if [ ! -d /etc/pve ]; then mkdir -p /etc/pve; made_etc_pve=1; fi
echo "rest_api_password: keep-me" > /etc/pve/jdss-package-test.yaml
before=$(find /etc/pve -type f -exec sha256sum {} + | sort)

step "apt-get install $deb"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$deb" >/dev/null
dpkg -s "$pkg" | grep -q "^Version: $version$" || fail "installed version is not $version"

# The system's python3 and PATH only: no venv, no pyenv.
run() { env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$work" "$@"; }
step "jdss --version with $(head -1 /usr/bin/jdss | cut -c3-)"
head -1 /usr/bin/jdss | grep -qx '#!/usr/bin/python3' || fail "jdss does not use the system python3"
run /usr/bin/jdss --version 2>&1 | grep -qx "jdss $version" || fail "jdss --version"

step "jdss driver list"
drivers=$(run /usr/bin/jdss driver list -f value)
echo "$drivers"
for driver in "backend fake" "backend joviandss" "transport iscsi " \
        "transport iscsi-direct" "transport multipath" "transport nfs"; do
    grep "^$driver" <<<"$drivers" | grep -q ' ok$' || fail "driver $driver not ok"
done

step "a lifecycle on the fake backend"
cat > "$work/jdss.yaml" <<YAML
backend: fake
fake_state_dir: $work/state
fake_pool_size: 10G
rest_api_addresses: [127.0.0.1]
YAML
J="run /usr/bin/jdss -c $work/jdss.yaml"
$J volume create vm-100-disk-0 --size 1G >/dev/null
$J snapshot create vm-100-disk-0 s1 >/dev/null
$J snapshot create vm-100-disk-0 s2 >/dev/null
$J volume clone vm-100-disk-0 vm-101-disk-0 --snapshot s1 >/dev/null
set +e
$J snapshot rollback vm-100-disk-0 s1 2>/dev/null
rc=$?
set -e
[ "$rc" = 8 ] || fail "blocked rollback exited $rc, not 8"
$J snapshot rollback vm-100-disk-0 s1 --force >/dev/null
$J target create vm-100-disk-0 -f value -c target | grep -qx "iqn.2021-10.iscsi:pool-0:vm-100-disk-0" \
    || fail "target create"
$J target delete vm-100-disk-0
$J volume delete vm-101-disk-0
$J volume delete vm-100-disk-0 --recursive
[ -z "$($J volume list -f value)" ] || fail "volumes left after the lifecycle"

step "jdss-agent answers like jdss"
# started directly (not through the run function), so $! is the agent
env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$work" \
    /usr/bin/jdss-agent --socket "$work/agent.sock" > "$work/agent.out" 2>&1 &
agent=$!
for _ in $(seq 50); do [ -S "$work/agent.sock" ] && break; sleep 0.1; done
reply=$(run /usr/bin/python3 -c '
import json, socket, sys
conn = socket.socket(socket.AF_UNIX)
conn.connect(sys.argv[1])
conn.sendall(json.dumps({"config": sys.argv[2], "op": "pool_show"}).encode() + b"\n")
print(json.loads(conn.makefile().readline())["data"]["name"])' "$work/agent.sock" "$work/jdss.yaml")
kill "$agent"; wait "$agent" || true
agent=
[ "$reply" = "Pool-0" ] || fail "jdss-agent answered '$reply'"

step "the installed Perl module, against the test doubles"
run perl -I "$root/tests/perl/lib" -e '
    use PVE::Storage::Custom::OpenEJovianDSSPlugin;
    my $file = $INC{"PVE/Storage/Custom/OpenEJovianDSSPlugin.pm"};
    die "loaded $file\n" if $file ne "/usr/share/perl5/PVE/Storage/Custom/OpenEJovianDSSPlugin.pm";
    die "type\n" if PVE::Storage::Custom::OpenEJovianDSSPlugin->type ne "joviandss";
    die "api\n" if PVE::Storage::Custom::OpenEJovianDSSPlugin->api != 15;
    print "perl: loaded $file\n";' || fail "the Perl module does not load"

step "purge"
files=$(dpkg -L "$pkg" | while read -r f; do [ -d "$f" ] || echo "$f"; done)
DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq "$pkg" >/dev/null
left=$(for f in $files; do [ -e "$f" ] && echo "$f"; done || true)
[ -z "$left" ] || fail "left after purge: $left"
for dir in /usr/lib/python3/dist-packages/jdss /usr/lib/python3/dist-packages/jdss_iscsi \
        "/usr/share/doc/$pkg"; do
    [ ! -e "$dir" ] || fail "$dir left after purge"
done
after=$(find /etc/pve -type f -exec sha256sum {} + | sort)
[ "$before" = "$after" ] || fail "/etc/pve changed"
rm -f /etc/pve/jdss-package-test.yaml

step "make install and make uninstall into DESTDIR"
make -s -C "$root" install DESTDIR="$work/root" >/dev/null
[ -x "$work/root/usr/bin/jdss" ] || fail "make install wrote no jdss"
[ -f "$work/root/usr/share/perl5/PVE/Storage/Custom/OpenEJovianDSSPlugin.pm" ] \
    || fail "make install wrote no Perl plugin"
(cd "$work" && run env PYTHONPATH="$work/root/usr/lib/python3/dist-packages" \
    /usr/bin/python3 "$work/root/usr/bin/jdss" --version 2>&1) | grep -qx "jdss $version" \
    || fail "the jdss of make install does not run"
make -s -C "$root" uninstall DESTDIR="$work/root" >/dev/null
left=$(find "$work/root" -type f)
[ -z "$left" ] || fail "left by make uninstall: $left"

echo "package-test: 2 passed, 0 failed"
