"""100 mixed operations from 8 processes on overlapping volumes.

Every operation must succeed or fail with a jdss error, and the final
state must be one that some serial order of the successful operations
gives. The operations are chosen so that this can be checked without
knowing the order: snapshot names are unique, sizes only grow, clones
have unique names, and on the shared names of create/delete any serial
order alternates create, delete, create, ...
"""

import json
import random
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import BACKENDS, FIRMWARES, ROOT, write_config

WORKERS = 8
OPERATIONS = 100
SHARED = ["vm-1-disk-0", "vm-2-disk-0", "vm-3-disk-0"]
CONTESTED = [f"vm-{50 + n}-disk-0" for n in range(3)]
G = 1 << 30

WORKER = textwrap.dedent("""
    import json, sys
    from jdss import config, drivers, errors
    from jdss.storage import Storage
    cfg = config.load(sys.argv[1])
    storage = Storage(cfg, drivers.load_backend(cfg))
    results = []
    for op, args in json.loads(sys.argv[2]):
        try:
            getattr(storage, op)(*args)
            results.append("ok")
        except errors.JdssError as exc:
            results.append(type(exc).__name__)
        except Exception as exc:            # a crash, not a clean failure
            results.append("CRASH " + repr(exc))
    print(json.dumps(results))
""")


def plan(seed):
    """Per worker, a list of (Storage method, args)."""
    rng = random.Random(seed)
    plans = [[] for _ in range(WORKERS)]
    for n in range(OPERATIONS):
        worker = n % WORKERS
        kind = rng.choice(["snapshot", "snapshot", "resize", "create",
                           "delete", "clone", "export", "delete_snapshot"])
        shared = rng.choice(SHARED)
        mine = [args for op, args in plans[worker]
                if op == "create_snapshot"]
        if kind == "delete_snapshot" and mine:
            plans[worker].append(("delete_snapshot", list(rng.choice(mine))))
        elif kind == "resize":
            plans[worker].append(("resize_volume",
                                  [shared, G + rng.randrange(1, 64) * (16 << 20)]))
        elif kind == "create":
            plans[worker].append(("create_volume",
                                  [rng.choice(CONTESTED), G, True]))
        elif kind == "delete":
            plans[worker].append(("delete_volume", [rng.choice(CONTESTED)]))
        elif kind == "clone":
            plans[worker].append(("clone_volume",
                                  [shared, f"vm-{1000 + n}-disk-0"]))
        elif kind == "export":
            plans[worker].append(("create_target", [shared]))
        else:
            plans[worker].append(("create_snapshot", [shared, f"w{n}"]))
    return plans


def run_workers(config, plans):
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(config),
                               json.dumps(ops)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, cwd=ROOT)
             for ops in plans]
    outcomes = []
    for proc, ops in zip(procs, plans):
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        outcomes += list(zip(ops, json.loads(out)))
    return outcomes


def final_state(config):
    from jdss import config as jconfig
    from jdss import drivers
    from jdss.storage import Storage
    cfg = jconfig.load(str(config))
    storage = Storage(cfg, drivers.load_backend(cfg))
    volumes = {v["name"]: v for v in storage.list_volumes()}
    snapshots = {name: {s["name"] for s in storage.list_snapshots(name)}
                 for name in SHARED}
    return volumes, snapshots


@pytest.fixture(params=BACKENDS)
def pool_config(request, tmp_path, tls_cert):
    if request.param == "fake":
        yield request.param, write_config(tmp_path / "jdss.yaml",
                                          fake_pool_size="10T")
        return
    from tests.emulator import Emulator
    emulator = Emulator(str(tmp_path), *tls_cert, pools=("Pool-0",),
                        pool_size=10 << 40, **FIRMWARES[request.param])
    yield request.param, write_config(
        tmp_path / "jdss.yaml", **emulator.config(rest_api_deadline=30))
    emulator.stop()


def test_mixed_operations_serialise(pool_config, scenario):
    backend, config = pool_config
    from jdss import config as jconfig
    from jdss import drivers
    from jdss.storage import Storage
    cfg = jconfig.load(str(config))
    setup = Storage(cfg, drivers.load_backend(cfg))
    for name in SHARED:
        setup.create_volume(name, G, thin=True)

    outcomes = run_workers(config, plan(seed=8))
    crashes = [(op, result) for op, result in outcomes
               if result.startswith("CRASH")]
    volumes, snapshots = final_state(config)
    ok = [(op, args) for (op, args), result in outcomes if result == "ok"]

    problems, lost = [], 0
    for name in SHARED:
        made = {a[1] for op, a in ok if op == "create_snapshot"
                and a[0] == name}
        gone = {a[1] for op, a in ok if op == "delete_snapshot"
                and a[0] == name}
        if snapshots[name] != made - gone:
            problems.append((name, snapshots[name], made - gone))
            lost += len((made - gone) - snapshots[name])
        sizes = [a[1] for op, a in ok if op == "resize_volume"
                 and a[0] == name]
        if volumes[name]["size"] != max(sizes + [G]):
            problems.append((name, "size", volumes[name]["size"]))
    for op, args in ok:
        if op == "clone_volume" and args[1] not in volumes:
            problems.append(("clone lost", args[1]))
            lost += 1
    for name in CONTESTED:
        creates = sum(1 for op, a in ok if op == "create_volume"
                      and a[0] == name)
        deletes = sum(1 for op, a in ok if op == "delete_volume"
                      and a[0] == name)
        if creates - deletes not in (0, 1) or \
                (name in volumes) != (creates - deletes == 1):
            problems.append((name, creates, deletes, name in volumes))
    scenario(f"{backend}: 100 mixed operations from 8 processes",
             failed=bool(crashes or problems), lost=lost)
    assert len(outcomes) == OPERATIONS
    kinds = {op for (op, _), _ in outcomes}
    assert kinds == {op for op, _ in ok}, "some kind never succeeded"
    assert not crashes, crashes
    assert not problems, problems
