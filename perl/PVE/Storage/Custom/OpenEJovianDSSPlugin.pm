package PVE::Storage::Custom::OpenEJovianDSSPlugin;

# Proxmox VE storage type `joviandss`: VM disks and container volumes as
# zvols of an Open-E JovianDSS pool over iSCSI, ISOs, templates and backups
# on a content volume. Each method is a thin Proxmox contract: the work is
# done by jdss (see OpenEJovianDSS::Common), which gets the storage ID and
# this section and answers in JSON.

use strict;
use warnings;

use File::Path qw(make_path);
use Cwd ();

use PVE::Tools qw(run_command);
use PVE::Storage::Plugin;
use PVE::Storage::Custom::OpenEJovianDSS::Common qw(common_options read_passwords
    write_passwords section_with check_section check_appliance run run_json
    error_message snapshot_args pool_status forget_pool_status agent_available
    EXIT_NOT_FOUND EXIT_BUSY);
use PVE::Storage::Custom::OpenEJovianDSS::Guest qw(check_not_ha_managed has_tag
    guest_snapshots remove_snapshots $FORCE_ROLLBACK_TAG);

use base qw(PVE::Storage::Plugin);

my $IMAGE_RE = qr/^((base-(\d+)-\S+)\/)?((base|vm)-(\d+)-\S+)$/;

# Proxmox plugin interface -----------------------------------------------

sub api {
    my $apiver = eval { PVE::Storage::APIVER() } // 15;
    return ($apiver >= 9 && $apiver <= 15) ? $apiver : 15;
}

sub type { return 'joviandss'; }

sub plugindata {
    return {
        content => [
            { images => 1, rootdir => 1, iso => 1, backup => 1, vztmpl => 1 },
            { images => 1, rootdir => 1 },
        ],
        format => [{ raw => 1 }, 'raw'],
        'sensitive-properties' => { map { $_ => 1 }
            @PVE::Storage::Custom::OpenEJovianDSS::Common::SECRETS },
    };
}

sub properties { return PVE::Storage::Custom::OpenEJovianDSS::Common::properties(); }

sub options {
    my $options = common_options();
    $options->{$_} = { optional => 1 } for qw(
        content_volume_name content_volume_size content_volume_type multipath
        target_prefix luns_per_target data_port block_size thin_provisioning
        chap_enabled chap_user_name chap_user_password path
        create-base-path create-subdirs content-dirs);
    $options->{$_} = { optional => 1, fixed => 1 } for qw(pool_name cluster_prefix);
    return $options;
}

# settings ---------------------------------------------------------------

sub pool_name { my ($scfg) = @_; return $scfg->{pool_name} // 'Pool-0'; }

sub content_path {
    my ($scfg) = @_;
    return $scfg->{path} // '/mnt/proxmox-content-jdss-' . pool_name($scfg);
}

sub content_volume_type { return $_[0]->{content_volume_type} // 'iscsi'; }

sub jdss_value {
    my ($storeid, $scfg, $column, @args) = @_;
    my (undef, $out) = run($storeid, $scfg, [@args, '-f', 'value', '-c', $column]);
    chomp $out;
    return $out;
}

# adding, changing and removing the storage -----------------------------

sub on_add_hook {
    my ($class, $storeid, $scfg, %sensitive) = @_;
    my $passwords = { %{ read_passwords($class->type(), $storeid) }, %sensitive };
    check_section($class->type(), $storeid, $scfg, $passwords);
    check_appliance($storeid, $scfg, $passwords);
    write_passwords($class->type(), $storeid, $passwords);
    return;
}

sub on_update_hook_full {
    my ($class, $storeid, $scfg, $update, $delete, $sensitive) = @_;
    my $type = $class->type();
    my $passwords = read_passwords($type, $storeid);
    my %before = %$passwords;
    $passwords->{$_} = $sensitive->{$_} for keys %{ $sensitive // {} };
    delete $passwords->{$_} for @{ $delete // [] };
    my $merged = section_with($scfg, $update, $delete);
    check_section($type, $storeid, $merged, $passwords);
    my $changed = grep { exists($update->{$_}) } qw(pool_name control_addresses control_port
        user_name ssl_cert_verify config);
    $changed ||= grep { ($before{$_} // '') ne ($passwords->{$_} // '') } keys %$passwords, keys %before;
    check_appliance($storeid, $merged, $passwords) if $changed;
    write_passwords($type, $storeid, $passwords);
    forget_pool_status($storeid);
    return;
}

sub on_update_hook {
    my ($class, $storeid, $scfg, %sensitive) = @_;
    return $class->on_update_hook_full($storeid, $scfg, {}, [], \%sensitive);
}

sub on_delete_hook {
    my ($class, $storeid, $scfg) = @_;
    write_passwords($class->type(), $storeid, {});
    return;
}

# names ------------------------------------------------------------------

sub parse_volname {
    my ($class, $volname) = @_;
    if ($volname =~ $IMAGE_RE) {
        return ('images', $4, $6, $2, $3, $5 eq 'base', 'raw');
    }
    return $class->SUPER::parse_volname($volname);
}

sub get_subdir {
    my ($class, $scfg, $vtype) = @_;
    local $scfg->{path} = content_path($scfg);
    return $class->SUPER::get_subdir($scfg, $vtype);
}

# The storage ID of a section, for the methods Proxmox calls without one.
sub storeid_of {
    my ($scfg) = @_;
    my $cfg = PVE::Storage::config();
    for my $id (sort keys %{ $cfg->{ids} }) {
        my $other = $cfg->{ids}->{$id};
        return $id if $other == $scfg || (($other->{type} // '') eq 'joviandss'
            && pool_name($other) eq pool_name($scfg)
            && ($other->{path} // '') eq ($scfg->{path} // ''));
    }
    die "no joviandss storage with pool " . pool_name($scfg) . " in storage.cfg\n";
}

sub image_path {
    my ($class, $storeid, $scfg, $name, $snapname) = @_;
    return jdss_value($storeid, $scfg, 'path', 'volume', 'path', $name,
        snapshot_args($snapname));
}

sub filesystem_path {
    my ($class, $scfg, $volname, $snapname) = @_;
    my ($vtype, $name, $vmid) = $class->parse_volname($volname);
    if ($vtype ne 'images') {
        local $scfg->{path} = content_path($scfg);
        return $class->SUPER::filesystem_path($scfg, $volname, $snapname);
    }
    my $path = $class->image_path(storeid_of($scfg), $scfg, $name, $snapname);
    return wantarray ? ($path, $vmid, $vtype) : $path;
}

sub path {
    my ($class, $scfg, $volname, $storeid, $snapname) = @_;
    my ($vtype, $name, $vmid) = $class->parse_volname($volname);
    return $class->filesystem_path($scfg, $volname, $snapname) if $vtype ne 'images';
    my $path = $class->image_path($storeid, $scfg, $name, $snapname);
    return wantarray ? ($path, $vmid, $vtype) : $path;
}

# QEMU's iscsi block driver logs in with the node's initiator name (as
# Proxmox configures it), so the appliance tells this node's sessions from
# others'. CHAP cannot go this way (Proxmox allows no secret here): jdss
# refuses iscsi-direct with CHAP when the storage is configured.
sub qemu_blockdev_options {
    my ($class, $scfg, $storeid, $volname, $machine_version, $options) = @_;
    my $path = $class->path($scfg, $volname, $storeid, $options->{'snapshot-name'});
    if ($path =~ m!^iscsi://(?:[^@/]*@)?([^/]+)/([^/]+)/(\d+)$!) {
        my $blockdev = { driver => 'iscsi', portal => $1, target => $2, lun => int($3),
            transport => 'tcp' };
        my $initiator = initiator_name();
        $blockdev->{'initiator-name'} = $initiator if defined($initiator);
        return $blockdev;
    }
    return { driver => 'host_device', filename => $path };
}

our $INITIATOR_FILE = '/etc/iscsi/initiatorname.iscsi';

sub initiator_name {
    open(my $fh, '<', $INITIATOR_FILE) or return undef;
    while (my $line = <$fh>) {
        return $1 if $line =~ m/^\s*InitiatorName\s*=\s*(\S+)/;
    }
    return undef;
}

# storage ----------------------------------------------------------------

sub status {
    my ($class, $storeid, $scfg, $cache) = @_;
    my $pool = pool_status($storeid, $scfg) or return (0, 0, 0, 0);
    return ($pool->{size}, $pool->{free}, $pool->{used}, 1);
}

# Proxmox asks this before most operations (storage_info, list, alloc,
# free). Asking the appliance would cost each of them one more REST request
# (a process more without jdss-agent); the operation reports an
# unreachable appliance itself, and status (storage_info) stays bounded by
# its own deadline. A storage with a content volume is asked, within
# status's bound: its activation talks to the appliance, and would wait
# out the failover window in pvestatd otherwise. The same answer with the
# agent and without it.
sub check_connection {
    my ($class, $storeid, $scfg) = @_;
    return 1 if !has_content_volume($scfg);
    return pool_status($storeid, $scfg) ? 1 : 0;
}

sub get_identity {
    my ($class, $scfg, $storeid) = @_;
    my $pool = run_json($storeid, $scfg, ['pool', 'show']);
    die "the appliance did not tell the id of pool $pool->{name}\n" if !defined($pool->{id});
    return "$pool->{name}-$pool->{id}";
}

sub has_content_volume {
    my ($scfg) = @_;
    my $content = $scfg->{content} // {};
    return grep { $content->{$_} } qw(iso vztmpl backup);
}

# The node-local lock of a content volume's attach, mount and growth.
our $LOCK_DIR = '/var/lock/pve-manager';

sub activate_storage {
    my ($class, $storeid, $scfg, $cache) = @_;
    return 1 if !has_content_volume($scfg);
    my $name = $scfg->{content_volume_name}
        // die "storage '$storeid' keeps ISOs, templates or backups: set "
        . "content_volume_name\n";
    my $path = content_path($scfg);
    make_path($path);
    if (content_volume_type($scfg) eq 'nfs') {
        my $quota = ensure_content_volume($storeid, $scfg, 'nas-volume', 'quota');
        grow_content_volume($storeid, $scfg, 'nas-volume', $quota);
        run($storeid, $scfg, ['nas-volume', 'attach', $name, '--mountpoint', $path]);
    } else {
        my $device = mounted_at($path);
        # mounted and as large as asked: nothing to do, nothing asked
        return 1 if defined($device) && !content_too_small($scfg, $device);
        make_path($LOCK_DIR);
        PVE::Tools::lock_file("$LOCK_DIR/jdss-content-$storeid", 120, sub {
            activate_iscsi_content($storeid, $scfg, $path);
        });
        die $@ if $@;
    }
    for my $vtype (qw(iso vztmpl backup)) {
        make_path($class->get_subdir($scfg, $vtype)) if $scfg->{content}->{$vtype};
    }
    return 1;
}

# Attached exclusively and mounted (under the lock): a local file system,
# mounted by one node only; the others use the storage for disks and list
# no files. Grown when content_volume_size asks for more.
sub activate_iscsi_content {
    my ($storeid, $scfg, $path) = @_;
    my $name = $scfg->{content_volume_name};
    my $device = mounted_at($path);
    my $mounted_now = 0;
    if (!defined($device)) {
        ensure_content_volume($storeid, $scfg, 'volume', 'size');
        my ($attach, $out, $err) = run($storeid, $scfg, ['volume', 'attach', $name,
            '--exclusive', '-f', 'value', '-c', 'path'], allow => [EXIT_BUSY]);
        if ($attach == EXIT_BUSY) {
            warn "storage '$storeid': content volume not mounted on this node: "
                . error_message($err, $attach) . "\n";
            return;
        }
        chomp($device = $out);
        mount_content_device($device, $path);
        $mounted_now = 1;
    }
    my $grown = content_too_small($scfg, $device)
        && grow_content_volume($storeid, $scfg, 'volume', device_bytes($device), '--rescan');
    grow_file_system($device, $path) if $grown || $mounted_now;
}

# The content volume, made when missing at content_volume_size (100 GiB by
# default); returns its size (or quota) in bytes when it was there.
sub ensure_content_volume {
    my ($storeid, $scfg, $kind, $field) = @_;
    my $name = $scfg->{content_volume_name};
    my $volume = run_json($storeid, $scfg, [$kind, 'show', $name], allow => [EXIT_NOT_FOUND]);
    return $volume->{$field} // 0 if $volume;
    my $gib = $scfg->{content_volume_size} // 100;
    run($storeid, $scfg, [$kind, 'create', $name, '--size', "${gib}G"]);
    return undef;
}

# Grown on the appliance when content_volume_size, set in storage.cfg,
# asks for more than $have bytes (never shrunk, never grown unasked).
sub grow_content_volume {
    my ($storeid, $scfg, $kind, $have, @options) = @_;
    my $gib = $scfg->{content_volume_size};
    return 0 if !defined($gib) || !defined($have) || $have >= $gib * 1024**3;
    my $name = $scfg->{content_volume_name};
    run($storeid, $scfg, [$kind, 'resize', $name, '--size', "${gib}G", @options]);
    printf("storage '%s': content volume '%s' grown from %.1f GiB to %d GiB\n",
        $storeid, $name, $have / 1024**3, $gib);
    return 1;
}

# Whether the device is smaller than content_volume_size asks; read from
# sysfs, without a process or a request.
sub content_too_small {
    my ($scfg, $device) = @_;
    return 0 if !defined($scfg->{content_volume_size});
    my $bytes = device_bytes($device);
    return defined($bytes) && $bytes < $scfg->{content_volume_size} * 1024**3;
}

sub device_bytes {
    my ($device) = @_;
    my $real = Cwd::abs_path($device) // return undef;
    my ($name) = $real =~ m{^/dev/([^/]+)$} or return undef;
    open(my $fh, '<', "/sys/class/block/$name/size") or return undef;
    my $sectors = <$fh>;
    close($fh);
    return defined($sectors) && $sectors =~ m/^(\d+)/ ? $1 * 512 : undef;
}

sub mounted_at {
    my ($path) = @_;
    open(my $fh, '<', '/proc/self/mounts') or return undef;
    my $source;
    while (my $line = <$fh>) {
        my ($src, $target) = split /\s+/, $line;
        $source = $src if $target eq $path;
    }
    close($fh);
    return $source;
}

sub mount_content_device {
    my ($device, $path) = @_;
    return if defined(mounted_at($path));
    my $fstype = file_system_type($device);
    die "content volume $device has no file system: on first use, format it "
        . "(for example mkfs.ext4 $device) and activate the storage again\n"
        if $fstype eq '';
    run_command(['mount', '-t', $fstype, $device, $path]);
}

sub file_system_type {
    my ($device) = @_;
    my $fstype = '';
    run_command(['blkid', '-o', 'value', '-s', 'TYPE', $device],
        outfunc => sub { $fstype .= $_[0] }, noerr => 1);
    return $fstype;
}

# Fill the device, mounted, as ext3/4 and xfs allow; a no-op when the file
# system already does. A failure is said, with what to run by hand.
sub grow_file_system {
    my ($device, $path) = @_;
    my $fstype = file_system_type($device);
    my $command = $fstype =~ m/^ext[34]$/ ? ['resize2fs', $device]
        : $fstype eq 'xfs' ? ['xfs_growfs', $path] : return;
    my $said = '';
    eval {
        run_command($command, outfunc => sub { $said .= "$_[0]\n" },
            errfunc => sub { $said .= "$_[0]\n" });
    };
    if ($@) {
        my @why = grep { m/\S/ && !m/^resize2fs \d/ } split(/\n/, $said);
        warn "content volume at $path: its $fstype file system was not grown ("
            . (join('; ', @why) || 'failed') . "); run '@$command' by hand\n";
    } elsif ($said =~ m/is now \d+ .*blocks long|data blocks changed/) {
        print "content volume at $path: file system grown to fill $device\n";
    }
}

sub deactivate_storage {
    my ($class, $storeid, $scfg, $cache) = @_;
    return 1 if !has_content_volume($scfg) || !defined($scfg->{content_volume_name});
    my $name = $scfg->{content_volume_name};
    my $path = content_path($scfg);
    if (content_volume_type($scfg) eq 'nfs') {
        run($storeid, $scfg, ['nas-volume', 'detach', $name, '--mountpoint', $path]);
    } elsif (defined(mounted_at($path))) {
        run_command(['umount', $path]);
        run($storeid, $scfg, ['volume', 'detach', $name]);
    }
    return 1;
}

# Disks through list_images; ISOs, templates and backups from the content
# volume where it is mounted (an iSCSI content volume is mounted on one node
# only: the others list none of its files).
sub list_volumes {
    my ($class, $storeid, $scfg, $vmid, $content_types) = @_;
    my @files = grep { !m/^(images|rootdir)$/ } @$content_types;
    my @disks = grep { m/^(images|rootdir)$/ } @$content_types;
    my $path = content_path($scfg);
    if (@files && !defined(mounted_at($path))) {
        warn "storage '$storeid': its content volume is not mounted on this node; "
            . "no " . join(', ', @files) . " listed\n";
        @files = ();
    }
    local $scfg->{path} = $path;
    return $class->SUPER::list_volumes($storeid, $scfg, $vmid, [@disks, @files]);
}

# images -----------------------------------------------------------------

# Proxmox runs alloc, free, clone, template and rename of a shared storage
# under one cluster-wide lock of the whole storage (pmxcfs: tried once a
# second, given up after 10 s), so guests created at once on one storage
# queue and mostly fail with "got lock request timeout". Here each of them
# is one change on the appliance, which refuses a name that exists (jdss
# then takes the next free one, see make_named), and jdss makes and
# changes a volume under cluster-wide locks of its own, of the volume and
# of the new name it makes: the storage lock is not needed, and not taken.
sub cluster_lock_storage {
    my ($class, $storeid, $shared, $timeout, $func, @param) = @_;
    return $func->(@param);
}

# Makes a volume with the jdss arguments $argv_of->(@target): under $name
# when given, else under guest $vmid's next free disk name, which jdss
# picks as Proxmox's find_free_diskname would and, when another node takes
# it meanwhile (the appliance refuses it), the next one (--guest): one
# call. Returns the name.
sub make_named {
    my ($class, $storeid, $scfg, $vmid, $name, $argv_of) = @_;
    my @target = $name ? ($name) : ('--guest', $vmid);
    return run_json($storeid, $scfg, $argv_of->(@target))->{name};
}

sub alloc_image {
    my ($class, $storeid, $scfg, $vmid, $fmt, $name, $size) = @_;
    die "unsupported format '$fmt'\n" if $fmt ne 'raw';
    die "illegal name '$name' - should be 'vm-$vmid-*'\n"
        if $name && $name !~ m/^vm-\Q$vmid\E-/;
    return $class->make_named($storeid, $scfg, $vmid, $name,
        sub { ['volume', 'create', @_, '--size', "${size}K"] });
}

sub free_image {
    my ($class, $storeid, $scfg, $volname, $isBase, $format) = @_;
    my (undef, $name) = $class->parse_volname($volname);
    my ($exit, undef, $err) = run($storeid, $scfg,
        ['volume', 'delete', $name, '--recursive', '--detach'],
        allow => [EXIT_NOT_FOUND],
        $scfg->{delete_timeout} ? (timeout => $scfg->{delete_timeout}) : ());
    warn "volume '$name' was already gone from the appliance\n"
        if $exit == EXIT_NOT_FOUND;
    return undef;
}

sub list_images {
    my ($class, $storeid, $scfg, $vmid, $vollist, $cache) = @_;
    my $volumes = $cache->{joviandss}->{$storeid}
        //= run_json($storeid, $scfg, ['volume', 'list']);
    my %wanted = map { $_ => 1 } @{ $vollist // [] };
    my $res = [];
    for my $volume (@$volumes) {
        my $name = $volume->{name};
        next if $name !~ m/^(?:vm|base)-(\d+)-/;
        my $owner = $1;
        my ($volname, $parent) = ($name, undef);
        my ($source, $snap) = split /\@/, ($volume->{origin} // ''), 2;
        if ($source && $source =~ m/^base-\d+-/ && $name =~ m/^vm-/) {
            $parent = "$storeid:$source";
            # the vendor's linked clones hang from a snapshot v_<clone> and
            # are named plainly in the guests' configurations
            $volname = "$source/$name" if ($snap // '') ne "v_$name";
        }
        my $volid = "$storeid:$volname";
        if ($vollist) {
            next if !$wanted{$volid} && !$wanted{"$storeid:$name"};
        } elsif (defined($vmid)) {
            next if $owner ne $vmid;
        }
        push @$res, { volid => $volid, format => 'raw', size => $volume->{size},
            vmid => $owner, parent => $parent, ctime => $volume->{creation} };
    }
    return $res;
}

sub volume_size_info {
    my ($class, $scfg, $storeid, $volname, $timeout) = @_;
    my ($vtype, $name) = $class->parse_volname($volname);
    if ($vtype ne 'images') {
        local $scfg->{path} = content_path($scfg);
        return $class->SUPER::volume_size_info($scfg, $storeid, $volname, $timeout);
    }
    my $volume = run_json($storeid, $scfg, ['volume', 'show', $name]);
    return $volume->{size} if !wantarray;
    my ($source) = split /\@/, ($volume->{origin} // '');
    return ($volume->{size}, 'raw', $volume->{used}, $source || undef, $volume->{creation});
}

sub volume_resize {
    my ($class, $scfg, $storeid, $volname, $size, $running, $snapname) = @_;
    die "resizing a snapshot is not supported\n" if defined($snapname);
    my (undef, $name) = $class->parse_volname($volname);
    my $new = run_json($storeid, $scfg, ['volume', 'resize', $name, '--size', $size,
        $running ? ('--rescan') : ()]);
    return $new->{size};
}

sub activate_volume {
    my ($class, $storeid, $scfg, $volname, $snapname, $cache, $hints) = @_;
    my ($vtype, $name) = $class->parse_volname($volname);
    return 1 if $vtype ne 'images';
    run($storeid, $scfg, ['volume', 'attach', $name, snapshot_args($snapname)]);
    return 1;
}

sub deactivate_volume {
    my ($class, $storeid, $scfg, $volname, $snapname, $cache) = @_;
    my ($vtype, $name) = $class->parse_volname($volname);
    return 1 if $vtype ne 'images';
    run($storeid, $scfg, ['volume', 'detach', $name, snapshot_args($snapname)]);
    return 1;
}

sub map_volume {
    my ($class, $storeid, $scfg, $volname, $snapname, $hints) = @_;
    my (undef, $name) = $class->parse_volname($volname);
    return jdss_value($storeid, $scfg, 'path', 'volume', 'attach', $name,
        snapshot_args($snapname));
}

sub unmap_volume {
    my ($class, $storeid, $scfg, $volname, $snapname) = @_;
    my (undef, $name) = $class->parse_volname($volname);
    run($storeid, $scfg, ['volume', 'detach', $name, snapshot_args($snapname)]);
    return 1;
}

# snapshots --------------------------------------------------------------

sub volume_snapshot {
    my ($class, $scfg, $storeid, $volname, $snap) = @_;
    my (undef, $name) = $class->parse_volname($volname);
    run($storeid, $scfg, ['snapshot', 'create', $name, $snap]);
    return undef;
}

sub volume_snapshot_delete {
    my ($class, $scfg, $storeid, $volname, $snap, $running) = @_;
    my (undef, $name) = $class->parse_volname($volname);
    run($storeid, $scfg, ['snapshot', 'delete', $name, $snap]);
    return undef;
}

# Blockers named with who made them: Proxmox (the guest's configuration
# lists the snapshot) or the appliance (its schedules, or by hand).
sub describe_blockers {
    my ($vmid, $blockers) = @_;
    my %managed = map { $_ => 1 } @{ guest_snapshots($vmid) };
    return join(', ', map { $managed{$_} ? "$_ (Proxmox)" : "$_ (appliance)" } @$blockers);
}

sub volume_rollback_is_possible {
    my ($class, $scfg, $storeid, $volname, $snap, $blockers) = @_;
    my (undef, $name, $vmid) = $class->parse_volname($volname);
    check_not_ha_managed($vmid, 'roll back');
    my $check = run_json($storeid, $scfg, ['snapshot', 'rollback', $name, $snap, '--dry-run']);
    return 1 if $check->{possible};
    my @newer = @{ $check->{blockers} // [] };
    push @$blockers, @newer if $blockers;
    die "can't rollback '$name' to '$snap': clones depend on newer snapshots: "
        . join(', ', @{ $check->{clones} }) . "; delete those clones first\n"
        if @{ $check->{clones} // [] };
    return 1 if has_tag($vmid, $FORCE_ROLLBACK_TAG);
    die "can't rollback, '$snap' is not most recent snapshot on '$name' (newer: "
        . describe_blockers($vmid, \@newer) . "); to roll back and destroy them, tag "
        . "the guest '$FORCE_ROLLBACK_TAG' "
        . "and roll back again\n";
}

sub volume_snapshot_rollback {
    my ($class, $scfg, $storeid, $volname, $snap) = @_;
    my (undef, $name, $vmid) = $class->parse_volname($volname);
    check_not_ha_managed($vmid, 'roll back');
    my $force = has_tag($vmid, $FORCE_ROLLBACK_TAG);
    my $result = run_json($storeid, $scfg, ['snapshot', 'rollback', $name, $snap,
        $force ? ('--force') : ()]);
    my @destroyed = @{ $result->{destroyed} // [] };
    if (@destroyed) {
        print "rollback of '$name' to '$snap' destroyed newer snapshots: "
            . describe_blockers($vmid, \@destroyed) . "\n";
        my $removed = remove_snapshots($vmid, \@destroyed);
        print "removed from the configuration of guest $vmid: @$removed\n" if @$removed;
    }
    return undef;
}

sub volume_snapshot_info {
    my ($class, $scfg, $storeid, $volname) = @_;
    my (undef, $name, $vmid) = $class->parse_volname($volname);
    my $snapshots = eval { run_json($storeid, $scfg, ['snapshot', 'list', $name]) };
    if (my $err = $@) {
        return {} if $err =~ m/not found/;
        die $err;
    }
    my %managed = map { $_ => 1 } @{ guest_snapshots($vmid) };
    return { map { $_->{name} => {
        id => $_->{guid} // ($_->{creation} . '-' . $_->{name}),
        timestamp => $_->{creation},
        defined($_->{size}) ? ('virtual-size' => $_->{size}) : (),
        proxmox => $managed{ $_->{name} } ? 1 : 0,
    } } @$snapshots };
}

sub volume_snapshot_needs_fsfreeze { return 0; }

sub volume_qemu_snapshot_method { return 'storage'; }

sub volume_has_feature {
    my ($class, $scfg, $feature, $storeid, $volname, $snapname, $running, $opts) = @_;
    my $features = {
        snapshot => { current => 1, snap => 1 },
        clone => { base => 1, snap => 1 },
        template => { current => 1 },
        copy => { base => 1, current => 1, snap => 1 },
        sparseinit => { base => 1, current => 1 },
        rename => { current => 1 },
    };
    my ($vtype, $name, $vmid, $basename, $basevmid, $isBase) =
        $class->parse_volname($volname);
    return undef if $vtype ne 'images';
    my $key = defined($snapname) ? 'snap' : $isBase ? 'base' : 'current';
    return $features->{$feature}->{$key} ? 1 : undef;
}

# templates, clones, renames ---------------------------------------------

sub create_base {
    my ($class, $storeid, $scfg, $volname) = @_;
    my ($vtype, $name, $vmid, $basename, $basevmid, $isBase) =
        $class->parse_volname($volname);
    die "create_base not possible with base image\n" if $isBase;
    (my $newname = $name) =~ s/^vm-/base-/;
    run($storeid, $scfg, ['volume', 'rename', $name, $newname, '--detach']);
    return $basename ? "$basename/$newname" : $newname;
}

sub clone_image {
    my ($class, $scfg, $storeid, $volname, $vmid, $snap) = @_;
    my ($vtype, $basename, $basevmid, undef, undef, $isBase) =
        $class->parse_volname($volname);
    die "clone_image only works on base images\n" if !$isBase && !$snap;
    my $name = $class->make_named($storeid, $scfg, $vmid, undef,
        sub { ['volume', 'clone', $basename, @_, $snap ? ('--snapshot', $snap) : ()] });
    return $isBase ? "$basename/$name" : $name;
}

sub rename_volume {
    my ($class, $scfg, $storeid, $source_volname, $target_vmid, $target_volname) = @_;
    my (undef, $source, undef, $basename) = $class->parse_volname($source_volname);
    $target_volname = $class->make_named($storeid, $scfg, $target_vmid, $target_volname,
        sub { ['volume', 'rename', $source, @_] });
    return "$storeid:" . ($basename ? "$basename/" : '') . $target_volname;
}

# export and import (storage migration) -----------------------------------

sub volume_export_formats {
    my ($class, $scfg, $storeid, $volname, $snapshot, $base_snapshot, $with_snapshots) = @_;
    return () if $base_snapshot || $with_snapshots;
    my ($vtype) = $class->parse_volname($volname);
    return $vtype eq 'images' ? ('raw+size') : ();
}

sub volume_import_formats { my $class = shift; return $class->volume_export_formats(@_); }

# Streams have no total time limit (a large disk takes as long as it
# takes); jdss gives up when no byte moves for a while.
sub volume_export {
    my ($class, $scfg, $storeid, $fh, $volname, $format, $snapshot, $base_snapshot,
        $with_snapshots) = @_;
    die "unsupported export stream format for $class: $format\n" if $format ne 'raw+size';
    die "cannot export incremental streams or snapshots in raw+size\n"
        if $base_snapshot || $with_snapshots;
    my (undef, $name) = $class->parse_volname($volname);
    my $fd = fileno($fh) // die "internal error: invalid file handle for volume_export\n";
    run($storeid, $scfg, ['volume', 'export', $name, snapshot_args($snapshot)],
        output => ">&$fd", timeout => 0);
    return;
}

sub volume_import {
    my ($class, $scfg, $storeid, $fh, $volname, $format, $snapshot, $base_snapshot,
        $with_snapshots, $allow_rename) = @_;
    die "unsupported import stream format for $class: $format\n" if $format ne 'raw+size';
    die "cannot import incremental streams or snapshots in raw+size\n"
        if $base_snapshot || $with_snapshots;
    my (undef, $name, $vmid, $basename) = $class->parse_volname($volname);
    my $fd = fileno($fh) // die "internal error: invalid file handle for volume_import\n";
    my ($exit) = run($storeid, $scfg, ['volume', 'show', $name],
        allow => [EXIT_NOT_FOUND]);
    if ($exit != EXIT_NOT_FOUND) {
        die "volume '$name' already exists\n" if !$allow_rename;
        $name = $class->find_free_diskname($storeid, $scfg, $vmid, 'raw');
    }
    # only into a volume the import makes: one made meanwhile by another
    # node under the name chosen here is never written over
    run($storeid, $scfg, ['volume', 'import', $name, '--new'], stdin => "<&$fd",
        timeout => 0);
    return "$storeid:$name";
}

1;
