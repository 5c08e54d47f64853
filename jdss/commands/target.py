"""``jdss target ...``: iSCSI exports of volumes."""

from jdss.commands import base


def _volume(parser):
    parser.add_argument("volume", help="volume name")
    return parser


class ShowTarget(base.ShowOne):
    """Show how a volume is exported: IQN, LUN, portals, CHAP."""

    def get_parser(self, prog_name):
        return _volume(super().get_parser(prog_name))

    def take_action(self, parsed_args):
        return self.record(self.storage.target(parsed_args.volume))


class CreateTarget(base.ShowOne):
    """Export a volume as an iSCSI target (kept if already exported)."""

    def get_parser(self, prog_name):
        return _volume(super().get_parser(prog_name))

    def take_action(self, parsed_args):
        return self.record(self.storage.create_target(parsed_args.volume))


class DeleteTarget(base.Command):
    """Stop exporting a volume (nothing to do if it is not exported)."""

    def get_parser(self, prog_name):
        return _volume(super().get_parser(prog_name))

    def take_action(self, parsed_args):
        self.storage.delete_target(parsed_args.volume)
