#!/usr/bin/perl
# Data through the real PVE::Storage over real iSCSI: the fake backend
# serves volumes through tgtd, QEMU's initiator writes and reads them, and
# storage migration (volume_export/volume_import), full clones from a
# snapshot and qemu_blockdev_options move and find the right bytes.
use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);

use RealPVE;
use JdssTest qw(jdss_bin write_yaml free_port);
use PVE::Tools qw(run_command);

my $P = 'PVE::Storage::Custom::OpenEJovianDSSPlugin';
my $jdss = jdss_bin() or plan skip_all => 'jdss is not installed (run make develop)';
my @missing = grep { !-x "/usr/sbin/$_" && !-x "/usr/bin/$_" } qw(tgtd tgtadm qemu-io qemu-img);
plan skip_all => "needs @missing" if @missing && ($ENV{CI} // '') ne 'true';
$PVE::Storage::Custom::OpenEJovianDSS::Common::JDSS = $jdss;

my $dir = tempdir(CLEANUP => 1);
my $port = free_port();
my $config = write_yaml("$dir/jdss.yaml", backend => 'fake', fake_state_dir => "$dir/state",
    fake_pool_size => '10G', rest_api_addresses => ['127.0.0.1'], target_port => $port,
    fake_tgt_portal => "127.0.0.1:$port", transport => 'iscsi-direct', thin_provision => 'true');
my $id = 'jdss-mig';
my $cfg = RealPVE::write_storage_cfg("joviandss: $id\n\tpool_name Pool-0\n\tconfig $config\n"
    . "\tcontent images\n\tshared 1\n");
my $MB = 2**20;

sub qemu_io {
    my ($url, @commands) = @_;
    my $out = '';
    my $exit = run_command(['qemu-io', '-f', 'raw', map({ ('-c', $_) } @commands), $url],
        outfunc => sub { $out .= "$_[0]\n" }, errfunc => sub { $out .= "$_[0]\n" }, noerr => 1);
    return ($exit, $out);
}

sub has_pattern {
    my ($volid, @reads) = @_;
    PVE::Storage::activate_volumes($cfg, [$volid]);
    my $path = PVE::Storage::path($cfg, $volid);
    my ($exit, $out) = qemu_io($path, map { "read -P $_" } @reads);
    diag($out) if $exit != 0 || $out =~ /Pattern verification failed/;
    return $exit == 0 && $out !~ /Pattern verification failed/;
}

END {
    # stop the tgtd this test started (it ignores SIGTERM)
    my $control = $port % 32768;
    my $shown = '';
    eval { run_command(['tgtadm', '--lld', 'iscsi', '-C', $control, '--op', 'show',
        '--mode', 'target'], outfunc => sub { $shown .= "$_[0]\n" }, noerr => 1) };
    for my $tid ($shown =~ m/^Target (\d+):/mg) {
        eval { run_command(['tgtadm', '--lld', 'iscsi', '-C', $control, '--op', 'delete',
            '--mode', 'target', '--tid', $tid, '--force'], noerr => 1) };
    }
    eval { run_command(['tgtadm', '--lld', 'iscsi', '-C', $control, '--op', 'delete',
        '--mode', 'system'], noerr => 1) };
}

my $src = PVE::Storage::vdisk_alloc($cfg, $id, 200, 'raw', undef, 16 * 1024);
is($src, "$id:vm-200-disk-0", 'alloc');
PVE::Storage::activate_volumes($cfg, [$src]);
my $url = PVE::Storage::path($cfg, $src);
like($url, qr{^iscsi://127\.0\.0\.1:\d+/iqn\.2021-10\.iscsi:\S*vm-200-disk-0/1$}, 'iscsi:// path');
my $blockdev = PVE::Storage::qemu_blockdev_options($cfg, $src);
is($blockdev->{driver}, 'iscsi', 'blockdev: QEMU\'s iscsi driver');
is($blockdev->{lun}, 1, 'blockdev: LUN');
my ($exit) = qemu_io($url, "write -P 0x5a 0 $MB", "write -P 0xa5 " . (12 * $MB) . " $MB");
is($exit, 0, 'QEMU wrote through the path');

# storage migration: export, import, byte for byte
is_deeply([PVE::Storage::volume_export_formats($cfg, $src, undef, undef, 0)], ['raw+size'],
    'formats');
open(my $out, '>', "$dir/stream") or die $!;
PVE::Storage::volume_export($cfg, $out, $src, 'raw+size', undef, undef, 0);
close($out);
is(-s "$dir/stream", 8 + 16 * $MB, 'stream is size header plus the bytes');
open(my $in, '<', "$dir/stream") or die $!;
is(PVE::Storage::volume_import($cfg, $in, "$id:vm-201-disk-0", 'raw+size', undef, undef, 0, 0),
    "$id:vm-201-disk-0", 'imported');
close($in);
ok(has_pattern("$id:vm-201-disk-0", "0x5a 0 $MB", '0xa5 ' . (12 * $MB) . " $MB"),
    'the copy has the data');
my $images = "$dir/state/Pool-0.images";
is(system('cmp', '-s', "$images/v_vm-200-disk-0.img", "$images/v_vm-201-disk-0.img"), 0,
    'byte-identical volumes');

open($in, '<', "$dir/stream") or die $!;
eval { PVE::Storage::volume_import($cfg, $in, "$id:vm-201-disk-0", 'raw+size', undef, undef, 0, 0) };
like($@, qr/volume 'vm-201-disk-0' already exists/, 'no overwrite');
close($in);
open($in, '<', "$dir/stream") or die $!;
is(PVE::Storage::volume_import($cfg, $in, "$id:vm-201-disk-0", 'raw+size', undef, undef, 0, 1),
    "$id:vm-201-disk-1", 'import under a new name when allowed');
close($in);

# a stream that ends early: refused, and nothing left behind
open(my $short, '>', "$dir/short") or die $!;
print $short substr(RealPVE::read_file("$dir/stream"), 0, 8 + 3 * $MB);
close($short);
open($in, '<', "$dir/short") or die $!;
eval { PVE::Storage::volume_import($cfg, $in, "$id:vm-202-disk-0", 'raw+size', undef, undef, 0, 0) };
like($@, qr/ended .* bytes early/, 'a broken stream is refused');
close($in);
is_deeply(PVE::Storage::vdisk_list($cfg, $id, 202)->{$id}, [], 'and leaves no volume behind');
open($in, '<', "$dir/stream") or die $!;
is(PVE::Storage::volume_import($cfg, $in, "$id:vm-202-disk-0", 'raw+size', undef, undef, 0, 0),
    "$id:vm-202-disk-0", 'so the retried migration succeeds');
close($in);

# a snapshot taken before a resize exports with the size it had
PVE::Storage::volume_snapshot($cfg, $src, 'before');
PVE::Storage::volume_resize($cfg, $src, 32 * $MB, 0);
open($out, '>', "$dir/snap-stream") or die $!;
PVE::Storage::volume_export($cfg, $out, $src, 'raw+size', 'before', undef, 0);
close($out);
is(-s "$dir/snap-stream", 8 + 16 * $MB, 'snapshot export: the snapshot\'s size');
is(unpack('Q<', substr(RealPVE::read_file("$dir/snap-stream"), 0, 8)), 16 * $MB,
    'raw+size header of the snapshot');

# full clone at a snapshot (the GUI's Clone of a snapshot): Proxmox copies
# the snapshot's path into a new disk with qemu-img
my ($exit2) = qemu_io($url, "write -P 0x11 0 $MB");
is($exit2, 0, 'changed after the snapshot');
ok(PVE::Storage::volume_has_feature($cfg, 'copy', $src, 'before'), 'copy of a snapshot offered');
my $copy = PVE::Storage::vdisk_alloc($cfg, $id, 300, 'raw', undef, 16 * 1024);
PVE::Storage::activate_volumes($cfg, [$src], 'before');
PVE::Storage::activate_volumes($cfg, [$copy]);
my $from = PVE::Storage::path($cfg, $src, 'before');
my $to = PVE::Storage::path($cfg, $copy);
is(run_command(['qemu-img', 'convert', '-n', '-f', 'raw', '-O', 'raw', $from, $to], noerr => 1),
    0, 'qemu-img copied the snapshot');
PVE::Storage::deactivate_volumes($cfg, [$src], 'before');
ok(has_pattern($copy, "0x5a 0 $MB"), 'the full clone has the snapshot\'s data');
ok(has_pattern($src, "0x11 0 $MB"), 'the source keeps its own');

for my $volid ($src, $copy, map { "$id:$_" } qw(vm-201-disk-0 vm-201-disk-1 vm-202-disk-0)) {
    PVE::Storage::deactivate_volumes($cfg, [$volid]);
    PVE::Storage::vdisk_free($cfg, $volid);
}
is_deeply(PVE::Storage::vdisk_list($cfg, $id)->{$id}, [], 'freed');
my $targets = '';
run_command(['tgtadm', '--lld', 'iscsi', '-C', $port % 32768, '--op', 'show', '--mode',
    'target'], outfunc => sub { $targets .= "$_[0]\n" });
unlike($targets, qr/^Target/m, 'no export left in tgtd');

done_testing();
