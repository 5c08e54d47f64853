"""Logging set-up: console messages, the optional log file, no secrets.

Every run of a command has a short request id. Log file lines carry it,
and so does the one-line error a failure prints (the task log line in
Proxmox), so that an admin finds the REST exchange behind an error. The log
file is rotated by size; several jdss processes share it safely.
"""

import contextlib
import fcntl
import logging
import logging.handlers
import os
import secrets

LOG_FORMAT = ("%(asctime)s %(request_id)s %(process)d %(levelname)s "
              "%(name)s: %(message)s")
ROTATE_BYTES = 16 << 20      # as the vendor's plugin: 16 MiB, 5 files kept
ROTATE_KEEP = 5
_request = {"id": None, "log": None}


def start_request():
    """A new request id for this run of a command."""
    _request["id"] = secrets.token_hex(3)
    _request["log"] = None
    return _request["id"]


def request_reference():
    """`` [request ID in LOGFILE]`` when a log file records this run."""
    if not _request["log"]:
        return ""
    return f" [request {_request['id']} in {_request['log']}]"


class _RequestId(logging.Filter):
    def filter(self, record):
        record.request_id = _request["id"] or "-"
        return True


class SharedRotatingFileHandler(logging.handlers.WatchedFileHandler):
    """Rotates at ``max_bytes`` under an flock, so that the jdss processes
    writing one file rotate it once; the others reopen the new file."""

    def __init__(self, filename, max_bytes=ROTATE_BYTES, keep=ROTATE_KEEP):
        super().__init__(filename, encoding="utf-8")
        self.max_bytes, self.keep = max_bytes, keep

    def emit(self, record):
        with contextlib.suppress(OSError):
            if os.stat(self.baseFilename).st_size >= self.max_bytes:
                self._rotate()
        super().emit(record)

    def _rotate(self):
        with open(self.baseFilename + ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if os.stat(self.baseFilename).st_size < self.max_bytes:
                return                    # another process rotated it
            for n in range(self.keep - 1, 0, -1):
                with contextlib.suppress(FileNotFoundError):
                    os.rename(f"{self.baseFilename}.{n}",
                              f"{self.baseFilename}.{n + 1}")
            os.rename(self.baseFilename, self.baseFilename + ".1")
        self.reopenIfNeeded()


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
        handler = SharedRotatingFileHandler(config.logfile)
    except OSError as exc:
        raise ConfigError(f"{config.path}: logfile: cannot open "
                          f"{config.logfile}: {exc.strerror}") from None
    handler.setLevel(config.loglevel.upper())
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(_RequestId())
    protect(handler)
    root = logging.getLogger()
    root.addHandler(handler)
    if root.level > handler.level:
        root.setLevel(handler.level)
    _request["log"] = config.logfile
