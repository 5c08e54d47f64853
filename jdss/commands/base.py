"""What every jdss command shares: storage access and error reporting."""

import logging

from cliff import command, lister, show

from jdss import log
from jdss.errors import JdssError

LOG = logging.getLogger("jdss")


class JdssCommandMixin:
    """Turns errors into one line on stderr and the error's exit code."""

    @property
    def storage(self):
        return self.app.storage

    def transport(self, name=None):
        """Transport ``name``, or the one the configuration chooses."""
        from jdss import drivers
        return drivers.load_transport(self.storage.config, name=name)

    def get_epilog(self):
        """The epilog and its hooks' epilogs, without cliff's plugin line.

        cliff adds "provided by the X plugin" under commands of other
        distributions, and to find the distribution it reads the metadata
        of every installed package, on every call, help or not: about
        40 ms. jdss's commands are jdss's own, so the line never applies.
        """
        parts = [self._epilog or ""]
        for hook in getattr(self, "_hooks", ()):
            epilog = hook.obj.get_epilog() if hook.obj is not None else None
            if epilog:
                parts.append(epilog)
        return "\n\n".join(parts)

    def run(self, parsed_args):
        try:
            return super().run(parsed_args)
        except JdssError as exc:
            message = str(exc) + log.request_reference()
            if self.app_args.debug:
                LOG.exception("%s", message)
            else:
                LOG.error("%s", message)
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


def requested_format(argv, default):
    """The ``-f`` of a command line; None when every formatter is needed."""
    argv = list(argv or ())
    if any(arg in ("-h", "--help") for arg in argv):
        return None
    wanted = default
    for index, arg in enumerate(argv):
        if arg in ("-f", "--format") and index + 1 < len(argv):
            wanted = argv[index + 1]
        elif arg.startswith("--format="):
            wanted = arg.split("=", 1)[1]
        elif arg.startswith("-f") and len(arg) > 2:
            wanted = arg[2:]
    return wanted


class DisplayMixin(JdssCommandMixin):
    """Loads only the output formatter the command line asks for.

    cliff imports every formatter to build a command's parser; the table
    formatter alone pulls in prettytable and wcwidth, which costs more
    than a status call's own work.
    """

    def _load_formatter_plugins(self):
        wanted = requested_format(getattr(self.app, "subcommand_argv", None),
                                  self.formatter_default)
        if wanted is not None:
            import stevedore
            formatters = stevedore.NamedExtensionManager(
                self.formatter_namespace, names=[wanted], invoke_on_load=True,
                # a name not found is for argparse to refuse, below
                on_missing_entrypoints_callback=lambda names: None)
            if formatters.names():
                return _fast_json(formatters)
        # help, or a name argparse must refuse: cliff's own way
        return _fast_json(super()._load_formatter_plugins())


def _fast_json(formatters):
    """``formatters`` with cliff's json formatter replaced by ours (the same
    options and text, encoded in C)."""
    from cliff.formatters import json_format

    from jdss.commands.json_output import JSONFormatter
    for extension in formatters:
        if type(extension.obj) is json_format.JSONFormatter:
            extension.obj = JSONFormatter()
    return formatters


class ShowOne(DisplayMixin, show.ShowOne):
    """A command that prints one record."""

    def record(self, data):
        """``(columns, values)`` of a dict, for cliff."""
        columns = tuple(data)
        return columns, tuple(data[c] for c in columns)


class Lister(DisplayMixin, lister.Lister):
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
