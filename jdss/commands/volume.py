"""``jdss volume ...``: volumes (zvols) by their Proxmox names."""

import logging

from jdss import errors
from jdss.commands import base

LOG = logging.getLogger(__name__)

LIST_COLUMNS = ("name", "size", "used", "thin", "block_size", "origin",
                "creation")


class ListVolume(base.Lister):
    """List the volumes of the pool."""

    def take_action(self, parsed_args):
        return self.table(self.storage.list_volumes(), LIST_COLUMNS)


class ShowVolume(base.ShowOne):
    """Show a volume, with its name on the appliance."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument("name", help="volume name, e.g. vm-100-disk-0")
        return parser

    def take_action(self, parsed_args):
        return self.record(self.storage.volume(parsed_args.name))


class CreateVolume(base.ShowOne):
    """Create a volume."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        add_new_name(parser, "name", "new volume name")
        parser.add_argument("--size", required=True,
                            help="size in bytes or with K/M/G/T suffix "
                                 "(rounded up to the block size)")
        base.add_thin_options(parser)
        parser.add_argument("--block-size", metavar="SIZE",
                            help="16K, 32K, 64K, 128K, 256K, 512K or 1M "
                                 "(default: jovian_block_size)")
        return parser

    def take_action(self, parsed_args):
        return self.record(named(self, parsed_args, "name", lambda name:
                                 self.storage.create_volume(
                                     name, parsed_args.size, parsed_args.thin,
                                     parsed_args.block_size)))


def add_new_name(parser, dest, what):
    """A new volume's name, or ``--guest``: the guest's next free disk
    name, as Proxmox would pick it."""
    parser.add_argument(dest, nargs="?", help=f"{what} (or --guest)")
    parser.add_argument("--guest", type=int, metavar="VMID",
                        help="name it vm-VMID-disk-N, with the lowest N that "
                             "Proxmox finds free; if another node takes "
                             "that name meanwhile, the next one")


def named(command, parsed_args, dest, make):
    """``make(name)`` under the name given as ``dest`` or, with
    ``--guest``, under the guest's next free disk name."""
    name, guest = getattr(parsed_args, dest), parsed_args.guest
    if (name is None) == (guest is None):
        raise errors.InvalidInput(
            f"give the {dest.replace('_', ' ')} or --guest VMID, one of them")
    if guest is None:
        return make(name)
    return command.storage.for_next_disk(guest, make)


def add_detach_option(parser):
    parser.add_argument("--detach", action="store_true",
                        help="detach it from this node first and remove its "
                             "export, unless another node uses it")


class DeleteVolume(base.Command):
    """Delete a volume."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument("name", help="volume to delete")
        parser.add_argument("--recursive", action="store_true",
                            help="delete its snapshots too")
        add_detach_option(parser)
        return parser

    def take_action(self, parsed_args):
        if parsed_args.detach:
            self.storage.detach_volume(parsed_args.name, self.transport())
        self.storage.delete_volume(parsed_args.name, parsed_args.recursive)


class ResizeVolume(base.ShowOne):
    """Grow a volume."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument("name", help="volume to grow")
        parser.add_argument("--size", required=True,
                            help="new size; smaller than now is refused")
        parser.add_argument("--rescan", action="store_true",
                            help="make this node see the new size if the "
                                 "volume is attached here (online resize)")
        return parser

    def take_action(self, parsed_args):
        view = self.storage.resize_volume(parsed_args.name, parsed_args.size)
        if parsed_args.rescan:
            self.storage.rescan_volume(parsed_args.name, self.transport())
        return self.record(view)


class RenameVolume(base.ShowOne):
    """Rename a volume; its snapshots and clones follow."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument("name", help="volume to rename")
        add_new_name(parser, "new_name", "its new name")
        add_detach_option(parser)
        return parser

    def take_action(self, parsed_args):
        if parsed_args.detach:
            self.storage.detach_volume(parsed_args.name, self.transport())
        return self.record(named(self, parsed_args, "new_name", lambda name:
                                 self.storage.rename_volume(parsed_args.name,
                                                            name)))


class CloneVolume(base.ShowOne):
    """Create a volume from another volume or from one of its snapshots."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument("source", help="volume to clone")
        add_new_name(parser, "new_name", "name of the clone")
        parser.add_argument("--snapshot",
                            help="clone this snapshot (default: the "
                                 "current state, through a hidden snapshot)")
        base.add_thin_options(parser)
        return parser

    def take_action(self, parsed_args):
        return self.record(named(self, parsed_args, "new_name", lambda name:
                                 self.storage.clone_volume(
                                     parsed_args.source, name,
                                     parsed_args.snapshot, parsed_args.thin)))


class AttachVolume(base.ShowOne):
    """Attach a volume (or a snapshot, read-only) on this node.

    Prints the path to use: a block device, a /dev/mapper device with
    multipath, or an iscsi:// URL with the iscsi-direct transport.
    """

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument("name", help="volume to attach")
        parser.add_argument("--snapshot",
                            help="attach this snapshot read-only instead")
        parser.add_argument("--exclusive", action="store_true",
                            help="refuse while another node has a session "
                                 "on the volume (for a local file system, "
                                 "such as an iSCSI content volume)")
        return parser

    def take_action(self, parsed_args):
        transport = self.transport()
        return self.record(self.storage.attach_volume(
            parsed_args.name, transport, parsed_args.snapshot,
            exclusive=parsed_args.exclusive))


class DetachVolume(base.Command):
    """Detach a volume (or snapshot) from this node and remove its export."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument("name", help="volume to detach")
        parser.add_argument("--snapshot", help="detach this snapshot")
        return parser

    def take_action(self, parsed_args):
        transport = self.transport()
        self.storage.detach_volume(parsed_args.name, transport,
                                   parsed_args.snapshot)


class PathVolume(base.ShowOne):
    """Print where a volume is on this node, without attaching it."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument("name", help="volume name")
        parser.add_argument("--snapshot", help="path of this snapshot")
        return parser

    def take_action(self, parsed_args):
        transport = self.transport()
        return self.record(self.storage.volume_path(
            parsed_args.name, transport, parsed_args.snapshot))


class ExportVolume(base.Command):
    """Write a volume to stdout as a raw+size stream (storage migration).

    The volume is attached for the copy if it is not attached here yet.
    """

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument("name", help="volume to export")
        parser.add_argument("--snapshot", help="export this snapshot")
        return parser

    def take_action(self, parsed_args):
        import sys
        from jdss import stream
        config = self.storage.config
        sys.stdout.flush()
        with _AttachedHere(self.storage, self.transport(), parsed_args.name,
                           parsed_args.snapshot) as path:
            size = self.storage.exported_size(parsed_args.name,
                                              parsed_args.snapshot)
            stream.export(path, size, sys.stdout.fileno(),
                          config.copy_block_size, config.stream_idle_timeout)


class ImportVolume(base.Command):
    """Read a raw+size stream from stdin into a volume (made if missing).

    A volume this command made is deleted again when the import fails, so
    that a retried migration finds no half-written volume in its way.
    """

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument("name", help="volume to write")
        parser.add_argument(
            "--new", action="store_true",
            help="only into a volume this command makes: exit 5 if one of "
                 "that name exists (never write over another's volume)")
        return parser

    def take_action(self, parsed_args):
        import contextlib
        import signal
        import sys
        from jdss import errors, stream
        config, name = self.storage.config, parsed_args.name
        size = stream.read_header(sys.stdin.fileno(),
                                  config.stream_idle_timeout)
        volume = None
        if not parsed_args.new:
            with contextlib.suppress(errors.NotFound):
                volume = self.storage.volume(name)
        created = volume is None
        if created:
            volume = self.storage.create_volume(name, size)
        # Proxmox ends a cancelled migration with SIGTERM: clean up then too
        signal.signal(signal.SIGTERM, _terminated)
        try:
            if volume["size"] < size:
                self.storage.resize_volume(name, size)
            with _AttachedHere(self.storage, self.transport(), name) as path:
                stream.import_into(path, size, sys.stdin.fileno(), created,
                                   config.copy_block_size,
                                   config.stream_idle_timeout)
        except BaseException:
            if created:
                self._remove(name)
            raise

    def _remove(self, name):
        from jdss import errors
        try:
            self.storage.delete_volume(name, recursive=True)
            LOG.warning("import failed: removed volume %s that it had made",
                        name)
        except errors.JdssError as exc:
            LOG.warning("import failed and volume %s it made could not be "
                        "removed: %s; delete it by hand", name, exc)


def _terminated(signum, frame):
    from jdss import errors
    raise errors.JdssError("the import was terminated")


class _AttachedHere:
    """Attach a volume for the block, unless it was attached already."""

    def __init__(self, storage, transport, name, snapshot=None):
        self.storage, self.transport = storage, transport
        self.name, self.snapshot = name, snapshot
        self.attached_here = False

    def __enter__(self):
        if self.snapshot is None:
            path = self.storage.attached_path(self.name, self.transport)
            if path is not None:
                return path
        self.attached_here = True
        return self.storage.attach_volume(self.name, self.transport,
                                          self.snapshot)["path"]

    def __exit__(self, *exc):
        if self.attached_here:
            self.storage.detach_volume(self.name, self.transport,
                                       self.snapshot)
