package PVE::SSHInfo;

# Stand-in for pve-cluster's PVE::SSHInfo (no SSH between test nodes).

use strict;
use warnings;

sub get_ssh_info { my ($node) = @_; return { ip => '127.0.0.1', name => $node }; }
sub ssh_info_to_command_base { return ['false']; }
sub ssh_info_to_command { return ['false']; }
sub ssh_info_to_ssh_opts { return (); }

1;
