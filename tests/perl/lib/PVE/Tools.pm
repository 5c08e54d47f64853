package PVE::Tools;

# Test double of PVE::Tools: run_command as pve-common has it for argument
# lists (exec without a shell, line callbacks, noerr, timeout, input and
# output redirection to file descriptors).

use strict;
use warnings;

use Exporter qw(import);
use IO::Select;
use IPC::Open3;
use POSIX ();
use Symbol qw(gensym);

our @EXPORT_OK = qw(run_command);

# Every command run, for tests: [ [argv...], ... ]
our @COMMANDS;

sub run_command {
    my ($cmd, %param) = @_;
    die "run_command double: only argument lists are supported\n" if ref($cmd) ne 'ARRAY';
    push @COMMANDS, [@$cmd];
    my $cmdstr = join(' ', @$cmd);
    my $input = $param{input};
    my $output = $param{output};
    my $writer = defined($input) && $input =~ m/^<&/ ? $input : gensym;
    my $reader = defined($output) && $output =~ m/^>&/ ? $output : gensym;
    my $error = gensym;
    my $pid = eval { open3($writer, $reader, $error, @$cmd) };
    die "command '$cmdstr' failed: $@" if $@;
    if (ref($writer)) {
        print $writer $input if defined($input);
        close($writer);
    }
    my $select = IO::Select->new();
    $select->add($reader) if ref($reader);
    $select->add($error);
    my %buffer;
    my $deadline = $param{timeout} ? time() + $param{timeout} : undef;
    while ($select->count) {
        my @ready = $select->can_read(1);
        if ($deadline && time() > $deadline) {
            kill('KILL', $pid);
            waitpid($pid, 0);
            die "command '$cmdstr' failed: got timeout\n";
        }
        for my $fh (@ready) {
            my $count = sysread($fh, my $chunk, 65536);
            if (!$count) {
                $select->remove($fh);
                next;
            }
            $buffer{$fh} .= $chunk;
            my $func = $fh == $error ? $param{errfunc} : $param{outfunc};
            while ($buffer{$fh} =~ s/^([^\n]*)\n//) {
                my $line = $1;
                if ($func) { $func->($line) }
                elsif ($fh == $error) { print STDERR "$line\n" }
                else { print "$line\n" }
            }
        }
    }
    for my $fh (grep { length($buffer{$_} // '') } keys %buffer) {
        # a last line without newline
        my $func = $fh eq "$error" ? $param{errfunc} : $param{outfunc};
        $func->($buffer{$fh}) if $func;
    }
    waitpid($pid, 0);
    my $exit = $? >> 8;
    my $signal = $? & 127;
    die "command '$cmdstr' failed: received signal $signal\n" if $signal;
    die "command '$cmdstr' failed: exit code $exit\n" if $exit && !$param{noerr};
    return $exit;
}

1;
