#!/usr/bin/perl
# status and list_images through jdss-agent, and back to jdss without it.
use strict;
use warnings;
use Test::More;
use File::Basename qw(dirname);
use File::Temp qw(tempdir);
use POSIX ();

use JdssTest qw(jdss_bin write_yaml);
use PVE::Storage::Custom::OpenEJovianDSSPlugin;

my $P = 'PVE::Storage::Custom::OpenEJovianDSSPlugin';
my $jdss = jdss_bin() or plan skip_all => 'jdss is not installed (run make develop)';
$PVE::Storage::Custom::OpenEJovianDSSPlugin::JDSS = $jdss;
my $dir = tempdir(CLEANUP => 1);
my $socket = "$dir/run/agent.sock";
$PVE::Storage::Custom::OpenEJovianDSSPlugin::AGENT_SOCKET = $socket;

my $config = write_yaml("$dir/jdss.yaml", backend => 'fake', fake_state_dir => "$dir/state",
    fake_pool_size => '10G', rest_api_addresses => ['127.0.0.1']);
my $scfg = { type => 'joviandss', pool_name => 'Pool-0', config => $config,
    content => { images => 1 } };
$P->alloc_image('j', $scfg, 100, 'raw', undef, 1024);
my @cli_status = $P->status('j', $scfg, {});
my $cli_list = $P->list_images('j', $scfg, undef, undef, {});
my $direct = write_yaml("$dir/direct.yaml", backend => 'fake', fake_state_dir => "$dir/state",
    fake_pool_size => '10G', rest_api_addresses => ['127.0.0.1'], transport => 'iscsi-direct');
my $dcfg = { %$scfg, config => $direct };
my $cli_path = $P->path($dcfg, 'vm-100-disk-0', 'j');

pipe(my $reader, my $writer) or die $!;
my $pid = fork() // die;
if (!$pid) {
    close($reader);
    open(STDOUT, '>&', $writer) or POSIX::_exit(1);
    exec(dirname($jdss) . '/jdss-agent', '--socket', $socket) or POSIX::_exit(1);
}
close($writer);
like(scalar(<$reader>), qr/^ready/, 'agent started');

{
    # with the agent, status and list_images need no jdss process at all
    local $PVE::Storage::Custom::OpenEJovianDSSPlugin::JDSS = '/nonexistent/jdss';
    is_deeply([$P->status('j', $scfg, {})], \@cli_status, 'status through the agent');
    is_deeply($P->list_images('j', $scfg, undef, undef, {}), $cli_list,
        'list_images through the agent');
    is($P->path($dcfg, 'vm-100-disk-0', 'j'), $cli_path, 'path through the agent');
    eval { $P->path($dcfg, 'vm-999-disk-0', 'j') };
    like($@, qr/^jdss: volume 'vm-999-disk-0' not found/, 'path error: one line');
    my $missing = { %$scfg, config => "$dir/missing.yaml" };
    is_deeply([$P->status('j', $missing, {})], [0, 0, 0, 0], 'agent error: inactive');
    eval { $P->list_images('j', $missing, undef, undef, {}) };
    like($@, qr/^jdss: config file .*missing.yaml not found/, 'agent error: one line');
}

kill('TERM', $pid);
waitpid($pid, 0);
ok(!-e $socket, 'agent removed its socket');
is_deeply([$P->status('j', $scfg, {})], \@cli_status, 'without the agent: jdss again');

done_testing();
