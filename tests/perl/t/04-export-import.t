#!/usr/bin/perl
# Storage migration streams through the plugin, over real iSCSI: the fake
# backend serves volumes through tgtd, QEMU writes data, volume_export and
# volume_import move it, and the copy has identical bytes.
use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);

use JdssTest qw(jdss_bin write_yaml free_port);
use PVE::Tools qw(run_command);
use PVE::Storage::Custom::OpenEJovianDSSPlugin;

my $P = 'PVE::Storage::Custom::OpenEJovianDSSPlugin';
my $jdss = jdss_bin() or plan skip_all => 'jdss is not installed (run make develop)';
my @missing = grep { !-x "/usr/sbin/$_" && !-x "/usr/bin/$_" } qw(tgtd tgtadm qemu-io qemu-img);
plan skip_all => "needs @missing" if @missing && ($ENV{CI} // '') ne 'true';
$PVE::Storage::Custom::OpenEJovianDSSPlugin::JDSS = $jdss;

my $dir = tempdir(CLEANUP => 1);
my $port = free_port();
my $config = write_yaml("$dir/jdss.yaml", backend => 'fake', fake_state_dir => "$dir/state",
    fake_pool_size => '10G', rest_api_addresses => ['127.0.0.1'], target_port => $port,
    fake_tgt_portal => "127.0.0.1:$port", transport => 'iscsi-direct', thin_provision => 'true');
my $scfg = { type => 'joviandss', pool_name => 'Pool-0', config => $config,
    content => { images => 1 } };
my $id = 'jdss-mig';
my $MB = 2**20;

sub qemu_io {
    my ($url, @commands) = @_;
    my $out = '';
    my $exit = run_command(['qemu-io', '-f', 'raw', map({ ('-c', $_) } @commands), $url],
        outfunc => sub { $out .= "$_[0]\n" }, errfunc => sub { $out .= "$_[0]\n" }, noerr => 1);
    return ($exit, $out);
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

is($P->alloc_image($id, $scfg, 200, 'raw', undef, 16 * 1024), 'vm-200-disk-0', 'alloc');
$P->activate_volume($id, $scfg, 'vm-200-disk-0');
my $url = $P->path($scfg, 'vm-200-disk-0', $id);
like($url, qr{^iscsi://127\.0\.0\.1:\d+/iqn\.2021-10\.iscsi:pool-0:vm-200-disk-0/1$}, 'iscsi:// path');
my ($exit) = qemu_io($url, "write -P 0x5a 0 $MB", "write -P 0xa5 " . (12 * $MB) . " $MB");
is($exit, 0, 'QEMU wrote through the path');

is_deeply([$P->volume_export_formats($scfg, $id, 'vm-200-disk-0')], ['raw+size'], 'formats');
open(my $out, '>', "$dir/stream") or die $!;
$P->volume_export($scfg, $id, $out, 'vm-200-disk-0', 'raw+size');
close($out);
is(-s "$dir/stream", 8 + 16 * $MB, 'stream is size header plus the bytes');

open(my $in, '<', "$dir/stream") or die $!;
is($P->volume_import($scfg, $id, $in, 'vm-201-disk-0', 'raw+size'), "$id:vm-201-disk-0",
    'imported');
close($in);
$P->activate_volume($id, $scfg, 'vm-201-disk-0');
my $copy = $P->path($scfg, 'vm-201-disk-0', $id);
my ($read_exit, $read_out) = qemu_io($copy, "read -P 0x5a 0 $MB", "read -P 0xa5 " . (12 * $MB) . " $MB");
is($read_exit, 0, 'copy has the data');
unlike($read_out, qr/Pattern verification failed/, 'identical patterns');
my $images = "$dir/state/Pool-0.images";
my $same = system('cmp', '-s', "$images/v_vm-200-disk-0.img", "$images/v_vm-201-disk-0.img");
is($same, 0, 'byte-identical volumes');

open($in, '<', "$dir/stream") or die $!;
eval { $P->volume_import($scfg, $id, $in, 'vm-201-disk-0', 'raw+size') };
like($@, qr/volume 'vm-201-disk-0' already exists/, 'no overwrite');
close($in);
open($in, '<', "$dir/stream") or die $!;
is($P->volume_import($scfg, $id, $in, 'vm-201-disk-0', 'raw+size', undef, undef, undef, 1),
    "$id:vm-201-disk-1", 'import under a new name when allowed');
close($in);

for my $name ('vm-200-disk-0', 'vm-201-disk-0', 'vm-201-disk-1') {
    $P->deactivate_volume($id, $scfg, $name);
    $P->free_image($id, $scfg, $name);
}
is_deeply($P->list_images($id, $scfg, undef, undef, {}), [], 'freed');

done_testing();
