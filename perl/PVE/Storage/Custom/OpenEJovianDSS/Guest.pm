package PVE::Storage::Custom::OpenEJovianDSS::Guest;

# What a storage plugin may know about the guest that owns a volume: its
# tags, whether Proxmox HA manages it, the snapshots its configuration
# lists, and, after a forced rollback, removing from that configuration the
# snapshots the appliance destroyed. Guest configurations live in pmxcfs
# (nodes/<node>/{qemu-server,lxc}/<vmid>.conf); changes are made under the
# guest's own configuration lock, as qm and pct take it.

use strict;
use warnings;

use File::Path qw(make_path);

use PVE::Cluster;
use PVE::Tools;

use Exporter qw(import);
our @EXPORT_OK = qw(check_not_ha_managed has_tag guest_snapshots remove_snapshots
    $FORCE_ROLLBACK_TAG);

our $PVE_ROOT = $ENV{JDSS_PVE_ROOT} // '/etc/pve';
our $FORCE_ROLLBACK_TAG = 'force-rollback';

my %LOCK_FILE = (
    qemu => sub { "/var/lock/qemu-server/lock-$_[0].conf" },
    lxc => sub { "/run/lock/lxc/pve-config-$_[0].lock" },
);

# (path of the guest's configuration, guest type), or () when unknown.
sub config_path {
    my ($vmid) = @_;
    my $info = eval { PVE::Cluster::get_vmlist()->{ids}->{$vmid} };
    return () if !$info;
    my $dir = $info->{type} eq 'lxc' ? 'lxc' : 'qemu-server';
    return ("$PVE_ROOT/nodes/$info->{node}/$dir/$vmid.conf", $info->{type});
}

sub read_config {
    my ($vmid) = @_;
    my ($path) = config_path($vmid);
    return undef if !$path || !-f $path;
    return PVE::Tools::file_get_contents($path);
}

# The guest's current section (before the first [snapshot] section).
sub current_section {
    my ($text) = @_;
    my ($current) = split /^\[/m, $text // '', 2;
    return $current // '';
}

sub tags {
    my ($vmid) = @_;
    my ($line) = current_section(read_config($vmid)) =~ m/^tags:\s*(.*?)\s*$/m;
    return [grep { length } split /[;, ]+/, $line // ''];
}

sub has_tag {
    my ($vmid, $tag) = @_;
    return scalar(grep { $_ eq $tag } @{ tags($vmid) });
}

# Snapshot names of the guest's configuration: the ones Proxmox made.
sub guest_snapshots {
    my ($vmid) = @_;
    my $text = read_config($vmid) // '';
    return [$text =~ m/^\[([^\]]+)\]\s*$/mg];
}

# The HA state of the guest, or undef when HA does not manage it.
sub ha_state {
    my ($vmid) = @_;
    my $path = "$PVE_ROOT/ha/resources.cfg";
    return undef if !-f $path;
    my $text = PVE::Tools::file_get_contents($path);
    for my $section (split /\n\s*\n/, $text) {
        next if $section !~ m/^\s*(?:vm|ct):\s*(\d+)\s*$/m || $1 != $vmid;
        my ($state) = $section =~ m/^\s+state\s+(\S+)/m;
        return $state // 'started';
    }
    return undef;
}

sub check_not_ha_managed {
    my ($vmid, $what) = @_;
    my $state = ha_state($vmid) // return;
    return if $state eq 'ignored';
    my $kind = (config_path($vmid))[1] // 'qemu';
    my $sid = ($kind eq 'lxc' ? 'ct' : 'vm') . ":$vmid";
    die "cannot $what guest $vmid: Proxmox HA manages it (state '$state'); run "
        . "'ha-manager set $sid --state ignored', retry, then set its state back\n";
}

# Remove snapshot sections @$names from the guest's configuration; a
# snapshot whose parent goes gets the removed one's parent.
sub remove_snapshots {
    my ($vmid, $names) = @_;
    my ($path, $type) = config_path($vmid);
    return [] if !$path || !@$names;
    my $lock = $LOCK_FILE{$type // 'qemu'}->($vmid);
    make_path((File::Basename::fileparse($lock))[1]);
    my $removed = PVE::Tools::lock_file($lock, 10, sub {
        my $text = PVE::Tools::file_get_contents($path);
        my @parts = split /^(?=\[)/m, $text;
        my %gone = map { $_ => 1 } @$names;
        my (%parent, @kept, @removed);
        for my $part (@parts) {
            my ($name) = $part =~ m/^\[([^\]]+)\]/;
            my ($parent) = $part =~ m/^parent:\s*(\S+)/m;
            $parent{$name} = $parent if defined($name);
            if (defined($name) && $gone{$name}) { push @removed, $name } else { push @kept, $part }
        }
        return [] if !@removed;
        my $resolve = sub {
            my ($p) = @_;
            my %seen;
            $p = $parent{$p} while defined($p) && $gone{$p} && !$seen{$p}++;
            return $p;
        };
        for my $part (@kept) {
            $part =~ s/^parent:\s*(\S+)\s*\n/
                my $p = $resolve->($1); defined($p) ? "parent: $p\n" : ''/me;
        }
        my $new = join('', @kept);
        $new =~ s/\n{3,}/\n\n/g;
        PVE::Tools::file_set_contents($path, $new);
        return \@removed;
    });
    die $@ if $@;
    return $removed;
}

1;
