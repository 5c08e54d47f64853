#!/usr/bin/perl
# The plugin under the real PVE::Storage, timed from inside a long-lived Perl
# process, as pvedaemon workers and pvestatd call it. bench/run.py drives
# it with one JSON request a line on stdin and reads one JSON answer a line
# on stdout:
#
#   {"op": "storage_info", "storage": S}        {"op": "list", "storage": S}
#   {"op": "alloc", "storage": S, "vmid": N, "kib": K}
#   {"op": "free"|"size"|"template"|"path"|"activate_deactivate", "volid": V}
#   {"op": "snapshot"|"rollback", "volid": V, "snap": NAME}
#   {"op": "resize", "volid": V, "bytes": B}
#   {"op": "clone", "volid": BASE, "vmid": N}
#   {"op": "bare", "command": [...]}            a process, timed (python3 -c pass)
#   {"op": "via", "agent": SOCKET|null}         jdss-agent, or a jdss process per call
#   {"op": "start_agent", "socket": S}          an agent of this process (its PID back)
#   {"op": "mix", "storage": S, "vmid": N, "rounds": R}     the concurrent callers' loop
#   {"op": "boot", "volids": [V, ...]}          a guest start: activate, then path each
#   {"op": "status_loop", "storage": S, "seconds": T, "interval": I}
#   {"op": "churn", "storage": S, "vmid": N, "seconds": T}  alloc and free until T
#
# Answer: {"ok": 1, "seconds": wall seconds of the Proxmox call, "result": ...}
# or {"ok": 0, "error": "one line"}. Only the Proxmox call is timed: reading
# storage.cfg and forgetting the plugin's 2-second status cache (pvestatd
# asks every 10 seconds, so it never finds it warm) happen before the clock
# starts.
#
# One Proxmox call in a Perl process of its own, as a CLI would make it:
#   pve_bench.pl --once storage_info|none STORAGE [AGENT_SOCKET]
#
# Environment: JDSS_PVE_ROOT (the /etc/pve with storage.cfg), JDSS_BIN (jdss).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../tests/perl/lib";

use JSON::PP;
use POSIX ();
use Time::HiRes ();

use RealPVE;

my $C = 'PVE::Storage::Custom::OpenEJovianDSS::Common';
$PVE::Storage::Custom::OpenEJovianDSS::Common::JDSS = $ENV{JDSS_BIN} // die "JDSS_BIN\n";
my $NO_AGENT = "$RealPVE::ROOT/run/no-agent.sock";
my $json = JSON::PP->new->canonical->utf8;
my $agent_pid;

# jdss processes this driver started (no agent, or the agent did not take
# the request in time): counted by wrapping the plugin's run_process
my $processes = 0;
{
    no strict 'refs';
    no warnings 'redefine';
    my $run_process = \&{"${C}::run_process"};
    *{"${C}::run_process"} = sub { $processes++; return $run_process->(@_); };
}

sub via {
    my ($socket) = @_;
    $PVE::Storage::Custom::OpenEJovianDSS::Common::AGENT_SOCKET = $socket // $NO_AGENT;
}
via($ENV{JDSS_BENCH_AGENT});

sub cfg { return PVE::Storage::config(); }

# storage_info over one storage: pvestatd asks every storage of the node,
# and the bench times one at a time
sub only {
    my ($cfg, $storeid) = @_;
    return { %$cfg, ids => { $storeid => $cfg->{ids}->{$storeid} } };
}

sub timed {
    my ($code) = @_;
    my $started = Time::HiRes::time();
    my $result = $code->();
    return (Time::HiRes::time() - $started, $result);
}

sub storage_info {
    my ($cfg, $storeid) = @_;
    $C->can('forget_pool_status')->($storeid);
    my $cut = only($cfg, $storeid);
    return timed(sub {
        local $SIG{__WARN__} = sub { };      # an inactive storage warns
        my $info = PVE::Storage::storage_info($cut);
        return $info->{$storeid}->{active} ? 1 : 0;
    });
}

sub alloc {
    my ($cfg, $r) = @_;
    $C->can('forget_pool_status')->($r->{storage});
    return timed(sub { PVE::Storage::vdisk_alloc($cfg, $r->{storage}, $r->{vmid}, 'raw',
        undef, $r->{kib}) });
}

sub free {
    my ($cfg, $volid) = @_;
    my ($storeid) = PVE::Storage::parse_volume_id($volid);
    $C->can('forget_pool_status')->($storeid);
    return timed(sub { PVE::Storage::vdisk_free($cfg, $volid); 1 });
}

sub list {
    my ($cfg, $storeid) = @_;
    $C->can('forget_pool_status')->($storeid);
    return timed(sub { scalar(@{ PVE::Storage::vdisk_list($cfg, $storeid)->{$storeid} }) });
}

sub activate_deactivate {
    my ($cfg, $volid) = @_;
    my ($storeid) = PVE::Storage::parse_volume_id($volid);
    $C->can('forget_pool_status')->($storeid);
    return timed(sub {
        PVE::Storage::activate_volumes($cfg, [$volid]);
        PVE::Storage::deactivate_volumes($cfg, [$volid]);
        1;
    });
}

my %ops = (
    storage_info => sub { storage_info(cfg(), $_[0]->{storage}) },
    list => sub { list(cfg(), $_[0]->{storage}) },
    alloc => sub { alloc(cfg(), $_[0]) },
    free => sub { free(cfg(), $_[0]->{volid}) },
    size => sub { my ($r) = @_; my $cfg = cfg();
        timed(sub { scalar(PVE::Storage::volume_size_info($cfg, $r->{volid})) }) },
    resize => sub { my ($r) = @_; my $cfg = cfg();
        timed(sub { PVE::Storage::volume_resize($cfg, $r->{volid}, $r->{bytes}, 0) }) },
    snapshot => sub { my ($r) = @_; my $cfg = cfg();
        timed(sub { PVE::Storage::volume_snapshot($cfg, $r->{volid}, $r->{snap}); 1 }) },
    rollback => sub { my ($r) = @_; my $cfg = cfg();
        timed(sub { PVE::Storage::volume_snapshot_rollback($cfg, $r->{volid}, $r->{snap}); 1 }) },
    activate_deactivate => sub { activate_deactivate(cfg(), $_[0]->{volid}) },
    path => sub { my ($r) = @_; my $cfg = cfg();
        timed(sub { scalar(PVE::Storage::path($cfg, $r->{volid})) }) },
    template => sub { my ($r) = @_; my $cfg = cfg();
        my ($storeid) = PVE::Storage::parse_volume_id($r->{volid});
        $C->can('forget_pool_status')->($storeid);
        timed(sub { PVE::Storage::vdisk_create_base($cfg, $r->{volid}) }) },
    clone => sub { my ($r) = @_; my $cfg = cfg();
        my ($storeid) = PVE::Storage::parse_volume_id($r->{volid});
        $C->can('forget_pool_status')->($storeid);
        timed(sub { PVE::Storage::vdisk_clone($cfg, $r->{volid}, $r->{vmid}, undef) }) },
    bare => sub { my ($r) = @_;
        timed(sub { system(@{ $r->{command} }) == 0 or die "@{ $r->{command} } failed\n"; 1 }) },
    via => sub { via($_[0]->{agent}); (0, 1) },
    start_agent => sub { (0, start_agent($_[0]->{socket})) },
    mix => \&mix,
    boot => \&boot,
    status_loop => \&status_loop,
    churn => \&churn,
);

# What 32 callers at once do (a mass VM start, a busy cluster): each
# allocates a volume of its own, runs R rounds of every other operation of
# the table on it, then frees it; the time of every call by operation, and
# the errors. One alloc and one free per caller: Proxmox serialises both
# per storage under its cluster lock (pmxcfs, 10 s to get it, polled), so
# callers allocating in a loop would measure that lock, not the plugin.
sub mix {
    my ($r) = @_;
    my ($storeid, $vmid) = @$r{qw(storage vmid)};
    my (%times, @errors);
    my $started_processes = $processes;
    my $step = sub {
        my ($name, $code) = @_;
        my ($seconds, $result) = eval { $code->() };
        if (my $err = $@) {
            chomp $err;
            push @errors, "$name: $err";
            return undef;
        }
        push @{ $times{$name} }, $seconds;
        return $result;
    };
    my $volid = $step->('vdisk_alloc', sub { alloc(cfg(), { storage => $storeid,
        vmid => $vmid, kib => 1024 * 1024 }) });
    return (0, { times => \%times, errors => \@errors,
        processes => $processes - $started_processes }) if !$volid;
    for my $round (1 .. $r->{rounds}) {
        my $cfg = cfg();
        my $size = (1 + $round) * 2**30;
        $step->('storage_info', sub { storage_info($cfg, $storeid) });
        $step->('vdisk_list', sub { list($cfg, $storeid) });
        $step->('volume_size_info', sub { timed(sub {
            scalar(PVE::Storage::volume_size_info($cfg, $volid)) }) });
        $step->('volume_resize', sub { timed(sub {
            PVE::Storage::volume_resize($cfg, $volid, $size, 0) }) });
        $step->('volume_snapshot', sub { timed(sub {
            PVE::Storage::volume_snapshot($cfg, $volid, "s$round"); 1 }) });
        $step->('rollback', sub { timed(sub {
            PVE::Storage::volume_snapshot_rollback($cfg, $volid, "s$round"); 1 }) });
        $step->('activate + deactivate', sub { activate_deactivate($cfg, $volid) });
    }
    $step->('vdisk_free', sub { free(cfg(), $volid) });
    return (0, { times => \%times, errors => \@errors,
        processes => $processes - $started_processes });
}

# One guest started on boot: each disk activated, then its path (what
# qm start asks of the storage before QEMU runs).
sub boot {
    my ($r) = @_;
    my $cfg = cfg();
    my $before = $processes;
    my ($seconds, $paths) = timed(sub {
        PVE::Storage::activate_volumes($cfg, $r->{volids});
        [map { scalar(PVE::Storage::path($cfg, $_)) } @{ $r->{volids} }];
    });
    return ($seconds, { paths => $paths, processes => $processes - $before });
}

# pvestatd on this node, asked more often than every 10 s to get samples.
sub status_loop {
    my ($r) = @_;
    my $until = Time::HiRes::time() + $r->{seconds};
    my (@times, $inactive);
    while (Time::HiRes::time() < $until) {
        my ($seconds, $active) = storage_info(cfg(), $r->{storage});
        push @times, $seconds;
        $inactive++ if !$active;
        Time::HiRes::sleep($r->{interval}) if $r->{interval};
    }
    return (0, { times => \@times, inactive => $inactive // 0 });
}

# Another node allocating and freeing volumes all the while.
sub churn {
    my ($r) = @_;
    my $until = Time::HiRes::time() + $r->{seconds};
    my ($rounds, @errors) = (0);
    while (Time::HiRes::time() < $until) {
        eval {
            my (undef, $volid) = alloc(cfg(), { storage => $r->{storage}, vmid => $r->{vmid},
                kib => 1024 * 1024 });
            free(cfg(), $volid);
            $rounds++;
        };
        if (my $err = $@) {
            chomp $err;
            push @errors, $err;
        }
    }
    return (0, { rounds => $rounds, errors => \@errors });
}

# jdss-agent as a child of this process (a node's own agent, in its own
# namespaces when the node has them); ended by its PID when this ends.
sub start_agent {
    my ($socket) = @_;
    (my $dir = $socket) =~ s{/[^/]+$}{};
    pipe(my $reader, my $writer) or die "pipe: $!\n";
    my $pid = fork() // die "fork: $!\n";
    if (!$pid) {
        close($reader);
        open(STDOUT, '>&', $writer) or POSIX::_exit(1);
        (my $bin = $ENV{JDSS_BIN}) =~ s{/[^/]+$}{/jdss-agent};
        exec($bin, '--socket', $socket) or POSIX::_exit(1);
    }
    close($writer);
    my $line = <$reader> // '';
    die "jdss-agent did not start\n" if $line !~ m/^ready/;
    $agent_pid = $pid;
    via($socket);
    return $pid;
}

sub stop_agent {
    return if !$agent_pid;
    kill('TERM', $agent_pid);
    waitpid($agent_pid, 0);
    $agent_pid = undef;
}

END { stop_agent(); }

if (@ARGV && $ARGV[0] eq '--once') {
    my (undef, $op, $storeid, $socket) = @ARGV;
    POSIX::_exit(0) if $op eq 'none';      # what loading PVE::Storage costs
    die "--once: only storage_info\n" if $op ne 'storage_info';
    via($socket);
    my (undef, $active) = storage_info(cfg(), $storeid);
    POSIX::_exit($active ? 0 : 3);
}

$| = 1;
print $json->encode({ ready => 1, node => $RealPVE::NODE, pid => $$ }), "\n";
while (my $line = <STDIN>) {
    my $request = eval { $json->decode($line) };
    my $op = $request ? $ops{ $request->{op} // '' } : undef;
    my $reply;
    if (!$op) {
        $reply = { ok => 0, error => "bad request" };
    } else {
        my ($seconds, $result) = eval { $op->($request) };
        if (my $err = $@) {
            chomp $err;
            $reply = { ok => 0, error => $err };
        } else {
            $reply = { ok => 1, seconds => $seconds, result => $result };
        }
    }
    print $json->encode($reply), "\n";
}
stop_agent();
POSIX::_exit(0);
