#!/usr/bin/env python3
"""The speed and memory figures of "Core on one node", beside the machine's
floor measured in the same run, and beside Ray when a Ray interpreter is
given (--ray-python PATH, or RAY_PYTHON).

    python3 bench/core_bench.py [--quick] [--ray-python /path/to/venv/bin/python]

Each measurement runs in a fresh process so that one cannot disturb the
next.  Prints one table: metric | manta | ray | manta/ray | target.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import textwrap

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# Each probe is a small program run with "import <backend> as ray".  It
# prints one JSON object of figures on its last line.
PROBES = {
    "sync_task": """
        ray.init(num_cpus=2)
        @ray.remote
        def f():
            return None
        out = latency(lambda: ray.get(f.remote()), N)
    """,
    "async_tasks": """
        import time
        ray.init(num_cpus=2)
        @ray.remote
        def f():
            return None
        ray.get([f.remote() for _ in range(1000)])
        best = 0
        for _ in range(3):
            t = time.perf_counter()
            ray.get([f.remote() for _ in range(N)])
            best = max(best, N / (time.perf_counter() - t))
        out = {"tasks_per_s": best}
    """,
    "put_get_800mb": """
        import time, numpy as np
        ray.init(num_cpus=1, object_store_memory=3 * 1024**3)
        a = np.arange(100_000_000, dtype=np.int64)
        puts, gets = [], {}
        for _ in range(4):
            t = time.perf_counter(); r = ray.put(a); puts.append(time.perf_counter() - t)
            del r
        for mb in (8, 80, 800):
            r = ray.put(a[: mb * 1024 * 1024 // 8])
            ts = []
            for _ in range(5):
                t = time.perf_counter(); b = ray.get(r); ts.append(time.perf_counter() - t)
                del b
            gets[mb] = min(ts) * 1e3
            del r
        out = {"put_gbps": 0.8 / min(puts), "get_ms_8mb": gets[8], "get_ms_80mb": gets[80],
               "get_ms_800mb": gets[800]}
    """,
    "init_first_result": """
        import time
        t = time.perf_counter()
        ray.init(num_cpus=2)
        @ray.remote
        def f():
            return 1
        ray.get(f.remote())
        out = {"ms": (time.perf_counter() - t) * 1e3}
    """,
    "idle_rss": """
        import os, time
        ray.init(num_cpus=2)
        @ray.remote
        def f():
            return os.getpid()
        pids = set(ray.get([f.remote() for _ in range(20)]))
        time.sleep(2.0)
        node, workers = [], list(pids)
        if IS_MANTA:  # the daemon, and the workers and zygote its session lists
            from manta._private import node as _node
            paths = _node.session_paths(ray._private.worker.state.info["session_dir"])
            node = [p for p, _ in _node.read_pids(paths["daemon_pid"])]
            workers = [p for p, _ in _node.read_pids(paths["workers_pid"])]
        total = sum(rss(p) for p in node + workers)
        out = {"mb": total / 2**20, "workers": len(workers)}
    """,
    "queued_tasks": """
        import os, time, gc
        ray.init(num_cpus=1, resources={"slot": 1})
        @ray.remote(resources={"slot": 1})
        def block():
            time.sleep(120)
        @ray.remote(resources={"slot": 1})
        def queued():
            return None
        b = block.remote()
        time.sleep(0.5)
        from manta._private import node as _node
        dpid = _node.read_info(ray._private.worker.state.info["session_dir"])["pid"]
        gc.collect()
        d0, m0 = rss(dpid), rss(os.getpid())
        refs = [queued.remote() for _ in range(N)]
        time.sleep(1.0)
        d1, m1 = rss(dpid), rss(os.getpid())
        out = {"daemon_bytes_per_task": (d1 - d0) / N, "driver_bytes_per_task": (m1 - m0) / N}
        ray.shutdown()
    """,
    "actor_sync": """
        ray.init(num_cpus=2)
        @ray.remote
        class A:
            def f(self):
                return None
        a = A.remote()
        out = latency(lambda: ray.get(a.f.remote()), N)
    """,
    "actor_async": """
        import time
        ray.init(num_cpus=2)
        @ray.remote
        class A:
            def f(self):
                return None
        a = A.remote()
        ray.get([a.f.remote() for _ in range(1000)])
        best = 0
        for _ in range(5):
            t = time.perf_counter()
            ray.get([a.f.remote() for _ in range(N)])
            best = max(best, N / (time.perf_counter() - t))
        out = {"calls_per_s": best}
    """,
    "actor_create": """
        import time
        ray.init(num_cpus=2)
        @ray.remote(num_cpus=0)
        class A:
            def ready(self):
                return None
        ray.get(A.remote().ready.remote())  # warm: the function is registered
        t = time.perf_counter()
        actors = [A.remote() for _ in range(N)]
        ray.get([a.ready.remote() for a in actors])
        out = {"per_s": N / (time.perf_counter() - t)}
    """,
    "idle_actor_rss": """
        import os, time
        ray.init(num_cpus=2)
        @ray.remote
        class A:
            def pid(self):
                return os.getpid()
        actors = [A.remote() for _ in range(4)]
        pids = ray.get([a.pid.remote() for a in actors])
        time.sleep(1.0)
        out = {"mb": max(rss(p) for p in pids) / 2**20}
    """,
}

PROLOGUE = """
import json, sys
BACKEND = sys.argv[1]
N = int(sys.argv[2])
ray = __import__(BACKEND)
IS_MANTA = BACKEND == "manta"
if not IS_MANTA:
    # Ray binds to the machine's address (and turns 127.0.0.1 into it);
    # another loopback address keeps it on lo.
    import functools
    ray.init = functools.partial(ray.init, _node_ip_address="127.0.0.2")


# p50 and p90 of `call` in microseconds, over n calls after 300 to warm up.
def latency(call, n):
    import time
    for _ in range(300):
        call()
    ts = []
    for _ in range(n):
        t = time.perf_counter(); call(); ts.append(time.perf_counter() - t)
    ts.sort()
    return {"p50_us": ts[len(ts) // 2] * 1e6, "p90_us": ts[int(len(ts) * 0.9)] * 1e6}


def rss(pid):
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0
"""
EPILOGUE = """
try:
    ray.shutdown()
except Exception:
    pass
print(json.dumps(out))
"""


def run_probe(python, backend, name, n, env):
    code = PROLOGUE + textwrap.dedent(PROBES[name]) + EPILOGUE
    try:
        p = subprocess.run([python, "-c", code, backend, str(n)], capture_output=True,
                           text=True, timeout=600, env=env, cwd="/tmp")
    except subprocess.TimeoutExpired:
        return None
    if p.returncode != 0:
        sys.stderr.write(f"[{backend} {name}] failed:\n{p.stderr[-2000:]}\n")
        return None
    return json.loads(p.stdout.strip().splitlines()[-1])


def floor_figures():
    for cand in (os.environ.get("MANTA_FLOOR"), os.path.join(ROOT, "build", "bench", "manta-floor"),
                 shutil.which("manta-floor")):
        if cand and os.path.exists(cand):
            out = subprocess.run([cand, "--json"], capture_output=True, text=True, timeout=120)
            return json.loads(out.stdout)
    raise SystemExit("manta-floor not found: build the project first (scripts/test.sh builds it)")


def c_figures(quick):
    prog = os.path.join(ROOT, "build", "bench", "manta-bench-c")
    if not os.path.exists(prog):
        return None
    env = dict(os.environ, MANTA_DAEMON=os.path.join(ROOT, "build", "mantad"))
    out = subprocess.run([prog, "--json"] + (["--quick"] if quick else []), capture_output=True,
                         text=True, timeout=600, env=env)
    if out.returncode != 0:
        sys.stderr.write(out.stderr)
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    ap.add_argument("--ray-python", default=os.environ.get("RAY_PYTHON"),
                    help="a python interpreter that has ray installed")
    args = ap.parse_args()
    q = args.quick
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([os.path.join(ROOT, "python"), env.get("PYTHONPATH", "")])
    ray_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    fl = floor_figures()
    rtt = fl["sock_rtt_cross_us"]
    sizes = {"sync_task": 1000 if q else 5000, "async_tasks": 20000 if q else 100000,
             "put_get_800mb": 1, "init_first_result": 1, "idle_rss": 1,
             "queued_tasks": 20000 if q else 100000, "actor_sync": 1000 if q else 5000,
             "actor_async": 10000 if q else 50000, "actor_create": 100 if q else 300,
             "idle_actor_rss": 1}
    res = {}
    for name, n in sizes.items():
        m = run_probe(sys.executable, "manta", name, n, env)
        r = run_probe(args.ray_python, "ray", name, n, ray_env) if args.ray_python and \
            name != "queued_tasks" else None
        res[name] = (m, r)
    cfig = c_figures(q)

    rows = []

    def row(metric, key, name, unit, target, higher_better):
        m, r = res.get(name, (None, None))
        mv = m.get(key) if m else None
        rv = r.get(key) if r else None
        ratio = ""
        if mv and rv:
            ratio = f"{(mv / rv if higher_better else rv / mv):.1f}x better" if \
                (mv > rv) == higher_better else f"{(rv / mv if higher_better else mv / rv):.1f}x worse"
        rows.append((metric, mv, rv, unit, ratio, target))

    row("python empty task submit+get p50", "p50_us", "sync_task", "us", "",
        False)
    rows[-1] = rows[-1][:5] + (f"<= {3 * rtt:.0f} (3x rtt {rtt:.1f})",)
    row("python tiny tasks, best of 3", "tasks_per_s", "async_tasks", "tasks/s", ">= 30000", True)
    row("put 800 MB array", "put_gbps", "put_get_800mb", "GB/s", "", True)
    rows[-1] = rows[-1][:5] + (f">= {0.7 * fl['memcpy_gbps']:.1f} (0.7x memcpy "
                              f"{fl['memcpy_gbps']:.1f})",)
    for mb in (8, 80, 800):
        row(f"get {mb} MB array (zero-copy)", f"get_ms_{mb}mb", "put_get_800mb", "ms",
            "flat in size", False)
    row("init() to first result", "ms", "init_first_result", "ms", "<= 300", False)
    row("idle node + 2 python workers RSS", "mb", "idle_rss", "MB", "<= 150", False)
    row("queued task: daemon memory", "daemon_bytes_per_task", "queued_tasks", "bytes",
        "<= 500", False)
    row("queued task: driver memory", "driver_bytes_per_task", "queued_tasks", "bytes", "", False)
    row("python actor call sync p50", "p50_us", "actor_sync", "us", "", False)
    rows[-1] = rows[-1][:5] + (f"<= {2 * rtt:.0f} (2x rtt)",)
    row("python actor calls async, 1:1", "calls_per_s", "actor_async", "calls/s", ">= 50000",
        True)
    row("actors created", "per_s", "actor_create", "actors/s", ">= 100", True)
    row("idle python actor RSS", "mb", "idle_actor_rss", "MB", "<= 25", False)
    if cfig:
        rows.append(("C empty task submit+get p50", cfig["sync_us"], None, "us", "",
                     f"<= {2 * rtt:.0f} (2x rtt)"))
        rows.append(("C tiny tasks, best of 3", cfig["tasks_per_s"], None, "tasks/s", "",
                     ">= 150000"))

    print(f"floor (same run): socket rtt cross-core {rtt:.1f} us, same core "
          f"{fl['sock_rtt_same_us']:.1f} us, syscall {fl['syscall_us']:.2f} us, shm spin rtt "
          f"{fl['shm_spin_rtt_us']:.2f} us, memcpy {fl['memcpy_gbps']:.1f} GB/s, "
          f"{fl['ncpus']} cpus")
    hdr = ("metric", "manta", "ray", "unit", "manta vs ray", "target")
    fmt = "{:<36} | {:>11} | {:>11} | {:<7} | {:<13} | {}"
    print(fmt.format(*hdr))
    print(fmt.format(*["-" * 36, "-" * 11, "-" * 11, "-" * 7, "-" * 13, "-" * 20]))

    def num(v):
        if v is None:
            return "n/a"
        return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.2f}"

    for metric, mv, rv, unit, ratio, target in rows:
        print(fmt.format(metric, num(mv), num(rv), unit, ratio, target))


if __name__ == "__main__":
    main()
