"""The exception hierarchy of jdss and the exit code of each error.

Every error a user can cause or meet is a ``JdssError``. The class decides
the process exit code, so the Perl plugin can tell the cases apart without
parsing messages.
"""


class JdssError(Exception):
    """Base class: a failure with a one-line message for the user."""

    exit_code = 1

    def __init__(self, message, **details):
        super().__init__(message)
        self.message = message
        self.details = details

    def __str__(self):
        return self.message


class InvalidInput(JdssError):
    """A name, size or argument is not acceptable."""

    exit_code = 2


class ConfigError(JdssError):
    """The configuration file is missing, unreadable or invalid."""

    exit_code = 3


class NotFound(JdssError):
    """The named object does not exist."""

    exit_code = 4


class AlreadyExists(JdssError):
    """An object with that name exists already."""

    exit_code = 5


class NameHeld(AlreadyExists):
    """The name is free, but an object named after it remains in use: the
    hidden snapshot a clone of that name hangs from, held by a clone that
    was renamed since."""


class Busy(JdssError):
    """The object is in use or has dependents (snapshots, clones, exports)."""

    exit_code = 6


class NoSpace(JdssError):
    """The pool has not enough free space."""

    exit_code = 7


class RollbackBlocked(JdssError):
    """A rollback would destroy newer snapshots (the message names them)."""

    exit_code = 8

    def __init__(self, message, blockers=()):
        super().__init__(message, blockers=list(blockers))
        self.blockers = list(blockers)


class Unreachable(JdssError):
    """No address of the appliance answered, or TLS failed."""

    exit_code = 9


class TlsError(Unreachable):
    """The TLS handshake or certificate verification failed."""


class AuthFailed(JdssError):
    """The appliance refused the login or password."""

    exit_code = 10


class BackendError(JdssError):
    """The appliance reported an error that has no more specific class."""

    exit_code = 11


class AttachFailed(JdssError):
    """Attaching or detaching on this node failed (login, device, mount)."""

    exit_code = 12


#: one class per exit code
ERROR_CLASSES = (JdssError, InvalidInput, ConfigError, NotFound,
                 AlreadyExists, Busy, NoSpace, RollbackBlocked, Unreachable,
                 AuthFailed, BackendError, AttachFailed)
EXIT_CODES = {cls.__name__: cls.exit_code for cls in ERROR_CLASSES}


def exit_code_help():
    """Lines of ``code  meaning`` for ``jdss --help``, from the classes."""
    classes = sorted(ERROR_CLASSES, key=lambda cls: cls.exit_code)
    return [f"  {cls.exit_code:>2}  "
            + ("Other failure." if cls is JdssError
               else cls.__doc__.splitlines()[0]) for cls in classes]
