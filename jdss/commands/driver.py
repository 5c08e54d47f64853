"""``jdss driver list``."""

from jdss.commands import base


class ListDriver(base.Lister):
    """List the backend and transport drivers found through entry points."""

    def take_action(self, parsed_args):
        from jdss import drivers
        return ("kind", "name", "target", "status"), drivers.list_drivers()
