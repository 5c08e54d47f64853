"""Fault injection for the emulator, switchable while it runs.

The plan is a JSON file (by default ``faults.json`` in the state
directory), re-read whenever it changes::

    {"rules": [{"action": "error", "listen": "127.0.0.2:8443",
                "method": "GET", "path": "/volumes", "count": 3,
                "status": 500, "seconds": 2.0}]}

``action`` is one of:

* ``drop``: close the connection without answering;
* ``drop_after``: carry the request out, then close without answering;
* ``error``: answer ``status`` (default 500) with a body that is not JSON;
* ``delay``: wait ``seconds``, then answer normally;
* ``empty``: answer a GET with ``200 {"data": null, "error": null}``;
* ``fail``: answer an appliance error envelope: ``kind`` ``cfgparser``
  (the iSCSI configuration rewritten by a concurrent request: class
  ``opene.cfgparser.CfgParserError``, errno 13) or ``scstadmin`` (SCST
  failed: ``opene.tools.scstadmin.ScstAdminError``), or any ``class``,
  ``errno``, ``message`` and ``status`` (default 500); with ``apply`` the
  request is carried out first;
* ``refuse``: stop listening on ``listen`` (connections are refused); with
  ``seconds``, only for that long after the plan is read, then the
  address answers again with the state intact (an HA failover).

Any rule may also carry ``failover``: seconds for which every address
refuses connections once the rule has hit (the appliance fails over right
after, say, applying a request whose answer it then drops).

``listen`` (``ADDR:PORT``), ``method`` and ``path`` (a regular expression
searched in the request path) narrow a rule; missing means any. ``count``
limits how many requests a rule hits (default: all).
"""

import json
import logging
import os
import re
import threading
import time

from jdss.backends.appliance import (CFGPARSER_CLASS, ERRNO_CONFIG,
                                     SCSTADMIN_CLASS)

LOG = logging.getLogger(__name__)
ACTIONS = ("drop", "drop_after", "error", "delay", "empty", "fail",
           "refuse")
#: appliance errors a ``fail`` rule names by ``kind``
KINDS = {
    "cfgparser": (CFGPARSER_CLASS, ERRNO_CONFIG,
                  "Unable to parse the iSCSI configuration: it is being "
                  "rewritten"),
    "scstadmin": (SCSTADMIN_CLASS, None,
                  "scstadmin: failed to apply the configuration"),
}


class Rule:
    def __init__(self, spec):
        self.action = spec.get("action")
        if self.action not in ACTIONS:
            raise ValueError(f"unknown fault action {self.action!r}")
        self.listen = spec.get("listen", "*")
        self.method = spec.get("method", "*").upper()
        self.path = re.compile(spec.get("path", ""))
        self.count = spec.get("count")
        self.status = int(spec.get("status", 500))
        self.seconds = float(spec.get("seconds", 1.0))
        self.until = None
        if self.action == "refuse" and "seconds" in spec:
            self.until = time.monotonic() + self.seconds
        self.kind = spec.get("kind")
        cls, errno, message = KINDS.get(self.kind, (None, None, None))
        if self.action == "fail" and self.kind and self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}")
        self.error = {"class": spec.get("class", cls),
                      "errno": spec.get("errno", errno),
                      "message": spec.get("message", message or "failure")}
        self.apply = bool(spec.get("apply"))
        self.failover = float(spec.get("failover", 0))

    def active(self):
        return self.until is None or time.monotonic() < self.until

    def matches_listener(self, listen):
        return self.listen in ("*", listen) and self.active()

    def matches(self, listen, method, path):
        return (self.matches_listener(listen)
                and self.method in ("*", method)
                and bool(self.path.search(path))
                and (self.count is None or self.count > 0))


class FaultPlan:
    """The current fault rules, reloaded when the control file changes."""

    def __init__(self, control_path):
        self.control_path = control_path
        self._stamp = None
        self._rules = []
        self._lock = threading.Lock()
        self._down_until = 0.0

    def fail_over(self, seconds):
        """Refuse every connection for ``seconds`` from now."""
        with self._lock:
            self._down_until = max(self._down_until,
                                   time.monotonic() + seconds)

    def _reload(self):
        try:
            info = os.stat(self.control_path)
            stamp = (info.st_mtime_ns, info.st_size, info.st_ino)
        except FileNotFoundError:
            stamp = None
        if stamp == self._stamp:
            return
        self._stamp = stamp
        rules = []
        if stamp is not None:
            try:
                with open(self.control_path, encoding="utf-8") as handle:
                    rules = [Rule(r) for r in json.load(handle)["rules"]]
            except (OSError, ValueError, KeyError, TypeError) as exc:
                LOG.error("ignoring fault plan %s: %s", self.control_path,
                          exc)
                rules = []
        self._rules = rules

    def take(self, listen, method, path):
        """The rule this request hits (its count is used up), or None."""
        with self._lock:
            self._reload()
            for rule in self._rules:
                if rule.action != "refuse" and rule.matches(listen, method,
                                                            path):
                    if rule.count is not None:
                        rule.count -= 1
                    return rule
        return None

    def refused(self, listen):
        """Whether ``listen`` must not accept connections now."""
        with self._lock:
            self._reload()
            if time.monotonic() < self._down_until:
                return True
            return any(rule.action == "refuse" and
                       rule.matches_listener(listen)
                       for rule in self._rules)
