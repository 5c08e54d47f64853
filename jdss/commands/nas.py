"""``jdss nas-volume ...``, ``jdss nas-snapshot ...`` and ``jdss share
...``: NAS volumes over NFS, their snapshots and shares."""

from jdss.commands import base

NAS_COLUMNS = ("name", "size", "free", "quota", "used", "reservation",
               "creation", "origin")
NAS_SNAPSHOT_COLUMNS = ("name", "nas_volume", "creation", "guid", "used")
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


def _mountpoint(parser, help_text="directory to mount the NAS volume at"):
    parser.add_argument("--mountpoint", required=True, help=help_text)
    return parser


def _options(parser):
    parser.add_argument("--options", help="NFS mount options (default "
                        "vers=4.1,hard,timeo=600,retrans=2,_netdev)")
    return parser


class NasCommand:
    """The NAS transport of the configuration (nas_transport)."""

    def nas_transport(self):
        return self.transport(self.storage.config.nas_transport)


class AttachNasVolume(NasCommand, base.ShowOne):
    """Share a NAS volume over NFS (if not yet) and mount it on this node."""

    def get_parser(self, prog_name):
        parser = _options(_mountpoint(_name(super().get_parser(prog_name))))
        parser.add_argument("--size", help="create the NAS volume with this "
                            "quota when the pool has none of that name")
        return parser

    def take_action(self, parsed_args):
        return self.record(self.storage.attach_nas_volume(
            parsed_args.name, parsed_args.mountpoint, self.nas_transport(),
            options=parsed_args.options, size=parsed_args.size))


class DetachNasVolume(NasCommand, base.Command):
    """Unmount a NAS volume on this node (the share stays for the others)."""

    def get_parser(self, prog_name):
        return _mountpoint(_name(super().get_parser(prog_name)))

    def take_action(self, parsed_args):
        self.storage.detach_nas_volume(parsed_args.name,
                                       parsed_args.mountpoint,
                                       self.nas_transport())


class RestoreNasVolume(NasCommand, base.ShowOne):
    """Restore one file of a NAS volume, mounted here, from a snapshot."""

    def get_parser(self, prog_name):
        parser = _name(super().get_parser(prog_name))
        parser.add_argument("--snapshot", required=True,
                            help="snapshot to take the file from")
        parser.add_argument("--path", required=True,
                            help="the file, relative to the NAS volume")
        _mountpoint(parser, "where the NAS volume is mounted on this node")
        return _options(parser)

    def take_action(self, parsed_args):
        return self.record(self.storage.restore_nas_file(
            parsed_args.name, parsed_args.snapshot, parsed_args.path,
            parsed_args.mountpoint, self.nas_transport(),
            options=parsed_args.options))


def _snapshot(parser):
    parser.add_argument("snapshot", help="snapshot name")
    return parser


class ListNasSnapshot(base.Lister):
    """List the snapshots of a NAS volume, oldest first."""

    def get_parser(self, prog_name):
        parser = _name(super().get_parser(prog_name))
        parser.add_argument("--prefix",
                            help="only snapshots whose name starts with it")
        return parser

    def take_action(self, parsed_args):
        return self.table(self.storage.list_nas_snapshots(
            parsed_args.name, parsed_args.prefix), NAS_SNAPSHOT_COLUMNS)


class CreateNasSnapshot(base.ShowOne):
    """Snapshot a NAS volume (all its files)."""

    def get_parser(self, prog_name):
        parser = _snapshot(_name(super().get_parser(prog_name)))
        parser.add_argument(
            "--reuse-within", type=float, default=0, metavar="SECONDS",
            help="reuse a snapshot of that name made at most this many "
                 "seconds ago (one guest snapshot, several disks); an "
                 "older one is refused")
        return parser

    def take_action(self, parsed_args):
        return self.record(self.storage.create_nas_snapshot(
            parsed_args.name, parsed_args.snapshot,
            reuse_within=parsed_args.reuse_within))


class DeleteNasSnapshot(base.Command):
    """Delete a snapshot of a NAS volume."""

    def get_parser(self, prog_name):
        return _snapshot(_name(super().get_parser(prog_name)))

    def take_action(self, parsed_args):
        self.storage.delete_nas_snapshot(parsed_args.name,
                                         parsed_args.snapshot)
