#!/usr/bin/env bash
# TEST FIXTURE: a stand-in for Open-E's own package, to test upgrading over
# it. Same package name, a version of Open-E's numbering (1.0.0), and the
# paths its Makefile installs (the Perl plugin modules, jdssc in
# /usr/local/bin and its Python package, an example multipath file under
# /etc/joviandss); every file is a dummy. Its postinst makes the
# directories Open-E's does. Usage: vendor-deb.sh OUTDIR -> prints the .deb.
set -euo pipefail
out=$(readlink -f "$1")
pkg=open-e-joviandss-proxmox-plugin
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT

put() {  # put MODE PATH CONTENT
    install -D -m "$1" /dev/null "$tree$2"
    printf '%s\n' "$3" > "$tree$2"
}
put 0644 /usr/share/perl5/PVE/Storage/Custom/OpenEJovianDSSPlugin.pm \
    "package PVE::Storage::Custom::OpenEJovianDSSPlugin; # vendor stand-in
1;"
put 0644 /usr/share/perl5/PVE/Storage/Custom/OpenEJovianDSSNFSPlugin.pm \
    "package PVE::Storage::Custom::OpenEJovianDSSNFSPlugin; # vendor stand-in
1;"
put 0644 /usr/share/perl5/OpenEJovianDSS/Common.pm \
    "package OpenEJovianDSS::Common; # vendor stand-in
1;"
put 0644 /usr/lib/python3/dist-packages/jdssc/__init__.py \
    "# vendor stand-in"
put 0755 /usr/local/bin/jdssc "#!/bin/sh
echo 'jdssc: vendor stand-in'"
put 0644 /etc/joviandss/multipath-open-e-joviandss.conf.example \
    "# vendor stand-in"
put 0644 "/usr/share/doc/$pkg/changelog" "vendor stand-in 1.0.0"

chmod 0755 "$tree"
mkdir "$tree/DEBIAN"
cat > "$tree/DEBIAN/control" <<EOF
Package: $pkg
Version: 1.0.0
Architecture: all
Maintainer: jdss test fixture <fixture@example.invalid>
Depends: perl
Section: admin
Priority: optional
Description: stand-in for Open-E's JovianDSS plugin package (test fixture)
 Same name, version numbering and file paths as Open-E's package; the
 files are dummies. Built by tests/package/vendor-deb.sh.
EOF
cat > "$tree/DEBIAN/postinst" <<'EOF'
#!/bin/sh -e
mkdir -p /var/log/joviandss /etc/joviandss
chmod +x /usr/local/bin/jdssc
exit 0
EOF
cat > "$tree/DEBIAN/prerm" <<'EOF'
#!/bin/sh
exit 0
EOF
chmod 0755 "$tree/DEBIAN/postinst" "$tree/DEBIAN/prerm"
mkdir -p "$out"
dpkg-deb --root-owner-group -Zgzip --build "$tree" "$out/${pkg}_1.0.0_all.deb" >/dev/null
echo "$out/${pkg}_1.0.0_all.deb"
