"""``jdss cleanup``: leftovers of interrupted operations."""

from jdss.commands import base

COLUMNS = ("kind", "name", "action", "reason")


class Cleanup(base.Lister):
    """Find and remove leftovers: temporary clones, orphan exports.

    Temporary se_ clones, hidden t_ volumes no clone depends on (with
    the hidden snapshot they hung from), hidden c_ snapshots without
    their clone, jdss targets that export no existing volume, and the
    t_restore_ NAS clones (and shares) of interrupted file restores; with
    a cluster_prefix only this cluster's volumes and snapshots. Anything
    still in use by an initiator or a running restore, or with
    dependents, is kept and reported.
    """

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument("--dry-run", action="store_true",
                            help="only list what would be removed")
        return parser

    def take_action(self, parsed_args):
        from jdss import cleanup
        items = cleanup.find(self.storage)
        if not parsed_args.dry_run:
            items = cleanup.remove(self.storage, items)
        return self.table(items, COLUMNS)
