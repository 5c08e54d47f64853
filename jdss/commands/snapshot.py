"""``jdss snapshot ...``: snapshots of a volume."""

from jdss.commands import base

LIST_COLUMNS = ("name", "creation", "used", "clones", "size", "guid")


def _volume_and_snapshot(parser):
    parser.add_argument("volume", help="volume name")
    parser.add_argument("snapshot", help="snapshot name")
    return parser


class ListSnapshot(base.Lister):
    """List the snapshots of a volume, oldest first."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument("volume", help="volume name")
        return parser

    def take_action(self, parsed_args):
        return self.table(self.storage.list_snapshots(parsed_args.volume),
                          LIST_COLUMNS)


class CreateSnapshot(base.ShowOne):
    """Snapshot a volume."""

    def get_parser(self, prog_name):
        return _volume_and_snapshot(super().get_parser(prog_name))

    def take_action(self, parsed_args):
        view = self.storage.create_snapshot(parsed_args.volume,
                                            parsed_args.snapshot)
        return self.record({k: view[k] for k in ("volume",) + LIST_COLUMNS})


class DeleteSnapshot(base.Command):
    """Delete a snapshot (refused while clones depend on it)."""

    def get_parser(self, prog_name):
        return _volume_and_snapshot(super().get_parser(prog_name))

    def take_action(self, parsed_args):
        self.storage.delete_snapshot(parsed_args.volume, parsed_args.snapshot)


class RollbackSnapshot(base.ShowOne):
    """Roll a volume back to a snapshot.

    Refused when newer snapshots exist, unless --force, which destroys
    them. Refused always when newer snapshots have clones.
    """

    def get_parser(self, prog_name):
        parser = _volume_and_snapshot(super().get_parser(prog_name))
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--force", action="store_true",
                           help="destroy newer snapshots")
        group.add_argument("--dry-run", action="store_true",
                           help="only report what would block or be "
                                "destroyed")
        return parser

    def take_action(self, parsed_args):
        if parsed_args.dry_run:
            check = self.storage.rollback_check(parsed_args.volume,
                                                parsed_args.snapshot)
            destroys = check.pop("destroys")
            check["possible"] = not destroys["snapshots"] and \
                not destroys["clones"]
        else:
            check = self.storage.rollback(parsed_args.volume,
                                          parsed_args.snapshot,
                                          parsed_args.force)
        check.pop("appliance_name")
        return self.record(check)
