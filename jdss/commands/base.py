"""What every jdss command shares: storage access and error reporting."""

import logging

from cliff import command, lister, show

from jdss.errors import JdssError

LOG = logging.getLogger("jdss")


class JdssCommandMixin:
    """Turns errors into one line on stderr and the error's exit code."""

    @property
    def storage(self):
        return self.app.storage

    def run(self, parsed_args):
        try:
            return super().run(parsed_args)
        except JdssError as exc:
            if self.app_args.debug:
                LOG.exception("%s", exc)
            else:
                LOG.error("%s", exc)
            return exc.exit_code
        except (KeyboardInterrupt, BrokenPipeError):
            raise
        except Exception as exc:
            if self.app_args.debug:
                raise
            LOG.error("unexpected %s: %s (run with --debug for details)",
                      type(exc).__name__, exc)
            return 1


class Command(JdssCommandMixin, command.Command):
    """A command that prints nothing on success."""


class ShowOne(JdssCommandMixin, show.ShowOne):
    """A command that prints one record."""

    def record(self, data):
        """``(columns, values)`` of a dict, for cliff."""
        columns = tuple(data)
        return columns, tuple(data[c] for c in columns)


class Lister(JdssCommandMixin, lister.Lister):
    """A command that prints a table."""

    def table(self, rows, columns):
        """``(columns, rows)`` of a list of dicts, for cliff."""
        return columns, [tuple(row[c] for c in columns) for row in rows]


def add_thin_options(parser):
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--thin", dest="thin", action="store_true",
                       default=None, help="thin provisioned (sparse)")
    group.add_argument("--thick", dest="thin", action="store_false",
                       help="thick provisioned (space reserved)")
