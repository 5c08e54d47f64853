"""The REST face of the pool model: routes, bodies, status codes, envelopes.

``RestApi.handle`` takes a request and returns ``(status, payload)`` where
payload is the JSON envelope (``None`` for 204). Paths are those of
``/api/v4`` without the prefix. Answers follow the shapes real appliances
give (the "Answer shapes" section of the REST notes): lists paged only
when a page is asked for where the appliance does so, at most
``max_per_page`` entries a page, snapshots in the order ``snapshot_order``
says (the appliance promises none).
"""

import re
from urllib.parse import parse_qs, unquote

from jdss.backends.appliance import (CONFLICT_CLASS, ERRNO_EXISTS,
                                     ERRNO_NOT_FOUND, NOT_FOUND_CLASS,
                                     VALIDATION_CLASS, WERKZEUG_NOT_FOUND,
                                     ApplianceError)
from jdss.backends.store import StateStore

_ROUTES = []


def route(method, pattern):
    """Register a handler for ``method`` and a path pattern."""
    regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern)
                       + "$")

    def register(func):
        _ROUTES.append((method, regex, func))
        return func
    return register


def _need(body, *keys):
    if not isinstance(body, dict):
        raise ApplianceError(400, VALIDATION_CLASS, 22,
                             "Request body must be a JSON object")
    missing = [k for k in keys if k not in body]
    if missing:
        raise ApplianceError(400, VALIDATION_CLASS, 22,
                             f"Missing field: {', '.join(missing)}")
    return [body[k] for k in keys]


def _page(records, query, default_per_page=100, max_per_page=100):
    """One page of ``records``; an appliance may serve fewer per page than
    asked for (``max_per_page``), which is why clients walk pages until
    an empty one."""
    try:
        page = int(query.get("page", 0))
        per_page = int(query.get("per_page", default_per_page))
    except ValueError:
        raise ApplianceError(400, VALIDATION_CLASS, 22,
                             "page and per_page must be numbers") from None
    if page < 0 or per_page <= 0:
        raise ApplianceError(400, VALIDATION_CLASS, 22,
                             "page and per_page must be positive")
    if max_per_page:
        per_page = min(per_page, max_per_page)
    entries = records[page * per_page:(page + 1) * per_page]
    return {"results": len(records), "entries": entries}


class RestApi:
    """Serves the pools of a state directory.

    ``firmware`` (``newer``/``older``) chooses record shapes and errors;
    ``vips`` maps a pool to its virtual IPs; ``vip_portals`` False is
    firmware that refuses ``vip_allowed_portals``; ``mirror(pool)``, when
    given, makes the data mirror of a pool (real iSCSI through tgtd).
    """

    def __init__(self, state_dir, pools, pool_size, max_per_page=100,
                 firmware="newer", vips=None, vip_portals=True,
                 snapshot_order="created", mirror=None):
        self.max_per_page = max_per_page
        self.firmware = firmware
        self.snapshot_order = snapshot_order
        self.mirrors = {pool: mirror(pool) for pool in pools} \
            if mirror else {}
        self.stores = {
            pool: StateStore(state_dir, pool, pool_size, firmware=firmware,
                             vips=(vips or {}).get(pool, ()),
                             vip_portals=vip_portals,
                             mirror=self.mirrors.get(pool))
            for pool in pools}

    def _store(self, pool):
        try:
            return self.stores[pool]
        except KeyError:
            raise ApplianceError(404, NOT_FOUND_CLASS, ERRNO_NOT_FOUND,
                                 f"Pool {pool} not found.") from None

    def page(self, records, query, per_page=100):
        """The page of ``records`` that ``query`` asks for."""
        return _page(records, query, per_page, self.max_per_page)

    def read(self, pool):
        return self._store(pool).read()

    def write(self, pool):
        return self._store(pool).transaction()

    def handle(self, method, raw_path, body):
        """Answer one request: ``(status, envelope or None)``."""
        path_, _, query_string = raw_path.partition("?")
        query = {k: v[-1] for k, v in parse_qs(query_string).items()}
        for route_method, regex, func in _ROUTES:
            match = regex.match(path_)
            if match and route_method == method:
                params = {k: unquote(v) for k, v in match.groupdict().items()}
                try:
                    status, data = func(self, body=body, query=query,
                                        **params)
                except ApplianceError as error:
                    return error.status, {"data": None,
                                          "error": error.envelope()}
                if status == 204:
                    return 204, None
                return status, {"data": data, "error": None}
        known_path = any(regex.match(path_) for _, regex, _ in _ROUTES)
        status = 405 if known_path else 404
        return status, {"data": None, "error": {
            "class": WERKZEUG_NOT_FOUND if status == 404
            else "werkzeug.exceptions.MethodNotAllowed",
            "errno": None, "message": f"{method} {path_}: no such endpoint"}}


# pools ---------------------------------------------------------------------
@route("GET", "/pools")
def _pools(api, body, query):
    records = []
    for pool in api.stores:
        with api.read(pool) as model:
            records.append(model.pool_record())
    return 200, records


@route("GET", "/pools/{pool}")
def _pool(api, body, query, pool):
    with api.read(pool) as model:
        return 200, model.pool_record()


@route("GET", "/pools/{pool}/vips")
def _vips(api, body, query, pool):
    with api.read(pool) as model:
        return 200, model.vip_records()


@route("GET", "/network/interfaces")
def _interfaces(api, body, query):
    return 200, [{"name": "lo", "addresses": ["127.0.0.1"]}]


# volumes -------------------------------------------------------------------
@route("GET", "/pools/{pool}/volumes")
def _volumes(api, body, query, pool):
    with api.read(pool) as model:
        return 200, api.page(model.volume_records(), query)


@route("POST", "/pools/{pool}/volumes")
def _create_volume(api, body, query, pool):
    name, size = _need(body, "name", "size")
    with api.write(pool) as model:
        model.create_volume(name, size, bool(body.get("sparse", False)),
                            body.get("blocksize") or "16K")
        return 201, model.volume_record(name)


@route("GET", "/pools/{pool}/volumes/snapshots")
def _all_snapshots(api, body, query, pool):
    with api.read(pool) as model:
        records = []
        for volume in model.volumes:
            for record in model.snapshot_records(volume,
                                                 api.snapshot_order):
                record["volume"] = volume
                records.append(record)
        return 200, api.page(records, query)


@route("GET", "/pools/{pool}/volumes/{volume}")
def _volume(api, body, query, pool, volume):
    with api.read(pool) as model:
        return 200, model.volume_record(volume)


@route("PUT", "/pools/{pool}/volumes/{volume}")
def _update_volume(api, body, query, pool, volume):
    _need(body)
    with api.write(pool) as model:
        if "size" in body:
            model.resize_volume(volume, body["size"])
        if "provisioning" in body:
            model.set_provisioning(volume, body["provisioning"])
        if "name" in body and body["name"] != volume:
            model.rename_volume(volume, body["name"])
            volume = body["name"]
        return 201, model.volume_record(volume)


@route("PUT", "/pools/{pool}/volumes/{volume}/properties")
def _volume_property(api, body, query, pool, volume):
    name, value = _need(body, "property_name", "property_value")
    with api.write(pool) as model:
        model.set_volume_property(volume, name, value)
        return 201, model.volume_record(volume)


@route("DELETE", "/pools/{pool}/volumes/{volume}")
def _delete_volume(api, body, query, pool, volume):
    recursive = bool((body or {}).get("recursively_children"))
    with api.write(pool) as model:
        model.delete_volume(volume, recursively_children=recursive)
    return 204, None


# snapshots and clones ------------------------------------------------------
@route("GET", "/pools/{pool}/volumes/{volume}/snapshots")
def _snapshots(api, body, query, pool, volume):
    with api.read(pool) as model:
        return 200, api.page(
            model.snapshot_records(volume, api.snapshot_order), query)


@route("POST", "/pools/{pool}/volumes/{volume}/snapshots")
def _create_snapshot(api, body, query, pool, volume):
    (name,) = _need(body, "snapshot_name")
    with api.write(pool) as model:
        model.create_snapshot(volume, name)
        return 201, model.snapshot_record(volume, name)


@route("GET", "/pools/{pool}/volumes/{volume}/snapshots/{snap}")
def _snapshot(api, body, query, pool, volume, snap):
    with api.read(pool) as model:
        return 200, model.snapshot_record(volume, snap)


@route("DELETE", "/pools/{pool}/volumes/{volume}/snapshots/{snap}")
def _delete_snapshot(api, body, query, pool, volume, snap):
    with api.write(pool) as model:
        model.delete_snapshot(volume, snap)
    return 204, None


@route("GET", "/pools/{pool}/volumes/{volume}/snapshots/{snap}/clones")
def _snapshot_clones(api, body, query, pool, volume, snap):
    with api.read(pool) as model:
        return 200, model.clone_records(volume, snap)


@route("GET", "/pools/{pool}/volumes/{volume}/snapshots/{snap}/rollback")
def _rollback_check(api, body, query, pool, volume, snap):
    with api.read(pool) as model:
        return 200, model.rollback_record(volume, snap)


@route("POST", "/pools/{pool}/volumes/{volume}/snapshots/{snap}/rollback")
def _rollback(api, body, query, pool, volume, snap):
    with api.write(pool) as model:
        model.rollback(volume, snap)
    return 200, {}


@route("POST", "/pools/{pool}/volumes/{volume}/clone")
def _clone(api, body, query, pool, volume):
    name, snap = _need(body, "name", "snapshot")
    with api.write(pool) as model:
        model.clone(volume, snap, name, bool(body.get("sparse", True)),
                    bool(body.get("readonly", False)))
        return 201, model.volume_record(name)


# iSCSI targets -------------------------------------------------------------
TARGETS = "/pools/{pool}/san/iscsi/targets"


def _other_pool_has_target(api, pool, iqn):
    for other in api.stores:
        if other != pool:
            with api.read(other) as model:
                if iqn in model.targets:
                    return True
    return False


@route("GET", TARGETS)
def _targets(api, body, query, pool):
    with api.read(pool) as model:
        records = model.target_records()
    if "page" not in query:
        return 200, records                 # unpaged: a plain list
    return 200, api.page(records, query, 25)


@route("POST", TARGETS)
def _create_target(api, body, query, pool):
    with api.write(pool) as model:
        model.check_target_body(body, creating=True)
        # one IQN namespace per appliance, whatever pool the target is in
        if _other_pool_has_target(api, pool, body["name"]):
            raise ApplianceError(409, CONFLICT_CLASS, ERRNO_EXISTS,
                                 f"Resource {body['name']} already exists.")
        model.create_target(**body)
        return 201, model.target_record(body["name"])


@route("GET", TARGETS + "/{iqn}")
def _target(api, body, query, pool, iqn):
    with api.read(pool) as model:
        return 200, model.target_record(iqn)


@route("PUT", TARGETS + "/{iqn}")
def _update_target(api, body, query, pool, iqn):
    with api.write(pool) as model:
        model.check_target_body(body, creating=False)
        if body.get("name", iqn) != iqn:
            raise ApplianceError(400, VALIDATION_CLASS, 22,
                                 "A target cannot be renamed")
        fields = {k: v for k, v in body.items() if k != "name"}
        model.update_target(iqn, **fields)
        return 201, model.target_record(iqn)


@route("DELETE", TARGETS + "/{iqn}")
def _delete_target(api, body, query, pool, iqn):
    with api.write(pool) as model:
        model.delete_target(iqn)
    return 204, None


@route("GET", TARGETS + "/{iqn}/luns")
def _luns(api, body, query, pool, iqn):
    with api.read(pool) as model:
        return 200, model.lun_records(iqn)


@route("POST", TARGETS + "/{iqn}/luns")
def _add_lun(api, body, query, pool, iqn):
    (name,) = _need(body, "name")
    with api.write(pool) as model:
        model.add_lun(iqn, name, body.get("lun", 0), body.get("mode", "wt"))
        return 201, model.lun_record(iqn, name)


@route("GET", TARGETS + "/{iqn}/luns/{volume}")
def _lun(api, body, query, pool, iqn, volume):
    with api.read(pool) as model:
        return 200, model.lun_record(iqn, volume)


@route("DELETE", TARGETS + "/{iqn}/luns/{volume}")
def _delete_lun(api, body, query, pool, iqn, volume):
    with api.write(pool) as model:
        model.delete_lun(iqn, volume)
    return 204, None


@route("GET", TARGETS + "/{iqn}/incoming-users")
def _users(api, body, query, pool, iqn):
    with api.read(pool) as model:
        return 200, [{"name": u["name"]} for u in model.user_records(iqn)]


@route("POST", TARGETS + "/{iqn}/incoming-users")
def _add_user(api, body, query, pool, iqn):
    name, password = _need(body, "name", "password")
    with api.write(pool) as model:
        model.add_user(iqn, name, password)
    return 201, {"name": name}


@route("DELETE", TARGETS + "/{iqn}/incoming-users/{user}")
def _delete_user(api, body, query, pool, iqn, user):
    with api.write(pool) as model:
        model.delete_user(iqn, user)
    return 204, None


@route("GET", TARGETS + "/{iqn}/sessions")
def _sessions(api, body, query, pool, iqn):
    with api.read(pool) as model:
        model.target_record(iqn)
    mirror = api.mirrors.get(pool)
    return 200, mirror.sessions(iqn) if mirror is not None else []


@route("GET", "/san/iscsi/luns")
def _lun_owners(api, body, query):
    where = query.get("where", "")
    if not where.startswith("name=="):
        raise ApplianceError(400, VALIDATION_CLASS, 22,
                             "where must be name==<volume>")
    volume = where[len("name=="):]
    owners = []
    for pool in api.stores:
        with api.read(pool) as model:
            owners += model.lun_owner(volume)
    return 200, owners


# NAS volumes and shares ----------------------------------------------------
@route("GET", "/pools/{pool}/nas-volumes")
def _nas_volumes(api, body, query, pool):
    with api.read(pool) as model:
        return 200, api.page(model.nas_volume_records(), query)


@route("POST", "/pools/{pool}/nas-volumes")
def _create_nas_volume(api, body, query, pool):
    name, quota = _need(body, "name", "quota")
    with api.write(pool) as model:
        model.create_nas_volume(name, quota, body.get("reservation", 0))
        return 201, model.nas_volume_record(name)


@route("GET", "/pools/{pool}/nas-volumes/{name}")
def _nas_volume(api, body, query, pool, name):
    with api.read(pool) as model:
        return 200, model.nas_volume_record(name)


@route("PUT", "/pools/{pool}/nas-volumes/{name}")
def _update_nas_volume(api, body, query, pool, name):
    (quota,) = _need(body, "quota")
    with api.write(pool) as model:
        model.resize_nas_volume(name, quota)
        return 201, model.nas_volume_record(name)


@route("DELETE", "/pools/{pool}/nas-volumes/{name}")
def _delete_nas_volume(api, body, query, pool, name):
    with api.write(pool) as model:
        model.delete_nas_volume(name)
    return 204, None


NAS_SNAPSHOTS = "/pools/{pool}/nas-volumes/{name}/snapshots"


@route("GET", NAS_SNAPSHOTS)
def _nas_snapshots(api, body, query, pool, name):
    with api.read(pool) as model:
        return 200, api.page(model.nas_snapshot_records(name), query)


@route("POST", NAS_SNAPSHOTS)
def _create_nas_snapshot(api, body, query, pool, name):
    (snap,) = _need(body, "name")
    with api.write(pool) as model:
        model.create_nas_snapshot(name, snap)
        return 201, model.nas_snapshot_record(name, snap)


@route("GET", NAS_SNAPSHOTS + "/{snap}")
def _nas_snapshot(api, body, query, pool, name, snap):
    with api.read(pool) as model:
        return 200, model.nas_snapshot_record(name, snap)


@route("DELETE", NAS_SNAPSHOTS + "/{snap}")
def _delete_nas_snapshot(api, body, query, pool, name, snap):
    with api.write(pool) as model:
        model.delete_nas_snapshot(name, snap)
    return 204, None


@route("GET", NAS_SNAPSHOTS + "/{snap}/clones")
def _nas_clones(api, body, query, pool, name, snap):
    with api.read(pool) as model:
        return 200, model.nas_clone_records(name, snap)


@route("POST", NAS_SNAPSHOTS + "/{snap}/clones")
def _create_nas_clone(api, body, query, pool, name, snap):
    (clone,) = _need(body, "name")
    properties = {k: v for k, v in body.items() if k != "name"}
    with api.write(pool) as model:
        model.create_nas_clone(name, snap, clone, **properties)
        return 201, model.nas_volume_record(clone)


@route("GET", NAS_SNAPSHOTS + "/{snap}/clones/{clone}")
def _nas_clone(api, body, query, pool, name, snap, clone):
    with api.read(pool) as model:
        for record in model.nas_clone_records(name, snap):
            if record["name"] == clone:
                return 200, record
    raise ApplianceError(404, WERKZEUG_NOT_FOUND, None,
                         f"Clone {clone} not exists")


@route("DELETE", NAS_SNAPSHOTS + "/{snap}/clones/{clone}")
def _delete_nas_clone(api, body, query, pool, name, snap, clone):
    with api.write(pool) as model:
        model.delete_nas_clone(name, snap, clone)
    return 204, None


def _share_pool(api, share_path):
    pool = str(share_path).partition("/")[0]
    return pool if pool in api.stores else next(iter(api.stores))


@route("GET", "/shares")
def _shares(api, body, query):
    records = []
    for pool in api.stores:
        with api.read(pool) as model:
            records += model.share_records()
    return 200, api.page(records, query)


@route("POST", "/shares")
def _create_share(api, body, query):
    name, share_path = _need(body, "name", "path")
    pool = _share_pool(api, share_path)
    for other in api.stores:
        with api.read(other) as model:
            if name in model.shares:
                raise ApplianceError(409, "opene.exceptions."
                                     "ItemConflictError", ERRNO_NOT_FOUND,
                                     f"Share {name} already exists.")
    with api.write(pool) as model:
        model.create_share(name, share_path, body.get("active", True),
                           body.get("nfs"))
        return 201, model.share_record(name)


def _find_share(api, name):
    for pool in api.stores:
        with api.read(pool) as model:
            if name in model.shares:
                return pool
    raise ApplianceError(404, WERKZEUG_NOT_FOUND, None,
                         f"Share {name} not exists.")


@route("GET", "/shares/{name}")
def _share(api, body, query, name):
    with api.read(_find_share(api, name)) as model:
        return 200, model.share_record(name)


@route("DELETE", "/shares/{name}")
def _delete_share(api, body, query, name):
    with api.write(_find_share(api, name)) as model:
        model.delete_share(name)
    return 204, None
