#!/usr/bin/perl
# The plugin driving the real jdss: against the fake backend and against
# the REST emulator over HTTPS, with identical expectations.
use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);

use JdssTest qw(jdss_bin write_yaml start_emulator stop_emulator);
use PVE::Storage::Custom::OpenEJovianDSSPlugin;

my $P = 'PVE::Storage::Custom::OpenEJovianDSSPlugin';
my $jdss = jdss_bin() or plan skip_all => 'jdss is not installed (run make develop)';
$PVE::Storage::Custom::OpenEJovianDSSPlugin::JDSS = $jdss;
my $G = 2**30;

sub storages_for {
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
    my @storages = map {
        my $config = write_yaml("$dir/jdss-$_.yaml", %common);
        { type => 'joviandss', pool_name => $_, config => $config,
          content => { images => 1, rootdir => 1 } }
    } ('Pool-0', 'Pool-1');
    return ($emulator, @storages);
}

for my $backend ('fake', 'rest') {
    subtest "plugin on the $backend backend" => sub {
        my $dir = tempdir(CLEANUP => 1);
        my ($emulator, $scfg, $other) = storages_for($backend, $dir);
        my $id = 'jdss-test';

        my ($total, $free, $used, $active) = $P->status($id, $scfg, {});
        is_deeply([$total, $free, $used, $active], [100 * $G, 100 * $G, 0, 1], 'status');
        is($P->check_connection($id, $scfg), 1, 'connection');

        is($P->alloc_image($id, $scfg, 100, 'raw', undef, 1024 * 1024), 'vm-100-disk-0', 'alloc');
        is($P->alloc_image($id, $scfg, 100, 'raw', undef, 2 * 1024 * 1024), 'vm-100-disk-1',
            'next free name');
        is($P->alloc_image($id, $scfg, 100, 'raw', 'vm-100-state-snap1', 512 * 1024),
            'vm-100-state-snap1', 'vm state volume');
        my $images = $P->list_images($id, $scfg, 100, undef, {});
        is_deeply([map { $_->{volid} } @$images],
            ["$id:vm-100-disk-0", "$id:vm-100-disk-1", "$id:vm-100-state-snap1"], 'list');
        is($images->[1]->{size}, 2 * $G, 'size in bytes');
        is_deeply($P->list_images($id, $other, undef, undef, {}), [], 'other pool is separate');

        $P->volume_snapshot($scfg, $id, 'vm-100-disk-0', 's1');
        $P->volume_snapshot($scfg, $id, 'vm-100-disk-0', 's2');
        my @blockers;
        eval { $P->volume_rollback_is_possible($scfg, $id, 'vm-100-disk-0', 's1', \@blockers) };
        like($@, qr/not most recent snapshot/, 'rollback blocked');
        is_deeply(\@blockers, ['s2'], 'blocker named');
        eval { $P->volume_snapshot_rollback($scfg, $id, 'vm-100-disk-0', 's1') };
        like($@, qr/^jdss: rolling back volume 'vm-100-disk-0' to 's1' would destroy newer snapshots: s2/,
            'rollback refused with one line');
        $P->volume_snapshot_delete($scfg, $id, 'vm-100-disk-0', 's2');
        is($P->volume_rollback_is_possible($scfg, $id, 'vm-100-disk-0', 's1', []), 1,
            'rollback now possible');
        $P->volume_snapshot_rollback($scfg, $id, 'vm-100-disk-0', 's1');
        is_deeply([sort keys %{ $P->volume_snapshot_info($scfg, $id, 'vm-100-disk-0') }], ['s1'],
            'snapshot info');

        my $base = $P->create_base($id, $scfg, 'vm-100-disk-1');
        is($base, 'base-100-disk-1', 'template');
        my $clone = $P->clone_image($scfg, $id, $base, 101);
        is($clone, 'base-100-disk-1/vm-101-disk-0', 'linked clone');
        my ($linked) = @{ $P->list_images($id, $scfg, 101, undef, {}) };
        is($linked->{parent}, "$id:base-100-disk-1", 'parent listed');
        eval { $P->free_image($id, $scfg, $base, 1) };
        like($@, qr/^jdss: volume 'base-100-disk-1' has clones .*vm-101-disk-0/, 'base in use');

        is($P->volume_resize($scfg, $id, 'vm-100-disk-0', 3 * $G, 0), 3 * $G, 'resize');
        is(scalar($P->volume_size_info($scfg, $id, 'vm-100-disk-0')), 3 * $G, 'new size');
        eval { $P->volume_resize($scfg, $id, 'vm-100-disk-0', $G, 0) };
        like($@, qr/only growing is supported/, 'no shrinking');

        is($P->rename_volume($scfg, $id, 'vm-100-disk-0', 102, undef), "$id:vm-102-disk-0",
            'rename to a free name');
        is_deeply([map { $_->{volid} } @{ $P->list_images($id, $scfg, 102, undef, {}) }],
            ["$id:vm-102-disk-0"], 'renamed disk listed');

        # concurrent operations on different volumes
        my @pids;
        for my $n (1 .. 6) {
            my $pid = fork() // die;
            if (!$pid) {
                my $ok = eval {
                    my $name = $P->alloc_image($id, $scfg, 300 + $n, 'raw', undef, 1024);
                    $P->volume_snapshot($scfg, $id, $name, 'c');
                    1;
                };
                POSIX::_exit($ok ? 0 : 1);
            }
            push @pids, $pid;
        }
        my @failed = grep { waitpid($_, 0); $? != 0 } @pids;
        is(scalar(@failed), 0, 'six concurrent allocations');
        is(scalar(grep { $_->{vmid} > 300 } @{ $P->list_images($id, $scfg, undef, undef, {}) }),
            6, 'all six present');

        for my $volname ('base-100-disk-1/vm-101-disk-0', 'base-100-disk-1', 'vm-102-disk-0',
            'vm-100-state-snap1', map { "vm-$_-disk-0" } 301 .. 306) {
            $P->free_image($id, $scfg, $volname);
        }
        is_deeply($P->list_images($id, $scfg, undef, undef, {}), [], 'all freed');
        is(stop_emulator($emulator), 0, 'emulator stopped cleanly') if $emulator;
    };
}

subtest 'errors say what is wrong' => sub {
    my $dir = tempdir(CLEANUP => 1);
    my $scfg = { type => 'joviandss', pool_name => 'Pool-0', config => "$dir/missing.yaml" };
    eval { $P->alloc_image('j', $scfg, 100, 'raw', undef, 1024) };
    like($@, qr/^jdss: config file \Q$dir\E\/missing.yaml not found/, 'missing config');
    my $down = write_yaml("$dir/down.yaml", backend => 'joviandss',
        rest_api_addresses => ['127.0.0.1'], rest_api_port => JdssTest::free_port(),
        rest_api_deadline => 1, driver_ssl_cert_verify => 'false');
    $scfg->{config} = $down;
    is_deeply([$P->status('j', $scfg, {})], [0, 0, 0, 0], 'unreachable: inactive');
    eval { $P->alloc_image('j', $scfg, 100, 'raw', 'vm-100-disk-0', 1024) };
    like($@, qr/^jdss: no appliance address answered .*127\.0\.0\.1: connection refused/,
        'unreachable: one clear line');
};

done_testing();
