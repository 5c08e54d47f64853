"""Running a function in a child process with a mount namespace of its own.

What the child mounts is seen by no other process and goes away with the
child, whatever ends it: a crash of jdss (the child gets SIGKILL when its
parent dies) leaves no mount behind. The child sees every mount its
parent saw when it started. Needs root (CAP_SYS_ADMIN).
"""

import ctypes
import json
import os
import signal

from jdss import errors

CLONE_NEWNS = 0x00020000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
PR_SET_PDEATHSIG = 1


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _check(result, what):
    if result != 0:
        code = ctypes.get_errno()
        raise errors.AttachFailed(f"cannot {what}: {os.strerror(code)}")


def die_with_parent(parent=None):
    """Have the kernel SIGKILL this process when its parent ends."""
    _check(_libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0),
           "tie the process to its parent")
    if parent is not None and os.getppid() != parent:
        os._exit(1)                        # the parent is already gone


def _enter_private_namespace():
    libc = _libc()
    _check(libc.unshare(CLONE_NEWNS), "make a private mount namespace "
           "(jdss must run as root)")
    _check(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None),
           "make the mounts of the private namespace private")


def run(func, *args):
    """``func(*args)`` in a child process in a private mount namespace;
    returns its result (JSON data) or raises its :class:`JdssError`."""
    parent = os.getpid()
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:                                      # pragma: no cover
        os.close(reader)
        code = 0
        try:
            die_with_parent(parent)
            _enter_private_namespace()
            answer = {"result": func(*args)}
        except errors.JdssError as exc:
            answer = {"error": type(exc).__name__, "message": str(exc)}
            code = exc.exit_code
        except BaseException as exc:                  # noqa: B902
            answer = {"error": "JdssError",
                      "message": f"unexpected {type(exc).__name__}: {exc}"}
            code = 1
        try:
            os.write(writer, json.dumps(answer).encode())
        finally:
            os._exit(code)
    os.close(writer)
    chunks = []
    with os.fdopen(reader, "rb") as pipe:
        for chunk in iter(lambda: pipe.read(65536), b""):
            chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    try:
        answer = json.loads(b"".join(chunks) or b"null")
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise errors.AttachFailed(
            "the process that mounts privately ended without an answer "
            f"({_describe(status)})")
    if "error" in answer:
        cls = getattr(errors, answer["error"], errors.JdssError)
        if not (isinstance(cls, type) and issubclass(cls, errors.JdssError)):
            cls = errors.JdssError
        raise cls(answer["message"])
    return answer["result"]


def _describe(status):
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"
