#!/usr/bin/perl
# One plugin method end to end, as pvestatd or the GUI calls it:
#   plugin_calls.pl JDSS CONFIG status|list_images [AGENT_SOCKET]
use strict;
use warnings;
use PVE::Storage::Custom::OpenEJovianDSSPlugin;

my ($jdss, $config, $method, $agent) = @ARGV;
$PVE::Storage::Custom::OpenEJovianDSSPlugin::JDSS = $jdss;
$PVE::Storage::Custom::OpenEJovianDSSPlugin::AGENT_SOCKET = $agent // '/nonexistent';
my $scfg = { type => 'joviandss', pool_name => 'Pool-0', config => $config,
    content => { images => 1, rootdir => 1 } };
my $P = 'PVE::Storage::Custom::OpenEJovianDSSPlugin';
if ($method eq 'status') {
    my (undef, undef, undef, $active) = $P->status('bench', $scfg, {});
    die "storage inactive\n" if !$active;
} else {
    $P->list_images('bench', $scfg, undef, undef, {});
}
