"""Loading backend and transport drivers through stevedore entry points."""

import logging

from jdss.errors import ConfigError

LOG = logging.getLogger(__name__)
BACKENDS = "jdss.backends"
TRANSPORTS = "jdss.transports"
NAMESPACES = {"backend": BACKENDS, "transport": TRANSPORTS}


def load_driver_class(namespace, name, base):
    """Import driver ``name`` of ``namespace``; it must subclass ``base``."""
    from stevedore import driver, exception
    try:
        manager = driver.DriverManager(namespace, name, invoke_on_load=False,
                                       on_load_failure_callback=_reraise)
    except exception.NoMatches:
        known = ", ".join(sorted(available(namespace))) or "none"
        raise ConfigError(f"no {namespace} driver named {name!r} is "
                          f"installed (installed: {known})") from None
    except _LoadFailure as failure:
        raise ConfigError(f"{namespace} driver {name!r} failed to load: "
                          f"{failure.error}") from None
    cls = manager.driver
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise ConfigError(f"{namespace} driver {name!r} is not a "
                          f"{base.__name__}")
    return cls


def load_backend(config):
    """The backend the configuration names, constructed."""
    import os
    from jdss.backends.base import Backend
    backend = load_driver_class(BACKENDS, config.backend, Backend)(config)
    if "JDSS_CRASH_AFTER" in os.environ:       # crash-consistency tests
        from jdss import crashpoint
        backend = crashpoint.wrap(backend)
    return backend


def transport_name(config, content=False):
    """Name of the transport the configuration chooses."""
    if content and config.content_volume_type == "nfs":
        return config.nas_transport
    if config.transport:
        return config.transport
    return "multipath" if config.multipath else "iscsi"


def load_transport(config, content=False, name=None):
    """Transport ``name``, or the one the configuration chooses, built."""
    from jdss.transport import Transport
    name = name or transport_name(config, content)
    return load_driver_class(TRANSPORTS, name, Transport)(config)


def available(namespace):
    """Names registered under ``namespace``, without importing them."""
    from importlib.metadata import entry_points
    return {ep.name for ep in entry_points(group=namespace)}


def list_drivers():
    """Every registered driver: ``(kind, name, target, status)`` rows."""
    from stevedore import extension
    rows = []
    for kind, namespace in NAMESPACES.items():
        failures = {}

        def failed(_manager, entry_point, error, failures=failures):
            failures[entry_point.name] = (entry_point, error)

        manager = extension.ExtensionManager(
            namespace, invoke_on_load=False,
            on_load_failure_callback=failed)
        for ext in manager:
            rows.append((kind, ext.name, ext.entry_point.value, "ok"))
        for name, (entry_point, error) in failures.items():
            rows.append((kind, name, entry_point.value,
                         f"failed: {type(error).__name__}: {error}"))
    return sorted(rows)


class _LoadFailure(Exception):
    def __init__(self, error):
        super().__init__(str(error))
        self.error = f"{type(error).__name__}: {error}"


def _reraise(_manager, _entry_point, error):
    raise _LoadFailure(error)
