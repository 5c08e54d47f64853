#!/usr/bin/perl
# storage.cfg parsing and the plugin's metadata, against the PVE doubles.
use strict;
use warnings;
use Test::More;

use PVE::Storage::Custom::OpenEJovianDSSPlugin;
my $P = 'PVE::Storage::Custom::OpenEJovianDSSPlugin';
$P->register();

is($P->api(), 15, 'api() is the running APIVER within 9..15');
ok($P->api() >= 9 && $P->api() <= 15, 'api() within 9..15');
is($P->type(), 'joviandss', 'type');
is_deeply($P->plugindata()->{format}, [{ raw => 1 }, 'raw'], 'raw only');
is_deeply([sort keys %{ $P->plugindata()->{content}->[0] }],
    [qw(backup images iso rootdir vztmpl)], 'content types');

my $single = <<'CFG';
joviandss: jdss-Pool-0
          pool_name Pool-0
          config /etc/pve/jdss-170.yaml
          content iso,backup,images,rootdir,vztmpl
          content_volume_name proxmox-content-jdss-pool-0-nfs
          content_volume_size 100
          # option is available since v0.9.9
          content_volume_type nfs
          path /mnt/jdss-Pool-0-nfs
          shared 1
          debug 0
          multipath 0
          disable 0
CFG
my $cfg = PVE::Storage::Plugin->parse_config('storage.cfg', $single);
my $s = $cfg->{ids}->{'jdss-Pool-0'};
is($s->{type}, 'joviandss', 'section type');
is($s->{pool_name}, 'Pool-0', 'pool_name');
is($s->{content_volume_type}, 'nfs', 'content_volume_type');
is_deeply($s->{content}, { iso => 1, backup => 1, images => 1, rootdir => 1, vztmpl => 1 },
    'content list');
is(PVE::Storage::Custom::OpenEJovianDSSPlugin::config_file($s), '/etc/pve/jdss-170.yaml',
    'config as given');

my $two = <<'CFG';
joviandss: jdss-Pool-0
        pool_name Pool-0
        config /etc/pve/jdss-Pool-0.yaml
        content iso,backup,images,rootdir,vztmpl
        content_volume_name proxmox-content-jdss-pool-0
        # option is available since v0.9.9
        content_volume_type nfs
        content_volume_size 100
        path /mnt/jdss-Pool-0
        # shared option is available since v0.9.8
        shared 1
        debug 0
        multipath 0

joviandss: jdss-Pool-1
        pool_name Pool-1
        config /etc/pve/jdss-Pool-1.yaml
        content iso,backup,images,rootdir,vztmpl
        content_volume_name proxmox-content-jdss-pool-1
        content_volume_type nfs
        content_volume_size 100
        path /mnt/jdss-Pool-1
        shared 1
        debug 0
        multipath 1
CFG
$cfg = PVE::Storage::Plugin->parse_config('storage.cfg', $two);
is_deeply([sort keys %{ $cfg->{ids} }], ['jdss-Pool-0', 'jdss-Pool-1'], 'two pools');
is($cfg->{ids}->{'jdss-Pool-1'}->{multipath}, 1, 'second pool multipath');

my $minimal = PVE::Storage::Plugin->parse_config('storage.cfg',
    "joviandss: j\n\tcontent images\n")->{ids}->{j};
is(PVE::Storage::Custom::OpenEJovianDSSPlugin::pool_name($minimal), 'Pool-0', 'pool default');
is(PVE::Storage::Custom::OpenEJovianDSSPlugin::config_file($minimal),
    '/etc/pve/jdss-Pool-0.yaml', 'config default');
is(PVE::Storage::Custom::OpenEJovianDSSPlugin::content_path($minimal),
    '/mnt/proxmox-content-jdss-Pool-0', 'path default');
is($P->properties()->{content_volume_size}->{default}, 100, 'content size default');
is($P->properties()->{content_volume_type}->{default}, 'iscsi', 'content type default');

for my $bad ('Proxmox-Content', 'content_vol', 'a b', '-x', 'x/y') {
    eval { PVE::Storage::Plugin->parse_config('storage.cfg',
        "joviandss: j\n\tcontent_volume_name $bad\n") };
    like($@, qr/content_volume_name: value does not match/, "parser refuses '$bad'");
    eval { $P->on_add_hook('j', { content_volume_name => $bad }) };
    like($@, qr/content_volume_name '\Q$bad\E' is invalid/, "on_add_hook refuses '$bad'");
}
eval { $P->on_add_hook('j', { content_volume_name => 'proxmox-content.pool-0' }) };
is($@, '', 'valid content volume name accepted');

eval { PVE::Storage::Plugin->parse_config('storage.cfg',
    "joviandss: j\n\tcontent_volume_type smb\n") };
like($@, qr/enumeration/, 'unknown content_volume_type refused');
eval { PVE::Storage::Plugin->parse_config('storage.cfg', "joviandss: j\n\tpool Pool-0\n") };
like($@, qr/unexpected property 'pool'/, 'foreign key refused');

done_testing();
