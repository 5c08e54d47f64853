#!/usr/bin/perl
# Configuring a storage as Proxmox admins do, through the real storage.cfg
# parser and the real storage configuration API (pvesm add/set/remove and
# the GUI): every key of both generations of the vendor's plugin, passwords
# kept by Proxmox, checks before anything is written.
use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);

use RealPVE;
use JdssTest qw(jdss_bin start_emulator stop_emulator write_yaml);
require PVE::API2::Storage::Config;

my $P = 'PVE::Storage::Custom::OpenEJovianDSSPlugin';
my $API = 'PVE::API2::Storage::Config';
my $jdss = jdss_bin() or plan skip_all => 'jdss is not installed (run make develop)';
$PVE::Storage::Custom::OpenEJovianDSS::Common::JDSS = $jdss;
my $ROOT = $RealPVE::ROOT;
my $dir = tempdir(CLEANUP => 1);

is($P->api(), 15, 'api() is the running APIVER');
is($P->type(), 'joviandss', 'type');
is_deeply($P->plugindata()->{format}, [{ raw => 1 }, 'raw'], 'raw only');
is_deeply(PVE::Storage::Plugin::sensitive_properties('joviandss'),
    ['chap_user_password', 'user_password'], 'passwords are sensitive properties');

# the storage.cfg of a site on the vendor's 1.0, as the issue shows it
my $vendor = <<'CFG';
joviandss: jdss-Pool-0
        pool_name Pool-0
        content images,rootdir
        path /mnt/pve/jdss-Pool-0
        shared 1
        target_prefix iqn.2025-06.proxmox.pool-0
        user_name admin
        ssl_cert_verify 0
        control_addresses 192.168.28.100
        control_port 82
        data_addresses 192.168.29.100
        data_port 3260
        thin_provisioning 1
        luns_per_target 8
        block_size 16K
        log_file /var/log/joviandss/joviandss.log
CFG
my $lock_keys = join('', map { my $l = $_;
    map { "\t${l}_lock_$_->[0] $_->[1]\n" } ([type => 'flock'], [path => '/run/lock/x'],
        [acquire_timeout => 60], [hold_timeout => 600]) } qw(jdssc_general jdssc_info multipath));
my $all_keys = $vendor . $lock_keys . "\tjdssc_timeout 120\n\tdelete_timeout 300\n"
    . "\tdata_copy_bs 4M\n\tdebug 0\n\tmultipath 0\n\tchap_enabled 1\n"
    . "\tchap_user_name pve-chap\n\tcluster_prefix pveA\n\tdisable 0\n"
    . "\tcreate-subdirs 0\n\tcreate-base-path 0\n\tcontent-dirs images=img\n";
{
    my @warnings;
    local $SIG{__WARN__} = sub { push @warnings, @_ };
    my $cfg = PVE::Storage::Plugin->parse_config('storage.cfg', $all_keys);
    is_deeply(\@warnings, [], 'every key of the vendor 1.0 storage.cfg parses');
    my $s = $cfg->{ids}->{'jdss-Pool-0'};
    is($s->{control_addresses}, '192.168.28.100', 'control_addresses');
    is($s->{luns_per_target}, 8, 'luns_per_target');
    is($s->{multipath_lock_hold_timeout}, 600, 'lock tuning keys accepted');
    is($s->{cluster_prefix}, 'pveA', 'cluster_prefix');
}

# the user guide's two-pool storage.cfg
my $guide = <<'CFG';
joviandss: jdss-Pool-0
        pool_name Pool-0
        config /etc/pve/jdss-Pool-0.yaml
        content iso,backup,images,rootdir,vztmpl
        content_volume_name proxmox-content-jdss-pool-0
        # option is available since v0.9.9
        content_volume_type nfs
        content_volume_size 100
        path /mnt/jdss-Pool-0
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
my $cfg = PVE::Storage::Plugin->parse_config('storage.cfg', $guide);
is_deeply([sort grep { /jdss/ } keys %{ $cfg->{ids} }], ['jdss-Pool-0', 'jdss-Pool-1'],
    'the user guide\'s two pools');
is($cfg->{ids}->{'jdss-Pool-1'}->{multipath}, 1, 'second pool multipath');

for my $bad (['content_volume_name', 'Proxmox-Content'], ['content_volume_type', 'smb'],
        ['block_size', '2K'], ['chap_user_name', '-x'], ['control_port', 70000],
        ['cluster_prefix', '1abc'], ['pool', 'Pool-0']) {
    my @warnings;
    local $SIG{__WARN__} = sub { push @warnings, @_ };
    PVE::Storage::Plugin->parse_config("storage.cfg", "joviandss: jx\n\t$bad->[0] $bad->[1]\n");
    ok(scalar(grep { /\Q$bad->[0]\E/ } @warnings), "parser refuses $bad->[0] $bad->[1]");
}

# pvesm add / set / remove against a local appliance ----------------------
my $emulator = start_emulator($dir);
my $password = JdssTest::slurp($emulator->{password_file});
chomp $password;
RealPVE::write_storage_cfg('');
my %vendor_style = (type => 'joviandss', pool_name => 'Pool-0', content => 'images,rootdir',
    shared => 1, user_name => 'admin', ssl_cert_verify => 0,
    control_addresses => '127.0.0.1', control_port => $emulator->{port},
    data_addresses => '127.0.0.1', data_port => 3260, thin_provisioning => 1,
    block_size => '16K');
my $pwfile = "$ROOT/priv/storage/joviandss/jdss-a.pw";

sub storage_ids { return [sort grep { $_ ne 'local' } keys %{ PVE::Storage::config()->{ids} }]; }
sub add_fails {
    my ($what, $re, %params) = @_;
    eval { $API->create({ storage => 'jdss-a', %vendor_style, %params }) };
    like($@, $re, "add refused: $what");
    is_deeply(storage_ids(), [], "$what: nothing written to storage.cfg");
    ok(!-e $pwfile, "$what: no password file");
}

add_fails('wrong password', qr/storage 'jdss-a': cannot use the appliance: jdss: the appliance refused the login/,
    user_password => 'wrong-password');
add_fails('missing pool', qr/cannot use the appliance: jdss: .*Pool-9/,
    user_password => $password, pool_name => 'Pool-9');
add_fails('unreachable', qr/cannot use the appliance: jdss: no appliance address answered/,
    user_password => $password, control_port => JdssTest::free_port());
add_fails('not shared', qr/set 'shared 1'/, user_password => $password, shared => 0);
add_fails('no password', qr/'user_password' is required/);
add_fails('CHAP without password', qr/chap_enabled needs both/, user_password => $password,
    chap_enabled => 1, chap_user_name => 'pve');
add_fails('short CHAP password', qr/chap_user_password must be 12 to 255/,
    user_password => $password, chap_enabled => 1, chap_user_name => 'pve',
    chap_user_password => 'short');

$API->create({ storage => 'jdss-a', %vendor_style, user_password => $password,
    chap_enabled => 1, chap_user_name => 'pve', chap_user_password => 'chap-Secret-123' });
is_deeply(storage_ids(), ['jdss-a'], 'added');
my $text = RealPVE::read_file("$ROOT/storage.cfg");
unlike($text, qr/\Q$password\E|chap-Secret-123/, 'no password in storage.cfg');
is(RealPVE::read_file($pwfile),
    "chap_user_password chap-Secret-123\nuser_password $password\n",
    'password file in the vendor\'s format, keys sorted');
is((stat($pwfile))[2] & 07777, 0600, 'password file mode 0600');
is((stat("$ROOT/priv/storage/joviandss"))[2] & 07777, 0700, 'its directory mode 0700');

# jdss run by hand reads the same configuration
my $out = `JDSS_PVE_ROOT=$ROOT $jdss --storage jdss-a pool show -f json 2>&1`;
like($out, qr/"name": "Pool-0"/, 'jdss --storage reads storage.cfg and the password file');

# through Proxmox: status
my ($total, $free, $used, $active) = $P->status('jdss-a', PVE::Storage::config()->{ids}->{'jdss-a'}, {});
is($active, 1, 'status active');
is($total, 100 * 2**30, 'pool size');

# pvesm set: change a password, delete one; a wrong new password changes nothing
eval { $API->update({ storage => 'jdss-a', user_password => 'wrong-password' }) };
like($@, qr/the appliance refused the login/, 'set refuses a wrong password');
like(RealPVE::read_file($pwfile), qr/^user_password \Q$password\E$/m, 'old password kept');
$API->update({ storage => 'jdss-a', delete => 'chap_user_password,chap_enabled' });
is(RealPVE::read_file($pwfile), "user_password $password\n", 'deleted key removed from the file');
$API->update({ storage => 'jdss-a', block_size => '64K' });
is(PVE::Storage::config()->{ids}->{'jdss-a'}->{block_size}, '64K', 'block size changed');
eval { $API->update({ storage => 'jdss-a', pool_name => 'Pool-1' }) };
like($@, qr/pool_name/, 'pool_name is fixed');

# pvesm remove deletes the password file
$API->delete({ storage => 'jdss-a' });
is_deeply(storage_ids(), [], 'removed');
ok(!-e $pwfile, 'password file removed');

# a site on the vendor's 1.0: storage.cfg and an existing password file
RealPVE::write_storage_cfg(<<"CFG");
joviandss: jdss-Pool-0
        pool_name Pool-0
        content images,rootdir
        path /mnt/pve/jdss-Pool-0
        shared 1
        target_prefix iqn.2025-06.proxmox.pool-0
        user_name admin
        ssl_cert_verify 0
        control_addresses 127.0.0.1
        control_port $emulator->{port}
        data_addresses 127.0.0.2
        data_port 3260
        thin_provisioning 1
        block_size 16K
CFG
mkdir("$ROOT/priv/storage");
mkdir("$ROOT/priv/storage/joviandss");
JdssTest::write_file("$ROOT/priv/storage/joviandss/jdss-Pool-0.pw",
    "# written by the vendor's plugin\n\nuser_password $password\n");
my $scfg = PVE::Storage::config()->{ids}->{'jdss-Pool-0'};
is(($P->status('jdss-Pool-0', $scfg, {}))[3], 1, 'vendor 1.0 site: active without an edit');
my $alloc = PVE::Storage::vdisk_alloc(PVE::Storage::config(), 'jdss-Pool-0', 100, 'raw', undef,
    1024);
is($alloc, 'jdss-Pool-0:vm-100-disk-0', 'vendor 1.0 site: alloc');
my $target = `JDSS_PVE_ROOT=$ROOT $jdss --storage jdss-Pool-0 target create vm-100-disk-0 -f json 2>&1`;
like($target, qr/"target": "iqn\.2025-06\.proxmox\.pool-0/, 'target_prefix of storage.cfg used');
like($target, qr/127\.0\.0\.2:3260/, 'portal on data_addresses:data_port');
`JDSS_PVE_ROOT=$ROOT $jdss --storage jdss-Pool-0 target delete vm-100-disk-0 2>&1`;
my $volume = `JDSS_PVE_ROOT=$ROOT $jdss --storage jdss-Pool-0 volume show vm-100-disk-0 -f json`;
like($volume, qr/"thin": true/, 'thin by default without a YAML file');
PVE::Storage::vdisk_free(PVE::Storage::config(), $alloc);

# the user guide's setup (storage.cfg + YAML) and a mixed one: storage.cfg wins
my $yaml = write_yaml("$dir/jdss-Pool-1.yaml", backend => 'joviandss',
    rest_api_addresses => ['127.0.0.1'], rest_api_port => $emulator->{port},
    rest_api_password_file => $emulator->{password_file},
    driver_ssl_cert_path => $emulator->{cert}, thin_provision => 'false',
    target_prefix => "'iqn.2021-10.iscsi:'", jovian_block_size => '4K');
RealPVE::write_storage_cfg(<<"CFG");
joviandss: guide
        pool_name Pool-1
        config $yaml
        content images
        shared 1

joviandss: mixed
        pool_name Pool-1
        config $yaml
        content images
        shared 1
        block_size 64K
        thin_provisioning 1
CFG
my $c = PVE::Storage::config();
PVE::Storage::vdisk_alloc($c, 'guide', 200, 'raw', 'vm-200-disk-0', 1024);
PVE::Storage::vdisk_alloc($c, 'mixed', 201, 'raw', 'vm-201-disk-0', 1024);
my $list = `JDSS_PVE_ROOT=$ROOT $jdss --storage guide volume list -f json`;
like($list, qr/"name": "vm-200-disk-0"[^}]*"thin": false[^}]*"block_size": "4K"/s,
    'guide: YAML settings (4K blocks accepted)');
like($list, qr/"name": "vm-201-disk-0"[^}]*"thin": true[^}]*"block_size": "64K"/s,
    'mixed: storage.cfg wins over the YAML file');
PVE::Storage::vdisk_free($c, "$_") for 'guide:vm-200-disk-0', 'mixed:vm-201-disk-0';

is(stop_emulator($emulator), 0, 'emulator stopped');
done_testing();
