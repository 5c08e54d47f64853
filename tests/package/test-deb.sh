#!/usr/bin/env bash
# Install the .deb with apt (Debian's own cliff, stevedore, requests,
# os-brick), use it with the system python3 (on the fake backend, and over
# HTTPS against the installed emulator), check the host settings it
# puts in force, upgrade to it from Open-E's package (a stand-in), from the
# previous build and from an earlier build of this tree, downgrade, purge,
# and check that nothing of it remains and /etc/pve and the LVM and
# multipath configuration are byte for byte as before. Needs root.
#
# Usage: test-deb.sh DEB [PREVIOUS_REF]   (PREVIOUS_REF: a git commit whose
# build is the previous release; without it that part is skipped)
set -euo pipefail
deb=$(readlink -f "$1")
previous_ref=${2:-}
root=$(cd "$(dirname "$0")/../.." && pwd)
pkg=open-e-joviandss-proxmox-plugin
version=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$root/jdss/__init__.py")
epoch=$(sed -n 's/^EPOCH := //p' "$root/Makefile")
full="$epoch:$version"
work=$(mktemp -d)
made_etc_pve=
made_vendor_log=
agent=
passed=0
emulator=
cleanup() {
    if [ -n "$agent" ]; then kill "$agent" 2>/dev/null || true; wait "$agent" || true; fi
    if [ -n "$emulator" ]; then kill "$emulator" 2>/dev/null || true; wait "$emulator" || true; fi
    if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'installed\|config-files'; then
        DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq "$pkg" >/dev/null 2>&1 || true
    fi
    [ -z "$made_vendor_log" ] || rmdir /var/log/joviandss 2>/dev/null || true
    rm -f /etc/pve/jdss-package-test.yaml
    [ -z "$made_etc_pve" ] || rm -rf /etc/pve
    rm -rf "$work"
}
trap cleanup EXIT
step() { echo "package-test: $*"; }
fail() { echo "package-test: FAILED: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "must run as root (apt-get install, purge)"
case "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)" in
    *" installed"|*config-files) fail "$pkg is on this machine already; purge it first" ;;
esac

apt_install() {  # apt_install DEB [apt options]: prints apt's output
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" 2>&1
}
apt_purge() {
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -q "$pkg" 2>&1
}
installed_version() { dpkg-query -W -f='${Version}' "$pkg"; }

# Run a command with a throw-away view of /etc, /usr, /dev and /run:
# multipath writes /etc/multipath/bindings whenever it runs, udevadm test
# its database and links, make install into / the system.
in_sandbox() {
    unshare --mount --propagation private bash -c '
        set -e; d=$(mktemp -d); mount -t tmpfs jdss-test "$d"
        mkdir "$d/dev" "$d/run"
        for top in etc usr; do
            mkdir "$d/$top" "$d/$top.up" "$d/$top.work"
            mount -t overlay overlay \
                -o "lowerdir=/$top,upperdir=$d/$top.up,workdir=$d/$top.work" "$d/$top"
            mount --bind "$d/$top" "/$top"
        done
        for n in null zero urandom random; do cp -a "/dev/$n" "$d/dev/"; done
        ln -s /proc/self/fd "$d/dev/fd"
        mount --bind "$d/dev" /dev; mount --bind "$d/run" /run
        exec "$@"' _ "$@"
}

# What the package may touch outside its own files, as a fingerprint.
host_state() {
    find /etc/multipath /etc/joviandss /etc/udev/rules.d 2>/dev/null | sort
    for file in /etc/lvm/lvm.conf /etc/lvm/lvmlocal.conf /etc/multipath.conf \
            /etc/multipath/conf.d/jdss.conf /lib/udev/rules.d/56-jdss.rules; do
        if [ -e "$file" ]; then sha256sum "$file"; else echo "absent $file"; fi
    done
    find /etc/pve -type f -exec sha256sum {} + | sort
}

# The host settings are in force, as the real tools read them.
check_host_settings() {
    [ -f /etc/multipath/conf.d/jdss.conf ] || fail "no multipath drop-in"
    [ -f /lib/udev/rules.d/56-jdss.rules ] || fail "no udev rule"
    if command -v multipath >/dev/null; then
        in_sandbox sh -c 'multipath -t > "$1" 2> "$2"' _ "$work/mp.out" "$work/mp.err" \
            || fail "multipath -t"
        ! grep -q 'jdss.conf' "$work/mp.err" \
            || fail "multipath complains: $(grep jdss.conf "$work/mp.err")"
        grep -A12 'vendor "SCST_BIO"' "$work/mp.out" | grep -q 'no_path_retry 26' \
            || fail "multipath -t shows no SCST_BIO device with no_path_retry 26"
    fi
    if command -v udevadm >/dev/null; then
        local device
        device=$(ls /sys/class/block | head -1)
        in_sandbox env SYSTEMD_LOG_LEVEL=debug \
            udevadm test --action=add "/sys/class/block/$device" > "$work/udev.out" 2>&1 || true
        grep -q 'Reading rules file: .*/rules.d/56-jdss.rules' "$work/udev.out" \
            || fail "udev does not read 56-jdss.rules"
        ! grep -E '56-jdss\.rules:[0-9]+: ' "$work/udev.out" \
            || fail "udev complains about 56-jdss.rules"
    fi
    if [ -f /etc/lvm/lvm.conf ]; then
        /usr/bin/python3 -m jdss.lvmfilter status | grep -q '^in force: ' \
            || fail "LVM filter not in force: $(/usr/bin/python3 -m jdss.lvmfilter status)"
        [ "$(grep -c 'BEGIN open-e-joviandss-proxmox-plugin' /etc/lvm/lvm.conf /etc/lvm/lvmlocal.conf | awk -F: '{s+=$2} END {print s}')" = 1 ] \
            || fail "the LVM filter is not there exactly once"
    fi
    in_sandbox /usr/bin/jdss doctor -f json > "$work/doctor.json" || true
    /usr/bin/python3 - "$work/doctor.json" "$1" <<'PY' || fail "jdss doctor"
import json, sys
rows = {r["check"]: r for r in json.load(open(sys.argv[1]))}
assert rows["versions"]["status"] == "ok", rows["versions"]
assert f"package {sys.argv[2]}," in rows["versions"]["detail"], rows["versions"]
for check in ("udev rule", "LVM filter"):
    assert rows[check]["status"] in ("ok", "skip"), rows[check]
PY
}

# Nothing of the package left, /etc/pve and the host as before.
check_gone() {
    local what=$1
    [ "$(host_state)" = "$before" ] || {
        diff <(echo "$before") <(host_state) >&2 || true
        fail "$what: the host is not as before"; }
    for path in /usr/bin/jdss /usr/lib/python3/dist-packages/jdss \
            /usr/share/perl5/PVE/Storage/Custom/OpenEJovianDSSPlugin.pm \
            /usr/share/perl5/PVE/Storage/Custom/OpenEJovianDSSNFSPlugin.pm \
            "/usr/share/doc/$pkg" /etc/multipath/conf.d/jdss.conf; do
        [ ! -e "$path" ] || fail "$what: $path left"
    done
}

step "file list of $(basename "$deb")"
list=$(dpkg-deb -c "$deb" | awk '{print $6}')
for file in ./usr/bin/jdss ./usr/bin/jdss-emulator \
        ./usr/share/perl5/PVE/Storage/Custom/OpenEJovianDSSPlugin.pm \
        ./usr/share/perl5/PVE/Storage/Custom/OpenEJovianDSSNFSPlugin.pm \
        ./usr/lib/python3/dist-packages/jdss/app.py \
        ./usr/lib/python3/dist-packages/jdss/backends/rest.py \
        ./usr/lib/python3/dist-packages/jdss/lvmfilter.py \
        ./usr/lib/python3/dist-packages/jdss_iscsi/iscsi.py \
        ./usr/lib/python3/dist-packages/jdss_multipath/multipath.py \
        ./usr/lib/python3/dist-packages/jdss_nfs/nfs.py \
        ./etc/multipath/conf.d/jdss.conf ./lib/udev/rules.d/56-jdss.rules \
        "./usr/share/doc/$pkg/examples/multipath.conf" \
        "./usr/share/doc/$pkg/examples/jdss-Pool-0.yaml" \
        "./usr/share/doc/$pkg/examples/storage.cfg"; do
    grep -qxF "$file" <<<"$list" || fail "the package lacks $file"
done
grep -qE '^\./(usr/)?lib/systemd/system/jdss-agent\.service$' <<<"$list" \
    || fail "the package lacks the jdss-agent unit"
grep -qxF ./usr/bin/jdss-agent <<<"$list" || fail "the package lacks jdss-agent"
! grep -q '^\./etc/pve' <<<"$list" || fail "the package ships files under /etc/pve"
[ "$(dpkg-deb -f "$deb" Version)" = "$full" ] || fail "version is not $full"
dpkg-deb -e "$deb" "$work/control"
grep -qxF /etc/multipath/conf.d/jdss.conf "$work/control/conffiles" \
    || fail "the multipath drop-in is not a conffile"
for script in preinst postinst prerm postrm; do
    ! grep -q '#JDSS_' "$work/control/$script" || fail "$script has markers left"
    sh -n "$work/control/$script" || fail "$script: syntax"
done
# dh_installsystemd: restart on upgrade ($2 set), start on installation
grep -q '_dh_action=restart' "$work/control/postinst" && \
    grep -q "deb-systemd-invoke \$_dh_action 'jdss-agent.service'" "$work/control/postinst" \
    || fail "postinst does not restart jdss-agent on upgrade"

step "lintian"
lintian --fail-on error "$deb" || fail "lintian reports errors"

step "/etc/pve and the host before"
if [ ! -d /etc/pve ]; then mkdir -p /etc/pve; made_etc_pve=1; fi
echo "rest_api_password: keep-me" > /etc/pve/jdss-package-test.yaml
before=$(host_state)
apt-get update -qq

step "the stand-in of Open-E's package 1.0.0 (test fixture), then ours over it"
vendor=$("$root/tests/package/vendor-deb.sh" "$work/vendor")
[ -d /var/log/joviandss ] || made_vendor_log=1
apt_install "$vendor" >/dev/null
[ "$(installed_version)" = 1.0.0 ] || fail "the stand-in did not install"
[ -x /usr/local/bin/jdssc ] || fail "the stand-in has no jdssc"
out=$(apt_install "$deb") || fail "apt-get install over 1.0.0: $out"
[ "$(installed_version)" = "$full" ] || fail "not upgraded to $full"
grep -q "replacing Open-E's plugin 1.0.0" <<<"$out" || fail "no word on the vendor's package"
for gone in /usr/local/bin/jdssc /usr/lib/python3/dist-packages/jdssc \
        /usr/share/perl5/OpenEJovianDSS/Common.pm /etc/joviandss; do
    [ ! -e "$gone" ] || fail "$gone of the vendor's package left"
done
! grep -q 'vendor stand-in' /usr/share/perl5/PVE/Storage/Custom/OpenEJovianDSSPlugin.pm \
    || fail "the vendor's plugin module is still there"
! grep -q 'vendor stand-in' /usr/share/perl5/PVE/Storage/Custom/OpenEJovianDSSNFSPlugin.pm \
    || fail "the vendor's joviandss-nfs module is still there"
check_host_settings "$full"

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

step "jdss doctor on this storage, and a bundle"
set +e
jdss_plain="env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=$work /usr/bin/jdss -c $work/jdss.yaml"
in_sandbox $jdss_plain doctor -f value -c check -c status > "$work/doctor.txt"
rc=$?
set -e
[ "$rc" = 0 ] || [ "$rc" = 1 ] || fail "jdss doctor exited $rc"
grep -qx "jdss.yaml: pool ok" "$work/doctor.txt" || fail "doctor: $(cat "$work/doctor.txt")"
in_sandbox $jdss_plain doctor --bundle "$work/bundle.tar.gz" -f value >/dev/null \
    2> "$work/bundle.err" || true
tar -tzf "$work/bundle.tar.gz" | grep -qx 'jdss-bundle/doctor.json' \
    || fail "no bundle: $(cat "$work/bundle.err")"

step "the REST backend over HTTPS with Debian's requests, against the installed jdss-emulator"
mkdir -p "$work/emu/state"
for name in cert other; do
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=jdss-package-test \
        -keyout "$work/emu/$name-key.pem" -out "$work/emu/$name.pem" \
        -addext subjectAltName=IP:127.0.0.1 2>/dev/null || fail "openssl req"
done
echo "package-test-Secret-42" > "$work/emu/password"
chmod 600 "$work/emu/password"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# started directly (not through the run function), so $! is the emulator
env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$work" /usr/bin/jdss-emulator \
    --state-dir "$work/emu/state" --password-file "$work/emu/password" \
    --listen "127.0.0.1:$port" --cert "$work/emu/cert.pem" --key "$work/emu/cert-key.pem" \
    > "$work/emu/out" 2> "$work/emu/err" &
emulator=$!
for _ in $(seq 100); do grep -qx ready "$work/emu/out" && break; sleep 0.1; done
grep -qx ready "$work/emu/out" || fail "jdss-emulator did not start: $(cat "$work/emu/err")"
for ca in cert other; do
    cat > "$work/rest-$ca.yaml" <<YAML
backend: joviandss
rest_api_addresses: [127.0.0.1]
rest_api_port: $port
rest_api_password_file: $work/emu/password
driver_ssl_cert_path: $work/emu/$ca.pem
rest_api_deadline: 5
YAML
done
R="run /usr/bin/jdss -c $work/rest-cert.yaml"
[ "$($R pool show -f value -c name)" = Pool-0 ] || fail "REST pool show"
$R volume create vm-100-disk-0 --size 1G >/dev/null
[ "$($R volume list -f value -c name)" = vm-100-disk-0 ] || fail "REST volume list"
$R volume delete vm-100-disk-0
set +e
out=$(run /usr/bin/jdss -c "$work/rest-other.yaml" pool show 2>&1)
rc=$?
set -e
[ "$rc" = 9 ] || fail "a wrong CA exited $rc, not 9: $out"
grep -q "certificate verify failed" <<<"$out" || fail "a wrong CA: $out"

step "jdss-agent answers like jdss"
# its warm-up (the first pass through the commands, made before it forks)
# succeeds with Debian's libraries
run /usr/bin/python3 -c 'from jdss import warmup; assert warmup.run()' \
    || fail "the agent's warm-up commands failed"
# started directly (not through the run function), so $! is the agent
env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$work" \
    /usr/bin/jdss-agent --socket "$work/agent.sock" > "$work/agent.out" 2>&1 &
agent=$!
for _ in $(seq 50); do [ -S "$work/agent.sock" ] && break; sleep 0.1; done
ask_agent() {  # ask_agent CONFIG: "<exit> <pool name or the first line of stderr>"
    run /usr/bin/python3 -c '
import json, socket, sys
conn = socket.socket(socket.AF_UNIX)
conn.connect(sys.argv[1])
conn.sendall(json.dumps({"protocol": 3, "argv": ["-c", sys.argv[2], "pool", "show",
                                                 "-f", "json"]}).encode() + b"\n")
lines = conn.makefile()
reply = json.loads(lines.readline())
if reply.get("accepted"):
    reply = json.loads(lines.readline())
said = json.loads(reply["stdout"])["name"] if reply["exit"] == 0 else reply["stderr"]
print(reply["exit"], said.splitlines()[0])' "$work/agent.sock" "$1"
}
reply=$(ask_agent "$work/jdss.yaml")
[ "$reply" = "0 Pool-0" ] || fail "jdss-agent answered '$reply'"
# over HTTPS, Debian's requests in a child of the agent
reply=$(ask_agent "$work/rest-cert.yaml")
[ "$reply" = "0 Pool-0" ] || fail "jdss-agent answered '$reply' over HTTPS"
reply=$(ask_agent "$work/rest-other.yaml")
case "$reply" in
    "9 "*"certificate verify failed"*) ;;
    *) fail "jdss-agent answered '$reply' for a wrong CA" ;;
esac
kill "$agent"; wait "$agent" || true
agent=
kill "$emulator"; wait "$emulator" || true
emulator=

step "the installed Perl module, loaded by the real PVE::Storage"
pve_src=$(cd "$root/../shared/pve" 2>/dev/null && pwd || true)
if [ -n "$pve_src" ]; then
    run env JDSS_PVE_ROOT="$work/pve" perl -I "$root/tests/perl/pve-standins" \
        -I "$(echo "$pve_src"/pve-common-*/src)" -I "$(echo "$pve_src"/pve-storage-*/src)" -e '
        use PVE::Storage;
        my $file = $INC{"PVE/Storage/Custom/OpenEJovianDSSPlugin.pm"} // "nothing";
        die "loaded $file\n" if $file ne "/usr/share/perl5/PVE/Storage/Custom/OpenEJovianDSSPlugin.pm";
        my $plugin = PVE::Storage::Plugin->lookup("joviandss");
        die "api\n" if $plugin->api != PVE::Storage::APIVER;
        print "perl: Proxmox loaded $file\n";' || fail "Proxmox does not load the installed plugin"
else
    echo "package-test: no ../shared/pve: the plugin is not loaded under PVE::Storage"
fi

step "purge"
files=$(dpkg -L "$pkg" | while read -r f; do [ -d "$f" ] || echo "$f"; done)
apt_purge >/dev/null
left=$(for f in $files; do [ -e "$f" ] && echo "$f"; done || true)
[ -z "$left" ] || fail "left after purge: $left"
for dir in /usr/lib/python3/dist-packages/jdss /usr/lib/python3/dist-packages/jdss_iscsi; do
    [ ! -e "$dir" ] || fail "$dir left after purge"
done
check_gone "purge"
passed=$((passed + 1))

# builds of other versions --------------------------------------------------
build_tree() {  # build_tree DIR: make deb there, print the .deb
    make -s -C "$1" deb > "$1.log" 2>&1 || { cat "$1.log" >&2; fail "building in $1"; }
    ls "$1"/dist/*_all.deb
}

if [ -n "$previous_ref" ] && git -C "$root" rev-parse -q --verify "$previous_ref^{commit}" >/dev/null; then
    step "the previous build ($previous_ref), upgraded to $full, downgraded again"
    mkdir "$work/previous"
    git -C "$root" archive "$previous_ref" | tar -x -C "$work/previous"
    old=$(build_tree "$work/previous")
    old_version=$(dpkg-deb -f "$old" Version)
    apt_install "$old" >/dev/null
    [ "$(installed_version)" = "$old_version" ] || fail "$old_version did not install"
    out=$(apt_install "$deb") || fail "upgrade from $old_version: $out"
    [ "$(installed_version)" = "$full" ] || fail "not upgraded from $old_version"
    check_host_settings "$full"
    out=$(apt_install --allow-downgrades "$old") || fail "downgrade: $out"
    [ "$(installed_version)" = "$old_version" ] || fail "not downgraded"
    grep -q "downgrading to $old_version: " <<<"$out" && grep -q "not undone: " <<<"$out" \
        || fail "no word on the downgrade"
    ! grep -q 'BEGIN open-e-joviandss-proxmox-plugin' /etc/lvm/lvm.conf 2>/dev/null \
        || fail "the LVM filter stayed after the downgrade to $old_version"
    for gone in /etc/multipath/conf.d/jdss.conf /lib/udev/rules.d/56-jdss.rules; do
        [ ! -e "$gone" ] || fail "$gone stayed after the downgrade to $old_version"
    done
    apt_purge >/dev/null
    check_gone "purge of $old_version"
    passed=$((passed + 1))
else
    step "previous build: skipped (no git commit ${previous_ref:-given})"
fi

step "an earlier build of this tree (1:0.0.1), upgraded to $full, downgraded again"
mkdir "$work/older"
(cd "$root" && tar -c --exclude=./.venv --exclude=./dist --exclude=./.git \
    --exclude=./demo-state --exclude=./.pytest_cache .) | tar -x -C "$work/older"
sed -i 's/^__version__ = .*/__version__ = "0.0.1"/' "$work/older/jdss/__init__.py"
rm -f "$work/older/debian/changelog"
older=$(build_tree "$work/older")
apt_install "$older" >/dev/null
check_host_settings "$epoch:0.0.1"
apt_install "$deb" >/dev/null
[ "$(installed_version)" = "$full" ] || fail "not upgraded from $epoch:0.0.1"
check_host_settings "$full"
out=$(apt_install --allow-downgrades "$older") || fail "downgrade: $out"
grep -q "downgrading to $epoch:0.0.1: the host settings become" <<<"$out" \
    || fail "no word on the downgrade"
check_host_settings "$epoch:0.0.1"
apt_purge >/dev/null
check_gone "purge of $epoch:0.0.1"
passed=$((passed + 1))
[ -z "$made_vendor_log" ] || { [ -d /var/log/joviandss ] \
    || fail "the vendor's /var/log/joviandss went (it is not ours to remove)"; }

step "make install and make uninstall into DESTDIR"
make -s -C "$root" install DESTDIR="$work/root" >/dev/null
[ -x "$work/root/usr/bin/jdss" ] || fail "make install wrote no jdss"
[ -f "$work/root/usr/share/perl5/PVE/Storage/Custom/OpenEJovianDSSPlugin.pm" ] \
    || fail "make install wrote no Perl plugin"
dpkg-deb -x "$deb" "$work/from-deb"
host_files() { (cd "$1" && find etc/multipath lib/udev -type f | sort); }
[ "$(host_files "$work/root")" = "$(host_files "$work/from-deb")" ] \
    || fail "make install and the package install different host files"
for file in $(host_files "$work/from-deb"); do
    cmp -s "$work/root/$file" "$work/from-deb/$file" \
        || fail "make install's /$file differs from the package's"
done
(cd "$work" && run env PYTHONPATH="$work/root/usr/lib/python3/dist-packages" \
    /usr/bin/python3 "$work/root/usr/bin/jdss" --version 2>&1) | grep -qx "jdss $version" \
    || fail "the jdss of make install does not run"
make -s -C "$root" uninstall DESTDIR="$work/root" >/dev/null
left=$(find "$work/root" -type f)
[ -z "$left" ] || fail "left by make uninstall: $left"
passed=$((passed + 1))

step "make install and make uninstall on / (throw-away /etc and /usr)"
lvm_before=$(host_state)
in_sandbox bash -euc '
    make -s -C "$1" install >/dev/null
    for file in /usr/bin/jdss /etc/multipath/conf.d/jdss.conf \
            /lib/udev/rules.d/56-jdss.rules /usr/share/jdss/installed-files; do
        [ -e "$file" ] || { echo "make install wrote no $file"; exit 1; }
    done
    grep -qx /etc/multipath/conf.d/jdss.conf /usr/share/jdss/installed-files
    if [ -f /etc/lvm/lvm.conf ]; then
        /usr/bin/python3 -m jdss.lvmfilter status | grep -q "^in force: "
    fi
    make -s -C "$1" uninstall >/dev/null
    for file in /usr/bin/jdss /etc/multipath/conf.d/jdss.conf \
            /lib/udev/rules.d/56-jdss.rules /usr/share/jdss/installed-files; do
        [ ! -e "$file" ] || { echo "make uninstall left $file"; exit 1; }
    done
    ! grep -qs "BEGIN open-e-joviandss-proxmox-plugin" /etc/lvm/lvm.conf
    sha256sum /etc/lvm/lvm.conf /etc/lvm/lvmlocal.conf 2>/dev/null || true' \
    _ "$root" > "$work/make-install.out" 2>&1 || fail "make install on /: $(cat "$work/make-install.out")"
grep -F "$(grep ' /etc/lvm/lvm.conf$' <<<"$lvm_before")" "$work/make-install.out" >/dev/null \
    || ! [ -f /etc/lvm/lvm.conf ] || fail "make uninstall did not restore lvm.conf"
[ "$(host_state)" = "$lvm_before" ] || fail "make install in the sandbox changed the host"
passed=$((passed + 1))

echo "package-test: $passed passed, 0 failed"
