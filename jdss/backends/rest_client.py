"""HTTP transport to the JovianDSS REST API, with failover between addresses.

One ``requests.Session`` per process (keep-alive, basic auth, TLS verified
unless configured otherwise). Requests go to the address that answered
last; on a connection error, a timeout, a 5xx without a valid envelope or
an empty 200 GET the next address is tried, round after round with
backoff. A transient appliance error (its iSCSI configuration rewritten
meanwhile, SCST busy) is sent again after a backoff.

How long: a request gives up at ``rest_api_deadline``, every attempt's
timeouts clipped to the time left (shared with the addresses still to
try in the round, so that a hanging one leaves the others time); within
a changing operation (see :meth:`RestClient.patient`) it keeps going
through an HA failover of ``rest_api_failover_window`` seconds. A request
whose outcome is unknown (the connection failed after it was sent, or a
transient error answered it) is repeated only if it is safe: reads and
idempotent writes always, creations only after the caller's check found
that they did not happen.
"""

import contextlib
import json
import logging
import os
import re
import time
from urllib.parse import quote

from jdss import errors
from jdss.backends.appliance import Transient, to_jdss_error

LOG = logging.getLogger(__name__)
API_PATH = "/api/v4"
BACKOFF_FIRST = 0.25
BACKOFF_MAX = 2.0


def path(*segments):
    """Join URL path segments, each percent-encoded."""
    return "".join("/" + quote(str(s), safe=":@") for s in segments)


class _Retry(Exception):
    """This address did not give a usable answer; try the next.

    ``permanent`` failures (TLS) will not change by retrying the address.
    """

    def __init__(self, reason, sent, permanent=False):
        super().__init__(reason)
        self.reason = reason
        self.sent = sent
        self.permanent = permanent


class Response:
    """A decoded answer: HTTP status and the envelope's ``data``."""

    def __init__(self, status, data):
        self.status = status
        self.data = data


class RestClient:
    """Sends requests to the appliance named by a configuration."""

    def __init__(self, config):
        self.addresses = list(config.rest_api_addresses or ())
        if not self.addresses:
            raise errors.ConfigError("rest_api_addresses is empty")
        self.scheme = "https" if config.driver_use_ssl else "http"
        self.port = config.rest_api_port
        self.auth = (config.rest_api_login, config.rest_api_password)
        if not config.driver_use_ssl:
            self.verify = False
        elif config.driver_ssl_cert_verify:
            self.verify = config.driver_ssl_cert_path or system_ca_dir()
        else:
            self.verify = False
        self.timeout = (config.rest_api_connect_timeout,
                        config.rest_api_read_timeout)
        self.deadline = config.rest_api_deadline
        self.failover_window = max(config.rest_api_failover_window,
                                   config.rest_api_deadline)
        self.patience = 0
        self.current = 0
        self._session = None
        self.requests_sent = 0

    @contextlib.contextmanager
    def patient(self):
        """Within: requests ride out an HA failover (the failover window
        instead of the deadline). Changing operations run so, so that
        they complete instead of failing half way."""
        self.patience += 1
        try:
            yield
        finally:
            self.patience -= 1

    @property
    def session(self):
        if self._session is None:
            import requests
            import urllib3
            session = requests.Session()
            # No proxies, netrc or CA bundles from the environment: an
            # http_proxy meant for apt must not carry SAN management
            # traffic. verify goes with each request (see _send), as
            # REQUESTS_CA_BUNDLE would override a session's verify=False.
            session.trust_env = False
            session.auth = self.auth
            session.headers.update({"Content-Type": "application/json",
                                    "Accept": "application/json"})
            if self.verify is False and self.scheme == "https":
                urllib3.disable_warnings(
                    urllib3.exceptions.InsecureRequestWarning)
            self._session = session
        return self._session

    def url(self, address, path_):
        host = f"[{address}]" if ":" in address else address
        return f"{self.scheme}://{host}:{self.port}{API_PATH}{path_}"

    def request(self, method, path_, body=None, safe_to_repeat=None,
                exists=None, name_locked=False):
        """Send a request; return :class:`Response` or raise a JdssError.

        ``safe_to_repeat`` defaults to True for GET, PUT and DELETE. For an
        unsafe request whose outcome is unknown, ``exists()`` is asked
        (through a fresh request) before sending it again; if it says the
        object exists the request counts as done. With ``name_locked``
        (the object's name is held under a jdss lock while the request
        runs, so only this request can have made it) so it does when the
        request sent again is refused as existing or not found and
        ``exists()`` now says yes: an earlier attempt was applied after
        the check.
        """
        if safe_to_repeat is None:
            safe_to_repeat = method in ("GET", "PUT", "DELETE")
        started = time.monotonic()
        limit = self.failover_window if self.patience else self.deadline
        end = started + limit
        backoff = BACKOFF_FIRST
        failures = []
        broken = set()
        sent_before = False     # an earlier attempt may have been applied
        while True:
            transient = False
            for offset in range(len(self.addresses)):
                index = (self.current + offset) % len(self.addresses)
                address = self.addresses[index]
                left = end - time.monotonic()
                if address in broken or left <= 0:
                    continue
                # a hanging address must leave the others time to answer
                rest = sum(1 for later in range(offset, len(self.addresses))
                           if self.addresses[(self.current + later)
                                             % len(self.addresses)]
                           not in broken)
                try:
                    response = self._send(method, address, path_, body,
                                          left / rest)
                except (errors.NotFound, errors.AlreadyExists) as refused:
                    if method == "DELETE" and sent_before and \
                            isinstance(refused, errors.NotFound):
                        # our earlier attempt deleted it; its answer was lost
                        LOG.info("%s %s: applied before the connection "
                                 "broke", method, path_)
                        self.current = index
                        return Response(204, None)
                    if name_locked and self._applied_late(
                            sent_before, safe_to_repeat, exists, method,
                            path_):
                        self.current = index
                        return Response(201, None)
                    raise
                except (_Retry, Transient) as retry:
                    if isinstance(retry, Transient):
                        retry = _Retry(f"appliance busy: {retry}", sent=True)
                        transient = True
                        self.current = index
                    sent_before = sent_before or retry.sent
                    failures.append((address, retry.reason))
                    if retry.permanent:
                        broken.add(address)
                    LOG.info("%s %s via %s: %s", method, path_, address,
                             retry.reason)
                    if retry.sent and not safe_to_repeat:
                        if exists is not None and exists():
                            LOG.info("%s %s: applied before the answer "
                                     "was lost", method, path_)
                            return Response(201, None)
                        if exists is None:
                            raise errors.Unreachable(
                                f"{method} {path_}: the connection to "
                                f"{address} broke after the request was "
                                "sent; its outcome is unknown") from None
                    if transient:
                        break           # the appliance answered: back off
                    continue
                self.current = index
                return response
            now = time.monotonic()
            if len(broken) == len(self.addresses) or now >= end - 0.01:
                raise self._give_up(failures, now - started, limit)
            time.sleep(min(backoff, end - now))
            backoff = min(backoff * 2, BACKOFF_MAX)

    @staticmethod
    def _applied_late(sent_before, safe_to_repeat, exists, method, path_):
        """Whether the object of a request sent again after an unknown
        outcome, and refused, exists now: an earlier attempt applied
        after the check (a create meets its own object, a rename finds
        its old name gone)."""
        if not (sent_before and not safe_to_repeat and exists is not None):
            return False
        if not exists():
            return False
        LOG.info("%s %s: the earlier attempt was applied after the check",
                 method, path_)
        return True

    def _give_up(self, failures, elapsed, limit):
        last = dict(failures)            # the last reason of each address
        tried = "; ".join(f"{a}: {r}" for a, r in last.items())
        if last and all(r.startswith("TLS") for r in last.values()):
            return errors.TlsError(
                f"TLS failed with every appliance address ({tried}); set "
                "driver_ssl_cert_path to the appliance's CA or certificate, "
                "or driver_ssl_cert_verify: false")
        if last and all(r.startswith("appliance busy")
                        for r in last.values()):
            return errors.BackendError(
                f"the appliance stayed busy for {elapsed:.1f} s ({tried})")
        key = "rest_api_failover_window" if self.patience \
            else "rest_api_deadline"
        return errors.Unreachable(
            f"no appliance address answered within {elapsed:.1f} s "
            f"({key} {limit:g} s; {tried})")

    def _send(self, method, address, path_, body, left):
        """One attempt, its timeouts clipped to ``left`` seconds."""
        import requests
        exc = requests.exceptions
        url = self.url(address, path_)
        self.requests_sent += 1
        timeout = (min(self.timeout[0], left), min(self.timeout[1], left))
        try:
            raw = self.session.request(
                method, url, timeout=timeout, verify=self.verify,
                data=None if body is None else json.dumps(body))
        except exc.SSLError as error:
            raise _Retry(f"TLS error: {_reason(error)}", sent=False,
                         permanent=True) from None
        except (exc.ConnectTimeout, exc.ProxyError) as error:
            raise _Retry(f"no connection ({_reason(error)})", sent=False) \
                from None
        except exc.ReadTimeout:
            raise _Retry(f"no answer within {timeout[1]:.3g} s",
                         sent=True) from None
        except exc.ConnectionError as error:
            refused = _is_refused(error)
            raise _Retry("connection refused" if refused else
                         f"connection failed ({_reason(error)})",
                         sent=not refused) from None
        except exc.RequestException as error:
            raise errors.BackendError(f"{method} {url}: {_reason(error)}") \
                from None
        LOG.info("%s %s via %s: HTTP %s in %.0f ms", method, path_, address,
                 raw.status_code, raw.elapsed.total_seconds() * 1000)
        return self._decode(method, raw)

    def _decode(self, method, raw):
        status = raw.status_code
        if status == 401:
            raise to_jdss_error(401, None, None, raw.text)
        if status == 204 or (not raw.content and status < 300 and
                             method != "GET"):
            return Response(status, None)
        try:
            envelope = raw.json()
            valid = isinstance(envelope, dict) and (
                "data" in envelope or "error" in envelope)
        except ValueError:
            envelope, valid = None, False
        if not valid:
            if status >= 500 or method == "GET":
                raise _Retry(f"HTTP {status} without a valid JSON answer",
                             sent=True)
            if status < 300:
                return Response(status, None)
            raise errors.BackendError(
                f"appliance answered HTTP {status}: {raw.text[:200]!r}")
        error = envelope.get("error")
        if error:
            if not isinstance(error, dict):
                error = {"message": str(error)}
            raise to_jdss_error(status, error.get("class"),
                                error.get("errno"), error.get("message"))
        if status >= 400:
            raise to_jdss_error(status, None, None, f"HTTP {status}")
        data = envelope.get("data")
        if method == "GET" and data is None:
            raise _Retry("empty answer", sent=True)
        return Response(status, data)


_SSL_REASON = re.compile(r"\] ?([^()\]]+?)\s*\(_ssl\.c")
_ERRNO_REASON = re.compile(r"\[Errno -?\d+\] ([^'\")]+)")


def system_ca_dir():
    """The CAs requests verifies against by default, as OpenSSL's hashed
    directory when they are the system's bundle (Debian's requests, whose
    certifi is /etc/ssl/certs/ca-certificates.crt); else True.

    The same CAs either way (update-ca-certificates writes both), but the
    bundle is parsed whole on every connection, about 50 ms for a jdss
    call, where the directory is read only for the certificate that signed
    the appliance's. Like the other CA settings of the environment,
    SSL_CERT_FILE and SSL_CERT_DIR are not read."""
    import ssl

    from requests.utils import DEFAULT_CA_BUNDLE_PATH
    paths = ssl.get_default_verify_paths()
    directory = paths.openssl_capath
    try:
        usable = os.path.realpath(DEFAULT_CA_BUNDLE_PATH) == \
            os.path.realpath(paths.openssl_cafile) and \
            any(_HASHED_CA.match(name) for name in os.listdir(directory))
    except OSError:
        usable = False
    return directory if usable else True


_HASHED_CA = re.compile(r"[0-9a-f]{8}\.\d+$")


def _reason(error):
    """A short, readable reason out of a requests exception."""
    text = str(error)
    for pattern in (_SSL_REASON, _ERRNO_REASON):
        match = pattern.search(text)
        if match:
            return match.group(1).strip()
    for marker in ("timed out", "Connection aborted", "RemoteDisconnected"):
        if marker in text:
            return marker.lower()
    return text[:160]


def _is_refused(error):
    text = repr(error)
    return "ConnectionRefused" in text or "Connection refused" in text
