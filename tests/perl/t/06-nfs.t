#!/usr/bin/perl
# The joviandss-nfs type through the real PVE::Storage and the real jdss,
# on the fake backend and on the REST emulator: the NAS volume is a real
# directory, bind-mounted at the storage's path (the nfs-fake transport),
# so disks are real files that qemu-img and qemu-io work on. Runs as root
# in a mount namespace of its own: no mount outlives the test.
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
use File::Path qw(make_path);
use File::Temp qw(tempdir);

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

sub setup {
    my ($backend, $dir) = @_;
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
        . "\tcontent images,rootdir,iso,vztmpl,backup,snippets,import\n\tshared 1\n\n");
    return $emulator;
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

for my $backend ('fake', 'rest') {
    subtest "joviandss-nfs workflows on the $backend backend" => sub {
        my $dir = tempdir(CLEANUP => 1);
        my $emulator = setup($backend, $dir);
        my $cfg = PVE::Storage::config();
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

        # raw+size and qcow2+size export and import (storage migration)
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
        my $q = PVE::Storage::vdisk_alloc($cfg, $id, 105, 'qcow2', undef, 64 * 1024);
        ok(qemu_io(scalar(PVE::Storage::path($cfg, $q)), 'qcow2', 'write -P 0x55 0 1M'),
            'write a qcow2 disk');
        open($out, '>', $stream) or die;
        # qcow2+size is what Proxmox offers with_snapshots (the file's
        # own snapshots: none here, the guest's are on the appliance)
        PVE::Storage::volume_export($cfg, $out, $q, 'qcow2+size', undef, undef, 1);
        close($out);
        open($in, '<', $stream) or die;
        $imported = PVE::Storage::volume_import($cfg, $in, "$id:106/vm-106-disk-0.qcow2",
            'qcow2+size', undef, undef, 1, 0);
        close($in);
        ok(qemu_io(scalar(PVE::Storage::path($cfg, $imported)), 'qcow2', 'read -P 0x55 0 1M'),
            'qcow2+size import has the data');

        # file content: backups and ISOs are listed
        make_path("$mnt/dump");
        for my $file ("dump/vzdump-qemu-100-2025_01_01-00_00_00.vma.zst", "template/iso/x.iso") {
            open(my $fh, '>', "$mnt/$file") or die "$file: $!";
            print $fh "data\n";
            close($fh);
        }
        is_deeply(volids(PVE::Storage::volume_list($cfg, $id, undef, 'backup')),
            ["$id:backup/vzdump-qemu-100-2025_01_01-00_00_00.vma.zst"], 'backup listing');
        is_deeply(volids(PVE::Storage::volume_list($cfg, $id, undef, 'iso')),
            ["$id:iso/x.iso"], 'ISO listing');

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
