package PVE::Storage::Plugin;

# Test double of the base class of Proxmox VE storage plugins: what a
# custom plugin inherits (content paths, volume names of ISOs, templates
# and backups, free disk names) and the storage.cfg section parser that
# checks a plugin's properties and options, as proxmox-plugin-api.md
# describes them.

use strict;
use warnings;

use File::Basename qw(basename);

my %PLUGINS;

# Properties every storage type shares, as in pve-storage.
my $COMMON = {
    content => { type => 'string' },
    path => { type => 'string' },
    shared => { type => 'boolean' },
    disable => { type => 'boolean' },
    nodes => { type => 'string' },
};

my $SUBDIRS = { images => 'images', rootdir => 'private', iso => 'template/iso',
    vztmpl => 'template/cache', backup => 'dump', snippets => 'snippets' };

sub register {
    my ($class) = @_;
    $PLUGINS{ $class->type() } = $class;
}

sub lookup {
    my ($class, $type) = @_;
    return $PLUGINS{$type} // die "unknown storage type '$type'\n";
}

sub private { return {} }

sub _check_value {
    my ($key, $schema, $value) = @_;
    my $type = $schema->{type} // 'string';
    if ($type eq 'boolean') {
        die "$key: type check ('boolean') failed - got '$value'\n" if $value !~ m/^(0|1)$/;
    } elsif ($type eq 'integer') {
        die "$key: type check ('integer') failed - got '$value'\n" if $value !~ m/^-?\d+$/;
        die "$key: value must have a minimum value of $schema->{minimum}\n"
            if defined($schema->{minimum}) && $value < $schema->{minimum};
    }
    if (my $enum = $schema->{enum}) {
        die "$key: value '$value' does not have a value in the enumeration '"
            . join(', ', @$enum) . "'\n" if !grep { $_ eq $value } @$enum;
    }
    if (defined(my $pattern = $schema->{pattern})) {
        die "$key: value does not match the regex pattern\n" if $value !~ m/^(?:$pattern)$/;
    }
    return $value;
}

# Parse storage.cfg text; returns { ids => { storeid => { type, ... } } }.
sub parse_config {
    my ($class, $filename, $raw) = @_;
    my $ids = {};
    my ($storeid, $section, $plugin);
    my $lineno = 0;
    for my $line (split /\n/, $raw) {
        $lineno++;
        next if $line =~ m/^\s*(#.*)?$/;
        if ($line =~ m/^(\S+):\s*(\S+)\s*$/) {
            ($plugin, $storeid) = ($class->lookup($1), $2);
            die "$filename line $lineno: duplicate storage ID '$storeid'\n"
                if $ids->{$storeid};
            $section = $ids->{$storeid} = { type => $1 };
            next;
        }
        die "$filename line $lineno: property outside a section\n" if !$section;
        my ($key, $value) = $line =~ m/^\s+(\S+)\s*(.*?)\s*$/
            or die "$filename line $lineno: cannot parse '$line'\n";
        my $options = $plugin->options();
        die "$filename line $lineno: storage '$storeid': unexpected property '$key'\n"
            if !$options->{$key};
        my $schema = $plugin->properties()->{$key} // $COMMON->{$key}
            or die "$filename line $lineno: unknown property '$key'\n";
        eval { $section->{$key} = _check_value($key, $schema, $value) };
        die "$filename line $lineno: storage '$storeid': $@" if $@;
        if ($key eq 'content') {
            my %content;
            for my $ct (split /[,\s]+/, $value) {
                die "$filename line $lineno: content type '$ct' not supported\n"
                    if !$plugin->plugindata()->{content}->[0]->{$ct};
                $content{$ct} = 1;
            }
            $section->{content} = \%content;
        }
    }
    for my $id (keys %$ids) {
        my $options = $class->lookup($ids->{$id}->{type})->options();
        for my $key (grep { $options->{$_}->{fixed} || !$options->{$_}->{optional} } keys %$options) {
            die "$filename: storage '$id' is missing property '$key'\n"
                if !defined($ids->{$id}->{$key});
        }
    }
    return { ids => $ids };
}

sub get_subdir {
    my ($class, $scfg, $vtype) = @_;
    my $path = $scfg->{path} // die "storage definition has no path\n";
    my $subdir = $SUBDIRS->{$vtype} // die "unknown vtype '$vtype'\n";
    return "$path/$subdir";
}

sub parse_name_dir {
    my ($name) = @_;
    return ($name, 'raw', 0) if $name =~ m!^[^/\s]+\.(raw)$!;
    die "unable to parse volume filename '$name'\n";
}

sub parse_volname {
    my ($class, $volname) = @_;
    if ($volname =~ m!^iso/([^/]+\.(?:iso|img))$!i) {
        return ('iso', $1, undef, undef, undef, undef, 'raw');
    } elsif ($volname =~ m!^vztmpl/([^/]+\.tar\.(?:gz|xz|zst|bz2))$!) {
        return ('vztmpl', $1, undef, undef, undef, undef, 'raw');
    } elsif ($volname =~ m!^backup/([^/]+\.(?:tgz|tar|(?:tar|vma)(?:\.(?:gz|lzo|zst))?))$!) {
        my $name = $1;
        my $vmid = $name =~ m/^vzdump-(?:openvz|lxc|qemu)-(\d+)-/ ? $1 : undef;
        return ('backup', $name, $vmid, undef, undef, undef, 'raw');
    }
    die "unable to parse directory volume name '$volname'\n";
}

sub filesystem_path {
    my ($class, $scfg, $volname, $snapname) = @_;
    my ($vtype, $name, $vmid) = $class->parse_volname($volname);
    die "can't snapshot this image format\n" if defined($snapname);
    my $path = $class->get_subdir($scfg, $vtype) . "/$name";
    return wantarray ? ($path, $vmid, $vtype) : $path;
}

sub path {
    my ($class, $scfg, $volname, $storeid, $snapname) = @_;
    return $class->filesystem_path($scfg, $volname, $snapname);
}

sub volume_size_info {
    my ($class, $scfg, $storeid, $volname, $timeout) = @_;
    my $path = $class->filesystem_path($scfg, $volname);
    my $size = -s $path;
    return wantarray ? ($size, 'raw', $size, undef, (stat($path))[10]) : $size;
}

sub activate_storage { return 1 }
sub deactivate_storage { return 1 }
sub on_add_hook { return }
sub on_update_hook { return }
sub on_delete_hook { return }

sub get_next_vm_diskname {
    my ($disk_list, $storeid, $vmid, $fmt, $scfg, $add_fmt_suffix) = @_;
    my %used = map { (m/^(?:\S+:)?(?:base-\d+-\S+\/)?(?:vm|base)-\Q$vmid\E-disk-(\d+)/)
        ? ($1 => 1) : () } @$disk_list;
    for my $n (0 .. 999) {
        return "vm-$vmid-disk-$n" if !$used{$n};
    }
    die "unable to allocate an image name for VM $vmid in storage '$storeid'\n";
}

sub find_free_diskname {
    my ($class, $storeid, $scfg, $vmid, $fmt, $add_fmt_suffix) = @_;
    my $disks = $class->list_images($storeid, $scfg, $vmid);
    my @names = map { basename($_->{volid}) } @$disks;
    return get_next_vm_diskname(\@names, $storeid, $vmid, $fmt, $scfg, $add_fmt_suffix);
}

1;
