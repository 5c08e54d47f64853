package PVE::Storage::Custom::OpenEJovianDSS::Common;

# What the JovianDSS storage types share: their storage.cfg properties, the
# checks made when an admin adds or changes a storage, the passwords Proxmox
# keeps for them, and running jdss (through jdss-agent when it runs, else as
# a process; an argument list, never a shell). jdss gets the storage ID and
# the section as Proxmox has it, reads the secrets from the password file,
# and answers in JSON; its one-line errors reach the user unchanged.

use strict;
use warnings;

use Errno qw(EINTR);
use IO::Select;
use IO::Socket::UNIX;
use List::Util ();
use POSIX ();
use Socket qw(SOCK_STREAM);
use Time::HiRes ();

use PVE::Tools qw(run_command);

use Exporter qw(import);
our @EXPORT_OK = qw(properties common_options password_file read_passwords write_passwords
    section_with check_section check_appliance run run_json error_message snapshot_args
    pool_status forget_pool_status agent_available
    EXIT_NOT_FOUND EXIT_EXISTS EXIT_BUSY EXIT_ROLLBACK_BLOCKED);

our $JDSS = '/usr/bin/jdss';
our $TIMEOUT = 600;               # seconds for one jdss call (jdssc_timeout)
our $STATUS_DEADLINE = 5;         # seconds status may take, whatever happens
our $AGENT_SOCKET = '/run/jdss/agent.sock';
our $AGENT_PROTOCOL = 3;
our $PVE_ROOT = $ENV{JDSS_PVE_ROOT} // '/etc/pve';

# exit codes of jdss (README "Exit codes")
use constant {
    EXIT_INVALID => 2,
    EXIT_NOT_FOUND => 4,
    EXIT_EXISTS => 5,
    EXIT_BUSY => 6,
    EXIT_ROLLBACK_BLOCKED => 8,
    EXIT_UNREACHABLE => 9,
};

# The JSON module requests and answers go through: an XS one where it is
# installed (as Proxmox's JSON module prefers), else JSON::PP from Perl's
# core, which takes 50 ms for a 200-volume list that XS reads in under
# one. All three give the same data (booleans are JSON::PP::Boolean).
our $JSON_CLASS;
BEGIN {
    for my $class (qw(Cpanel::JSON::XS JSON::XS JSON::PP)) {
        next if !eval "require $class; 1";
        $JSON_CLASS = $class;
        last;
    }
}

sub json { return $JSON_CLASS->new->canonical; }

# jdss's output the plugin reads: JSON, unindented (jdss encodes it in C)
my @JSON_OUTPUT = ('-f', 'json', '--noindent');

my $HOST_LIST = '[A-Za-z0-9.:_%\[\]-]+(?:\s*,\s*[A-Za-z0-9.:_%\[\]-]+)*';
my $CHAP_USER = '\w(?:[a-zA-Z0-9\-_]*\w)?';
my $CHAP_PASSWORD = '[a-zA-Z0-9\-_!@%()+?.:;]{12,255}';
my @BLOCK_SIZES = qw(4K 8K 16K 32K 64K 128K 256K 512K 1M);
our @SECRETS = qw(user_password chap_user_password);

# properties ---------------------------------------------------------------

# Every storage.cfg key of both JovianDSS types, declared once (by the
# joviandss type): Proxmox refuses a key declared by two plugins.
sub properties {
    my $lock = sub {
        my ($layer) = @_;
        return (
            "${layer}_lock_type" => { type => 'string',
                description => "Accepted for the vendor's plugin; jdss does not need it." },
            "${layer}_lock_path" => { type => 'string',
                description => "Accepted for the vendor's plugin; jdss does not need it." },
            "${layer}_lock_acquire_timeout" => { type => 'integer', minimum => 0,
                description => "Accepted for the vendor's plugin; jdss does not need it." },
            "${layer}_lock_hold_timeout" => { type => 'integer', minimum => 0,
                description => "Accepted for the vendor's plugin; jdss does not need it." },
        );
    };
    return {
        pool_name => { type => 'string', default => 'Pool-0',
            description => "JovianDSS pool to use.",
            pattern => '[A-Za-z0-9_][A-Za-z0-9_.:\-]*' },
        config => { type => 'string',
            description => "jdss YAML file of the user guide (default: "
                . "/etc/pve/jdss-<pool_name>.yaml when it exists)." },
        content_volume_name => { type => 'string',
            description => "Volume on the appliance that holds ISOs, templates and "
                . "backups (lowercase letters, digits, - and .).",
            pattern => '[a-z0-9][a-z0-9\-\.]*' },
        content_volume_size => { type => 'integer', minimum => 1, default => 100,
            description => "Size of the content volume in GiB." },
        nas_volume_size => { type => 'integer', minimum => 1,
            description => "joviandss-nfs: quota in GiB of the NAS volume named by "
                . "'export', created with it when the pool has none of that name." },
        content_volume_type => { type => 'string', enum => ['iscsi', 'nfs'],
            default => 'iscsi', description => "Protocol of the content volume." },
        debug => { type => 'boolean', default => 0,
            description => "Log jdss details (verbose output, tracebacks)." },
        multipath => { type => 'boolean', default => 0,
            description => "Attach volumes through multipath." },
        user_name => { type => 'string', description => "REST API user of the appliance." },
        user_password => { type => 'string',
            description => "REST API password (kept in /etc/pve/priv, not in storage.cfg)." },
        control_addresses => { type => 'string', pattern => $HOST_LIST,
            description => "Comma-separated REST API addresses of the appliance." },
        control_port => { type => 'integer', minimum => 1, maximum => 65535, default => 82,
            description => "REST API port." },
        data_addresses => { type => 'string', pattern => $HOST_LIST,
            description => "Comma-separated iSCSI/NFS addresses: the pool's virtual IPs "
                . "(default: control_addresses)." },
        data_port => { type => 'integer', minimum => 1, maximum => 65535, default => 3260,
            description => "iSCSI port." },
        ssl_cert_verify => { type => 'boolean', default => 1,
            description => "Verify the appliance's TLS certificate." },
        target_prefix => { type => 'string', pattern => '[a-z0-9][a-z0-9.:\-]*',
            description => "Prefix of iSCSI target names (IQN)." },
        luns_per_target => { type => 'integer', minimum => 1, maximum => 255,
            description => "Export a guest's volumes through per-guest targets of this "
                . "many LUNs (the vendor's layout; default: a target per volume)." },
        block_size => { type => 'string', enum => [@BLOCK_SIZES], default => '16K',
            description => "Block size of new volumes." },
        thin_provisioning => { type => 'boolean', default => 1,
            description => "Create volumes thin provisioned." },
        chap_enabled => { type => 'boolean', default => 0,
            description => "Require one-way CHAP on the storage's iSCSI targets." },
        chap_user_name => { type => 'string', pattern => $CHAP_USER,
            description => "CHAP user name." },
        chap_user_password => { type => 'string',
            description => "CHAP password, 12 to 255 characters (kept in /etc/pve/priv)." },
        cluster_prefix => { type => 'string', pattern => '[A-Za-z][A-Za-z0-9]*',
            description => "Prefix of this cluster's volumes on a pool shared by "
                . "several clusters." },
        log_file => { type => 'string',
            description => "jdss log of this storage, rotated by size." },
        jdssc_timeout => { type => 'integer', minimum => 1,
            description => "Seconds one jdss call may take (default 600)." },
        delete_timeout => { type => 'integer', minimum => 1,
            description => "Seconds a delete may take (default: jdssc_timeout)." },
        data_copy_bs => { type => 'string', pattern => '\d+[KMG]?',
            description => "Block size of data copies (export, import)." },
        $lock->('jdssc_general'),
        $lock->('jdssc_info'),
        $lock->('multipath'),
    };
}

# The options both types accept (each type adds its own).
sub common_options {
    my %options = map { $_ => { optional => 1 } } qw(
        config debug user_name user_password control_addresses control_port
        data_addresses ssl_cert_verify log_file jdssc_timeout delete_timeout
        data_copy_bs content shared disable nodes prune-backups);
    for my $layer (qw(jdssc_general jdssc_info multipath)) {
        $options{"${layer}_lock_$_"} = { optional => 1 }
            for qw(type path acquire_timeout hold_timeout);
    }
    return \%options;
}

# checks when a storage is added or changed ---------------------------------

sub password_file {
    my ($type, $storeid) = @_;
    return "$PVE_ROOT/priv/storage/$type/$storeid.pw";
}

sub read_passwords {
    my ($type, $storeid) = @_;
    my $path = password_file($type, $storeid);
    open(my $fh, '<', $path) or return {};
    my $values = {};
    while (my $line = <$fh>) {
        next if $line =~ m/^\s*(#|$)/;
        $values->{$1} = $2 if $line =~ m/^\s*(\S+)\s+(.*?)\s*$/;
    }
    close($fh);
    return $values;
}

# Write the secrets (or remove the file when none is left), in the format of
# the vendor's release: one "key value" line each, sorted, mode 0600. A
# temporary file renamed into place: pmxcfs has no hard links.
sub write_passwords {
    my ($type, $storeid, $values) = @_;
    my $path = password_file($type, $storeid);
    my @keys = sort grep { defined($values->{$_}) && length($values->{$_}) } keys %$values;
    if (!@keys) {
        unlink($path) or $!{ENOENT} or die "cannot remove $path: $!\n";
        return;
    }
    for my $dir ("$PVE_ROOT/priv/storage", "$PVE_ROOT/priv/storage/$type") {
        mkdir($dir, 0700) or $!{EEXIST} or die "cannot create $dir: $!\n";
    }
    PVE::Tools::file_set_contents($path, join('', map { "$_ $values->{$_}\n" } @keys), 0600);
}

sub section_with {
    my ($scfg, $update, $delete) = @_;
    my $merged = { %$scfg, %{ $update // {} } };
    delete $merged->{$_} for @{ $delete // [] };
    return $merged;
}

# Rules the property schema cannot express; dies with one line.
sub check_section {
    my ($type, $storeid, $scfg, $passwords) = @_;
    die "storage '$storeid': set 'shared 1': every node of the cluster sees the same "
        . "JovianDSS volumes, and Proxmox only migrates guests and locks the storage "
        . "cluster-wide when the storage is shared\n" if !$scfg->{shared};
    if (!uses_yaml($scfg)) {
        for my $key (qw(control_addresses user_name)) {
            die "storage '$storeid': '$key' is required (or name a jdss YAML file with "
                . "'config')\n" if !defined($scfg->{$key});
        }
        die "storage '$storeid': 'user_password' is required\n"
            if !defined($passwords->{user_password}) && !defined($scfg->{user_password});
    }
    if ($scfg->{chap_enabled}) {
        die "storage '$storeid': chap_enabled needs both chap_user_name and "
            . "chap_user_password\n"
            if !defined($scfg->{chap_user_name}) || !defined($passwords->{chap_user_password});
    }
    if (defined(my $password = $passwords->{chap_user_password})) {
        die "storage '$storeid': chap_user_password must be 12 to 255 characters of "
            . "letters, digits and -_!@%()+?.:;\n" if $password !~ m/^$CHAP_PASSWORD$/;
        die "storage '$storeid': chap_user_password needs chap_user_name\n"
            if !defined($scfg->{chap_user_name});
    }
    if (defined(my $name = $scfg->{content_volume_name})) {
        die "content_volume_name '$name' is invalid: use only lowercase letters, "
            . "digits, - and .\n" if $name !~ m/^[a-z0-9][a-z0-9\-\.]*$/;
    }
    return;
}

sub uses_yaml {
    my ($scfg) = @_;
    return 1 if defined($scfg->{config});
    return -f "$PVE_ROOT/jdss-" . ($scfg->{pool_name} // 'Pool-0') . '.yaml';
}

# Ask the appliance once with what is about to be written: the address
# answers, the login works, the pool exists. The passwords go on stdin.
sub check_appliance {
    my ($storeid, $scfg, $passwords) = @_;
    my $input = join('', map { "$_ $passwords->{$_}\n" }
        grep { defined($passwords->{$_}) } @SECRETS);
    my ($exit, $out, $err) = run($storeid, $scfg, ['pool', 'show', @JSON_OUTPUT],
        globals => ['--passwords-from-stdin'], input => $input,
        timeout => 6 * $STATUS_DEADLINE, deadline => 2 * $STATUS_DEADLINE,
        allow => [1 .. 255]);
    return if $exit == 0;
    die "storage '$storeid': cannot use the appliance: " . error_message($err, $exit) . "\n";
}

# running jdss --------------------------------------------------------------

# The section as jdss reads it: no secrets, lists as text.
sub section_json {
    my ($scfg) = @_;
    my %section;
    for my $key (keys %$scfg) {
        next if grep { $_ eq $key } @SECRETS;
        my $value = $scfg->{$key};
        next if !defined($value);
        if (ref($value) eq 'HASH') {
            $value = join(',', sort grep { $value->{$_} } keys %$value);
        } elsif (ref($value)) {
            next;
        }
        $section{$key} = "$value";
    }
    return json()->encode(\%section);
}

sub global_args {
    my ($storeid, $scfg, $extra) = @_;
    my @args = ('--storage', $storeid, '--section', section_json($scfg));
    push @args, '-v', '--debug' if $scfg->{debug};
    push @args, @{ $extra // [] };
    return @args;
}

# Run jdss; returns (exit code, stdout, stderr). Dies with jdss's own
# message unless the exit code is 0 or in $opts{allow}. Options: globals
# (extra global options), input (text for stdin), output/stdin (file
# descriptor redirections for streams), timeout, deadline (REST deadline).
sub run {
    my ($storeid, $scfg, $args, %opts) = @_;
    my @globals = @{ $opts{globals} // [] };
    push @globals, '--set', "rest_api_deadline=$opts{deadline}" if $opts{deadline};
    my @argv = (global_args($storeid, $scfg, \@globals), @$args);
    # one bound for the whole call, agent and fallback together (0: none)
    my $timeout = $opts{timeout} // ($scfg->{jdssc_timeout} || $TIMEOUT);
    my $until = $timeout > 0 ? Time::HiRes::time() + $timeout : undef;
    my ($exit, $out, $err);
    my $reply = !defined($opts{output}) && !defined($opts{stdin})
        ? agent_call(\@argv, $opts{input}, $timeout) : undef;
    if ($reply && $reply->{lost}) {
        # the agent took it and ended: a change run again could be made
        # twice, so only a read is run again
        my $what = join(' ', grep { !/^-/ } @$args[0 .. 1]);
        die "jdss $what: jdss-agent ended while running it ($reply->{lost}); "
            . "it may be partly done, run the operation again\n"
            if !is_read($args);
        $reply = undef;
    }
    if ($reply) {
        ($exit, $out, $err) = @$reply{qw(exit stdout stderr)};
    } else {
        my $left = defined($until) ? $until - Time::HiRes::time() : 0;
        if (defined($until) && $left < 0.5) {
            my $what = join(' ', grep { !/^-/ } @$args[0 .. 1]);
            die "jdss $what did not answer within ${timeout} s\n";
        }
        ($exit, $out, $err) = run_process(\@argv, defined($until) ? $left : 0, %opts);
        if (!defined($exit)) {
            my $what = join(' ', grep { !/^-/ } @$args[0 .. 1]);
            die "jdss $what did not finish: $err\n";
        }
    }
    return ($exit, $out, $err) if $exit == 0 || grep { $_ == $exit } @{ $opts{allow} // [] };
    die error_message($err, $exit) . "\n";
}

sub run_process {
    my ($argv, $timeout, %opts) = @_;
    die "jdss is not installed at $JDSS; install open-e-joviandss-proxmox-plugin\n"
        if !-x $JDSS;
    my ($out, $err) = ('', '');
    my %io = (outfunc => sub { $out .= "$_[0]\n" }, errfunc => sub { $err .= "$_[0]\n" });
    %io = (output => $opts{output}, errfunc => $io{errfunc}) if defined($opts{output});
    $io{input} = $opts{stdin} // $opts{input} if defined($opts{stdin} // $opts{input});
    my $exit = eval {
        run_command([$JDSS, @$argv], %io, noerr => 1,
            defined($timeout) && $timeout > 0 ? (timeout => $timeout) : ());
    };
    if (my $e = $@) {
        chomp $e;
        return (undef, $out, $e);
    }
    return ($exit, $out, $err);
}

# Whether a jdss command only reads, so that running it again is harmless.
sub is_read {
    my ($args) = @_;
    return ($args->[1] // '') =~ m/^(show|list|path)$/
        || grep({ $_ eq '--dry-run' } @$args) ? 1 : 0;
}

# One request to jdss-agent, which runs the very same command in a child
# of its own. The agent says at once that it took the request; one that
# does not within $AGENT_ACCEPT seconds has not started it, so running jdss
# instead is safe. Returns {exit, stdout, stderr}, or undef whenever the
# agent is absent or misbehaves (refuses, closes, hangs, answers garbage or
# another protocol): the caller then runs jdss itself.
our $AGENT_ACCEPT = 2;

sub agent_call {
    my ($argv, $input, $timeout) = @_;
    return undef if !-S $AGENT_SOCKET;
    local $SIG{PIPE} = 'IGNORE';
    my $start = Time::HiRes::time();
    my $deadline = $start + ($timeout || $TIMEOUT);
    my $taken = 0;
    my $reply = eval {
        # never blocks: an agent whose queue is full has not taken it
        my $socket = IO::Socket::UNIX->new(Type => SOCK_STREAM()) or die "socket: $!\n";
        $socket->blocking(0);
        connect($socket, Socket::pack_sockaddr_un($AGENT_SOCKET)) or die "connect: $!\n";
        my $request = json()->encode({ protocol => $AGENT_PROTOCOL,
            argv => [map { "$_" } @$argv], defined($input) ? (input => $input) : () }) . "\n";
        my $accept_by = List::Util::min($deadline, $start + $AGENT_ACCEPT);
        my $select = IO::Select->new($socket);
        while (length($request)) {
            die "timeout\n" if !$select->can_write($accept_by - Time::HiRes::time());
            my $sent = syswrite($socket, $request);
            next if !defined($sent) && $! == EINTR;
            die "write: $!\n" if !defined($sent);
            substr($request, 0, $sent, '');
        }
        shutdown($socket, 1);
        my ($buffer, $answer) = ('', undef);
        my $until = $accept_by;
        while (!defined($answer)) {
            if ($buffer =~ s/^([^\n]*)\n//) {
                my $line = json()->decode($1);
                die "not an answer\n" if ref($line) ne 'HASH';
                if ($line->{accepted}) {
                    $until = $deadline;          # taken: now its whole time
                    $taken = 1;
                    next;
                }
                $answer = $line;
                last;
            }
            die "no answer in time\n" if !$select->can_read($until - Time::HiRes::time());
            my $got = sysread($socket, my $chunk, 65536);
            next if !defined($got) && $! == EINTR;
            die "read: $!\n" if !defined($got);
            die "closed\n" if !$got;
            $buffer .= $chunk;
        }
        close($socket);
        $answer;
    };
    my $valid = ref($reply) eq 'HASH' && ($reply->{protocol} // 0) == $AGENT_PROTOCOL
        && defined($reply->{exit}) && $reply->{exit} =~ m/^\d+$/;
    if (!$valid) {
        return undef if !$taken;          # not started: the caller runs jdss
        my $why = $@ || "not an answer\n";
        chomp($why);
        return { lost => $why };
    }
    $reply->{$_} //= '' for qw(stdout stderr);
    return $reply;
}

sub error_message {
    my ($err, $exit) = @_;
    my @lines = grep { /\S/ } split /\n/, $err // '';
    my ($line) = grep { /^jdss: error: / } @lines;
    $line //= $lines[-1] // "jdss failed with exit code $exit";
    $line =~ s/^jdss: error: /jdss: /;
    return $line;
}

# Runs jdss for its JSON answer, decoded; undef when it exited with a code
# in $opts{allow} other than 0.
sub run_json {
    my ($storeid, $scfg, $args, %opts) = @_;
    my ($exit, $out) = run($storeid, $scfg, [@$args, @JSON_OUTPUT], %opts);
    return $exit == 0 ? json()->decode($out) : undef;
}

# jdss's --snapshot option, when there is a snapshot.
sub snapshot_args { return defined($_[0]) ? ('--snapshot', $_[0]) : (); }

# The pool's figures, for status and check_connection: Proxmox asks both
# right after one another, so one answer serves both for a moment.
my %pool_cache;
sub pool_status {
    my ($storeid, $scfg) = @_;
    my $cached = $pool_cache{$storeid};
    return $cached->{pool} if $cached && Time::HiRes::time() - $cached->{at} < 2;
    # within $STATUS_DEADLINE in every case: the appliance hangs, refuses
    # or is slow, or jdss-agent hangs (then no time is left for a fallback)
    my $pool = eval {
        run_json($storeid, $scfg, ['pool', 'show'], deadline => $STATUS_DEADLINE - 1.5,
            timeout => $STATUS_DEADLINE);
    };
    $pool = undef if ref($pool) ne 'HASH';
    $pool_cache{$storeid} = { at => Time::HiRes::time(), pool => $pool };
    return $pool;
}

sub forget_pool_status { delete $pool_cache{ $_[0] }; }

sub agent_available { return -S $AGENT_SOCKET; }

1;
