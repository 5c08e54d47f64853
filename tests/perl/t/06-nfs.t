#!/usr/bin/perl
# The joviandss-nfs type through the real PVE::Storage and the real jdss,
# on the fake backend and on the REST emulator: the NAS volume is a real
# directory, bind-mounted at the storage's path (the nfs-fake transport),
# so disks are real files that qemu-img and qemu-io work on; a stopped
# bindfs stands for a mount that hangs, the emulator's fault plan for an
# appliance away. Runs as root in a mount namespace of its own: no mount
# outlives the test.
use strict;
use warnings;

BEGIN {
    if ($> != 0) {
        print "1..0 # SKIP mounting needs root\n";
        exit 0;
    }
    if (!$ENV{JDSS_TEST_PRIVATE_MOUNTS}) {
        $ENV{JDSS_TEST_PRIVATE_MOUNTS} = 1;
        $ENV{PERL5LIB} = join(':', @INC);
        exec('unshare', '--mount', '--propagation', 'private', '--', $^X, $0, @ARGV)
            or die "unshare: $!";
    }
}

use Test::More;
use File::Basename qw(dirname);
use File::Find qw(find);
use File::Path qw(make_path);
use File::Temp qw(tempdir);
use JSON;
use POSIX ();
use Time::HiRes qw(time sleep);

use RealPVE;
use JdssTest qw(jdss_bin write_yaml start_emulator stop_emulator);

my $jdss = jdss_bin() or plan skip_all => 'jdss is not installed (run make develop)';
plan skip_all => 'qemu-img and qemu-io are needed'
    if system('sh', '-c', 'command -v qemu-img >/dev/null && command -v qemu-io >/dev/null');
$PVE::Storage::Custom::OpenEJovianDSS::Common::JDSS = $jdss;
my $P = 'PVE::Storage::Custom::OpenEJovianDSSNFSPlugin';
my $M = 2**20;
my $id = 'nfs1';

sub mounts_under {
    my ($dir) = @_;
    open(my $fh, '<', '/proc/self/mounts') or die "mounts: $!";
    my @points = grep { $_ eq $dir || index($_, "$dir/") == 0 }
        map { (split ' ')[1] } <$fh>;
    return \@points;
}

sub qemu_io {
    my ($path, $format, $command) = @_;
    my $out = `qemu-io -f $format -c '$command' '$path' 2>&1`;
    my $ok = $? == 0 && $out !~ /Pattern verification failed|error/i;
    diag("qemu-io $path: $out") if !$ok;
    return $ok;
}

# A storage on a backend, in a directory of its own: (directory, emulator
# or undef, storage configuration).
sub setup {
    my ($backend) = @_;
    my $dir = tempdir(CLEANUP => 1);
    my %yaml = (backend => 'fake', fake_state_dir => "$dir/state", fake_pool_size => '100G',
        rest_api_addresses => ['127.0.0.1'], nas_transport => 'nfs-fake');
    my $emulator;
    if ($backend eq 'rest') {
        $emulator = start_emulator($dir);
        %yaml = (backend => 'joviandss', rest_api_addresses => ['127.0.0.1'],
            rest_api_port => $emulator->{port}, driver_ssl_cert_path => $emulator->{cert},
            rest_api_password_file => $emulator->{password_file},
            nas_transport => 'nfs-fake', fake_nfs_root => "$dir/emulator");
    }
    my $yaml = write_yaml("$dir/jdss.yaml", %yaml);
    RealPVE::write_storage_cfg("joviandss-nfs: $id\n\texport /Pools/Pool-0/pve-ds\n"
        . "\tpath $dir/mnt\n\tconfig $yaml\n\tnas_volume_size 2\n"
        . "\tcontent images,rootdir,iso,vztmpl,backup,snippets,import\n\tshared 1\n\n"
        . "dir: target\n\tpath $dir/target\n\tcontent images\n\n");
    return ($dir, $emulator, PVE::Storage::config());
}

sub jdss_json {
    my ($cfg, @args) = @_;
    return PVE::Storage::Custom::OpenEJovianDSS::Common::run_json($id, $cfg->{ids}->{$id},
        [@args]);
}

sub leftovers {
    my ($cfg, $dir) = @_;
    my @clones = grep { /^t_/ } map { $_->{name} } @{ jdss_json($cfg, 'nas-volume', 'list') };
    my @shares = grep { /^t_/ } map { $_->{name} } @{ jdss_json($cfg, 'share', 'list') };
    my @cleanup = map { $_->{name} } @{ jdss_json($cfg, 'cleanup', '--dry-run') };
    return { clones => \@clones, shares => \@shares, cleanup => \@cleanup,
        mounts => [grep { $_ ne "$dir/mnt" } @{ mounts_under($dir) }] };
}
my $NOTHING = { clones => [], shares => [], cleanup => [], mounts => [] };

sub volids { return [sort map { $_->{volid} } @{ $_[0] }]; }

sub files_under {
    my ($dir) = @_;
    my @files;
    find({ wanted => sub { push @files, $_ if -f $_ }, no_chdir => 1 }, $dir) if -d $dir;
    return [sort @files];
}

sub write_files {
    my ($root, @files) = @_;
    for my $file (@files) {
        make_path(dirname("$root/$file"));
        open(my $fh, '>', "$root/$file") or die "$file: $!";
        print $fh "data\n";
        close($fh);
    }
}

# Guest snapshots are on the appliance, never in a stream: one with
# snapshots (what Proxmox asks for to migrate a qcow2 disk) is refused both
# ways while the guest has snapshots, and nothing is written; once it has
# none the disk goes out with its data; without snapshots raw+size stays.
sub snapshot_streams_refused {
    my ($cfg, $dir, $raw) = @_;
    my $mnt = "$dir/mnt";
    my $q = PVE::Storage::vdisk_alloc($cfg, $id, 105, 'qcow2', undef, 64 * 1024);
    ok(qemu_io(scalar(PVE::Storage::path($cfg, $q)), 'qcow2', 'write -P 0x55 0 1M'),
        'write a qcow2 disk');
    PVE::Storage::volume_snapshot($cfg, $q, 'kept');
    eval { PVE::Storage::storage_migrate($cfg, $q, undef, 'target', { with_snapshots => 1 }) };
    is($@, "cannot migrate from storage type 'joviandss-nfs' to 'dir'\n",
        'a migration with snapshots is refused');
    is_deeply(files_under("$dir/target"), [], 'nothing written on the target');
    my $local = PVE::Storage::vdisk_alloc($cfg, 'target', 107, 'qcow2', undef, 64 * 1024);
    my $local_path = scalar(PVE::Storage::path($cfg, $local));
    is(system('qemu-img', 'snapshot', '-c', 'inner', $local_path), 0,
        'a qcow2 file with a snapshot of its own on a directory storage');
    eval { PVE::Storage::storage_migrate($cfg, $local, undef, $id, { with_snapshots => 1 }) };
    is($@, "cannot migrate from storage type 'dir' to 'joviandss-nfs'\n",
        'a migration with snapshots into this storage is refused');
    ok(!-e "$mnt/images/107", 'nothing written here');
    # pvesm export and import asked directly
    my $stream = "$dir/stream";
    open(my $out, '>', $stream) or die;
    eval { PVE::Storage::volume_export($cfg, $out, $q, 'qcow2+size', undef, undef, 1) };
    close($out);
    like($@, qr/together with their snapshots in a joviandss-nfs storage/,
        'an export with snapshots is refused');
    is(-s $stream, 0, 'nothing exported');
    open($out, '>', $stream) or die;
    PVE::Storage::volume_export($cfg, $out, $local, 'qcow2+size', undef, undef, 1);
    close($out);
    open(my $in, '<', $stream) or die;
    eval { PVE::Storage::volume_import($cfg, $in, "$id:107/vm-107-disk-0.qcow2", 'qcow2+size',
        undef, undef, 1, 0) };
    close($in);
    like($@, qr/together with their snapshots in a joviandss-nfs storage/,
        'an import with snapshots is refused');
    ok(!-e "$mnt/images/107", 'nothing imported');
    is_deeply([PVE::Storage::volume_transfer_formats($cfg, $raw, 'target:107/vm-107-disk-1.raw',
        undef, undef, 0)], ['raw+size'], 'without snapshots: raw+size');
    PVE::Storage::volume_snapshot_delete($cfg, $q, 'kept');
    is_deeply([PVE::Storage::volume_transfer_formats($cfg, $q, 'target:109/vm-109-disk-0.qcow2',
        undef, undef, 1)], ['qcow2+size'], 'no snapshot left: the qcow2 disk may go out');
    open($out, '>', $stream) or die;
    PVE::Storage::volume_export($cfg, $out, $q, 'qcow2+size', undef, undef, 1);
    close($out);
    open($in, '<', $stream) or die;
    my $moved = PVE::Storage::volume_import($cfg, $in, 'target:109/vm-109-disk-0.qcow2',
        'qcow2+size', undef, undef, 1, 0);
    close($in);
    ok(qemu_io(scalar(PVE::Storage::path($cfg, $moved)), 'qcow2', 'read -P 0x55 0 1M'),
        'and arrives with its data');
    PVE::Storage::vdisk_free($cfg, $_) for $q, $local, $moved;
}

# Every content type on the mount, as Proxmox lists it.
sub content_listed {
    my ($cfg, $mnt) = @_;
    my $vmdk = PVE::Storage::vdisk_alloc($cfg, $id, 108, 'vmdk', undef, 64 * 1024);
    is($vmdk, "$id:108/vm-108-disk-0.vmdk", 'vmdk disk');
    like(`qemu-img info '$mnt/images/108/vm-108-disk-0.vmdk'`, qr/^file format: vmdk$/m,
        'a vmdk file');
    is_deeply([map { "$_->{volid} $_->{format}" } @{ PVE::Storage::vdisk_list($cfg, $id, 108)->{$id} }],
        ["$vmdk vmdk"], 'listed as vmdk');
    RealPVE::write_guest(200, "arch: amd64\n", 'lxc');
    my $rootfs = PVE::Storage::vdisk_alloc($cfg, $id, 200, 'raw', undef, 64 * 1024);
    is_deeply(volids(PVE::Storage::volume_list($cfg, $id, 200, 'rootdir')), [$rootfs],
        "a container's volume is listed as rootdir");
    is_deeply(PVE::Storage::volume_list($cfg, $id, 200, 'images'), [], 'not as images');
    is(PVE::Storage::volume_has_feature($cfg, 'snapshot', $rootfs), 1,
        'a container volume has snapshots');
    eval { PVE::Storage::vdisk_alloc($cfg, $id, 200, 'subvol', undef, 64 * 1024) };
    like($@, qr/^storage does not support subvol quotas$/m, 'a subvol with a size is refused');
    is_deeply([glob("$mnt/images/200/subvol-*")], [], 'and not made');
    my $subvol = PVE::Storage::vdisk_alloc($cfg, $id, 200, 'subvol', undef, 0);
    ok(-d scalar(PVE::Storage::path($cfg, $subvol)),
        'a subvol without a size is a directory, as on Proxmox NFS');
    ok(!PVE::Storage::volume_has_feature($cfg, 'snapshot', $subvol),
        'without snapshots (a rollback restores a file)');
    my $tmpl = 'debian-12-standard_12.7-1_amd64.tar.zst';
    write_files($mnt, "template/cache/$tmpl", 'snippets/hook.yaml', 'import/appliance.ova',
        'import/appliance.ovf', 'import/notes.txt');
    is_deeply(volids(PVE::Storage::template_list($cfg, $id, 'vztmpl')->{$id}),
        ["$id:vztmpl/$tmpl"], 'container template listing');
    is(scalar(PVE::Storage::path($cfg, "$id:vztmpl/$tmpl")), "$mnt/template/cache/$tmpl",
        'a template is a file on the mount');
    is_deeply(volids(PVE::Storage::template_list($cfg, $id, 'snippets')->{$id}),
        ["$id:snippets/hook.yaml"], 'snippet listing');
    is_deeply(volids(PVE::Storage::volume_list($cfg, $id, undef, 'import')),
        ["$id:import/appliance.ova", "$id:import/appliance.ovf"], 'import listing');
    my %content = map { $_->{volid} => $_->{content} } @{ PVE::Storage::volume_list($cfg, $id) };
    is_deeply([@content{ $vmdk, $rootfs, "$id:vztmpl/$tmpl", "$id:snippets/hook.yaml",
        "$id:import/appliance.ova" }], [qw(images rootdir vztmpl snippets import)],
        'one listing of every content');
    PVE::Storage::vdisk_free($cfg, $_) for $vmdk, $rootfs, $subvol;
    ok(!-e "$mnt/images/200/" . (split m{/}, $subvol)[-1], 'the subvol is freed');
}

# A full clone of a disk that is no template: Proxmox copies it into a new
# volume (qemu-img convert, as qm clone does); a linked clone needs one.
sub full_copy {
    my ($cfg, $mnt, $raw) = @_;    # $raw holds 0x41
    is(PVE::Storage::volume_has_feature($cfg, 'copy', $raw), 1, 'copy: offered');
    ok(!PVE::Storage::volume_has_feature($cfg, 'copy', $raw, 'snap'),
        'copy from a snapshot: not offered');
    ok(!PVE::Storage::volume_has_feature($cfg, 'clone', $raw), 'linked clone: not offered');
    eval { PVE::Storage::vdisk_clone($cfg, $raw, 109, undef) };
    like($@, qr/clone_image only works on base images/, 'and refused');
    ok(!-e "$mnt/images/109", 'nothing made');
    my $src = scalar(PVE::Storage::path($cfg, $raw));
    my $size = PVE::Storage::volume_size_info($cfg, $raw);
    my $copy = PVE::Storage::vdisk_alloc($cfg, $id, 109, 'vmdk', undef, $size / 1024);
    my $dst = scalar(PVE::Storage::path($cfg, $copy));
    is(system('qemu-img', 'convert', '-n', '-f', 'raw', '-O', 'vmdk', $src, $dst), 0,
        'qemu-img convert into a new vmdk volume');
    ok(qemu_io($dst, 'vmdk', 'read -P 0x41 0 1M'), 'the copy has the data');
    ok(qemu_io($dst, 'vmdk', 'write -P 0x79 0 1M') && qemu_io($src, 'raw', 'read -P 0x41 0 1M'),
        'and is a disk of its own');
    is(PVE::Storage::volume_size_info($cfg, $copy), $size, 'of the same size');
    PVE::Storage::vdisk_free($cfg, $copy);
}

for my $backend ('fake', 'rest') {
    subtest "joviandss-nfs workflows on the $backend backend" => sub {
        my ($dir, $emulator, $cfg) = setup($backend);
        my $mnt = "$dir/mnt";

        # activation makes the NAS volume, shares and mounts it
        PVE::Storage::activate_storage($cfg, $id);
        is_deeply(mounts_under($dir), [$mnt], 'activate_storage mounts the NAS volume');
        ok(-d "$mnt/images" && -d "$mnt/template/iso" && -d "$mnt/dump",
            'content directories made');
        PVE::Storage::activate_storage($cfg, $id);
        is_deeply(mounts_under($dir), [$mnt], 'activating again keeps the one mount');
        my $info = PVE::Storage::storage_info($cfg);
        is($info->{$id}->{active}, 1, 'status: active');
        is($info->{$id}->{total}, 2 * 2**30, 'status: the quota of the NAS volume');

        # disks as files
        my $raw = PVE::Storage::vdisk_alloc($cfg, $id, 100, 'raw', undef, 64 * 1024);
        my $qcow = PVE::Storage::vdisk_alloc($cfg, $id, 100, 'qcow2', 'vm-100-disk-1.qcow2',
            64 * 1024);
        my $other = PVE::Storage::vdisk_alloc($cfg, $id, 101, 'raw', undef, 64 * 1024);
        is($raw, "$id:100/vm-100-disk-0.raw", 'raw disk');
        is($qcow, "$id:100/vm-100-disk-1.qcow2", 'qcow2 disk');
        is_deeply(volids(PVE::Storage::vdisk_list($cfg, $id, 100)->{$id}), [$raw, $qcow],
            'vdisk_list');
        my %path = map { $_ => scalar(PVE::Storage::path($cfg, $_)) } $raw, $qcow, $other;
        is($path{$raw}, "$mnt/images/100/vm-100-disk-0.raw", 'a file on the mount');
        is(PVE::Storage::volume_size_info($cfg, $qcow), 64 * $M, 'qcow2 size');
        ok(qemu_io($path{$raw}, 'raw', 'write -P 0x41 0 1M'), 'write raw');
        ok(qemu_io($path{$qcow}, 'qcow2', 'write -P 0x51 0 1M'), 'write qcow2');
        ok(qemu_io($path{$other}, 'raw', 'write -P 0x61 0 1M'), 'write the other guest');

        # a guest snapshot: one dataset snapshot for both disks
        PVE::Storage::volume_snapshot($cfg, $_, 'before-upgrade') for $raw, $qcow;
        my $snaps = jdss_json($cfg, 'nas-snapshot', 'list', 'pve-ds');
        is_deeply([map { $_->{name} } @$snaps], ['100_before-upgrade'],
            'one dataset snapshot, named after guest and snapshot');
        is_deeply([keys %{ PVE::Storage::volume_snapshot_info($cfg, $raw) }],
            ['before-upgrade'], 'volume_snapshot_info gives the Proxmox name');
        is_deeply(PVE::Storage::volume_snapshot_info($cfg, $other), {},
            'no snapshot for the other guest');
        is($P->volume_qemu_snapshot_method($id, $cfg->{ids}->{$id}, $qcow), 'storage',
            'qcow2 internal snapshots are not used');
        is(`qemu-img snapshot -l '$path{$qcow}'`, '', 'no internal snapshot in the qcow2 file');

        # changes, then the rollback of each disk brings its data back
        ok(qemu_io($path{$_->[0]}, $_->[1], "write -P $_->[2] 0 1M"), "change $_->[0]")
            for [$raw, 'raw', '0x42'], [$qcow, 'qcow2', '0x52'], [$other, 'raw', '0x62'];
        ok(PVE::Storage::volume_rollback_is_possible($cfg, $raw, 'before-upgrade'),
            'rollback is possible');
        eval { PVE::Storage::volume_rollback_is_possible($cfg, $raw, 'never') };
        like($@, qr/has no snapshot 100_never/, 'rollback to an unknown snapshot refused');
        PVE::Storage::volume_snapshot_rollback($cfg, $raw, 'before-upgrade');
        ok(qemu_io($path{$raw}, 'raw', 'read -P 0x41 0 1M'), 'raw: the data came back');
        ok(qemu_io($path{$qcow}, 'qcow2', 'read -P 0x52 0 1M'), 'the other disk unchanged');
        ok(qemu_io($path{$other}, 'raw', 'read -P 0x62 0 1M'), 'the other guest unchanged');
        PVE::Storage::volume_snapshot_rollback($cfg, $qcow, 'before-upgrade');
        ok(qemu_io($path{$qcow}, 'qcow2', 'read -P 0x51 0 1M'), 'qcow2: the data came back');
        is_deeply(leftovers($cfg, $dir), $NOTHING, 'no clone, share or mount left');

        # a crash after each change of a rollback; the rerun converges
        ok(qemu_io($path{$raw}, 'raw', 'write -P 0x43 0 1M'), 'change again');
        my $crashes = 0;
        for my $k (1 .. 8) {
            local $ENV{JDSS_CRASH_AFTER} = $k;
            eval { PVE::Storage::volume_snapshot_rollback($cfg, $raw, 'before-upgrade') };
            last if !$@;
            $crashes++;
            delete local $ENV{JDSS_CRASH_AFTER};
            # the killed jdss held cluster locks: pmxcfs drops them after
            # 120 s; age them as that much time would
            utime(0, 0, glob("$RealPVE::ROOT/priv/lock/jdss-*"));
            is_deeply(mounts_under($dir), [$mnt], "crash after change $k: no mount left");
            PVE::Storage::volume_snapshot_rollback($cfg, $raw, 'before-upgrade');
            ok(qemu_io($path{$raw}, 'raw', 'read -P 0x41 0 1M'),
                "crash after change $k: the rerun restores the data");
            is_deeply(leftovers($cfg, $dir), $NOTHING,
                "crash after change $k: the rerun leaves nothing");
            ok(qemu_io($path{$raw}, 'raw', 'write -P 0x43 0 1M'), 'change again');
        }
        cmp_ok($crashes, '>=', 4, 'crashes after clone, share, unshare and clone removal');
        opendir(my $dh, "$mnt/images/100") or die;
        is_deeply([sort grep { !/^\.\.?$/ } readdir($dh)],
            ['vm-100-disk-0.raw', 'vm-100-disk-1.qcow2'], 'no partial copy left');
        closedir($dh);

        # deleting the snapshot: each disk asks, one dataset snapshot goes
        PVE::Storage::volume_snapshot_delete($cfg, $_, 'before-upgrade') for $raw, $qcow;
        is_deeply(jdss_json($cfg, 'nas-snapshot', 'list', 'pve-ds'), [], 'snapshot deleted');

        # resize, rename, template and linked clone, full clone
        PVE::Storage::volume_resize($cfg, $raw, 128 * $M, 0);
        is(-s $path{$raw}, 128 * $M, 'resize grows the file');
        my $renamed = PVE::Storage::rename_volume($cfg, $other, 102);
        is($renamed, "$id:102/vm-102-disk-0.raw", 'rename to another guest');
        ok(qemu_io(scalar(PVE::Storage::path($cfg, $renamed)), 'raw', 'read -P 0x62 0 1M'),
            'renamed with its data');
        my $base = PVE::Storage::vdisk_create_base($cfg, $qcow);
        is($base, "$id:100/base-100-disk-1.qcow2", 'template disk');
        my $linked = PVE::Storage::vdisk_clone($cfg, $base, 103, undef);
        like($linked, qr{^$id:100/base-100-disk-1\.qcow2/103/vm-103-disk-0\.qcow2$},
            'linked clone');
        my $linked_path = scalar(PVE::Storage::path($cfg, $linked));
        like(`qemu-img info '$linked_path'`, qr/backing file: \.\.\/100\/base-100-disk-1\.qcow2/,
            'a qcow2 file backed by the template');
        ok(qemu_io($linked_path, 'qcow2', 'read -P 0x51 0 1M'), 'the clone reads the template');
        PVE::Storage::volume_snapshot($cfg, $linked, 's1');
        ok(qemu_io($linked_path, 'qcow2', 'write -P 0x71 0 1M'), 'write the clone');
        PVE::Storage::volume_snapshot_rollback($cfg, $linked, 's1');
        ok(qemu_io($linked_path, 'qcow2', 'read -P 0x51 0 1M'), 'linked clone rolled back');
        PVE::Storage::volume_snapshot_delete($cfg, $linked, 's1');

        # raw+size export and import (storage migration), not with snapshots
        my $stream = "$dir/stream";
        open(my $out, '>', $stream) or die;
        PVE::Storage::volume_export($cfg, $out, $raw, 'raw+size', undef, undef, 0);
        close($out);
        open(my $in, '<', $stream) or die;
        my $imported = PVE::Storage::volume_import($cfg, $in, "$id:104/vm-104-disk-0.raw",
            'raw+size', undef, undef, 0, 0);
        close($in);
        ok(qemu_io(scalar(PVE::Storage::path($cfg, $imported)), 'raw', 'read -P 0x41 0 1M'),
            'raw+size import has the data');
        snapshot_streams_refused($cfg, $dir, $raw);
        full_copy($cfg, $mnt, $raw);

        # file content: every type is listed
        write_files($mnt, "dump/vzdump-qemu-100-2025_01_01-00_00_00.vma.zst",
            "template/iso/x.iso");
        is_deeply(volids(PVE::Storage::volume_list($cfg, $id, undef, 'backup')),
            ["$id:backup/vzdump-qemu-100-2025_01_01-00_00_00.vma.zst"], 'backup listing');
        is_deeply(volids(PVE::Storage::volume_list($cfg, $id, undef, 'iso')),
            ["$id:iso/x.iso"], 'ISO listing');
        content_listed($cfg, $mnt);

        # delete, deactivate
        PVE::Storage::vdisk_free($cfg, $linked);
        PVE::Storage::vdisk_free($cfg, $base);
        ok(!-e "$mnt/images/100/base-100-disk-1.qcow2", 'the template is freed after its clone');
        PVE::Storage::vdisk_free($cfg, $raw);
        ok(!-e $path{$raw}, 'vdisk_free removes the file');
        PVE::Storage::deactivate_storage($cfg, $id);
        is_deeply(mounts_under($dir), [], 'deactivate_storage unmounts');
        stop_emulator($emulator) if $emulator;
    };
}

sub faults {
    my ($dir, @rules) = @_;
    JdssTest::write_file("$dir/emulator/faults.tmp", encode_json({ rules => \@rules }));
    rename("$dir/emulator/faults.tmp", "$dir/emulator/faults.json") or die "faults: $!";
    sleep(0.3);    # the emulator looks every 0.1 s
}

# storage_info as pvestatd asks it, and how long it took (a fresh answer:
# check_connection and status share one for 2 s).
sub timed_storage_info {
    my ($cfg) = @_;
    PVE::Storage::Custom::OpenEJovianDSS::Common::forget_pool_status($id);
    my $started = time();
    local $SIG{__WARN__} = sub { };    # Proxmox warns why it is inactive
    my $info = PVE::Storage::storage_info($cfg);
    return ($info->{$id}, time() - $started);
}

subtest 'joviandss-nfs status while the appliance is away' => sub {
    my ($dir, $emulator, $cfg) = setup('rest');
    my $scfg = $cfg->{ids}->{$id};
    PVE::Storage::activate_storage($cfg, $id);
    for my $fault ([refusing => { action => 'refuse' }],
        [hanging => { action => 'delay', seconds => 8 }]) {
        my ($what, $rule) = @$fault;
        faults($dir, $rule);
        my ($info, $took) = timed_storage_info($cfg);
        is($info->{active}, 0, "appliance $what: the storage is inactive");
        cmp_ok($took, '<', 5, sprintf("appliance $what: storage_info answers within 5 s (%.1f)",
            $took));
        PVE::Storage::Custom::OpenEJovianDSS::Common::forget_pool_status($id);
        my $started = time();
        is($P->check_connection($id, $scfg), 0, "appliance $what: check_connection gives 0");
        $took = time() - $started;
        cmp_ok($took, '<', 5, sprintf("appliance $what: within 5 s (%.1f)", $took));
    }
    faults($dir);
    my ($info) = timed_storage_info($cfg);
    is($info->{active}, 1, 'the appliance back: active again');
    PVE::Storage::deactivate_storage($cfg, $id);
    stop_emulator($emulator);
};

# A FUSE mount whose server is stopped: what a mount of an appliance gone
# away does (every access waits). Returns the server's PID.
sub hung_mount {
    my ($source, $mountpoint) = @_;
    make_path($source, $mountpoint);
    my $pid = fork() // die "fork: $!";
    exec('bindfs', '-f', $source, $mountpoint) or POSIX::_exit(1) if !$pid;
    for (1 .. 100) {
        last if @{ mounts_under($mountpoint) };
        sleep(0.05);
    }
    kill('STOP', $pid);
    return $pid;
}

sub release_hung_mount {
    my ($pid, $mountpoint) = @_;
    kill('CONT', $pid);
    system('umount', $mountpoint);
    waitpid($pid, 0);
}

for my $backend ('fake', 'rest') {
    subtest "joviandss-nfs on the $backend backend: stale and hung mounts" => sub {
        my ($dir, $emulator, $cfg) = setup($backend);
        my $mnt = "$dir/mnt";
        PVE::Storage::activate_storage($cfg, $id);
        my $disk = PVE::Storage::vdisk_alloc($cfg, $id, 100, 'raw', undef, 64 * 1024);
        my $path = scalar(PVE::Storage::path($cfg, $disk));
        ok(qemu_io($path, 'raw', 'write -P 0x41 0 1M'), 'write a disk');

        # the NAS volume made again (its data kept): the mount is stale
        my $ds = ($emulator ? "$dir/emulator" : "$dir/state") . '/Pool-0.nas/pve-ds';
        is(system("cp -a '$ds' '$ds.new' && rm -rf '$ds' && mv '$ds.new' '$ds'"), 0,
            'the NAS volume made again');
        ok(!-e $path, 'the stale mount shows nothing');
        PVE::Storage::activate_storage($cfg, $id);
        is_deeply(mounts_under($dir), [$mnt], 'activate_storage replaces the stale mount');
        is((stat($mnt))[1], (stat($ds))[1], 'by one of the NAS volume as it is now');
        ok(qemu_io($path, 'raw', 'read -P 0x41 0 1M'), 'the disk is there again');
        PVE::Storage::deactivate_storage($cfg, $id);

        SKIP: {
            skip 'bindfs is not installed (make system-deps)', 3
                if system('sh', '-c', 'command -v bindfs >/dev/null');
            my $pid = hung_mount("$dir/away", $mnt);
            my $started = time();
            eval { PVE::Storage::activate_storage($cfg, $id) };
            my $took = time() - $started;
            like($@, qr/does not answer within 5 s/, 'a hung mount is reported');
            cmp_ok($took, '<', 10, sprintf('in bounded time (%.1f s)', $took));
            my ($info) = timed_storage_info($cfg);
            is($info->{active}, 0, 'the storage shows as inactive');
            release_hung_mount($pid, $mnt);
        }
        is_deeply(mounts_under($dir), [], 'no mount left');
        stop_emulator($emulator) if $emulator;
    };
}

# pvesm add / remove: the joviandss type's checks, a password file of its own
subtest 'pvesm add and remove a joviandss-nfs storage' => sub {
    require PVE::API2::Storage::Config;
    my $API = 'PVE::API2::Storage::Config';
    my $dir = tempdir(CLEANUP => 1);
    my $emulator = start_emulator($dir);
    my $password = JdssTest::slurp($emulator->{password_file});
    chomp $password;
    RealPVE::write_storage_cfg('');
    my %params = (storage => 'nfs-a', type => 'joviandss-nfs',
        export => '/Pools/Pool-1/pve-files', path => "$dir/mnt", nas_volume_size => 10,
        content => 'images,iso,backup', shared => 1, user_name => 'admin',
        ssl_cert_verify => 0, control_addresses => '127.0.0.1',
        control_port => $emulator->{port}, server => '127.0.0.1',
        disable => 1);     # no activation: this machine has no NFS server
    my $pwfile = "$RealPVE::ROOT/priv/storage/joviandss-nfs/nfs-a.pw";
    eval { $API->create({ %params, user_password => 'wrong-password' }) };
    like($@, qr/cannot use the appliance: jdss: the appliance refused the login/,
        'a wrong password is refused');
    eval { $API->create({ %params, export => '/Pools/Pool-1/a/b', user_password => $password }) };
    like($@, qr{export '/Pools/Pool-1/a/b' is not /Pools/<pool>/<NAS volume>},
        'an export that names no NAS volume is refused');
    ok(!-e $pwfile, 'refused: no password file');
    $API->create({ %params, user_password => $password });
    my $text = RealPVE::read_file("$RealPVE::ROOT/storage.cfg");
    like($text, qr{^joviandss-nfs: nfs-a\n}m, 'added');
    unlike($text, qr/\Q$password\E/, 'no password in storage.cfg');
    is(RealPVE::read_file($pwfile), "user_password $password\n", 'its own password file');
    my $out = `JDSS_PVE_ROOT=$RealPVE::ROOT $jdss --storage nfs-a pool show -f json 2>&1`;
    like($out, qr/"name": "Pool-1"/, 'jdss takes the pool from export');
    $API->delete({ storage => 'nfs-a' });
    ok(!-e $pwfile, 'removed with its password file');
    stop_emulator($emulator);
};

done_testing();
