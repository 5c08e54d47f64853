"""Logging set-up: console messages, the optional log file, no secrets."""

import logging

LOG_FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"


class RedactingFilter(logging.Filter):
    """Replaces every known secret in a record's message with ``***``."""

    def __init__(self):
        super().__init__()
        self.secrets = set()

    def filter(self, record):
        if self.secrets:
            message = record.getMessage()
            for secret in self.secrets:
                message = message.replace(secret, "***")
            record.msg, record.args = message, None
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(
                    record.exc_info)
            if record.exc_text:
                for secret in self.secrets:
                    record.exc_text = record.exc_text.replace(secret, "***")
        return True


REDACTOR = RedactingFilter()


class ConsoleFormatter(logging.Formatter):
    """``jdss: error: message``: one line a message, as Proxmox shows it."""

    def format(self, record):
        text = super().format(record)
        if record.levelno >= logging.WARNING:
            return f"jdss: {record.levelname.lower()}: {text}"
        return f"jdss: {text}"


def own_records_only(record):
    """Console filter: jdss's records; libraries' only with -v or --debug.

    os-brick and oslo log their own retries and tracebacks; the jdss error
    that follows says what failed in one line, so at the default level the
    console shows only that. Log files keep everything.
    """
    return record.name.split(".", 1)[0].startswith("jdss")


def protect(handler):
    """Attach the redacting filter to ``handler``."""
    if REDACTOR not in handler.filters:
        handler.addFilter(REDACTOR)


def add_secrets(values):
    """Never log any of ``values`` from now on."""
    REDACTOR.secrets.update(v for v in values if v)


def enable_file_logging(config):
    """Log to ``config.logfile`` at ``config.loglevel`` when both are set."""
    if not (config.loglevel and config.logfile):
        return
    from jdss.errors import ConfigError
    try:
        handler = logging.FileHandler(config.logfile, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{config.path}: logfile: cannot open "
                          f"{config.logfile}: {exc.strerror}") from None
    handler.setLevel(config.loglevel.upper())
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    protect(handler)
    logging.getLogger().addHandler(handler)
