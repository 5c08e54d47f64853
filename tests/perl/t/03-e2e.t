#!/usr/bin/perl
# Every storage workflow a Proxmox user performs, through the real
# PVE::Storage and the real jdss: against the fake backend and against the
# REST emulator over HTTPS, with identical expectations.
use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use JSON::PP ();
use POSIX ();

use RealPVE;
use JdssTest qw(jdss_bin write_yaml start_emulator stop_emulator);
require PVE::API2::Storage::Content;

my $P = 'PVE::Storage::Custom::OpenEJovianDSSPlugin';
my $jdss = jdss_bin() or plan skip_all => 'jdss is not installed (run make develop)';
$PVE::Storage::Custom::OpenEJovianDSS::Common::JDSS = $jdss;
my $G = 2**30;
my $ROOT = $RealPVE::ROOT;

sub setup {
    my ($backend, $dir) = @_;
    my %common = (backend => 'fake', fake_state_dir => "$dir/state",
        fake_pool_size => '100G', rest_api_addresses => ['127.0.0.1'], thin_provision => 'true');
    my $emulator;
    if ($backend eq 'rest') {
        $emulator = start_emulator($dir);
        %common = (backend => 'joviandss', rest_api_addresses => ['127.0.0.1'],
            rest_api_port => $emulator->{port}, driver_ssl_cert_path => $emulator->{cert},
            rest_api_password_file => $emulator->{password_file}, thin_provision => 'true');
    }
    my $cfg = '';
    for my $pool ('Pool-0', 'Pool-1') {
        my $yaml = write_yaml("$dir/jdss-$pool.yaml", %common);
        $cfg .= "joviandss: s-$pool\n\tpool_name $pool\n\tconfig $yaml\n"
            . "\tcontent images,rootdir\n\tshared 1\n\n";
    }
    RealPVE::write_storage_cfg($cfg);
    return $emulator;
}

sub volids { return [map { $_->{volid} } @{ $_[0] }]; }

# Runs $code in $n processes at once; how many of them failed.
sub in_parallel {
    my ($n, $code) = @_;
    my @pids = map {
        my $pid = fork() // die "fork: $!";
        if (!$pid) {
            my $ok = eval { $code->(); 1 };
            print STDERR $@ if !$ok;
            POSIX::_exit($ok ? 0 : 1);
        }
        $pid;
    } 1 .. $n;
    return scalar(grep { waitpid($_, 0); $? != 0 } @pids);
}

for my $backend ('fake', 'rest') {
    subtest "Proxmox workflows on the $backend backend" => sub {
        my $dir = tempdir(CLEANUP => 1);
        my $emulator = setup($backend, $dir);
        my $cfg = PVE::Storage::config();
        my $id = 's-Pool-0';

        # status, as pvestatd and the GUI ask it
        my $info = PVE::Storage::storage_info($cfg);
        is($info->{$id}->{active}, 1, 'storage_info: active');
        is($info->{$id}->{total}, 100 * $G, 'storage_info: total');
        like($P->get_identity($cfg->{ids}->{$id}, $id), qr/^Pool-0-\d+$/,
            'get_identity: pool name and id');
        is($P->get_identity($cfg->{ids}->{$id}, $id),
            $P->get_identity($cfg->{ids}->{$id}, $id), 'identity is stable');

        # alloc, automatic and given names
        is(PVE::Storage::vdisk_alloc($cfg, $id, 100, 'raw', undef, 1024 * 1024),
            "$id:vm-100-disk-0", 'alloc without a name');
        is(PVE::Storage::vdisk_alloc($cfg, $id, 100, 'raw', '', 2 * 1024 * 1024),
            "$id:vm-100-disk-1", 'alloc with an empty name picks the next free one');
        is(PVE::Storage::vdisk_alloc($cfg, $id, 100, 'raw', 'vm-100-state-snap1', 512 * 1024),
            "$id:vm-100-state-snap1", 'vm state volume');
        eval { PVE::Storage::vdisk_alloc($cfg, $id, 100, 'raw', 'vm-100-disk-0', 1024) };
        like($@, qr/^jdss: volume 'vm-100-disk-0' already exists/, 'a taken name is refused');

        # listing: vdisk_list, and volume_list as pvesm list and the GUI do
        is_deeply(volids(PVE::Storage::vdisk_list($cfg, $id, 100)->{$id}),
            ["$id:vm-100-disk-0", "$id:vm-100-disk-1", "$id:vm-100-state-snap1"], 'vdisk_list');
        my $list = PVE::Storage::volume_list($cfg, $id, undef, 'images');
        is_deeply(volids($list), ["$id:vm-100-disk-0", "$id:vm-100-disk-1",
            "$id:vm-100-state-snap1"], 'volume_list images');
        is($list->[1]->{size}, 2 * $G, 'size in bytes');
        is($list->[0]->{content}, 'images', 'content type');
        is_deeply(PVE::Storage::volume_list($cfg, 's-Pool-1', undef, 'images'), [],
            'the other pool is separate');
        my $content = PVE::API2::Storage::Content->index({ node => $RealPVE::NODE,
            storage => $id, content => 'images' });
        is_deeply([sort map { $_->{volid} } @$content], volids($list),
            'the Content API lists them');

        # paths and activation
        like(PVE::Storage::path($cfg, "$id:vm-100-disk-0"), qr/vm-100-disk-0/, 'path');
        is(PVE::Storage::volume_size_info($cfg, "$id:vm-100-disk-1"), 2 * $G, 'size info');

        # snapshots, info, rollback checks
        PVE::Storage::volume_snapshot($cfg, "$id:vm-100-disk-0", 's1');
        PVE::Storage::volume_resize($cfg, "$id:vm-100-disk-0", 2 * $G, 0);
        PVE::Storage::volume_snapshot($cfg, "$id:vm-100-disk-0", 's2');
        my $snaps = PVE::Storage::volume_snapshot_info($cfg, "$id:vm-100-disk-0");
        is_deeply([sort keys %$snaps], ['s1', 's2'], 'volume_snapshot_info');
        ok($snaps->{s1}->{timestamp} > 0, 'timestamps');
        isnt($snaps->{s1}->{id}, $snaps->{s2}->{id}, 'ids differ');
        is($snaps->{s1}->{'virtual-size'}, $G, 'virtual size before the resize');
        is($snaps->{s2}->{'virtual-size'}, 2 * $G, 'virtual size after it');
        my @blockers;
        eval { PVE::Storage::volume_rollback_is_possible($cfg, "$id:vm-100-disk-0", 's1',
            \@blockers) };
        like($@, qr/not most recent snapshot on 'vm-100-disk-0' \(newer: s2 \(appliance\)\).*tag the guest 'force-rollback'/,
            'rollback blocked, blockers and the way through named');
        is_deeply(\@blockers, ['s2'], 'blockers filled');
        eval { PVE::Storage::volume_snapshot_rollback($cfg, "$id:vm-100-disk-0", 's1') };
        like($@, qr/^can't rollback, 's1' is not most recent snapshot/,
            'Proxmox asks before it rolls back: refused');
        eval { $P->volume_snapshot_rollback($cfg->{ids}->{$id}, $id, 'vm-100-disk-0', 's1') };
        like($@, qr/^jdss: rolling back volume 'vm-100-disk-0' to 's1' would destroy newer snapshots: s2/,
            'and the plugin alone refuses too, with one line');
        PVE::Storage::volume_snapshot_delete($cfg, "$id:vm-100-disk-0", 's2');
        is(PVE::Storage::volume_rollback_is_possible($cfg, "$id:vm-100-disk-0", 's1', []), 1,
            'rollback possible once it is the newest');
        PVE::Storage::volume_snapshot_rollback($cfg, "$id:vm-100-disk-0", 's1');
        is(PVE::Storage::volume_size_info($cfg, "$id:vm-100-disk-0"), $G,
            'the rollback restored the size the snapshot had');

        # a guest tagged force-rollback: newer snapshots go, and leave its config
        RealPVE::write_guest(100, "tags: prod;force-rollback\nparent: s5\n"
            . "scsi0: $id:vm-100-disk-0,size=1G\n\n[s3]\nsnaptime: 3\n\n"
            . "[s4]\nparent: s3\nsnaptime: 4\n\n[s5]\nparent: s4\nsnaptime: 5\n");
        PVE::Storage::volume_snapshot($cfg, "$id:vm-100-disk-0", $_) for qw(s3 s4 s5);
        my @forced;
        is(PVE::Storage::volume_rollback_is_possible($cfg, "$id:vm-100-disk-0", 's3', \@forced),
            1, 'force-rollback: possible');
        PVE::Storage::volume_snapshot_rollback($cfg, "$id:vm-100-disk-0", 's3');
        is_deeply([sort keys %{ PVE::Storage::volume_snapshot_info($cfg, "$id:vm-100-disk-0") }],
            ['s1', 's3'], 'force-rollback destroyed the newer snapshots');
        my $conf = RealPVE::read_file("$ROOT/nodes/$RealPVE::NODE/qemu-server/100.conf");
        unlike($conf, qr/^\[s[45]\]/m, 'and removed them from the guest configuration');
        like($conf, qr/^\[s3\]/m, 'the target snapshot stays');
        like($conf, qr/^parent: s3$/m, 'parents point at what is left');

        # HA guard
        mkdir("$ROOT/ha");
        JdssTest::write_file("$ROOT/ha/resources.cfg", "vm: 100\n\tstate started\n");
        eval { PVE::Storage::volume_snapshot_rollback($cfg, "$id:vm-100-disk-0", 's3') };
        like($@, qr/Proxmox HA manages it \(state 'started'\); run 'ha-manager set vm:100 --state ignored'/,
            'HA-managed guest: refused, with the way through');
        JdssTest::write_file("$ROOT/ha/resources.cfg", "vm: 100\n\tstate ignored\n");
        PVE::Storage::volume_snapshot_rollback($cfg, "$id:vm-100-disk-0", 's3');
        pass('state ignored: rollback runs');
        unlink("$ROOT/ha/resources.cfg");

        # template and linked clone
        my $base = PVE::Storage::vdisk_create_base($cfg, "$id:vm-100-disk-1");
        is($base, "$id:base-100-disk-1", 'template');
        my $clone = PVE::Storage::vdisk_clone($cfg, $base, 101);
        is($clone, "$id:base-100-disk-1/vm-101-disk-0", 'linked clone');
        my ($linked) = @{ PVE::Storage::vdisk_list($cfg, $id, 101)->{$id} };
        is($linked->{parent}, "$id:base-100-disk-1", 'parent listed');
        eval { PVE::Storage::vdisk_free($cfg, $base) };
        like($@, qr/^base volume 'base-100-disk-1' is still in use by linked clones/,
            'base in use: Proxmox sees the clone through list_images');
        # handed to another guest, the linked clone keeps the hidden snapshot
        # named after it: a new linked clone of guest 101 takes the next name
        my $moved = PVE::Storage::rename_volume($cfg, $clone, 103);
        is($moved, "$id:base-100-disk-1/vm-103-disk-0", 'linked clone handed to guest 103');
        my $again = PVE::Storage::vdisk_clone($cfg, $base, 101);
        is($again, "$id:base-100-disk-1/vm-101-disk-1",
            'a new linked clone of guest 101 takes the next free name');

        # linked clone from a snapshot, resize, rename
        is(PVE::Storage::volume_has_feature($cfg, 'copy', "$id:vm-100-disk-0", 's1'), 1,
            'full clone from a snapshot is offered');
        is(PVE::Storage::volume_resize($cfg, "$id:vm-100-disk-0", 3 * $G, 0), 3 * $G, 'resize');
        is(PVE::Storage::volume_size_info($cfg, "$id:vm-100-disk-0"), 3 * $G, 'new size');
        eval { PVE::Storage::volume_resize($cfg, "$id:vm-100-disk-0", $G, 0) };
        like($@, qr/only growing is supported/, 'no shrinking');
        is(PVE::Storage::rename_volume($cfg, "$id:vm-100-disk-0", 102), "$id:vm-102-disk-0",
            'rename to a free name of another guest');
        is_deeply(volids(PVE::Storage::vdisk_list($cfg, $id, 102)->{$id}),
            ["$id:vm-102-disk-0"], 'renamed disk listed');

        # concurrent allocations from six processes, one guest: Proxmox's
        # storage lock is not taken (held here by another node all along),
        # the appliance refuses a name taken meanwhile and the next is used
        my $storage_lock = "$ROOT/priv/lock/storage-$id";
        mkdir($storage_lock) or die "$storage_lock: $!";
        is(in_parallel(6, sub {
            my $volid = PVE::Storage::vdisk_alloc(PVE::Storage::config(), $id, 300,
                'raw', undef, 1024);
            PVE::Storage::volume_snapshot(PVE::Storage::config(), $volid, 'c');
        }), 0, 'six concurrent allocations with automatic names');
        is_deeply(volids(PVE::Storage::vdisk_list($cfg, $id, 300)->{$id}),
            [map { "$id:vm-300-disk-$_" } 0 .. 5], 'six distinct names');
        is(in_parallel(3, sub { PVE::Storage::vdisk_clone(PVE::Storage::config(), $base, 301) }),
            0, 'three concurrent linked clones');
        is_deeply(volids(PVE::Storage::vdisk_list($cfg, $id, 301)->{$id}),
            [map { "$id:base-100-disk-1/vm-301-disk-$_" } 0 .. 2], 'three distinct names');
        rmdir($storage_lock);

        # free, in the orders Proxmox uses (clone before base, base refused first)
        for my $volid ($moved, $again, (map { "$id:base-100-disk-1/vm-301-disk-$_" } 0 .. 2), $base,
            "$id:vm-102-disk-0", "$id:vm-100-state-snap1", map { "$id:vm-300-disk-$_" } 0 .. 5) {
            PVE::Storage::vdisk_free($cfg, $volid);
        }
        is_deeply(PVE::Storage::vdisk_list($cfg, $id)->{$id}, [], 'all freed');
        {
            my @warnings;
            local $SIG{__WARN__} = sub { push @warnings, @_ };
            PVE::Storage::vdisk_free($cfg, "$id:vm-102-disk-0");
            like("@warnings", qr/already gone/, 'freeing a gone volume says so');
        }
        unlink("$ROOT/nodes/$RealPVE::NODE/qemu-server/100.conf");
        is(stop_emulator($emulator), 0, 'emulator stopped cleanly') if $emulator;
    };
}

# Two nodes allocate for one guest without Proxmox's storage lock; the
# first one's create is lost before the appliance applied it, and the
# second would make that name while the first looks it up. Each must get
# a disk of its own.
subtest 'a lost create is never taken for the disk of another node' => sub {
    my $dir = tempdir(CLEANUP => 1);
    my $emulator = setup('rest', $dir);
    my $id = 's-Pool-0';
    JdssTest::write_file("$dir/emulator/faults.json", JSON::PP::encode_json({ rules => [
        { action => 'drop', method => 'POST', path => '/pools/Pool-0/volumes$', count => 1 },
        { action => 'delay', method => 'GET', path => '/volumes/v_vm-300-disk-0$', count => 1,
            seconds => 4 }] }));
    my @got;
    for my $start (0, 2) {
        sleep($start);
        pipe(my $r, my $w) or die "pipe: $!";
        my $pid = fork() // die "fork: $!";
        if (!$pid) {
            close($r);
            print $w (eval { PVE::Storage::vdisk_alloc(PVE::Storage::config(), $id, 300, 'raw',
                undef, 1024) } // "failed: $@");
            close($w);
            POSIX::_exit(0);
        }
        close($w);
        push @got, [$pid, $r];
    }
    my @volids = map { waitpid($_->[0], 0); local $/; readline($_->[1]) } @got;
    is_deeply([sort @volids], ["$id:vm-300-disk-0", "$id:vm-300-disk-1"],
        'two allocations, two disks');
    is_deeply(volids(PVE::Storage::vdisk_list(PVE::Storage::config(), $id, 300)->{$id}),
        ["$id:vm-300-disk-0", "$id:vm-300-disk-1"], 'both on the appliance');
    is(stop_emulator($emulator), 0, 'emulator stopped cleanly');
};

# jdss names a new disk itself (one call): the name Proxmox's own
# get_next_vm_diskname gives over the list Proxmox sees, however odd
subtest 'automatic names are the ones Proxmox would pick' => sub {
    my $dir = tempdir(CLEANUP => 1);
    setup('fake', $dir);
    my $cfg = PVE::Storage::config();
    my $id = 's-Pool-0';
    my $scfg = $cfg->{ids}->{$id};
    PVE::Storage::vdisk_alloc($cfg, $id, 400, 'raw', $_, 1024)
        for 'vm-400-disk-0', 'vm-400-disk-02', 'vm-400-disk-1', 'vm-400-state-x';
    PVE::Storage::vdisk_alloc($cfg, $id, 4000, 'raw', 'vm-4000-disk-3', 1024);
    PVE::Storage::vdisk_create_base($cfg, "$id:vm-400-disk-1");
    for my $n (1 .. 3) {
        my $seen = [map { $_->{volid} } @{ $P->list_images($id, $scfg, 400) }];
        my $proxmox = PVE::Storage::Plugin::get_next_vm_diskname($seen, $id, 400, 'raw', $scfg);
        is(PVE::Storage::vdisk_alloc($cfg, $id, 400, 'raw', undef, 1024), "$id:$proxmox",
            "alloc $n: $proxmox");
    }
    is(PVE::Storage::vdisk_clone($cfg, "$id:base-400-disk-1", 4000),
        "$id:base-400-disk-1/vm-4000-disk-0", 'a clone for another guest: its first free');
};

subtest 'errors say what is wrong' => sub {
    my $dir = tempdir(CLEANUP => 1);
    RealPVE::write_storage_cfg("joviandss: broken\n\tpool_name Pool-0\n\tconfig $dir/missing.yaml\n"
        . "\tcontent images\n\tshared 1\n\n"
        . "joviandss: down\n\tpool_name Pool-0\n\tconfig $dir/down.yaml\n\tcontent images\n"
        . "\tshared 1\n");
    write_yaml("$dir/down.yaml", backend => 'joviandss', rest_api_addresses => ['127.0.0.1'],
        rest_api_port => JdssTest::free_port(), rest_api_deadline => 1,
        driver_ssl_cert_verify => 'false');
    my $cfg = PVE::Storage::config();
    eval { PVE::Storage::vdisk_alloc($cfg, 'broken', 100, 'raw', undef, 1024) };
    like($@, qr/^jdss: config file \Q$dir\E\/missing.yaml not found/, 'missing config');
    my $info = PVE::Storage::storage_info($cfg);
    is($info->{down}->{active}, 0, 'unreachable: inactive');
    eval { PVE::Storage::vdisk_alloc($cfg, 'down', 100, 'raw', 'vm-100-disk-0', 1024) };
    like($@, qr/^jdss: no appliance address answered .*127\.0\.0\.1: connection refused/,
        'unreachable: one clear line');

    # an appliance that accepts and never answers: status keeps its bound
    my $emulator = start_emulator($dir);
    write_yaml("$dir/hang.yaml", backend => 'joviandss', rest_api_addresses => ['127.0.0.1'],
        rest_api_port => $emulator->{port}, driver_ssl_cert_path => $emulator->{cert},
        rest_api_password_file => $emulator->{password_file});
    JdssTest::write_file("$dir/emulator/faults.json",
        '{"rules": [{"action": "delay", "seconds": 60}]}');
    RealPVE::write_storage_cfg("joviandss: hangs\n\tpool_name Pool-0\n\tconfig $dir/hang.yaml\n"
        . "\tcontent images\n\tshared 1\n");
    my $started = time();
    $info = PVE::Storage::storage_info(PVE::Storage::config());
    my $took = time() - $started;
    is($info->{hangs}->{active}, 0, 'a hanging appliance: inactive');
    ok($took <= 6, "within the status bound ($took s)");
    # the same with a content volume, whose activation talks to the appliance
    RealPVE::write_storage_cfg("joviandss: hangs\n\tpool_name Pool-0\n\tconfig $dir/hang.yaml\n"
        . "\tcontent images,iso\n\tcontent_volume_name proxmox-content\n"
        . "\tcontent_volume_type nfs\n\tpath $dir/hang-content\n\tshared 1\n");
    PVE::Storage::Custom::OpenEJovianDSS::Common::forget_pool_status('hangs');
    $started = time();
    {
        local $SIG{__WARN__} = sub {};     # storage_info warns "not online"
        $info = PVE::Storage::storage_info(PVE::Storage::config());
    }
    $took = time() - $started;
    is($info->{hangs}->{active}, 0, 'with a content volume: inactive');
    ok($took <= 6, "with a content volume: within the status bound ($took s)");
    stop_emulator($emulator);
};

done_testing();
