"""``jdss doctor``: is this node ready for JovianDSS storage?

``run(storages)`` checks every storage (appliance, login, pool, iSCSI
ports, clock, leftovers) and the node (software, iSCSI, multipath, udev,
LVM, agent) and returns one :class:`~jdss.hostcheck.Result` per check.
``storages`` is the seam to storage.cfg: a list of ``(storeid, Config)``,
or ``(storeid, JdssError)`` for a section whose configuration is broken.
"""

import copy
import email.utils
import os
import socket
import time

from jdss import config as jconfig
from jdss import errors, hostcheck, pvecfg
from jdss.hostcheck import fail, ok, skip

CLOCK_SKEW = 30           # seconds of difference that still pass
PROBE_DEADLINE = 5.0      # seconds a check may spend on one address
PORT_TIMEOUT = 3.0


# where the storages come from ---------------------------------------------
def storages(config_path=None, overrides=None):
    """The storages to check: ``config_path`` alone, else storage.cfg's."""
    if config_path:
        return [(os.path.basename(config_path),
                 _load(config_path, overrides))]
    return storages_from_pve()


def _load(path, overrides=None):
    try:
        return jconfig.load(path, overrides=overrides)
    except errors.JdssError as exc:
        return exc


def storages_from_pve():
    """``[(storeid, Config|JdssError)]`` of storage.cfg's jdss sections."""
    try:
        found = sorted(pvecfg.sections())
    except errors.JdssError as exc:
        return [("storage.cfg", exc)]
    return [(storeid, _load_pve(storeid)) for storeid in found]


def _load_pve(storeid):
    try:
        return pvecfg.load_config(storeid)
    except errors.JdssError as exc:
        return exc


# the checks ---------------------------------------------------------------
def run(storage_list, host=None):
    """Every check, storages first, then the node."""
    host = host or hostcheck.Host()
    results = [_sections(storage_list)]
    configs = []
    for storeid, config in storage_list:
        if isinstance(config, Exception):
            results.append(fail(f"{storeid}: config", str(config),
                                "fix the file or key the message names"))
            continue
        configs.append(config)
        results.extend(check_storage(storeid, config))
    results.extend(check_node(host, configs))
    return results


def _sections(storage_list):
    if not storage_list:
        return fail("storages", "no joviandss storage to check",
                    f"add one to {pvecfg.storage_cfg_path()} "
                    "(docs/quickstart-iscsi.md), or give -c FILE")
    return ok("storages", ", ".join(s for s, _ in storage_list))


def _probe_config(config, addresses=None):
    """A copy of ``config`` that gives up on an address within seconds."""
    probe = copy.copy(config)
    if addresses is not None:
        probe.rest_api_addresses = list(addresses)
    probe.rest_api_deadline = min(config.rest_api_deadline, PROBE_DEADLINE)
    probe.rest_api_connect_timeout = min(config.rest_api_connect_timeout,
                                         PORT_TIMEOUT)
    probe.rest_api_read_timeout = min(config.rest_api_read_timeout, 15.0)
    return probe


def check_storage(storeid, config):
    if config.backend != "joviandss":
        dates = []
        results = [skip(f"{storeid}: control",
                        f"backend {config.backend}: no appliance to reach")]
    else:
        results, dates = _control(storeid, config)
    reachable = config.backend != "joviandss" or dates
    storage = _storage(config) if reachable else None
    pool = _pool(storeid, storage) if storage else \
        skip(f"{storeid}: pool", "no appliance address answers")
    results.append(pool)
    if config.backend == "joviandss":
        results.extend(_data_ports(storeid, config))
        results.append(clock(storeid, dates[0] if dates else None))
    results.append(_leftovers(storeid, config, storage)
                   if pool["status"] == "ok" else
                   skip(f"{storeid}: leftovers", "the pool is not there"))
    return results


def _control(storeid, config):
    from jdss.backends.rest_client import RestClient, path

    class DatedClient(RestClient):
        """Keeps the HTTP Date of the appliance's last answer."""
        date = None

        def _decode(self, method, raw):
            self.date = raw.headers.get("Date") or self.date
            return super()._decode(method, raw)

    results, dates = [], []
    port = config.rest_api_port
    for address in config.rest_api_addresses or ():
        check = f"{storeid}: control {address}:{port}"
        client = DatedClient(_probe_config(config, [address]))
        try:
            client.request("GET", path("pools", config.pool))
            detail = "answers, login accepted"
        except errors.NotFound:
            detail = f"answers, login accepted (no pool {config.pool})"
        except errors.AuthFailed:
            results.append(fail(check, "the appliance refused the login",
                                "check rest_api_login and the password "
                                "(rest_api_password_file); is REST enabled "
                                "for that user?"))
            continue
        except errors.TlsError as exc:
            results.append(fail(check, str(exc),
                                "set driver_ssl_cert_path to the appliance's "
                                "CA or certificate"))
            continue
        except errors.JdssError as exc:
            results.append(fail(check, str(exc),
                                f"check the address, port {port}, the "
                                "network and REST access on the appliance"))
            continue
        if client.date:
            dates.append(client.date)
        results.append(ok(check, detail))
    return results, dates


def _storage(config):
    from jdss import drivers
    from jdss.storage import Storage
    try:
        probe = _probe_config(config)
        return Storage(probe, drivers.load_backend(probe))
    except errors.JdssError:
        return None


def _pool(storeid, storage):
    check = f"{storeid}: pool"
    name = storage.config.pool
    try:
        pool = storage.pool()
    except errors.NotFound:
        return fail(check, f"pool {name} is not on the appliance",
                    "check pool_name in storage.cfg (or pool / --pool)")
    except errors.JdssError as exc:
        return fail(check, str(exc), "see the control checks above")
    health = pool.get("health", "UNKNOWN")
    if health != "ONLINE":
        return fail(check, f"pool {name} is {health}",
                    "see the pool's state on the appliance")
    return ok(check, f"{name} ONLINE, {pool.get('free', 0) >> 30} GiB free")


def _data_addresses(config):
    """The iSCSI portals' addresses: data_addresses where the configuration
    has them (storage.cfg of plugin 1.0), else the REST addresses."""
    return getattr(config, "data_addresses", None) or \
        config.rest_api_addresses or ()


def _data_ports(storeid, config):
    results = []
    port = config.target_port
    for address in _data_addresses(config):
        check = f"{storeid}: data {address}:{port}"
        try:
            with socket.create_connection((address, port),
                                          timeout=PORT_TIMEOUT):
                pass
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            results.append(fail(check, f"iSCSI port closed ({reason})",
                                f"check the address, target_port {port}, "
                                "the network and iSCSI on the appliance"))
            continue
        results.append(ok(check, "iSCSI port open"))
    return results


def clock(storeid, date, now=None):
    """Compare this node's clock with an HTTP Date of the appliance."""
    check = f"{storeid}: clock"
    if date is None:
        return skip(check, "no answer from the appliance to compare with")
    try:
        theirs = email.utils.parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError):
        return skip(check, f"the appliance's Date {date!r} is unreadable")
    skew = (time.time() if now is None else now) - theirs
    detail = f"this node is {abs(skew):.0f} s " + (
        "ahead of" if skew > 0 else "behind") + " the appliance"
    if abs(skew) > CLOCK_SKEW:
        return fail(check, detail, "synchronise both clocks with NTP "
                    "(chrony on the node, the appliance's time settings)")
    return ok(check, detail)


def _leftovers(storeid, config, storage):
    from jdss import cleanup
    check = f"{storeid}: leftovers"
    try:
        items = cleanup.find(storage)
    except errors.JdssError as exc:
        return fail(check, str(exc), "see the control checks above")
    removable = [i for i in items if i["action"] == "remove"]
    kept = [i for i in items if i["action"] != "remove"]
    if removable:
        names = ", ".join(f"{i['kind']} {i['name']}" for i in removable[:5])
        more = f" and {len(removable) - 5} more" if len(removable) > 5 \
            else ""
        where = f"-c {config.path} " if config.path else ""
        return fail(check, f"{len(removable)} leftovers: {names}{more}",
                    f"jdss {where}cleanup --dry-run, then jdss {where}"
                    "cleanup")
    if kept:
        return ok(check, f"none removable; {len(kept)} in use")
    return ok(check, "none")


def _kernel_iscsi(config):
    transport = config.transport or ("multipath" if config.multipath
                                     else "iscsi")
    return transport in ("iscsi", "multipath")


def check_node(host, configs):
    results = [hostcheck.versions(host), hostcheck.pvedaemon_plugin(host)]
    if not configs or any(_kernel_iscsi(c) for c in configs):
        results += [hostcheck.iscsiadm(host), hostcheck.initiator_name(host)]
    else:
        results += [skip("iscsiadm", "no storage uses kernel iSCSI")]
    if any(c.multipath or c.transport == "multipath" for c in configs):
        daemon = hostcheck.multipathd(host)
        results += [daemon, hostcheck.multipath_dropin(
            host, daemon_runs=not daemon.failed)]
    else:
        results.append(skip("multipath", "no storage has multipath 1"))
    results += [hostcheck.udev_rule(host), hostcheck.lvm_filter(host),
                hostcheck.agent(host)]
    return results
