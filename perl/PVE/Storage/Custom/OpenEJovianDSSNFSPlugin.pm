package PVE::Storage::Custom::OpenEJovianDSSNFSPlugin;

# Proxmox VE storage type 'joviandss-nfs': one JovianDSS NAS volume
# (dataset), shared over NFS and mounted at the storage's path on every
# node, holding disks as files (raw, qcow2, vmdk) and every file content,
# as Proxmox's own NFS storage does; guest snapshots are ZFS snapshots of
# the dataset made by the appliance, and the rollback of one disk restores
# only that disk's file (jdss nas-volume restore). Files, clones, templates,
# rename, resize, export and import are Proxmox's own directory code (export
# and import without snapshots only).
# What both JovianDSS types share is in OpenEJovianDSS::Common (and the
# joviandss type's add/update/delete hooks, used as they are).

use strict;
use warnings;

use PVE::Storage::Plugin;
use PVE::Storage::Custom::OpenEJovianDSSPlugin;
use PVE::Storage::Custom::OpenEJovianDSS::Common qw(common_options run run_json
    pool_status EXIT_NOT_FOUND);

use base qw(PVE::Storage::Plugin);

our $STATUS_DEADLINE = 5;      # seconds status may take
our $REUSE_WITHIN = 120;       # seconds one guest snapshot's disks share a dataset snapshot

my $ISCSI = 'PVE::Storage::Custom::OpenEJovianDSSPlugin';

sub api { return $ISCSI->api(); }

sub type { return 'joviandss-nfs'; }

sub plugindata {
    return {
        content => [
            { images => 1, rootdir => 1, vztmpl => 1, iso => 1, backup => 1, snippets => 1,
                import => 1, none => 1 },
            { images => 1 },
        ],
        format => [{ raw => 1, qcow2 => 1, vmdk => 1 }, 'raw'],
        'sensitive-properties' => { map { $_ => 1 }
            @PVE::Storage::Custom::OpenEJovianDSS::Common::SECRETS },
    };
}

# Every key is declared by the joviandss type (Common::properties) or by
# Proxmox's own types (path, server, export, options, ...): none here.
sub options {
    my $options = common_options();
    $options->{$_} = { optional => 1 } for qw(
        nas_volume_size options format preallocation bwlimit max-protected-backups
        content-dirs mkdir create-base-path create-subdirs);
    $options->{path} = { fixed => 1 };
    $options->{export} = { fixed => 1 };
    $options->{$_} = { optional => 1, fixed => 1 } for qw(pool_name server);
    $options->{data_addresses} = { optional => 1 };
    return $options;
}

# settings ---------------------------------------------------------------

# (pool, NAS volume) of the storage's export: /Pools/<pool>/<ds> or /<pool>/<ds>.
sub pool_and_volume {
    my ($storeid, $scfg) = @_;
    my $export = $scfg->{export} // '';
    if ($export =~ m{^/(?:Pools/)?([A-Za-z0-9_][A-Za-z0-9_.:\-]*)/([A-Za-z0-9][A-Za-z0-9_.\-]*)/?$}) {
        my ($pool, $volume) = ($1, $2);
        $pool = $scfg->{pool_name} if defined($scfg->{pool_name});
        return ($pool, $volume);
    }
    die "storage '$storeid': export '$export' is not /Pools/<pool>/<NAS volume> "
        . "or /<pool>/<NAS volume>\n";
}

sub nas_volume { return (pool_and_volume(@_))[1]; }

# A dataset snapshot per guest snapshot: <vmid>_<name, characters outside
# [-\w] as _>, so the guest and Proxmox's name can be read back.
sub snapshot_name {
    my ($vmid, $snap) = @_;
    (my $name = $snap) =~ s/[^\-\w]/_/g;
    return "${vmid}_$name";
}

sub mount_args {
    my ($scfg) = @_;
    return defined($scfg->{options}) ? ('--options', $scfg->{options}) : ();
}

# adding, changing and removing the storage: as the joviandss type does
# (passwords in .../priv/storage/joviandss-nfs/<storeid>.pw)

sub check_export {
    my ($storeid, $scfg) = @_;
    pool_and_volume($storeid, $scfg);
    die "storage '$storeid': 'path' is required\n" if !defined($scfg->{path});
}

sub on_add_hook {
    my ($class, $storeid, $scfg, %sensitive) = @_;
    check_export($storeid, $scfg);
    return PVE::Storage::Custom::OpenEJovianDSSPlugin::on_add_hook($class, $storeid, $scfg,
        %sensitive);
}

sub on_update_hook_full {
    my ($class, $storeid, $scfg, $update, $delete, $sensitive) = @_;
    return PVE::Storage::Custom::OpenEJovianDSSPlugin::on_update_hook_full($class, $storeid,
        $scfg, $update, $delete, $sensitive);
}

sub on_update_hook {
    my ($class, $storeid, $scfg, %sensitive) = @_;
    return $class->on_update_hook_full($storeid, $scfg, {}, [], \%sensitive);
}

sub on_delete_hook {
    my ($class, $storeid, $scfg) = @_;
    return PVE::Storage::Custom::OpenEJovianDSSPlugin::on_delete_hook($class, $storeid, $scfg);
}

# storage ----------------------------------------------------------------

# Share the NAS volume (made first when missing and nas_volume_size is
# set) and mount it at path; an existing mount of it is kept, one that
# hangs is reported, a stale one replaced (jdss nas-volume attach). Then
# the content directories, as Proxmox's directory storages make them.
sub activate_storage {
    my ($class, $storeid, $scfg, $cache) = @_;
    check_export($storeid, $scfg);
    my @size = defined($scfg->{nas_volume_size})
        ? ('--size', "$scfg->{nas_volume_size}G") : ();
    run($storeid, $scfg, ['nas-volume', 'attach', nas_volume($storeid, $scfg),
        '--mountpoint', $scfg->{path}, mount_args($scfg), @size]);
    return $class->SUPER::activate_storage($storeid, $scfg, $cache);
}

sub deactivate_storage {
    my ($class, $storeid, $scfg, $cache) = @_;
    run($storeid, $scfg, ['nas-volume', 'detach', nas_volume($storeid, $scfg),
        '--mountpoint', $scfg->{path}]);
    return 1;
}

# From the dataset's quota and usage, within $STATUS_DEADLINE seconds;
# inactive when the appliance does not answer.
sub status {
    my ($class, $storeid, $scfg, $cache) = @_;
    my $info = eval {
        run_json($storeid, $scfg, ['nas-volume', 'show', nas_volume($storeid, $scfg)],
            deadline => $STATUS_DEADLINE - 1.5, timeout => $STATUS_DEADLINE);
    };
    return (0, 0, 0, 0) if ref($info) ne 'HASH';
    return ($info->{size}, $info->{free}, $info->{used}, 1);
}

# The appliance answers and has the pool (the NAS volume may be made by
# the activation that follows), within the status deadline.
sub check_connection {
    my ($class, $storeid, $scfg) = @_;
    return pool_status($storeid, $scfg) ? 1 : 0;
}

# snapshots on the appliance -----------------------------------------------

sub volume_qemu_snapshot_method { return 'storage'; }   # never qcow2 internal snapshots

sub volume_snapshot_needs_fsfreeze { return 0; }

# One dataset snapshot for all disks of a guest snapshot: the first disk
# makes it, the others (moments later) reuse it. The disk's file is synced
# first.
sub volume_snapshot {
    my ($class, $scfg, $storeid, $volname, $snap) = @_;
    my (undef, undef, $vmid) = $class->parse_volname($volname);
    my $path = $class->filesystem_path($scfg, $volname);
    if (open(my $fh, '<', $path)) {
        require IO::Handle;
        $fh->sync;
        close($fh);
    }
    run($storeid, $scfg, ['nas-snapshot', 'create', nas_volume($storeid, $scfg),
        snapshot_name($vmid, $snap), '--reuse-within', $REUSE_WITHIN]);
    return undef;
}

# Each disk of the guest asks; the first deletes the dataset snapshot.
sub volume_snapshot_delete {
    my ($class, $scfg, $storeid, $volname, $snap, $running) = @_;
    my (undef, undef, $vmid) = $class->parse_volname($volname);
    run($storeid, $scfg, ['nas-snapshot', 'delete', nas_volume($storeid, $scfg),
        snapshot_name($vmid, $snap)], allow => [EXIT_NOT_FOUND]);
    return undef;
}

sub guest_snapshots {
    my ($class, $scfg, $storeid, $vmid) = @_;
    return run_json($storeid, $scfg, ['nas-snapshot', 'list', nas_volume($storeid, $scfg),
        '--prefix', "${vmid}_"]);
}

# Any dataset snapshot of the guest can be rolled back to: only the disk's
# file is restored, newer snapshots stay.
sub volume_rollback_is_possible {
    my ($class, $scfg, $storeid, $volname, $snap, $blockers) = @_;
    my (undef, undef, $vmid) = $class->parse_volname($volname);
    my $name = snapshot_name($vmid, $snap);
    return 1 if grep { $_->{name} eq $name } @{ $class->guest_snapshots($scfg, $storeid, $vmid) };
    die "can't rollback: NAS volume " . nas_volume($storeid, $scfg)
        . " has no snapshot $name\n";
}

sub volume_snapshot_rollback {
    my ($class, $scfg, $storeid, $volname, $snap) = @_;
    my (undef, undef, $vmid) = $class->parse_volname($volname);
    my $path = $class->filesystem_path($scfg, $volname);
    my $root = $scfg->{path};
    $root =~ s{/+$}{};
    die "disk $volname is not under $root\n" if index($path, "$root/") != 0;
    run($storeid, $scfg, ['nas-volume', 'restore', nas_volume($storeid, $scfg),
        '--snapshot', snapshot_name($vmid, $snap), '--path', substr($path, length($root) + 1),
        '--mountpoint', $root, mount_args($scfg)]);
    return undef;
}

sub volume_snapshot_info {
    my ($class, $scfg, $storeid, $volname) = @_;
    my (undef, undef, $vmid) = $class->parse_volname($volname);
    my $snapshots = $class->guest_snapshots($scfg, $storeid, $vmid);
    my $info = {};
    for my $snapshot (@$snapshots) {
        (my $name = $snapshot->{name}) =~ s/^\Q$vmid\E_//;
        $info->{$name} = { id => $snapshot->{guid} // $snapshot->{name},
            timestamp => $snapshot->{creation} };
    }
    return $info;
}

# export and import ------------------------------------------------------

# A stream carries a file's own snapshots, never the appliance's. So one
# with snapshots (what Proxmox asks for to move a qcow2 or vmdk disk) goes
# out only while the guest has no snapshot on the appliance, nothing to
# lose, and never comes in: the snapshots it carries would not be seen here.
sub guest_has_snapshots {
    my ($class, $scfg, $storeid, $volname) = @_;
    my (undef, undef, $vmid) = $class->parse_volname($volname);
    return scalar(@{ $class->guest_snapshots($scfg, $storeid, $vmid) });
}

sub volume_export_formats {
    my ($class, $scfg, $storeid, $volname, $snapshot, $base_snapshot, $with_snapshots) = @_;
    return () if $with_snapshots && $class->guest_has_snapshots($scfg, $storeid, $volname);
    return $class->SUPER::volume_export_formats($scfg, $storeid, $volname, $snapshot,
        $base_snapshot, $with_snapshots);
}

sub volume_import_formats {
    my ($class, $scfg, $storeid, $volname, $snapshot, $base_snapshot, $with_snapshots) = @_;
    return () if $with_snapshots;
    return $class->SUPER::volume_import_formats($scfg, $storeid, $volname, $snapshot,
        $base_snapshot, $with_snapshots);
}

sub snapshots_stay_here {
    my ($class) = @_;
    die "cannot export or import volumes together with their snapshots in a "
        . $class->type() . " storage: its snapshots are on the appliance\n";
}

sub volume_export {
    my ($class, $scfg, $storeid, $fh, $volname, $format, $snapshot, $base_snapshot,
        $with_snapshots) = @_;
    $class->snapshots_stay_here()
        if $with_snapshots && $class->guest_has_snapshots($scfg, $storeid, $volname);
    return $class->SUPER::volume_export($scfg, $storeid, $fh, $volname, $format, $snapshot,
        $base_snapshot, $with_snapshots);
}

sub volume_import {
    my ($class, $scfg, $storeid, $fh, $volname, $format, $snapshot, $base_snapshot,
        $with_snapshots, $allow_rename) = @_;
    $class->snapshots_stay_here() if $with_snapshots;
    return $class->SUPER::volume_import($scfg, $storeid, $fh, $volname, $format, $snapshot,
        $base_snapshot, $with_snapshots, $allow_rename);
}

# Proxmox's directory features, and snapshots of every file format (on the
# appliance, not in the file).
sub volume_has_feature {
    my ($class, $scfg, $feature, $storeid, $volname, $snapname, $running, $opts) = @_;
    if ($feature eq 'snapshot') {
        my (undef, undef, undef, undef, undef, $isBase, $format) = $class->parse_volname($volname);
        return 0 if $isBase;
        return ($format // '') =~ m/^(raw|qcow2|vmdk)$/ ? 1 : 0;
    }
    # copying from a snapshot needs the file of the snapshot: not offered
    return 0 if $snapname;
    return $class->SUPER::volume_has_feature($scfg, $feature, $storeid, $volname, $snapname,
        $running, $opts);
}

1;
