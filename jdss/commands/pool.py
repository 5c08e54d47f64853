"""``jdss pool show``."""

from jdss.commands import base


class ShowPool(base.ShowOne):
    """Show the pool: name, size, free, used (bytes) and health."""

    def take_action(self, parsed_args):
        return self.record(self.storage.pool())
