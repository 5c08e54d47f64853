package JdssTest;

# Helpers for end-to-end tests of the plugin with the real jdss: configs
# for the fake backend, and a jdss-emulator process on loopback.

use strict;
use warnings;

use Exporter qw(import);
use File::Basename qw(dirname);
use File::Spec;
use FindBin;
use IO::Socket::INET;
use POSIX ();

our @EXPORT_OK = qw(jdss_bin write_yaml free_port start_emulator stop_emulator);
my %STARTED;    # emulator PIDs

sub jdss_bin {
    my $bin = $ENV{JDSS_BIN}
        // File::Spec->rel2abs("$FindBin::Bin/../../../.venv/bin/jdss");
    return -x $bin ? $bin : undef;
}

sub write_yaml {
    my ($path, %values) = @_;
    open(my $fh, '>', $path) or die "$path: $!";
    for my $key (sort keys %values) {
        my $value = $values{$key};
        $value = '[' . join(', ', @$value) . ']' if ref($value) eq 'ARRAY';
        print $fh "$key: $value\n";
    }
    close($fh);
    chmod 0600, $path;
    return $path;
}

sub free_port {
    my $socket = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
        Proto => 'tcp', Listen => 1) or die "no free port: $!";
    my $port = $socket->sockport;
    close($socket);
    return $port;
}

# Start jdss-emulator serving Pool-0 and Pool-1; returns its settings.
sub start_emulator {
    my ($dir) = @_;
    my $emulator = dirname(jdss_bin()) . '/jdss-emulator';
    my $port = free_port();
    my $password = "pw-" . int(rand(1e9)) . "-Secret";
    write_file("$dir/emulator.pw", "$password\n");
    pipe(my $reader, my $writer) or die "pipe: $!";
    my $pid = fork() // die "fork: $!";
    if (!$pid) {
        close($reader);
        open(STDOUT, '>&', $writer) or POSIX::_exit(1);
        open(STDERR, '>', "$dir/emulator.err") or POSIX::_exit(1);
        exec($emulator, '--listen', "127.0.0.1:$port", '--state-dir', "$dir/emulator",
            '--password-file', "$dir/emulator.pw", '--pool', 'Pool-0', '--pool', 'Pool-1',
            '--pool-size', 100 * 2**30) or POSIX::_exit(1);
    }
    close($writer);
    $STARTED{$pid} = 1;
    my $line = <$reader> // '';
    die "emulator did not start: " . slurp("$dir/emulator.err") if $line !~ /^ready/;
    return { pid => $pid, port => $port, reader => $reader,
        cert => "$dir/emulator/emulator-cert.pem", password_file => "$dir/emulator.pw" };
}

sub stop_emulator {
    my ($emulator) = @_;
    kill('TERM', $emulator->{pid});
    waitpid($emulator->{pid}, 0);
    delete $STARTED{ $emulator->{pid} };
    return $? >> 8;
}

# a test that dies half-way still ends the emulators it started
END {
    my $status = $?;
    for my $pid (keys %STARTED) {
        kill('TERM', $pid);
        waitpid($pid, 0);
    }
    $? = $status;
}

sub write_file {
    my ($path, $text) = @_;
    open(my $fh, '>', $path) or die "$path: $!";
    print $fh $text;
    close($fh);
    chmod 0600, $path;
}

sub slurp {
    my ($path) = @_;
    open(my $fh, '<', $path) or return '';
    local $/;
    return <$fh>;
}

1;
