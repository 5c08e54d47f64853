package PVE::Storage::Custom::OpenEJovianDSSPlugin;

# Proxmox VE storage plugin for Open-E JovianDSS. Every storage operation
# is done by the jdss command (run as an argument list, never through a
# shell) whose JSON output is parsed here; storage.cfg settings reach jdss
# as --pool and --set options, the YAML file named by `config` holds the
# rest. Errors from jdss reach the user as its own one-line message.

use strict;
use warnings;

use File::Path qw(make_path);
use IO::Socket::UNIX;
use JSON::PP;
use Socket qw(SOCK_STREAM SOL_SOCKET SO_RCVTIMEO);

use PVE::Tools qw(run_command);
use PVE::Storage::Plugin;

use base qw(PVE::Storage::Plugin);

our $JDSS = '/usr/bin/jdss';
our $TIMEOUT = 600;             # seconds for one jdss call
our $STATUS_DEADLINE = 5;       # seconds status may spend on the appliance
our $AGENT_SOCKET = '/run/jdss/agent.sock';   # jdss-agent, when it runs
our $AGENT_TIMEOUT = 30;        # seconds to wait for the agent's answer

# exit codes of jdss (README "Exit codes")
use constant {
    EXIT_NOT_FOUND => 4,
    EXIT_ROLLBACK_BLOCKED => 8,
};

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
    };
}

sub properties {
    return {
        pool_name => {
            description => "JovianDSS pool to use.",
            type => 'string',
            default => 'Pool-0',
        },
        config => {
            description => "jdss YAML configuration (default: "
                . "/etc/pve/jdss-<pool_name>.yaml).",
            type => 'string',
        },
        content_volume_name => {
            description => "Volume on the appliance that holds ISOs, "
                . "templates and backups (lowercase letters, digits, - and .).",
            type => 'string',
            pattern => '[a-z0-9][a-z0-9\-\.]*',
        },
        content_volume_size => {
            description => "Size of the content volume in GiB.",
            type => 'integer',
            minimum => 1,
            default => 100,
        },
        content_volume_type => {
            description => "Protocol of the content volume.",
            type => 'string',
            enum => ['iscsi', 'nfs'],
            default => 'iscsi',
        },
        debug => {
            description => "Log jdss details (verbose output, tracebacks).",
            type => 'boolean',
            default => 0,
        },
        multipath => {
            description => "Attach volumes through multipath.",
            type => 'boolean',
            default => 0,
        },
    };
}

sub options {
    return {
        pool_name => { optional => 1 },
        config => { optional => 1 },
        content => { optional => 1 },
        content_volume_name => { optional => 1 },
        content_volume_size => { optional => 1 },
        content_volume_type => { optional => 1 },
        path => { optional => 1 },
        shared => { optional => 1 },
        debug => { optional => 1 },
        multipath => { optional => 1 },
        disable => { optional => 1 },
        nodes => { optional => 1 },
    };
}

# settings and running jdss ----------------------------------------------

sub pool_name { my ($scfg) = @_; return $scfg->{pool_name} // 'Pool-0'; }

sub config_file {
    my ($scfg) = @_;
    return $scfg->{config} // '/etc/pve/jdss-' . pool_name($scfg) . '.yaml';
}

sub content_path {
    my ($scfg) = @_;
    return $scfg->{path} // '/mnt/proxmox-content-jdss-' . pool_name($scfg);
}

sub content_volume_type { return $_[0]->{content_volume_type} // 'iscsi'; }

sub jdss_command {
    my ($scfg, $args, $globals) = @_;
    my @cmd = ($JDSS, '-c', config_file($scfg), '--pool', pool_name($scfg),
        '--set', 'multipath=' . ($scfg->{multipath} ? 'true' : 'false'),
        '--set', 'content_volume_type=' . content_volume_type($scfg));
    push @cmd, '-v', '--debug' if $scfg->{debug};
    push @cmd, @{ $globals // [] };
    return [@cmd, @$args];
}

# Run jdss; returns (exit code, stdout). Dies with jdss's own message unless
# the exit code is 0 or listed in $opts{allow}.
sub jdss {
    my ($scfg, $args, %opts) = @_;
    die "jdss is not installed at $JDSS; install open-e-joviandss-proxmox-plugin\n"
        if !-x $JDSS;
    my ($out, $err) = ('', '');
    my %io = (
        outfunc => sub { $out .= "$_[0]\n" },
        errfunc => sub { $err .= "$_[0]\n" },
    );
    %io = (output => $opts{output}, errfunc => $io{errfunc}) if $opts{output};
    $io{input} = $opts{input} if $opts{input};
    my $exit = eval {
        run_command(jdss_command($scfg, $args, $opts{globals}),
            %io, noerr => 1, timeout => $opts{timeout} // $TIMEOUT);
    };
    if (my $e = $@) {
        chomp $e;
        die "jdss " . join(' ', @$args[0, 1]) . " did not finish: $e\n";
    }
    return ($exit, $out) if $exit == 0 || grep { $_ == $exit } @{ $opts{allow} // [] };
    die error_message($err, $exit) . "\n";
}

sub error_message {
    my ($err, $exit) = @_;
    my @lines = grep { /\S/ } split /\n/, $err;
    my ($line) = grep { /^jdss: error: / } @lines;
    $line //= $lines[-1] // "jdss failed with exit code $exit";
    $line =~ s/^jdss: error: /jdss: /;
    return $line;
}

# Ask jdss-agent (read-only calls on the hot path). Returns its answer,
# {ok => 1, data => ...} or {ok => 0, exit_code, message}, or undef when
# the agent is not there or does not answer, and the caller runs jdss.
sub agent_request {
    my ($scfg, $op, %request) = @_;
    return undef if !-S $AGENT_SOCKET;
    my $reply = eval {
        my $socket = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Peer => $AGENT_SOCKET)
            or die "connect: $!\n";
        $socket->setsockopt(SOL_SOCKET, SO_RCVTIMEO, pack('l!l!', $AGENT_TIMEOUT, 0));
        my %set = (multipath => $scfg->{multipath} ? 'true' : 'false',
            content_volume_type => content_volume_type($scfg), %{ delete $request{set} // {} });
        print $socket JSON::PP->new->encode({ %request, op => $op, set => \%set,
            config => config_file($scfg), pool => pool_name($scfg) }), "\n";
        my $line = <$socket>;
        close($socket);
        die "no answer\n" if !defined($line);
        JSON::PP->new->decode($line);
    };
    return ref($reply) eq 'HASH' ? $reply : undef;
}

# jdss's --snapshot option, when there is a snapshot.
sub snapshot_args { return defined($_[0]) ? ('--snapshot', $_[0]) : (); }

sub jdss_json {
    my ($scfg, @args) = @_;
    my (undef, $out) = jdss($scfg, [@args, '-f', 'json']);
    return JSON::PP->new->decode($out);
}

sub jdss_value {
    my ($scfg, $column, @args) = @_;
    my (undef, $out) = jdss($scfg, [@args, '-f', 'value', '-c', $column]);
    chomp $out;
    return $out;
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

sub filesystem_path {
    my ($class, $scfg, $volname, $snapname) = @_;
    my ($vtype, $name, $vmid) = $class->parse_volname($volname);
    if ($vtype ne 'images') {
        local $scfg->{path} = content_path($scfg);
        return $class->SUPER::filesystem_path($scfg, $volname, $snapname);
    }
    my $path;
    if (my $reply = agent_request($scfg, 'volume_path', name => $name, snapshot => $snapname)) {
        die "jdss: $reply->{message}\n" if !$reply->{ok};
        $path = $reply->{data}->{path};
    } else {
        $path = jdss_value($scfg, 'path', 'volume', 'path', $name,
            snapshot_args($snapname));
    }
    return wantarray ? ($path, $vmid, $vtype) : $path;
}

sub path {
    my ($class, $scfg, $volname, $storeid, $snapname) = @_;
    return $class->filesystem_path($scfg, $volname, $snapname);
}

sub qemu_blockdev_options {
    my ($class, $scfg, $storeid, $volname, $machine_version, $options) = @_;
    my $path = $class->path($scfg, $volname, $storeid, $options->{'snapshot-name'});
    if ($path =~ m!^iscsi://(?:[^@/]*@)?([^/]+)/([^/]+)/(\d+)$!) {
        return { driver => 'iscsi', portal => $1, target => $2, lun => int($3),
            transport => 'tcp' };
    }
    return { driver => 'host_device', filename => $path };
}

# storage ----------------------------------------------------------------

sub check_content_volume_name {
    my ($scfg) = @_;
    my $name = $scfg->{content_volume_name};
    die "content_volume_name '$name' is invalid: use only lowercase letters, "
        . "digits, - and .\n"
        if defined($name) && $name !~ m/^[a-z0-9][a-z0-9\-\.]*$/;
}

sub on_add_hook {
    my ($class, $storeid, $scfg, %param) = @_;
    check_content_volume_name($scfg);
    return;
}

sub on_update_hook {
    my ($class, $storeid, $scfg, %param) = @_;
    check_content_volume_name($scfg);
    return;
}

sub status {
    my ($class, $storeid, $scfg, $cache) = @_;
    if (my $reply = agent_request($scfg, 'pool_show',
            set => { rest_api_deadline => $STATUS_DEADLINE })) {
        return (0, 0, 0, 0) if !$reply->{ok};
        my $pool = $reply->{data};
        return ($pool->{size}, $pool->{free}, $pool->{used}, 1);
    }
    my $pool = eval {
        my (undef, $out) = jdss($scfg, ['pool', 'show', '-f', 'json'],
            globals => ['--set', "rest_api_deadline=$STATUS_DEADLINE"],
            timeout => 3 * $STATUS_DEADLINE);
        JSON::PP->new->decode($out);
    };
    return (0, 0, 0, 0) if $@ || ref($pool) ne 'HASH';
    return ($pool->{size}, $pool->{free}, $pool->{used}, 1);
}

sub check_connection {
    my ($class, $storeid, $scfg) = @_;
    my (undef, undef, undef, $active) = $class->status($storeid, $scfg, {});
    return $active ? 1 : 0;
}

sub has_content_volume {
    my ($scfg) = @_;
    my $content = $scfg->{content} // {};
    return grep { $content->{$_} } qw(iso vztmpl backup);
}

sub activate_storage {
    my ($class, $storeid, $scfg, $cache) = @_;
    return 1 if !has_content_volume($scfg);
    my $name = $scfg->{content_volume_name}
        // die "storage '$storeid' keeps ISOs, templates or backups: set "
        . "content_volume_name\n";
    check_content_volume_name($scfg);
    my $path = content_path($scfg);
    my $size = ($scfg->{content_volume_size} // 100) . 'G';
    make_path($path);
    if (content_volume_type($scfg) eq 'nfs') {
        my ($exit) = jdss($scfg, ['nas-volume', 'show', $name], allow => [EXIT_NOT_FOUND]);
        jdss($scfg, ['nas-volume', 'create', $name, '--size', $size])
            if $exit == EXIT_NOT_FOUND;
        jdss($scfg, ['nas-volume', 'attach', $name, '--mountpoint', $path]);
    } else {
        my ($exit) = jdss($scfg, ['volume', 'show', $name], allow => [EXIT_NOT_FOUND]);
        jdss($scfg, ['volume', 'create', $name, '--size', $size])
            if $exit == EXIT_NOT_FOUND;
        # a local file system: never mounted by two nodes at once
        my $device = jdss_value($scfg, 'path', 'volume', 'attach', $name,
            '--exclusive');
        mount_content_device($device, $path);
    }
    for my $vtype (qw(iso vztmpl backup)) {
        make_path($class->get_subdir($scfg, $vtype)) if $scfg->{content}->{$vtype};
    }
    return 1;
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
    my $fstype = '';
    run_command(['blkid', '-o', 'value', '-s', 'TYPE', $device],
        outfunc => sub { $fstype .= $_[0] }, noerr => 1);
    die "Unable identify file system type for content storage, if that is a "
        . "first run, format $device to a file system of your choise.\n"
        if $fstype eq '';
    run_command(['mount', '-t', $fstype, $device, $path]);
}

sub deactivate_storage {
    my ($class, $storeid, $scfg, $cache) = @_;
    return 1 if !has_content_volume($scfg) || !defined($scfg->{content_volume_name});
    my $name = $scfg->{content_volume_name};
    my $path = content_path($scfg);
    if (content_volume_type($scfg) eq 'nfs') {
        jdss($scfg, ['nas-volume', 'detach', $name, '--mountpoint', $path]);
    } else {
        run_command(['umount', $path]) if defined(mounted_at($path));
        jdss($scfg, ['volume', 'detach', $name]);
    }
    return 1;
}

# images -----------------------------------------------------------------

sub alloc_image {
    my ($class, $storeid, $scfg, $vmid, $fmt, $name, $size) = @_;
    die "unsupported format '$fmt'\n" if $fmt ne 'raw';
    die "illegal name '$name' - should be 'vm-$vmid-*'\n"
        if defined($name) && $name !~ m/^vm-\Q$vmid\E-/;
    $name //= $class->find_free_diskname($storeid, $scfg, $vmid, $fmt);
    jdss($scfg, ['volume', 'create', $name, '--size', "${size}K"]);
    return $name;
}

sub free_image {
    my ($class, $storeid, $scfg, $volname, $isBase, $format) = @_;
    my (undef, $name) = $class->parse_volname($volname);
    jdss($scfg, ['volume', 'detach', $name], allow => [EXIT_NOT_FOUND]);
    jdss($scfg, ['volume', 'delete', $name, '--recursive'], allow => [EXIT_NOT_FOUND]);
    return undef;
}

sub list_images {
    my ($class, $storeid, $scfg, $vmid, $vollist, $cache) = @_;
    my $volumes = $cache->{joviandss}->{$storeid} //= list_volumes($scfg);
    my %wanted = map { $_ => 1 } @{ $vollist // [] };
    my $res = [];
    for my $volume (@$volumes) {
        my $name = $volume->{name};
        next if $name !~ m/^(?:vm|base)-(\d+)-/;
        my $owner = $1;
        my ($volname, $parent) = ($name, undef);
        my ($source) = split /\@/, ($volume->{origin} // '');
        if ($source && $source =~ m/^base-\d+-/) {
            $volname = "$source/$name";
            $parent = "$storeid:$source";
        }
        my $volid = "$storeid:$volname";
        if ($vollist) {
            next if !$wanted{$volid};
        } elsif (defined($vmid)) {
            next if $owner ne $vmid;
        }
        push @$res, { volid => $volid, format => 'raw', size => $volume->{size},
            vmid => $owner, parent => $parent, ctime => $volume->{creation} };
    }
    return $res;
}

sub list_volumes {
    my ($scfg) = @_;
    if (my $reply = agent_request($scfg, 'volume_list')) {
        return $reply->{data} if $reply->{ok};
        die "jdss: $reply->{message}\n";
    }
    return jdss_json($scfg, 'volume', 'list');
}

sub volume_size_info {
    my ($class, $scfg, $storeid, $volname, $timeout) = @_;
    my ($vtype, $name) = $class->parse_volname($volname);
    if ($vtype ne 'images') {
        local $scfg->{path} = content_path($scfg);
        return $class->SUPER::volume_size_info($scfg, $storeid, $volname, $timeout);
    }
    my $volume = jdss_json($scfg, 'volume', 'show', $name);
    return $volume->{size} if !wantarray;
    my ($source) = split /\@/, ($volume->{origin} // '');
    return ($volume->{size}, 'raw', $volume->{used}, $source || undef,
        $volume->{creation});
}

sub volume_resize {
    my ($class, $scfg, $storeid, $volname, $size, $running, $snapname) = @_;
    die "resizing a snapshot is not supported\n" if defined($snapname);
    my (undef, $name) = $class->parse_volname($volname);
    my $new = jdss_json($scfg, 'volume', 'resize', $name, '--size', $size,
        $running ? ('--rescan') : ());
    return $new->{size};
}

sub activate_volume {
    my ($class, $storeid, $scfg, $volname, $snapname, $cache, $hints) = @_;
    my ($vtype, $name) = $class->parse_volname($volname);
    return 1 if $vtype ne 'images';
    jdss($scfg, ['volume', 'attach', $name,
        snapshot_args($snapname)]);
    return 1;
}

sub deactivate_volume {
    my ($class, $storeid, $scfg, $volname, $snapname, $cache) = @_;
    my ($vtype, $name) = $class->parse_volname($volname);
    return 1 if $vtype ne 'images';
    jdss($scfg, ['volume', 'detach', $name,
        snapshot_args($snapname)]);
    return 1;
}

sub map_volume {
    my ($class, $storeid, $scfg, $volname, $snapname) = @_;
    my (undef, $name) = $class->parse_volname($volname);
    return jdss_value($scfg, 'path', 'volume', 'attach', $name,
        snapshot_args($snapname));
}

sub unmap_volume {
    my ($class, $storeid, $scfg, $volname, $snapname) = @_;
    my (undef, $name) = $class->parse_volname($volname);
    jdss($scfg, ['volume', 'detach', $name,
        snapshot_args($snapname)]);
    return 1;
}

# snapshots --------------------------------------------------------------

sub volume_snapshot {
    my ($class, $scfg, $storeid, $volname, $snap) = @_;
    my (undef, $name) = $class->parse_volname($volname);
    jdss($scfg, ['snapshot', 'create', $name, $snap]);
    return undef;
}

sub volume_snapshot_delete {
    my ($class, $scfg, $storeid, $volname, $snap, $running) = @_;
    my (undef, $name) = $class->parse_volname($volname);
    jdss($scfg, ['snapshot', 'delete', $name, $snap]);
    return undef;
}

sub volume_rollback_is_possible {
    my ($class, $scfg, $storeid, $volname, $snap, $blockers) = @_;
    my (undef, $name) = $class->parse_volname($volname);
    my $check = jdss_json($scfg, 'snapshot', 'rollback', $name, $snap, '--dry-run');
    return 1 if $check->{possible};
    push @$blockers, @{ $check->{blockers} } if $blockers;
    die "can't rollback '$name' to '$snap': clones depend on newer snapshots: "
        . join(', ', @{ $check->{clones} }) . "\n" if @{ $check->{clones} };
    die "can't rollback, '$snap' is not most recent snapshot on '$name' (newer: "
        . join(', ', @{ $check->{blockers} }) . ")\n";
}

sub volume_snapshot_rollback {
    my ($class, $scfg, $storeid, $volname, $snap) = @_;
    my (undef, $name) = $class->parse_volname($volname);
    jdss($scfg, ['snapshot', 'rollback', $name, $snap]);
    return undef;
}

sub volume_snapshot_info {
    my ($class, $scfg, $storeid, $volname) = @_;
    my (undef, $name) = $class->parse_volname($volname);
    my $snapshots = jdss_json($scfg, 'snapshot', 'list', $name);
    return { map { $_->{name} => { id => $_->{creation} . '-' . $_->{name},
        timestamp => $_->{creation} } } @$snapshots };
}

sub volume_snapshot_needs_fsfreeze { return 0; }

sub volume_qemu_snapshot_method { return 'storage'; }

sub volume_has_feature {
    my ($class, $scfg, $feature, $storeid, $volname, $snapname, $running, $opts) = @_;
    my $features = {
        snapshot => { current => 1, snap => 1 },
        clone => { base => 1, snap => 1 },
        template => { current => 1 },
        copy => { base => 1, current => 1 },
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
    jdss($scfg, ['volume', 'detach', $name]);
    jdss($scfg, ['volume', 'rename', $name, $newname]);
    jdss($scfg, ['snapshot', 'create', $newname, '__base__']);
    return $basename ? "$basename/$newname" : $newname;
}

sub clone_image {
    my ($class, $scfg, $storeid, $volname, $vmid, $snap) = @_;
    my ($vtype, $basename, $basevmid, undef, undef, $isBase) =
        $class->parse_volname($volname);
    die "clone_image only works on base images\n" if !$isBase && !$snap;
    $snap ||= '__base__';
    my $name = $class->find_free_diskname($storeid, $scfg, $vmid, 'raw');
    jdss($scfg, ['volume', 'clone', $basename, $name, '--snapshot', $snap]);
    return $isBase ? "$basename/$name" : $name;
}

sub rename_volume {
    my ($class, $scfg, $storeid, $source_volname, $target_vmid, $target_volname) = @_;
    my (undef, $source, undef, $basename) = $class->parse_volname($source_volname);
    $target_volname //= $class->find_free_diskname($storeid, $scfg, $target_vmid, 'raw');
    jdss($scfg, ['volume', 'rename', $source, $target_volname]);
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

sub volume_export {
    my ($class, $scfg, $storeid, $fh, $volname, $format, $snapshot, $base_snapshot,
        $with_snapshots) = @_;
    die "unsupported export stream format for $class: $format\n" if $format ne 'raw+size';
    die "cannot export incremental streams or snapshots in raw+size\n"
        if $base_snapshot || $with_snapshots;
    my (undef, $name) = $class->parse_volname($volname);
    my $fd = fileno($fh) // die "internal error: invalid file handle for volume_export\n";
    jdss($scfg, ['volume', 'export', $name,
        snapshot_args($snapshot)], output => ">&$fd");
    return;
}

sub volume_import {
    my ($class, $scfg, $storeid, $fh, $volname, $format, $snapshot, $base_snapshot,
        $with_snapshots, $allow_rename) = @_;
    die "unsupported import stream format for $class: $format\n" if $format ne 'raw+size';
    die "cannot import incremental streams or snapshots in raw+size\n"
        if $base_snapshot || $with_snapshots;
    my (undef, $name, $vmid) = $class->parse_volname($volname);
    my $fd = fileno($fh) // die "internal error: invalid file handle for volume_import\n";
    my ($exit) = jdss($scfg, ['volume', 'show', $name], allow => [EXIT_NOT_FOUND]);
    if ($exit != EXIT_NOT_FOUND) {
        die "volume '$name' already exists\n" if !$allow_rename;
        $name = $class->find_free_diskname($storeid, $scfg, $vmid, 'raw');
    }
    jdss($scfg, ['volume', 'import', $name], input => "<&$fd");
    return "$storeid:$name";
}

1;
