"""``jdss doctor``: check this node, optionally bundle what support needs."""

from jdss.commands import base

COLUMNS = ("check", "status", "detail", "fix")


class Doctor(base.Lister):
    """Check this node for JovianDSS storage: one line per check.

    Every joviandss storage of storage.cfg (or the file of -c): appliance
    addresses and login, pool, iSCSI ports, clock, leftovers; and the node:
    jdss and plugin versions, iscsiadm and initiator name, multipathd and
    the drop-in, the udev rule, the LVM filter, the agent. A failed check
    says what to do. Exit code 0 when every check holds, 1 otherwise.
    """

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument(
            "--bundle", metavar="FILE",
            help="also write a .tar.gz for support: versions, redacted "
                 "configuration, logs, sessions, multipath, journal and "
                 "the appliance's answers (no password, no key)")
        return parser

    def take_action(self, parsed_args):
        from jdss import config, doctor
        options = self.app.options
        overrides = dict(config.parse_assignment(text)
                         for text in options.overrides)
        if options.pool:
            overrides["pool"] = options.pool
        storages = doctor.storages(options.config, overrides)
        results = doctor.run(storages)
        if parsed_args.bundle:
            from jdss import bundle
            bundle.write(parsed_args.bundle, storages, results)
        self.failed = any(r.failed for r in results)
        return self.table(results, COLUMNS)

    def run(self, parsed_args):
        self.failed = False
        code = super().run(parsed_args)
        return code or (1 if self.failed else 0)
