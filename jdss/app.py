"""The ``jdss`` command: a cliff application over the ``jdss.cli`` commands."""

import argparse
import logging
import sys

from cliff.app import App
from cliff.commandmanager import CommandManager

from jdss import __version__, errors, log

LOG = logging.getLogger(__name__)


class JdssApp(App):
    """jdss: Open-E JovianDSS storage for Proxmox VE."""

    NAME = "jdss"      # cliff takes it from sys.argv[0]: not in jdss-agent

    def __init__(self):
        super().__init__(
            description="Manage Open-E JovianDSS storage for Proxmox VE.",
            version=__version__,
            command_manager=CommandManager("jdss.cli"),
            deferred_help=True)
        self._storage = None

    def build_option_parser(self, description, version, argparse_kwargs=None):
        argparse_kwargs = dict(  # keeps the exit code table of the epilog
            argparse_kwargs or {},
            formatter_class=argparse.RawDescriptionHelpFormatter)
        parser = super().build_option_parser(description, version,
                                             argparse_kwargs)
        for action in parser._actions:     # cliff names the running program
            if isinstance(action, argparse._VersionAction):
                action.version = f"{self.NAME} {version}"
        parser.add_argument(
            "-c", "--config", metavar="FILE",
            help="YAML configuration file (default: $JDSS_CONFIG, else "
                 "/etc/jdss/jdss.yaml)")
        parser.add_argument(
            "--storage", metavar="ID",
            help="Proxmox storage ID: read its section of "
                 "/etc/pve/storage.cfg, the YAML file it uses and the "
                 "passwords Proxmox keeps for it")
        parser.add_argument(
            "--section", metavar="JSON", help=argparse.SUPPRESS)
        parser.add_argument(
            "--passwords-from-stdin", action="store_true",
            help="with --storage: read the passwords from stdin, as "
                 "'key value' lines of a Proxmox password file")
        parser.add_argument(
            "--pool", metavar="POOL",
            help="JovianDSS pool (overrides 'pool' of the configuration)")
        parser.add_argument(
            "--set", metavar="KEY=VALUE", action="append", default=[],
            dest="overrides",
            help="override a configuration key (repeatable), e.g. "
                 "--set multipath=true")
        parser.__class__ = _GlobalOptionParser
        parser.epilog = "\n".join(
            ["Exit codes:", "   0  Success."] + errors.exit_code_help()
            + ["", "'jdss help COMMAND' shows a command's options; the "
               "manual is docs/ of the source,", "installed under "
               "/usr/share/doc/."])
        return parser

    # cliff's verbosity (-q 0, default 1, -v 2, -vv 3) -> console level:
    # by default only warnings and errors, so scripts get one clean line.
    CONSOLE_LEVELS = {0: logging.ERROR, 1: logging.WARNING, 2: logging.INFO}

    def configure_logging(self):
        super().configure_logging()
        level = self.CONSOLE_LEVELS.get(self.options.verbose_level,
                                        logging.DEBUG)
        for handler in logging.getLogger().handlers:
            log.protect(handler)
            if getattr(handler, "stream", None) is self.stderr:
                handler.setFormatter(log.ConsoleFormatter("%(message)s"))
                handler.setLevel(level)
                if level >= logging.WARNING:
                    handler.addFilter(log.own_records_only)
        # cliff lets every level through to the handlers; records that none
        # of them takes are better not made (requests' and urllib3's
        # debug lines, a dozen per call); a log file lowers it again
        root = logging.getLogger()
        root.setLevel(max(logging.DEBUG, min(
            (h.level for h in root.handlers), default=logging.DEBUG)))

    @property
    def storage(self):
        """The :class:`~jdss.storage.Storage` of the configuration, made once."""
        if self._storage is None:
            from jdss import config, drivers
            from jdss.storage import Storage
            overrides = dict(config.parse_assignment(text)
                             for text in self.options.overrides)
            if self.options.pool:
                overrides["pool"] = self.options.pool
            cfg = self._load_config(overrides)
            log.add_secrets(cfg.secrets())
            log.enable_file_logging(cfg)
            LOG.info("jdss %s", " ".join(getattr(self, "_argv", ())))
            self._storage = Storage(cfg, drivers.load_backend(cfg))
        return self._storage

    def _load_config(self, overrides):
        from jdss import config, errors, pvecfg
        if not self.options.storage:
            if self.options.section or self.options.passwords_from_stdin:
                raise errors.ConfigError("--section and --passwords-from-stdin "
                                         "need --storage")
            return config.load(self.options.config, overrides=overrides)
        if self.options.config:
            raise errors.ConfigError("-c and --storage both given; the "
                                     "storage names its own configuration")
        section = passwords = None
        if self.options.section:
            section = pvecfg.parse_section_argument(self.options.section)
        if self.options.passwords_from_stdin:
            passwords = pvecfg.parse_passwords(self.stdin.read())
        return pvecfg.load_config(self.options.storage, section,
                                  overrides=overrides, passwords=passwords)

    def run_subcommand(self, argv):
        # the command's own arguments, so that it loads only the output
        # formatter they ask for (see commands.base.DisplayMixin)
        self.subcommand_argv = list(argv)
        return super().run_subcommand(argv)

    def run(self, argv):
        # Without a command, print help rather than start cliff's
        # interactive shell, which would wait for a terminal.
        argv = list(argv)
        log.start_request()
        self._argv = argv
        options, remainder = self.parser.parse_known_args(argv)
        if not remainder and not options.deferred_help:
            argv.append("help")
        return super().run(argv)


class _GlobalOptionParser(argparse.ArgumentParser):
    """Parses global options only up to the command word.

    cliff hands the whole command line to the top-level parser, where the
    command's own ``-c COLUMN`` would be taken for ``-c/--config``.
    """

    def parse_known_args(self, args=None, namespace=None):
        args = list(sys.argv[1:] if args is None else args)
        split = len(args)
        index = 0
        while index < len(args):
            token = args[index]
            if token == "--" or not token.startswith("-"):
                split = index
                break
            action = self._option_string_actions.get(token.split("=")[0])
            if action is not None and action.nargs != 0 and "=" not in token:
                index += 1
            index += 1
        namespace, extra = super().parse_known_args(args[:split], namespace)
        return namespace, extra + args[split:]


def main(argv=None):
    """Entry point of the ``jdss`` console script."""
    return JdssApp().run(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
