"""Finding and removing what interrupted operations leave behind.

* ``se_`` clones that exposed a snapshot, and ``t_`` volumes (under such
  a name the vendor's plugin keeps a deleted volume that clones depend on),
  unless exported to an initiator that still has a session or, for ``t_``
  ones, cloned (of an export shared with other volumes only the leftover's
  LUN is removed); with a cluster prefix only this cluster's (``se_`` of
  its volumes, ``t_<prefix>_``);
* hidden ``c_`` snapshots whose clone was never made (no clones);
* targets made by jdss (IQN with the configured prefix) that export
  nothing, or only volumes that no longer exist;
* ``t_restore_`` NAS clones (with their shares) that a restore of a file
  left, unless that restore is still running (it holds their lock); with
  a cluster prefix only this cluster's ``t_<prefix>_restore_`` ones. No
  mount is ever left: restores mount in a namespace of their own.

Nothing with dependents is touched: a leftover that has clones or live
sessions is reported as kept, with the reason.
"""

import logging

from jdss import errors, locks

LOG = logging.getLogger(__name__)


def find(storage):
    """Leftovers: ``[{kind, name, action, reason}]`` (action remove|keep)."""
    backend = storage.backend
    volumes = {v.name for v in backend.list_volumes()}
    targets = backend.list_targets()
    exported = {lun: t for t in targets for lun in t.luns}
    found = []
    for target in targets:
        if not target.name.startswith(storage.config.target_prefix):
            continue
        live = [v for v in target.luns if v in volumes]
        if not live:
            found.append(_item("target", target.name, backend, target,
                               "exports no existing volume"))
    names = storage.names
    for name in sorted(volumes):
        if name.startswith("se_"):
            if names.parse_snapshot_clone_name(name) is not None:
                found.append(_item("volume", name, backend,
                                   exported.get(name), "temporary clone"))
        elif name.startswith("t_"):
            if names.is_own_hidden_volume(name):
                found.append(_hidden_volume_item(name, backend,
                                                 exported.get(name)))
        if names.from_appliance_volume(name) is not None:
            for snap in backend.list_snapshots(name):
                if snap.name.startswith("c_") and \
                        not backend.snapshot_clones(name, snap.name):
                    found.append({"kind": "snapshot",
                                  "name": f"{name}@{snap.name}",
                                  "action": "remove",
                                  "reason": "hidden clone snapshot without "
                                            "its clone"})
    for info in backend.list_nas_volumes():
        if names.is_restore_clone(info.name):     # this cluster's only
            found.append(_restore_clone_item(storage, info))
    return found


def _restore_clone_item(storage, info):
    item = {"kind": "nas-clone", "name": info.name, "action": "remove",
            "reason": "temporary clone of a file restore"}
    if info.origin:
        item["reason"] += f" from {'@'.join(info.origin)}"
    try:
        with locks.nas_lock(storage.config, info.name, timeout=0):
            pass
    except errors.Busy:
        item.update(action="keep", reason=item["reason"] + ", but that "
                    "restore is still running")
    return item


def _hidden_volume_item(name, backend, target):
    """A ``t_`` volume: removed once no clone depends on it."""
    clones = [clone for snap in backend.list_snapshots(name)
              for clone in backend.snapshot_clones(name, snap.name)]
    if clones:
        return {"kind": "volume", "name": name, "action": "keep",
                "reason": "hidden volume that clones still depend on: "
                          + ", ".join(sorted(clones))}
    return _item("volume", name, backend, target,
                 "hidden volume that no clone depends on")


def _item(kind, name, backend, target, reason):
    item = {"kind": kind, "name": name, "action": "remove", "reason": reason}
    if target is not None:
        sessions = backend.target_sessions(target.name)
        if sessions:
            item.update(action="keep", reason=f"{reason}, but "
                        f"{', '.join(sessions)} still use it")
    return item


def remove(storage, items):
    """Remove the items marked ``remove``; returns them with outcomes."""
    backend = storage.backend
    with backend.changing():
        return _remove(storage, backend, items)


def _remove(storage, backend, items):
    for item in items:
        if item["action"] != "remove":
            continue
        try:
            if item["kind"] == "target":
                backend.delete_target(item["name"])
            elif item["kind"] == "nas-clone":
                with locks.nas_lock(storage.config, item["name"], timeout=0):
                    storage.remove_restore_clone(item["name"])
            elif item["kind"] == "volume":
                target = backend.find_volume_target(item["name"])
                if target is not None:
                    # only its LUN while the target exports anything else
                    storage._remove_export(target, item["name"])
                origin = backend.get_volume(item["name"]).origin
                backend.delete_volume(item["name"], recursive=True)
                # the snapshot it hung from, if made for it alone (jdss's
                # c_, the vendor's plugin's v_); kept while others hang
                if origin and origin[1].startswith(("c_", "v_")):
                    storage._drop_hidden_snapshot(*origin)
            else:
                volume, _, snap = item["name"].partition("@")
                backend.delete_snapshot(volume, snap)
            item["action"] = "removed"
        except errors.NotFound:
            item["action"] = "removed"
        except errors.JdssError as exc:
            item["action"] = "kept"
            item["reason"] += f"; not removed: {exc}"
    return items
