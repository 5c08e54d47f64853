#!/usr/bin/perl
# The plugin through jdss-agent: the same answers as jdss processes for
# every operation, and whatever the agent does wrong (closes, hangs,
# answers garbage or another protocol, is gone) only means the plugin runs
# jdss itself; never a dead Perl process (SIGPIPE) or a wrong answer.
use strict;
use warnings;
use Test::More;
use File::Basename qw(dirname);
use File::Temp qw(tempdir);
use IO::Socket::UNIX;
use POSIX ();
use Socket qw(SOCK_STREAM);
use Time::HiRes qw(time);

use RealPVE;
use JdssTest qw(jdss_bin write_yaml);

my $P = 'PVE::Storage::Custom::OpenEJovianDSSPlugin';
my $C = 'PVE::Storage::Custom::OpenEJovianDSS::Common';
my $jdss = jdss_bin() or plan skip_all => 'jdss is not installed (run make develop)';
$PVE::Storage::Custom::OpenEJovianDSS::Common::JDSS = $jdss;
my $dir = tempdir(CLEANUP => 1);
my $socket = "$dir/run/agent.sock";
$PVE::Storage::Custom::OpenEJovianDSS::Common::AGENT_SOCKET = $socket;

my $config = write_yaml("$dir/jdss.yaml", backend => 'fake', fake_state_dir => "$dir/state",
    fake_pool_size => '10G', rest_api_addresses => ['127.0.0.1'], transport => 'iscsi-direct');
my $cfg = RealPVE::write_storage_cfg("joviandss: jj\n\tpool_name Pool-0\n\tconfig $config\n"
    . "\tcontent images\n\tshared 1\n");
my $scfg = $cfg->{ids}->{jj};

# what jdss processes answer
PVE::Storage::vdisk_alloc($cfg, 'jj', 100, 'raw', undef, 1024);
$C->can('forget_pool_status')->('jj');
my @cli_status = $P->status('jj', $scfg, {});
my $cli_list = $P->list_images('jj', $scfg, undef, undef, {});
my $cli_path = PVE::Storage::path($cfg, 'jj:vm-100-disk-0');
my @cli_size = PVE::Storage::volume_size_info($cfg, 'jj:vm-100-disk-0');

sub start_agent {
    pipe(my $reader, my $writer) or die $!;
    my $pid = fork() // die;
    if (!$pid) {
        close($reader);
        open(STDOUT, '>&', $writer) or POSIX::_exit(1);
        exec(dirname($jdss) . '/jdss-agent', '--socket', $socket) or POSIX::_exit(1);
    }
    close($writer);
    like(scalar(<$reader>), qr/^ready/, 'agent started');
    return $pid;
}

my $pid = start_agent();
{
    # with the agent, no operation starts a jdss process
    local $PVE::Storage::Custom::OpenEJovianDSS::Common::JDSS = '/nonexistent/jdss';
    $C->can('forget_pool_status')->('jj');
    is($P->check_connection('jj', $scfg), 1, 'check_connection through the agent');
    is_deeply([$P->status('jj', $scfg, {})], \@cli_status, 'status: the same answer');
    is_deeply($P->list_images('jj', $scfg, undef, undef, {}), $cli_list, 'list_images');
    is(PVE::Storage::path($cfg, 'jj:vm-100-disk-0'), $cli_path, 'path');
    is_deeply([PVE::Storage::volume_size_info($cfg, 'jj:vm-100-disk-0')], \@cli_size,
        'size info');
    is(PVE::Storage::vdisk_alloc($cfg, 'jj', 100, 'raw', undef, 1024), 'jj:vm-100-disk-1',
        'alloc');
    PVE::Storage::volume_snapshot($cfg, 'jj:vm-100-disk-1', 's1');
    PVE::Storage::volume_resize($cfg, 'jj:vm-100-disk-1', 2 * 2**20, 0);
    PVE::Storage::volume_snapshot_rollback($cfg, 'jj:vm-100-disk-1', 's1');
    PVE::Storage::volume_snapshot_delete($cfg, 'jj:vm-100-disk-1', 's1');
    PVE::Storage::activate_volumes($cfg, ['jj:vm-100-disk-1']);
    PVE::Storage::deactivate_volumes($cfg, ['jj:vm-100-disk-1']);
    PVE::Storage::vdisk_free($cfg, 'jj:vm-100-disk-1');
    is_deeply([map { $_->{volid} } @{ PVE::Storage::vdisk_list($cfg, 'jj')->{jj} }],
        ['jj:vm-100-disk-0'], 'snapshot, resize, rollback, activation, free: all through it');
    eval { PVE::Storage::path($cfg, 'jj:vm-999-disk-0') };
    like($@, qr/^jdss: volume 'vm-999-disk-0' not found/, 'errors: jdss\'s own line');
    eval { PVE::Storage::vdisk_alloc($cfg, 'jj', 100, 'raw', 'vm-100-disk-0', 1024) };
    like($@, qr/^jdss: volume 'vm-100-disk-0' already exists/, 'and its exit codes');
}
kill('TERM', $pid);
waitpid($pid, 0);
ok(!-e $socket, 'agent removed its socket');
is_deeply([$P->status('jj', $scfg, {})], \@cli_status, 'without the agent: jdss again');

# agents that misbehave ------------------------------------------------------
sub fake_agent {
    my ($behaviour) = @_;
    unlink($socket);
    my $server = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Local => $socket, Listen => 5)
        or die "listen: $!";
    my $child = fork() // die;
    if (!$child) {
        # prove waits for every holder of the test's output (Test::More
        # keeps copies of it): keep only the listening socket. Perl never
        # really closes fds 0 to 2, so they go to /dev/null rather than to
        # a connection that would then stay open
        open(STDIN, '<', '/dev/null');
        open(STDOUT, '>', '/dev/null');
        open(STDERR, '>', '/dev/null');
        POSIX::close($_) for grep { $_ != fileno($server) } 3 .. 63;
        while (my $conn = $server->accept) {
            $behaviour->($conn);
            close($conn);
        }
        POSIX::_exit(0);
    }
    close($server);
    return $child;
}

my %misbehaviours = (
    'closes at once' => sub { },
    'answers garbage' => sub { my ($c) = @_; <$c>; print $c "this is not json\n"; },
    'speaks another protocol' => sub { my ($c) = @_; <$c>;
        print $c '{"ok": true, "data": {"size": 1}}' . "\n"; },
    'answers half a line' => sub { my ($c) = @_; <$c>; print $c '{"protocol": 3, "exit": 0'; },
    'closes before reading (SIGPIPE)' => sub { my ($c) = @_; shutdown($c, 0); },
    'hangs' => sub { my ($c) = @_; sleep(30); },
    'takes the request and dies' => sub { my ($c) = @_; <$c>;
        print $c '{"protocol": 3, "accepted": true}' . "\n"; },
    'takes the request and hangs' => sub { my ($c) = @_; <$c>;
        print $c '{"protocol": 3, "accepted": true}' . "\n"; sleep(30); },
);
my $connect = \&IO::Socket::UNIX::new;
# as in pvestatd and the API workers: a broken pipe would end the process
local $SIG{PIPE} = 'DEFAULT';
for my $case (grep { !/^takes/ } sort keys %misbehaviours) {
    my $fake = fake_agent($misbehaviours{$case});
    # let the agent act before the plugin writes (else the race hides it)
    no warnings 'redefine';
    local *IO::Socket::UNIX::new = sub {
        my $sock = $connect->(@_);
        select(undef, undef, undef, 0.3);
        return $sock;
    };
    $C->can('forget_pool_status')->('jj');
    my $started = time();
    # a long argument list, so that a reader that is gone is felt
    my $list = eval { $P->list_images('jj', { %$scfg, padding => 'x' x 100000 }, undef,
        undef, {}) };
    is_deeply($list, $cli_list, "agent $case: the plugin ran jdss itself");
    ok(time() - $started < 20, "agent $case: bounded");
    kill('KILL', $fake);
    waitpid($fake, 0);
}
# a change the agent took is never made a second time: when the agent ends
# after taking it, the operation fails and says so; a read is run again
{
    my $fake = fake_agent($misbehaviours{'takes the request and dies'});
    my $list = eval { $P->list_images('jj', $scfg, undef, undef, {}) };
    is_deeply($list, $cli_list, 'agent took a read and died: the plugin ran jdss itself');
    eval { $P->alloc_image('jj', $scfg, 100, 'raw', 'vm-100-disk-9', 1024) };
    like($@, qr/jdss volume create: jdss-agent ended while running it .*run the operation again/,
        'agent took a change and died: a clear error');
    kill('KILL', $fake);
    waitpid($fake, 0);
    my $names = $P->list_images('jj', $scfg, undef, undef, {});
    ok(!grep({ $_->{volid} =~ m/disk-9/ } @$names), 'and the change was not made behind it');
}
# status keeps its bound whatever the agent does
for my $case ('hangs', 'takes the request and hangs') {
    my $fake = fake_agent($misbehaviours{$case});
    $C->can('forget_pool_status')->('jj');
    my $started = time();
    my @status = $P->status('jj', $scfg, {});
    my $took = time() - $started;
    if ($case eq 'hangs') {
        ok($status[3], 'agent never takes it: status from jdss itself');
    } else {
        is_deeply(\@status, [0, 0, 0, 0], 'agent hangs on it: status inactive');
    }
    ok($took <= 6, "agent $case: status within its bound ($took s)");
    kill('KILL', $fake);
    waitpid($fake, 0);
}
# an agent that takes no connection at all (its queue full): not waited for
{
    unlink($socket);
    my $server = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Local => $socket, Listen => 1)
        or die "listen: $!";
    my @queued;
    for (1 .. 64) {
        my $c = IO::Socket::UNIX->new(Type => SOCK_STREAM()) or die;
        $c->blocking(0);
        last if !connect($c, Socket::pack_sockaddr_un($socket));
        push @queued, $c;
    }
    ok(@queued < 64, 'the queue is full (' . scalar(@queued) . ' waiting)');
    $C->can('forget_pool_status')->('jj');
    my $started = time();
    my @status = $P->status('jj', $scfg, {});
    my $took = time() - $started;
    ok($status[3], 'agent queue full: status from jdss itself');
    ok($took <= 6, "agent queue full: within its bound ($took s)");
    close($_) for @queued, $server;
}
unlink($socket);

# a changed password reaches the very next call through the agent
{
    my $pw = "$dir/pw";
    JdssTest::write_file($pw, "first\n");
    my $rest = write_yaml("$dir/rest.yaml", backend => 'joviandss',
        rest_api_addresses => ['127.0.0.1'], rest_api_port => JdssTest::free_port(),
        rest_api_password_file => $pw, rest_api_deadline => 1,
        driver_ssl_cert_verify => 'false');
    my $emulator = JdssTest::start_emulator($dir);
    write_yaml($rest, backend => 'joviandss', rest_api_addresses => ['127.0.0.1'],
        rest_api_port => $emulator->{port}, rest_api_password_file => $pw,
        driver_ssl_cert_path => $emulator->{cert});
    RealPVE::write_storage_cfg("joviandss: rr\n\tpool_name Pool-0\n\tconfig $rest\n"
        . "\tcontent images\n\tshared 1\n");
    my $rcfg = PVE::Storage::config()->{ids}->{rr};
    $pid = start_agent();
    $C->can('forget_pool_status')->('rr');
    is(($P->status('rr', $rcfg, {}))[3], 0, 'wrong password: inactive');
    JdssTest::write_file($pw, JdssTest::slurp($emulator->{password_file}));
    $C->can('forget_pool_status')->('rr');
    is(($P->status('rr', $rcfg, {}))[3], 1, 'the new password is used at once');
    kill('TERM', $pid);
    waitpid($pid, 0);
    JdssTest::stop_emulator($emulator);
}

done_testing();
