package PVE::Cluster;

# Stand-in for pve-cluster's PVE::Cluster on a machine without pmxcfs.
#
# The cluster file system is a directory ($ENV{JDSS_PVE_ROOT}): files are
# read and written through the parsers registered with cfs_register_file,
# as pmxcfs does, and cluster locks are directories made under priv/lock/
# with the same protocol as the real cfs_lock (mkdir, retry each second
# with an unlock request, give up at the timeout), so they really serialise
# every process that shares the directory, whichever "node" it stands for.
# pmxcfs expires a lock that is older than 120 s when another process asks
# for it; so does this stand-in.

use strict;
use warnings;

use Exporter qw(import);
use File::Path qw(make_path);
use JSON::PP;
use POSIX qw(EEXIST);

our @EXPORT_OK = qw(cfs_read_file cfs_write_file cfs_register_file cfs_lock_file);

use constant LOCK_EXPIRY => 120;    # seconds, as pmxcfs

my %files;

sub root {
    my $root = $ENV{JDSS_PVE_ROOT} // die "stand-in PVE::Cluster needs JDSS_PVE_ROOT\n";
    return $root;
}

sub cfs_register_file {
    my ($filename, $parser, $writer) = @_;
    $files{$filename} = { parser => $parser, writer => $writer };
}

sub _slurp {
    my ($path) = @_;
    open(my $fh, '<', $path) or return undef;
    local $/;
    my $raw = <$fh>;
    close($fh);
    return $raw;
}

sub cfs_read_file {
    my ($filename) = @_;
    my $info = $files{$filename} or die "file '$filename' is not registered\n";
    return $info->{parser}->($filename, _slurp(root() . "/$filename") // '');
}

sub cfs_write_file {
    my ($filename, $data) = @_;
    my $info = $files{$filename} or die "file '$filename' is not registered\n";
    my $raw = $info->{writer}->($filename, $data);
    my $path = root() . "/$filename";
    my $tmp = "$path.tmp.$$";
    open(my $fh, '>', $tmp) or die "unable to write '$path': $!\n";
    print $fh $raw;
    close($fh) or die "unable to write '$path': $!\n";
    rename($tmp, $path) or die "unable to write '$path': $!\n";
    return $raw;
}

sub cfs_update { }

sub check_cfs_quorum { return 1; }

# The real lock protocol; on failure $@ is set and undef returned.
sub _cfs_lock {
    my ($lockid, $timeout, $code, @param) = @_;
    my $lockdir = root() . "/priv/lock";
    my $path = "$lockdir/$lockid";
    my ($res, $got_lock);
    $timeout ||= 10;
    my $start = time();
    eval {
        make_path($lockdir);
        while (1) {
            $got_lock = mkdir($path);
            last if $got_lock;
            die "cfs lock '$lockid': $!\n" if $! != EEXIST;
            die "got lock request timeout\n" if time() - $start >= $timeout;
            # an unlock request: pmxcfs drops a lock older than its expiry
            my $mtime = (stat($path))[9];
            rmdir($path) if defined($mtime) && time() - $mtime > LOCK_EXPIRY;
            sleep(1);    # as the real cfs_lock: one try a second
        }
        $res = $code->(@param);
    };
    my $err = $@;
    rmdir($path) if $got_lock;
    if ($err) {
        $@ = $got_lock ? $err : "cfs-lock '$lockid' error: $err";
        return undef;
    }
    $@ = undef;
    return $res;
}

sub cfs_lock_file {
    my ($filename, $timeout, $code, @param) = @_;
    (my $lockid = "file-$filename") =~ s/[.\/]/_/g;
    return _cfs_lock($lockid, $timeout, $code, @param);
}

sub cfs_lock_storage {
    my ($storeid, $timeout, $code, @param) = @_;
    return _cfs_lock("storage-$storeid", $timeout, $code, @param);
}

sub cfs_lock_domain {
    my ($domain, $timeout, $code, @param) = @_;
    return _cfs_lock("domain-$domain", $timeout, $code, @param);
}

# Nodes: the directories under nodes/ (pmxcfs makes one per member).
sub get_nodelist {
    my $dir = root() . "/nodes";
    opendir(my $dh, $dir) or return [];
    my @nodes = sort grep { !/^\./ && -d "$dir/$_" } readdir($dh);
    closedir($dh);
    return \@nodes;
}

sub get_members {
    return { map { $_ => { online => 1 } } @{ get_nodelist() } };
}

# Guests: nodes/<node>/{qemu-server,lxc}/<vmid>.conf, as pmxcfs's .vmlist.
sub get_vmlist {
    my $ids = {};
    for my $node (@{ get_nodelist() }) {
        for my $type (['qemu-server', 'qemu'], ['lxc', 'lxc']) {
            my $dir = root() . "/nodes/$node/$type->[0]";
            opendir(my $dh, $dir) or next;
            for my $file (readdir($dh)) {
                next if $file !~ m/^(\d+)\.conf$/;
                $ids->{$1} = { node => $node, type => $type->[1], version => 1 };
            }
            closedir($dh);
        }
    }
    return { ids => $ids };
}

sub complete_vmid { return [sort keys %{ get_vmlist()->{ids} }]; }

sub remote_node_ip { return '127.0.0.1'; }

sub get_ssh_info { return { ip => '127.0.0.1', name => $_[0] }; }

1;
