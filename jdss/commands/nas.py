"""``jdss nas-volume ...`` and ``jdss share ...``: NAS volumes over NFS."""

from jdss.commands import base

NAS_COLUMNS = ("name", "quota", "used", "reservation", "creation")
SHARE_COLUMNS = ("name", "nas_volume", "path", "active", "nfs", "exports")


def _name(parser, help_text="NAS volume name"):
    parser.add_argument("name", help=help_text)
    return parser


class ListNasVolume(base.Lister):
    """List the NAS volumes of the pool."""

    def take_action(self, parsed_args):
        return self.table(self.storage.list_nas_volumes(), NAS_COLUMNS)


class ShowNasVolume(base.ShowOne):
    """Show a NAS volume."""

    def get_parser(self, prog_name):
        return _name(super().get_parser(prog_name))

    def take_action(self, parsed_args):
        return self.record(self.storage.nas_volume(parsed_args.name))


class CreateNasVolume(base.ShowOne):
    """Create a NAS volume (a dataset) limited to a size."""

    def get_parser(self, prog_name):
        parser = _name(super().get_parser(prog_name), "new NAS volume name")
        parser.add_argument("--size", required=True,
                            help="quota in bytes or with K/M/G/T suffix")
        return parser

    def take_action(self, parsed_args):
        return self.record(self.storage.create_nas_volume(parsed_args.name,
                                                          parsed_args.size))


class ResizeNasVolume(base.ShowOne):
    """Grow the quota of a NAS volume (it never shrinks)."""

    def get_parser(self, prog_name):
        parser = _name(super().get_parser(prog_name))
        parser.add_argument("--size", required=True,
                            help="new quota in bytes or with K/M/G/T suffix")
        return parser

    def take_action(self, parsed_args):
        return self.record(self.storage.resize_nas_volume(parsed_args.name,
                                                          parsed_args.size))


class DeleteNasVolume(base.Command):
    """Delete a NAS volume and its share."""

    def get_parser(self, prog_name):
        return _name(super().get_parser(prog_name))

    def take_action(self, parsed_args):
        self.storage.delete_nas_volume(parsed_args.name)


class ListShare(base.Lister):
    """List the NFS shares of the pool's NAS volumes."""

    def take_action(self, parsed_args):
        return self.table(self.storage.list_shares(), SHARE_COLUMNS)


class ShowShare(base.ShowOne):
    """Show the NFS share of a NAS volume."""

    def get_parser(self, prog_name):
        return _name(super().get_parser(prog_name))

    def take_action(self, parsed_args):
        return self.record(self.storage.share(parsed_args.name))


class CreateShare(base.ShowOne):
    """Share a NAS volume over NFS (kept if already shared)."""

    def get_parser(self, prog_name):
        return _name(super().get_parser(prog_name))

    def take_action(self, parsed_args):
        return self.record(self.storage.create_share(parsed_args.name))


class DeleteShare(base.Command):
    """Stop sharing a NAS volume (nothing to do if it is not shared)."""

    def get_parser(self, prog_name):
        return _name(super().get_parser(prog_name))

    def take_action(self, parsed_args):
        self.storage.delete_share(parsed_args.name)


def _mountpoint(parser):
    parser.add_argument("--mountpoint", required=True,
                        help="directory to mount the NAS volume at")
    return parser


class AttachNasVolume(base.ShowOne):
    """Share a NAS volume over NFS (if not yet) and mount it on this node."""

    def get_parser(self, prog_name):
        return _mountpoint(_name(super().get_parser(prog_name)))

    def take_action(self, parsed_args):
        transport = self.transport("nfs")
        return self.record(self.storage.attach_nas_volume(
            parsed_args.name, parsed_args.mountpoint, transport))


class DetachNasVolume(base.Command):
    """Unmount a NAS volume on this node (the share stays for the others)."""

    def get_parser(self, prog_name):
        return _mountpoint(_name(super().get_parser(prog_name)))

    def take_action(self, parsed_args):
        transport = self.transport("nfs")
        self.storage.detach_nas_volume(parsed_args.name,
                                       parsed_args.mountpoint, transport)
