# jdss: helpers of the maintainer scripts. debian/rules puts this file in
# place of their helpers marker line; tests/test_maintscripts.py runs the
# scripts the same way. Nothing here fails the script: a node without
# systemd, multipathd, udev or LVM is left as it is.

# (JDSS_PROC, JDSS_SYSTEMD_DIR and JDSS_DROPIN let the tests stand in for
# /proc, /run/systemd/system and the drop-in; make install sets JDSS_PYTHON.)
JDSS_PROC=${JDSS_PROC:-/proc}
JDSS_PVE_UNITS="pvedaemon pveproxy pvestatd pve-ha-lrm pve-ha-crm"
JDSS_DROPIN=${JDSS_DROPIN:-/etc/multipath/conf.d/jdss.conf}

jdss_systemd() {
    [ -d "${JDSS_SYSTEMD_DIR:-/run/systemd/system}" ] &&
        command -v systemctl >/dev/null 2>&1
}

# The .service units this script and its ancestors run in: the web shell of
# Proxmox VE runs under pvedaemon or pveproxy.
jdss_own_units() {
    jdss_pid=${1:-$$}
    while [ -r "$JDSS_PROC/$jdss_pid/stat" ]; do
        grep -o '[^/:]*\.service' "$JDSS_PROC/$jdss_pid/cgroup" 2>/dev/null
        [ "$jdss_pid" -gt 1 ] || break
        jdss_pid=$(sed 's/.*) //' "$JDSS_PROC/$jdss_pid/stat" | cut -d' ' -f2)
    done | sort -u
}

# Let Proxmox VE load the plugin as installed now. The daemons re-execute on
# reload; reload-or-try-restart touches only units that run, and
# deb-systemd-invoke honours policy-rc.d. A unit this script runs under is
# reloaded, never restarted: that would end the admin's shell, and apt
# with it.
jdss_reload_pve() {
    jdss_systemd || return 0
    jdss_own=" $(jdss_own_units | tr '\n' ' ') "
    for jdss_unit in $JDSS_PVE_UNITS; do
        systemctl is-active --quiet "$jdss_unit.service" 2>/dev/null || continue
        case "$jdss_own" in
        *" $jdss_unit.service "*)
            deb-systemd-invoke reload "$jdss_unit.service" 2>/dev/null ||
                echo "jdss: $jdss_unit runs this shell and cannot reload:" \
                    "run 'systemctl restart $jdss_unit' from another shell"
            ;;
        *)
            deb-systemd-invoke reload-or-try-restart "$jdss_unit.service" ||
                true
            ;;
        esac
    done
}

# multipathd reads the drop-in on reload. Its blacklist leaves only
# SCST_BIO LUNs to multipath: with maps of other arrays in use, applying it
# is left to the admin. ($1: "install" checks for such maps.)
jdss_reload_multipathd() {
    jdss_systemd || return 0
    systemctl is-active --quiet multipathd.service 2>/dev/null || return 0
    if [ "$1" = install ]; then
        jdss_others=$(multipathd show paths raw format "%d %m %s" 2>/dev/null |
            awk '$2 != "[orphan]" && $3 !~ /^SCST_BIO,/ { print $1 }' |
            tr '\n' ' ')
        if [ -n "$jdss_others" ]; then
            echo "jdss: multipathd NOT reloaded: maps of other arrays use" \
                "$jdss_others and $JDSS_DROPIN multipaths SCST_BIO LUNs" \
                "only. Add their vendor to blacklist_exceptions in" \
                "/etc/multipath.conf, then run 'systemctl reload multipathd'."
            return 0
        fi
    fi
    deb-systemd-invoke reload multipathd.service || true
}

jdss_reload_udev() {
    command -v udevadm >/dev/null 2>&1 || return 0
    udevadm control --ping >/dev/null 2>&1 || return 0
    udevadm control --reload || true
}

# add|remove the patterns that hide JovianDSS volumes from LVM
jdss_lvm_filter() {
    "${JDSS_PYTHON:-python3}" -m jdss.lvmfilter "$1" ||
        echo "jdss: the LVM filter is not in force; 'jdss doctor' says why"
}

# A version without the epoch has no host settings: Open-E's package, and
# the builds of this one before them.
jdss_has_host_settings() {
    dpkg --compare-versions "$1" ge 1:0
}

# prerm upgrade to an older version ($1: that version)
jdss_downgrade_notice() {
    if jdss_has_host_settings "$1"; then
        jdss_undone="the host settings become those of $1"
    else
        jdss_undone="the LVM filter, the udev rule and $JDSS_DROPIN go ($1 has none)"
    fi
    cat <<EOF
jdss: downgrading to $1: $jdss_undone.
jdss: not undone: names, exports and CHAP users this version made on the
  appliance stay as they are, and an edited $JDSS_DROPIN stays in force.
  /etc/pve is not touched.
EOF
}

# postrm upgrade to an older version without host settings: the drop-in,
# a configuration file, would stay in force; take it out unless edited.
jdss_drop_dropin() {
    jdss_has_host_settings "$1" && return 0
    [ -f "$JDSS_DROPIN" ] || return 0
    if [ "$(md5sum < "$JDSS_DROPIN" | cut -d' ' -f1)" = "#JDSS_DROPIN_MD5#" ]; then
        rm -f "$JDSS_DROPIN"
    else
        echo "jdss: $JDSS_DROPIN was edited: it stays, and in force"
    fi
    jdss_reload_udev
    jdss_reload_multipathd
}

# preinst upgrade from the vendor's package of the same name ($1: version)
jdss_vendor_notice() {
    cat <<EOF
jdss: replacing Open-E's plugin $1. Its files go with it (jdssc, its
  Python package, OpenEJovianDSS/ and the plugin modules, which this package
  replaces); /etc/pve (storage.cfg, YAML and priv files) is not touched.
  Its scripts' changes outside its files stay: an LVM global_filter entry
  "r|/dev/mapper/[0-9]|" in /etc/lvm/lvm.conf, /etc/joviandss,
  /var/log/joviandss, and on old versions a patch to PVE/Storage/Plugin.pm.
EOF
}

