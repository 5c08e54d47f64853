"""make bench: what a Proxmox cluster feels, measured.

Prints a table and writes bench/results.json. Every figure is also given
as a ratio to a bare ``python3 -c pass`` timed in the same run, because
these machines are noisy: ratios hold, absolute times drift. Targets are
reported as met or not; the tests stay free of timing.
"""

import compileall
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from jdss.backends.model import PoolModel  # noqa: E402
from jdss.backends.store import StateStore  # noqa: E402
from jdss.emulator.server import make_self_signed  # noqa: E402
from tests.emulator import Emulator  # noqa: E402

BIN = os.path.dirname(sys.executable)
JDSS = os.path.join(BIN, "jdss")
RUNS = int(os.environ.get("BENCH_RUNS", "10"))
G = 1 << 30


def run(command, env=None, stdin=None):
    """Wall seconds and peak RSS (KiB) of one process."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, stdin=stdin, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    err = proc.stderr.read().decode()
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {err.strip()}")
    return elapsed, usage.ru_maxrss


def sample(command, runs=RUNS):
    times = sorted(run(command)[0] for _ in range(runs))
    return {"median": statistics.median(times), "min": times[0],
            "max": times[-1], "runs": runs}


def import_total(command):
    """Milliseconds spent importing, from python -X importtime."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "jdss"]
                          + command, capture_output=True, text=True,
                          check=True)
    total = 0
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            fields = line.split("|")
            if fields[1].strip().isdigit() and \
                    not fields[2].startswith("  "):     # top level only
                total += int(fields[1])
    return total / 1000


def byte_compile():
    """Compile jdss's sources as the Debian package does when installed.

    dh_python3 byte-compiles on every node; a development tree run with
    PYTHONDONTWRITEBYTECODE would otherwise measure Python's compiler
    (about 35 ms a call) instead of jdss.
    """
    packages = [os.path.join(ROOT, "jdss")] + [
        os.path.join(ROOT, "drivers", name, f"jdss_{name}")
        for name in sorted(os.listdir(os.path.join(ROOT, "drivers")))]
    for package in packages:
        compileall.compile_dir(package, quiet=1)


def write_config(path, **values):
    with open(path, "w") as handle:
        for key, value in values.items():
            handle.write(f"{key}: {json.dumps(value)}\n")
    os.chmod(path, 0o600)
    return path


def populate(state_dir, pool, volumes, snapshots=0):
    """A pool with ``volumes`` volumes (and snapshots each), via the model."""
    store = StateStore(state_dir, pool, 100 << 40)
    with store.transaction() as model:
        assert isinstance(model, PoolModel)
        for n in range(volumes):
            name = f"v_vm-{1000 + n}-disk-0"
            model.create_volume(name, G, True, "16K")
            for s in range(snapshots):
                model.create_snapshot(name, f"s_snap{s}")


def per_call(configs):
    bare = sample([sys.executable, "-c", "pass"])
    rows = {"bare python3 -c pass": dict(bare, ratio=1.0)}
    for backend, config in configs.items():
        for label, args in (("pool show", ["pool", "show", "-f", "json"]),
                            ("volume list", ["volume", "list", "-f",
                                             "json"]),
                            ("volume show", ["volume", "show",
                                             "vm-100-disk-0", "-f",
                                             "json"])):
            result = sample([JDSS, "-c", config] + args)
            result["ratio"] = result["median"] / bare["median"]
            result["import_ms"] = import_total(["-c", config] + args)
            rows[f"{backend}: jdss {label}"] = result
    return rows


def round_trips(emulator, config):
    """REST requests of each Proxmox operation, as the plugin runs them."""
    set_direct = ["--set", "transport=iscsi-direct"]

    def count(*commands):
        before = len(emulator.requests())
        for command in commands:
            run([JDSS, "-c", config] + set_direct + command)
        return len(emulator.requests()) - before

    volume = "vm-200-disk-0"
    result = {
        "status": count(["pool", "show", "-f", "json"]),
        "alloc": count(["volume", "list", "-f", "json"],
                       ["volume", "create", volume, "--size", "1G"]),
        "activate": count(["volume", "attach", volume]),
        "snapshot": count(["snapshot", "create", volume, "s1"]),
        "resize": count(["volume", "resize", volume, "--size", "2G"]),
        "rollback_is_possible": count(["snapshot", "rollback", volume, "s1",
                                       "--dry-run", "-f", "json"]),
        "rollback": count(["snapshot", "rollback", volume, "s1"]),
        "deactivate": count(["volume", "detach", volume]),
        "clone": count(["volume", "list", "-f", "json"],
                       ["volume", "clone", volume, "vm-201-disk-0",
                        "--snapshot", "s1"]),
        "list_images": count(["volume", "list", "-f", "json"]),
    }
    result["free"] = count(["volume", "detach", "vm-201-disk-0"],
                           ["volume", "delete", "vm-201-disk-0",
                            "--recursive"])
    return result


def scale(tmp, emulator_factory):
    rows = {}
    for volumes, snapshots in ((1000, 0), (10000, 0), (1000, 10)):
        label = f"{volumes} volumes" + (f" x {snapshots} snapshots"
                                        if snapshots else "")
        state = os.path.join(tmp, f"scale-{volumes}-{snapshots}")
        # the emulator serves <dir>/emulator-state: one pool, two faces
        pool_dir = os.path.join(state, "emulator-state")
        populate(pool_dir, "Pool-0", volumes, snapshots)
        fake = write_config(os.path.join(state, "fake.yaml"),
                            backend="fake", fake_state_dir=pool_dir,
                            rest_api_addresses=["127.0.0.1"])
        emulator = emulator_factory(state)
        try:
            rest = write_config(os.path.join(state, "rest.yaml"),
                                **emulator.config())
            for backend, config in (("fake", fake), ("rest", rest)):
                times, peaks = [], []
                listed = subprocess.run(
                    [JDSS, "-c", config, "volume", "list", "-f", "value",
                     "-c", "name"], capture_output=True, text=True,
                    check=True).stdout.split()
                assert len(listed) == volumes, (backend, len(listed))
                for _ in range(3):
                    elapsed, peak = run([JDSS, "-c", config, "volume",
                                         "list", "-f", "json"])
                    times.append(elapsed)
                    peaks.append(peak)
                rows[f"{backend}: volume list, {label}"] = {
                    "median": statistics.median(times),
                    "peak_rss_kib": max(peaks)}
        finally:
            emulator.stop()
    for backend in ("fake", "rest"):
        small = rows[f"{backend}: volume list, 1000 volumes"]["median"]
        large = rows[f"{backend}: volume list, 10000 volumes"]["median"]
        rows[f"{backend}: growth 1000 -> 10000"] = {"ratio": large / small}
    return rows


def concurrency(configs, parallel=32):
    rows = {}
    for backend, config in configs.items():
        started = time.perf_counter()
        procs = []
        for n in range(parallel):
            name = f"vm-{5000 + n}-disk-0"
            script = (f'set -e; J="{JDSS} -c {config}"; '
                      f'$J volume create {name} --size 1G >/dev/null; '
                      f'$J snapshot create {name} s1 >/dev/null; '
                      f'$J target create {name} >/dev/null')
            procs.append(subprocess.Popen(["bash", "-c", script],
                                          stderr=subprocess.PIPE))
        errors = sum(1 for p in procs if p.wait() != 0)
        wall = time.perf_counter() - started
        for p in procs:
            p.stderr.close()
        listed = json.loads(subprocess.run(
            [JDSS, "-c", config, "volume", "list", "-f", "json"],
            capture_output=True, text=True, check=True).stdout)
        made = {v["name"] for v in listed if v["name"].startswith("vm-5")}
        lost = parallel - len(made)
        rows[f"{backend}: {parallel} x create+snapshot+export"] = {
            "wall": wall, "errors": errors, "lost": lost}
    return rows


def plugin(config_dir, configs):
    """The plugin's status and list_images, through jdss and the agent."""
    rows = {}
    perl = os.path.join(ROOT, "bench", "plugin_calls.pl")
    socket_path = os.path.join(config_dir, "agent", "agent.sock")
    agent = subprocess.Popen([os.path.join(BIN, "jdss-agent"), "--socket",
                              socket_path], stdout=subprocess.PIPE)
    try:
        assert agent.stdout.readline().strip() == b"ready"
        for via, extra in (("jdss", []), ("agent", [socket_path])):
            for backend, config in configs.items():
                for method in ("status", "list_images"):
                    command = ["perl", "-I", os.path.join(ROOT, "tests",
                                                          "perl", "lib"),
                               "-I", os.path.join(ROOT, "perl"), perl,
                               JDSS, config, method] + extra
                    run(command)                 # warm the agent's cache
                    times = sorted(run(command)[0] for _ in range(RUNS))
                    rows[f"{backend}: plugin {method} via {via}"] = {
                        "median": statistics.median(times)}
        perl_bare = sorted(run(["perl", "-e", "1"])[0] for _ in range(RUNS))
        rows["bare perl -e 1"] = {"median": statistics.median(perl_bare)}
    finally:
        agent.terminate()
        agent.wait()
        agent.stdout.close()
    return rows


def targets(results):
    bare = results["per_call"]["bare python3 -c pass"]["median"]
    calls, trips = results["per_call"], results["round_trips"]
    met = {
        "fake pool show <= 7x bare":
            calls["fake: jdss pool show"]["median"] <= 7 * bare,
        "REST pool show <= 10x bare":
            calls["rest: jdss pool show"]["median"] <= 10 * bare,
        "REST status = 1 request": trips["status"] == 1,
    }
    for op in ("activate", "snapshot", "resize", "rollback"):
        met[f"REST {op} <= 3 requests"] = trips[op] <= 3
    met["REST list_images <= pages + 1"] = trips["list_images"] <= 2
    plugin_rows = results["plugin"]
    met["plugin status via agent <= 10x bare python (REST)"] = plugin_rows[
        "rest: plugin status via agent"]["median"] <= 10 * bare
    for backend in ("fake", "rest"):
        met[f"{backend}: 10,000-volume list <= 2 s"] = results["scale"][
            f"{backend}: volume list, 10000 volumes"]["median"] <= 2
        met[f"{backend}: growth 1,000 -> 10,000 <= 11x"] = results["scale"][
            f"{backend}: growth 1000 -> 10000"]["ratio"] <= 11
    for label, row in results["concurrency"].items():
        met[f"{label}: no errors, nothing lost"] = \
            row["errors"] == 0 and row["lost"] == 0
    return met


def main():
    results = {"machine": {"cpus": os.cpu_count(),
                           "python": sys.version.split()[0]}}
    byte_compile()
    with tempfile.TemporaryDirectory(prefix="jdss-bench-") as tmp:
        tls = make_self_signed(tmp, ["127.0.0.1:1"])
        emulator = Emulator(tmp, *tls, pools=("Pool-0",),
                            pool_size=100 << 40)
        try:
            configs = {
                "fake": write_config(os.path.join(tmp, "fake.yaml"),
                                     backend="fake",
                                     fake_state_dir=os.path.join(tmp, "fs"),
                                     fake_pool_size="100T",
                                     rest_api_addresses=["127.0.0.1"]),
                "rest": write_config(os.path.join(tmp, "rest.yaml"),
                                     **emulator.config()),
            }
            for config in configs.values():
                run([JDSS, "-c", config, "volume", "create", "vm-100-disk-0",
                     "--size", "1G"])
            print("measuring per-call cost ...", file=sys.stderr)
            results["per_call"] = per_call(configs)
            print("counting REST round trips ...", file=sys.stderr)
            results["round_trips"] = round_trips(emulator, configs["rest"])
            print("concurrency ...", file=sys.stderr)
            results["concurrency"] = concurrency(configs)
            print("plugin ...", file=sys.stderr)
            results["plugin"] = plugin(tmp, configs)
        finally:
            emulator.stop()
        print("scale (1,000 and 10,000 volumes) ...", file=sys.stderr)
        results["scale"] = scale(tmp, lambda state: Emulator(
            state, *tls, pools=("Pool-0",), pool_size=100 << 40))
    results["targets"] = targets(results)
    with open(os.path.join(ROOT, "bench", "results.json"), "w") as handle:
        json.dump(results, handle, indent=2)
    print(render(results))


def render(results):
    bare = results["per_call"]["bare python3 -c pass"]["median"]
    lines = ["| measurement | median | spread (min-max) | x bare | imports |",
             "|---|---|---|---|---|"]
    for label, row in results["per_call"].items():
        lines.append(f"| {label} | {row['median'] * 1000:.0f} ms | "
                     f"{row['min'] * 1000:.0f}-{row['max'] * 1000:.0f} ms | "
                     f"{row['median'] / bare:.1f} | "
                     f"{row.get('import_ms', 0):.0f} ms |")
    lines += ["", "| Proxmox operation | REST requests |", "|---|---|"]
    lines += [f"| {op} | {n} |" for op, n in results["round_trips"].items()]
    lines += ["", "| scale | median | peak RSS |", "|---|---|---|"]
    for label, row in results["scale"].items():
        if "ratio" in row:
            lines.append(f"| {label} | {row['ratio']:.1f}x | |")
        else:
            lines.append(f"| {label} | {row['median'] * 1000:.0f} ms | "
                         f"{row['peak_rss_kib'] / 1024:.0f} MiB |")
    lines += ["", "| concurrency | wall | errors | lost |", "|---|---|---|---|"]
    for label, row in results["concurrency"].items():
        lines.append(f"| {label} | {row['wall']:.1f} s | {row['errors']} | "
                     f"{row['lost']} |")
    lines += ["", "| plugin (Perl, end to end) | median | x bare |",
              "|---|---|---|"]
    for label, row in results["plugin"].items():
        lines.append(f"| {label} | {row['median'] * 1000:.0f} ms | "
                     f"{row['median'] / bare:.1f} |")
    lines += ["", "| target | met |", "|---|---|"]
    lines += [f"| {t} | {'yes' if ok else 'NO'} |"
              for t, ok in results["targets"].items()]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
