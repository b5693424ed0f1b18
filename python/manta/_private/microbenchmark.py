"""``manta microbenchmark``: the rows of ``ray microbenchmark``, on manta and
(with ``--vs-ray``) on Ray, plus the C API beside the machine's floor.

    manta microbenchmark [--vs-ray] [--quick] [--rows REGEX] [--json]

Each row has the name and the shape of the row of the same name in Ray's
``ray microbenchmark`` (what one timed call does, and how many operations it
counts), and reports operations per second with the standard deviation over
the measurement windows.  Client and actor counts follow the machine's cores
(one actor per two cores, as Ray does, at least one; at least four clients)
and are printed with the results.

Every row runs in a process of its own (``import manta as ray`` or
``import ray``) that starts its own local cluster, so rows cannot disturb
each other and a row that fails or hangs becomes "error: ..." instead of
ending the run.  With ``--vs-ray`` the rows alternate between the backends:
manta row 1, Ray row 1, manta row 2, ...  Ray runs from a virtual environment
of its own (``$MANTA_RAY_VENV``, default ``~/.cache/manta/ray-venv``), which is
created and filled from PyPI (``pip install ray numpy``) when it is missing.

The file is also the program each row's process runs: the parent executes it
as ``__main__`` with ``--child`` so that the remote functions and classes
below are shipped to workers by value, which works for Ray as well as for
manta.  Outside the parent code it imports nothing from manta.
"""

import argparse
import datetime
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time

# The module chosen in a row's process: manta or ray.
ray = None

RESULT_MARK = "@@MICROBENCHMARK@@ "

# ----------------------------------------------------------------- timing


def _timeit(fn, multiplier, warmup_s, window_s, windows):
    """Ray's timeit, in bounded time: warm up for `warmup_s` (at least one
    call), then count calls in `windows` windows of at least `window_s` each
    and report the mean and (population) standard deviation of
    multiplier * calls / seconds over the windows.  A call longer than a
    window makes each window one call, and the windows fewer (at least 2)."""
    t0 = time.perf_counter()
    calls = 0
    while True:
        fn()
        calls += 1
        if time.perf_counter() - t0 >= warmup_s:
            break
    per_call = (time.perf_counter() - t0) / calls
    if per_call > window_s:
        windows = max(2, min(windows, int(window_s * windows / per_call)))
    step = max(1, int(window_s / per_call / 10))
    rates = []
    total_calls = 0
    for _ in range(windows):
        start = time.perf_counter()
        count = 0
        while time.perf_counter() - start < window_s:
            for _ in range(step):
                fn()
            count += step
        rates.append(multiplier * count / (time.perf_counter() - start))
        total_calls += count
    return statistics.mean(rates), statistics.pstdev(rates), windows, total_calls


# ----------------------------------------------------------------- remote code
# Defined on the backend of the row's process (see _define).  The shapes are
# those of Ray's microbenchmark: the values are tiny (b"ok"), actors that
# serve calls hold no CPU.


def _define():
    global small_value, create_object_containing_ref, Actor, AsyncActor, Client

    @ray.remote
    def small_value():
        return b"ok"

    @ray.remote
    def create_object_containing_ref():
        return [ray.put(1) for _ in range(10000)]

    @ray.remote(num_cpus=0)
    class Actor:
        def small_value(self):
            return b"ok"

        def small_value_arg(self, x):
            return b"ok"

        def small_value_batch(self, n):
            """A client: submits n tasks and waits for them."""
            ray.get([small_value.remote() for _ in range(n)])

    @ray.remote
    class AsyncActor:
        async def small_value(self):
            return b"ok"

        async def small_value_with_arg(self, x):
            return b"ok"

    @ray.remote(num_cpus=0)
    class Client:
        """Calls `n` times each of its servers, then waits for every reply."""

        def __init__(self, servers):
            self.servers = servers if isinstance(servers, list) else [servers]

        def small_value_batch(self, n):
            refs = []
            for s in self.servers:
                refs += [s.small_value.remote() for _ in range(n)]
            ray.get(refs)

        def small_value_batch_arg(self, n):
            x = ray.put(0)
            refs = []
            for s in self.servers:
                refs += [s.small_value_arg.remote(x) for _ in range(n)]
            ray.get(refs)


# ----------------------------------------------------------------- rows
# Each row: setup(P) -> (fn, multiplier): one call of fn is what Ray times,
# multiplier is how many operations one call counts.  P holds the counts
# ("actors", "clients") that the parent chose for both backends.


def _row_get_small(P):
    value = ray.put(0)
    return (lambda: ray.get(value)), 1


def _row_put_small(P):
    return (lambda: ray.put(0)), 1


def _row_put_multi_small(P):
    @ray.remote
    def do_put_small():
        for _ in range(100):
            ray.put(0)

    def fn():
        ray.get([do_put_small.remote() for _ in range(10)])
    return fn, 1000


def _row_put_large(P):
    import numpy as np
    arr = np.zeros(100 * 1024 * 1024, dtype=np.int64)  # 800 MiB, counted as 0.8 GB
    return (lambda: ray.put(arr)), 8 * 0.1


def _row_tasks_and_get_batch(P):
    def fn():
        ray.get([small_value.remote() for _ in range(1000)])
    return fn, 1


def _row_put_multi_large(P):
    import numpy as np

    @ray.remote
    def do_put():
        for _ in range(10):
            ray.put(np.zeros(10 * 1024 * 1024, dtype=np.int64))

    def fn():
        ray.get([do_put.remote() for _ in range(10)])
    return fn, 10 * 8 * 0.1


def _row_get_10k_refs(P):
    obj = create_object_containing_ref.remote()
    return (lambda: ray.get(obj)), 1


def _row_wait_1k(P):
    def fn():
        not_ready = [small_value.remote() for _ in range(1000)]
        fetch_local = True
        for _ in range(1000):
            _ready, not_ready = ray.wait(not_ready, fetch_local=fetch_local)
            fetch_local = False
    return fn, 1


def _row_tasks_sync(P):
    return (lambda: ray.get(small_value.remote())), 1


def _row_tasks_async(P):
    def fn():
        ray.get([small_value.remote() for _ in range(1000)])
    return fn, 1000


def _row_multi_tasks_async(P):
    n, m = 10000, P["clients"]
    actors = [Actor.remote() for _ in range(m)]

    def fn():
        ray.get([a.small_value_batch.remote(n) for a in actors])
    return fn, n * m


def _row_actor_sync(P):
    a = Actor.remote()
    return (lambda: ray.get(a.small_value.remote())), 1


def _row_actor_async(P):
    a = Actor.remote()

    def fn():
        ray.get([a.small_value.remote() for _ in range(1000)])
    return fn, 1000


def _row_actor_concurrent(P):
    a = Actor.options(max_concurrency=16).remote()

    def fn():
        ray.get([a.small_value.remote() for _ in range(1000)])
    return fn, 1000


def _row_1n_actor(P):
    n = 5000
    actors = [Actor.remote() for _ in range(P["actors"])]
    client = Client.remote(actors)
    return (lambda: ray.get(client.small_value_batch.remote(n))), n * len(actors)


def _row_nn_actor(P):
    n, m, k = 5000, P["clients"], P["actors"]
    actors = [Actor.remote() for _ in range(k)]

    @ray.remote
    def work(actors):
        ray.get([actors[i % k].small_value.remote() for i in range(n)])

    def fn():
        ray.get([work.remote(actors) for _ in range(m)])
    return fn, m * n


def _row_nn_actor_arg(P):
    n = 1000
    actors = [Actor.remote() for _ in range(P["actors"])]
    clients = [Client.remote(a) for a in actors]

    def fn():
        ray.get([c.small_value_batch_arg.remote(n) for c in clients])
    return fn, n * len(clients)


def _row_async_actor_sync(P):
    a = AsyncActor.remote()
    return (lambda: ray.get(a.small_value.remote())), 1


def _row_async_actor_async(P):
    a = AsyncActor.remote()

    def fn():
        ray.get([a.small_value.remote() for _ in range(1000)])
    return fn, 1000


def _row_async_actor_args(P):
    a = AsyncActor.remote()

    def fn():
        ray.get([a.small_value_with_arg.remote(i) for i in range(1000)])
    return fn, 1000


def _row_1n_async_actor(P):
    n = 5000
    actors = [AsyncActor.remote() for _ in range(P["actors"])]
    client = Client.remote(actors)
    return (lambda: ray.get(client.small_value_batch.remote(n))), n * len(actors)


def _row_nn_async_actor(P):
    n, m, k = 5000, P["clients"], P["actors"]
    actors = [AsyncActor.remote() for _ in range(k)]

    @ray.remote
    def async_actor_work(actors):
        ray.get([actors[i % k].small_value.remote() for i in range(n)])

    def fn():
        ray.get([async_actor_work.remote(actors) for _ in range(m)])
    return fn, m * n


def _placement_groups():
    """(placement_group, remove_placement_group) of the backend, or None."""
    import importlib
    try:
        util = importlib.import_module(ray.__name__ + ".util")
    except ImportError:
        return None
    pg = getattr(util, "placement_group", None)
    rm = getattr(util, "remove_placement_group", None)
    return (pg, rm) if pg and rm else None


def _row_placement_groups(P):
    placement_group, remove_placement_group = _placement_groups()
    num_pgs = 100

    def fn():
        pgs = [placement_group(bundles=[{"custom": 0.001}]) for _ in range(num_pgs)]
        for pg in pgs:
            pg.wait(timeout_seconds=30)
        for pg in pgs:
            remove_placement_group(pg)
    return fn, num_pgs


# (name as in `ray microbenchmark`, setup, init() keyword arguments), in
# Ray's order.
ROWS = [
    ("single client get calls (Plasma Store)", _row_get_small, {}),
    ("single client put calls (Plasma Store)", _row_put_small, {}),
    ("multi client put calls (Plasma Store)", _row_put_multi_small, {}),
    ("single client put gigabytes", _row_put_large, {}),
    ("single client tasks and get batch", _row_tasks_and_get_batch, {}),
    ("multi client put gigabytes", _row_put_multi_large, {}),
    ("single client get object containing 10k refs", _row_get_10k_refs, {}),
    ("single client wait 1k refs", _row_wait_1k, {}),
    ("single client tasks sync", _row_tasks_sync, {}),
    ("single client tasks async", _row_tasks_async, {}),
    ("multi client tasks async", _row_multi_tasks_async, {}),
    ("1:1 actor calls sync", _row_actor_sync, {}),
    ("1:1 actor calls async", _row_actor_async, {}),
    ("1:1 actor calls concurrent", _row_actor_concurrent, {}),
    ("1:n actor calls async", _row_1n_actor, {}),
    ("n:n actor calls async", _row_nn_actor, {}),
    ("n:n actor calls with arg async", _row_nn_actor_arg, {}),
    ("1:1 async-actor calls sync", _row_async_actor_sync, {}),
    ("1:1 async-actor calls async", _row_async_actor_async, {}),
    ("1:1 async-actor calls with args async", _row_async_actor_args, {}),
    ("1:n async-actor calls async", _row_1n_async_actor, {}),
    ("n:n async-actor calls async", _row_nn_async_actor, {}),
    ("placement group create/removal", _row_placement_groups, {"resources": {"custom": 100}}),
]
ROW_NAMES = [r[0] for r in ROWS]


def _child(backend, row_name, params):
    """Run one row on `backend` in this process; print its result line."""
    global ray
    import importlib

    ray = importlib.import_module(backend)
    P = json.loads(params)
    name, setup, init_kwargs = next(r for r in ROWS if r[0] == row_name)
    if setup is _row_placement_groups and _placement_groups() is None:
        print(RESULT_MARK + json.dumps({"na": f"{backend} has no placement groups"}), flush=True)
        return 0
    if backend != "manta":
        # Ray binds to the machine's address by default, and turns 127.0.0.1
        # into that address too; another loopback address keeps it on lo.
        init_kwargs = dict(init_kwargs, _node_ip_address="127.0.0.2")
    ray.init(**init_kwargs)
    try:
        _define()
        fn, multiplier = setup(P)
        mean, sd, windows, calls = _timeit(fn, multiplier, P["warmup_s"], P["window_s"],
                                           P["windows"])
        print(RESULT_MARK + json.dumps({"ops": mean, "sd": sd, "windows": windows,
                                        "calls": calls}), flush=True)
    finally:
        ray.shutdown()
    return 0


# ----------------------------------------------------------------- parent side

HERE = os.path.dirname(os.path.abspath(__file__))
# The source tree, when this file runs from one (python/manta/_private/).
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))

# How a row's process runs this file as __main__ (so its remote functions
# are pickled by value): python -c BOOT <this file> --child BACKEND ROW PARAMS
BOOT = ("import sys; p = sys.argv.pop(1); "
        "exec(compile(open(p).read(), p, 'exec'), {'__name__': '__main__', '__file__': p})")


def _cpus():
    return os.cpu_count() or 1


def counts(ncpu=None):
    """Client and actor counts for this machine: Ray's one actor per two
    cores (at least 1), and at least four clients (Ray's four), one per two
    cores past eight."""
    ncpu = ncpu or _cpus()
    return {"cpus": ncpu, "actors": max(1, ncpu // 2), "clients": max(4, ncpu // 2)}


def _short_error(stderr, returncode):
    """The last meaningful line of a failed row's stderr, shortened."""
    lines = [ln.strip() for ln in (stderr or "").splitlines() if ln.strip()]
    skip = ("File ", "Traceback", "^", "~", "During handling", "The above exception")
    for ln in reversed(lines):
        if ln.startswith("(pid=") or ln.startswith(skip):
            continue
        if re.match(r"^\w+(\.\w+)*(Error|Exception|Interrupt|Exit)\b", ln) or ":" in ln:
            return ln[:200]
    if lines:
        return lines[-1][:200]
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit status {returncode}"


def _kill_group(p, sig):
    try:
        os.killpg(p.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def run_row(python, backend, row, params, env, timeout, cwd):
    """Run one row in a new process (group); returns a result dict:
    {"ops", "sd", ...}, {"na": reason} or {"error": reason}."""
    cmd = [python, "-c", BOOT, os.path.abspath(__file__), "--child", backend, row,
           json.dumps(params)]
    t0 = time.monotonic()
    try:
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=env, cwd=cwd, start_new_session=True)
    except OSError as e:
        return {"error": f"cannot start {python}: {e.strerror}"}
    timed_out = False
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(p, signal.SIGINT)  # lets the backend shut its cluster down
        try:
            out, err = p.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            _kill_group(p, signal.SIGKILL)
            out, err = p.communicate()
    except BaseException:
        _kill_group(p, signal.SIGKILL)
        p.communicate()
        raise
    # A backend's processes that outlive the row's driver would disturb the
    # next row: end whatever is left of the group this row started.
    _kill_group(p, signal.SIGKILL)
    result = None
    for line in (out or "").splitlines():
        if line.startswith(RESULT_MARK):
            result = json.loads(line[len(RESULT_MARK):])
    if result is None:
        if timed_out:
            result = {"error": f"timed out after {timeout:.0f} s (hang?)"}
        else:
            result = {"error": _short_error(err, p.returncode)}
        result["stderr_tail"] = (err or "")[-3000:]
    result["seconds"] = time.monotonic() - t0
    return result


# ------------------------------------------------------------ Ray's interpreter

def default_venv():
    return os.environ.get("MANTA_RAY_VENV") or os.path.join(
        os.path.expanduser("~"), ".cache", "manta", "ray-venv")


def _ray_version(python):
    try:
        p = subprocess.run([python, "-c", "import ray, numpy; print(ray.__version__)"],
                           capture_output=True, text=True, timeout=120,
                           env=_ray_env(), cwd=tempfile.gettempdir())
    except (OSError, subprocess.TimeoutExpired):
        return None
    return p.stdout.strip().splitlines()[-1] if p.returncode == 0 and p.stdout.strip() else None


def ensure_ray(explicit_python=None, log=None):
    """(python, ray version, None) for an interpreter that has Ray, or
    (None, None, reason).  Without `explicit_python`, uses the virtual
    environment default_venv(), creating it and installing ray and numpy from
    PyPI into it when missing."""
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    if explicit_python:
        v = _ray_version(explicit_python)
        return (explicit_python, v, None) if v else \
            (None, None, f"{explicit_python} cannot import ray and numpy")
    venv = default_venv()
    python = os.path.join(venv, "bin", "python")
    if os.path.exists(python):
        v = _ray_version(python)
        if v:
            return python, v, None
    log(f"Installing Ray from PyPI into {venv} (once; about a minute) ...")
    try:
        if not os.path.exists(python):
            os.makedirs(os.path.dirname(venv), exist_ok=True)
            p = subprocess.run([sys.executable, "-m", "venv", venv], capture_output=True,
                               text=True, timeout=300)
            if p.returncode != 0:
                return None, None, ("cannot create a virtual environment at "
                                    f"{venv}: {_short_error(p.stderr, p.returncode)}")
        p = subprocess.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                            "ray", "numpy"], capture_output=True, text=True, timeout=1800,
                           env=_ray_env())
    except subprocess.TimeoutExpired:
        return None, None, "installing Ray timed out"
    except OSError as e:
        return None, None, f"cannot install Ray: {e}"
    if p.returncode != 0:
        return None, None, f"pip install ray failed: {_short_error(p.stderr, p.returncode)}"
    v = _ray_version(python)
    if not v:
        return None, None, f"Ray was installed into {venv} but cannot be imported"
    log(f"Installed Ray {v}.")
    return python, v, None


def _ray_env():
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    return env


def _manta_env():
    import manta
    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(manta.__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [pkg_parent] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


# ------------------------------------------------------------ the C rows

def _find_c_bench():
    prog = os.environ.get("MANTA_BENCH_C") or os.path.join(ROOT, "build", "bench",
                                                             "manta-bench-c")
    return prog if os.path.exists(prog) else None


def run_c_rows(quick, timeout=900):
    """The C API rows and the floor of the same run, from manta-bench-c
    --json: (dict, None) or (None, reason)."""
    prog = _find_c_bench()
    if not prog:
        return None, ("C rows skipped: build/bench/manta-bench-c is built only in a source tree "
                      "(cmake --build build)")
    env = dict(os.environ)
    daemon = os.path.join(os.path.dirname(os.path.dirname(prog)), "mantad")
    if "MANTA_DAEMON" not in env and os.path.exists(daemon):
        env["MANTA_DAEMON"] = daemon
    try:
        p = subprocess.Popen([prog, "--json"] + (["--quick"] if quick else []),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                             cwd=tempfile.gettempdir(), start_new_session=True)
    except OSError as e:
        return None, f"C rows: cannot start {prog}: {e.strerror}"
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(p, signal.SIGKILL)
        p.communicate()
        return None, f"C rows: error: manta-bench-c timed out after {timeout} s"
    _kill_group(p, signal.SIGKILL)
    if p.returncode != 0:
        return None, f"C rows: error: {_short_error(err, p.returncode)}"
    try:
        return json.loads(out.strip().splitlines()[-1]), None
    except (ValueError, IndexError):
        return None, "C rows: error: manta-bench-c printed no JSON"


def c_table(c):
    """Rows (name, value, unit, vs floor) of the C figures."""
    fl = c.get("floor", {})
    rtt = fl.get("sock_rtt_cross_us") or c.get("rtt_us")
    mem = fl.get("memcpy_gbps")

    def x_rtt(us):
        return f"{us / rtt:.2f}x socket RTT" if rtt and us is not None else ""

    def per_op(ops):
        if not ops:
            return ""
        us = 1e6 / ops
        return f"{us:.2f} us each = {x_rtt(us)}"

    rows = []
    if "sync_us" in c:
        rows.append(("C: single client tasks sync, p50", c["sync_us"], "us", x_rtt(c["sync_us"])))
    if "tasks_per_s" in c:
        rows.append(("C: single client tasks async", c["tasks_per_s"], "tasks/s",
                     per_op(c["tasks_per_s"])))
    if "put_get_us" in c:
        rows.append(("C: small put + get, p50", c["put_get_us"], "us", x_rtt(c["put_get_us"])))
    if "put_get_per_s" in c:
        rows.append(("C: small put + get calls", c["put_get_per_s"], "ops/s",
                     per_op(c["put_get_per_s"])))
    def x_mem(gbps):
        return f"{gbps / mem:.2f}x memcpy ({mem:.1f} GB/s)" if mem else ""

    if "put_gbps" in c:
        rows.append(("C: put 800 MiB, best", c["put_gbps"], "GB/s", x_mem(c["put_gbps"])))
    if "put_cold_gbps" in c:
        rows.append(("C: put 800 MiB, first (fresh pages)", c["put_cold_gbps"], "GB/s",
                     x_mem(c["put_cold_gbps"])))
    if "get_800mb_first_us" in c:
        rows.append(("C: get 800 MiB (zero-copy), first", c["get_800mb_first_us"], "us",
                     x_rtt(c["get_800mb_first_us"])))
    if "get_800mb_us" in c:
        rows.append(("C: get 800 MiB (zero-copy), best", c["get_800mb_us"], "us",
                     x_rtt(c["get_800mb_us"])))
    if "actor_sync_us" in c:
        rows.append(("C: 1:1 actor calls sync, p50", c["actor_sync_us"], "us",
                     x_rtt(c["actor_sync_us"])))
    if "actor_calls_per_s" in c:
        rows.append(("C: 1:1 actor calls async", c["actor_calls_per_s"], "calls/s",
                     per_op(c["actor_calls_per_s"])))
    return rows


C_ROW_NAMES = [
    "C: single client tasks sync, p50", "C: single client tasks async",
    "C: small put + get, p50", "C: small put + get calls", "C: put 800 MiB, best",
    "C: put 800 MiB, first (fresh pages)", "C: get 800 MiB (zero-copy), first",
    "C: get 800 MiB (zero-copy), best", "C: 1:1 actor calls sync, p50", "C: 1:1 actor calls async",
]


# ------------------------------------------------------------ machine facts

def machine():
    info = {"cpus": _cpus(), "cpu_model": platform.processor() or platform.machine(),
            "mem_total_kb": None, "python": platform.python_version(),
            "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    info["mem_total_kb"] = int(line.split()[1])
                    break
    except OSError:
        pass
    try:
        info["loadavg"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        info["loadavg"] = None
    try:
        import manta
        info["manta"] = manta.__version__
    except ImportError:
        info["manta"] = None
    return info


# ------------------------------------------------------------ output

def _ops(v):
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 1:
        return f"{v:,.2f}"
    return f"{v:.3g}"


def _cell(r):
    if r is None:
        return "-"
    if "na" in r:
        return "n/a"
    if "error" in r:
        return "error: " + r["error"]
    return f"{_ops(r['ops'])} (±{_ops(r['sd'])})"


def _ratio(m, r):
    if not m or not r or "ops" not in m or "ops" not in r or not r["ops"]:
        return ""
    return f"{m['ops'] / r['ops']:.2f}x"


class _Table:
    def __init__(self, vs_ray, out):
        self.vs_ray, self.out = vs_ray, out
        self.w = max(len(n) for n in ROW_NAMES)

    def header(self):
        if self.vs_ray:
            self._p(f"{'row':<{self.w}} | {'manta ops/s (±sd)':>24} | {'Ray ops/s (±sd)':>24} | "
                    "manta/Ray")
            self._p(f"{'-' * self.w}-+-{'-' * 24}-+-{'-' * 24}-+-{'-' * 9}")
        else:
            self._p(f"{'row':<{self.w}} | {'ops/s':>14} | (±stdev)")
            self._p(f"{'-' * self.w}-+-{'-' * 14}-+-{'-' * 12}")

    def row(self, name, m, r=None):
        if self.vs_ray:
            self._p(f"{name:<{self.w}} | {_cell(m):>24} | {_cell(r):>24} | {_ratio(m, r)}")
        elif m and "ops" in m:
            self._p(f"{name:<{self.w}} | {_ops(m['ops']):>14} | (±{_ops(m['sd'])})")
        else:
            self._p(f"{name:<{self.w}} | {_cell(m):>14} |")

    def _p(self, s):
        print(s, file=self.out, flush=True)


def _describe(mach, cnt, ray_version):
    mem = f"{mach['mem_total_kb'] / 1024 / 1024:.1f} GiB" if mach["mem_total_kb"] else "?"
    lines = [f"date      {mach['date']}",
             f"machine   {mach['cpus']} cores, {mach['cpu_model']}, {mem} memory",
             f"load      {' '.join(map(str, mach['loadavg'] or []))} (1, 5, 15 min averages at the "
             "start; other work on the machine disturbs the figures)",
             f"versions  Python {mach['python']}, manta {mach['manta']}"
             + (f", Ray {ray_version}" if ray_version else ""),
             f"counts    {cnt['actors']} actor(s) in the 1:n and n:n rows (one per two cores), "
             f"{cnt['clients']} clients in the multi client / n:n rows; multi client put rows: "
             "10 tasks"]
    return lines


# ------------------------------------------------------------ main

def build_parser(prog="manta microbenchmark"):
    p = argparse.ArgumentParser(
        prog=prog,
        description="Run the rows of `ray microbenchmark` (same names and shapes) on manta, "
                    "each in a process of its own, and the C API rows beside the machine's "
                    "floor. With --vs-ray, run every row on Ray too, alternating, and print "
                    "the ratio.")
    add_arguments(p)
    return p


def add_arguments(p):
    p.add_argument("--vs-ray", action="store_true",
                   help="also run every row on Ray (installed from PyPI into "
                        "$MANTA_RAY_VENV or ~/.cache/manta/ray-venv when missing)")
    p.add_argument("--ray-python", metavar="PATH", default=os.environ.get("RAY_PYTHON"),
                   help="with --vs-ray: a python that has ray and numpy (default: the "
                        "virtual environment above)")
    p.add_argument("--quick", action="store_true", help="shorter measurement windows")
    p.add_argument("--rows", metavar="REGEX",
                   help="only the rows whose name matches REGEX (C rows: 'C: ...')")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.add_argument("--timeout", type=float, metavar="S",
                   help="seconds a row may take before it is reported as an error "
                        "(default 180; 600 for Ray)")


def run(args):
    out = sys.stderr if args.json else sys.stdout
    say = lambda s="": print(s, file=out, flush=True)  # noqa: E731
    try:
        rx = re.compile(args.rows) if args.rows else None
    except re.error as e:
        print(f"manta microbenchmark: error: bad --rows pattern: {e}", file=sys.stderr)
        return 2
    rows = [r for r in ROW_NAMES if not rx or rx.search(r)]
    want_c = not rx or any(rx.search(n) for n in C_ROW_NAMES)

    ray_python = ray_version = ray_note = None
    if args.vs_ray:
        ray_python, ray_version, ray_note = ensure_ray(args.ray_python, log=say)
        if not ray_python:
            say(f"Ray is not available ({ray_note}): printing manta's rows alone.")
    vs_ray = ray_python is not None

    mach = machine()
    cnt = counts()
    if args.quick:
        timing = {"warmup_s": 0.2, "window_s": 0.2, "windows": 3}
    else:
        timing = {"warmup_s": 0.5, "window_s": 0.5, "windows": 4}
    params = dict(cnt, **timing)
    t_manta = args.timeout or 180.0
    t_ray = args.timeout or 600.0
    workdir = tempfile.mkdtemp(prefix="manta-microbenchmark-")
    menv, renv = _manta_env(), _ray_env()

    for line in _describe(mach, cnt, ray_version):
        say(line)
    say(f"timing    per row: warm-up {timing['warmup_s']} s, {timing['windows']} windows of "
        f"{timing['window_s']} s (a call longer than a window: one call per window, at least "
        "2 windows); each row in a fresh process and cluster"
        + ("; rows alternate manta / Ray" if vs_ray else ""))
    say()
    table = _Table(vs_ray, out)
    table.header()
    results = []
    for name in rows:
        m = run_row(sys.executable, "manta", name, params, menv, t_manta, workdir)
        r = run_row(ray_python, "ray", name, params, renv, t_ray, workdir) if vs_ray else None
        table.row(name, m, r)
        results.append({"row": name, "manta": m, "ray": r})

    c, c_note = (None, None)
    if want_c:
        say()
        say("C API (manta-bench-c), beside the floor measured in the same run ...")
        c, c_note = run_c_rows(args.quick)
        if c_note:
            say(c_note)
        else:
            fl = c.get("floor", {})
            say(f"floor: Unix-socket ping-pong between two processes on two cores "
                f"{fl.get('sock_rtt_cross_us', c.get('rtt_us', float('nan'))):.2f} us round trip, "
                f"on one core {fl.get('sock_rtt_same_us', float('nan')):.2f} us; "
                f"memcpy {fl.get('memcpy_gbps', float('nan')):.1f} GB/s")
            w = max(len(n) for n in C_ROW_NAMES)
            say(f"{'row':<{w}} | {'value':>12} | {'unit':<8} | vs floor")
            say(f"{'-' * w}-+-{'-' * 12}-+-{'-' * 8}-+-{'-' * 30}")
            for name, value, unit, vs in c_table(c):
                if rx and not rx.search(name):
                    continue
                say(f"{name:<{w}} | {_ops(value):>12} | {unit:<8} | {vs}")

    try:
        mach["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
        say()
        say(f"load at the end: {' '.join(map(str, mach['loadavg_end']))}")
    except OSError:
        pass
    errors = [(x["row"], b, x[b]["error"]) for x in results for b in ("manta", "ray")
              if x[b] and "error" in x[b]]
    if errors:
        say()
        say("errors:")
        for row, backend, e in errors:
            say(f"  {backend}: {row}: {e}")
    if args.json:
        for x in results:
            for b in ("manta", "ray"):
                if x[b]:
                    x[b].pop("stderr_tail", None)
        print(json.dumps({"machine": mach, "counts": cnt, "timing": timing,
                          "ray_version": ray_version, "ray_note": ray_note, "rows": results,
                          "c": c, "c_note": c_note}, indent=1))
    else:
        for x in results:
            for b in ("manta", "ray"):
                if x[b] and x[b].get("stderr_tail") and os.environ.get("MANTA_BENCH_VERBOSE"):
                    print(f"--- {b}: {x['row']}\n{x[b]['stderr_tail']}", file=sys.stderr)
    try:
        os.rmdir(workdir)
    except OSError:
        pass
    return 0


def main(argv=None, prog="manta microbenchmark"):
    args = build_parser(prog).parse_args(argv)
    # Stopped with SIGTERM: unwind, so that the row running now ends its
    # process group (run_row) instead of leaving a cluster behind.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        return run(args)
    except KeyboardInterrupt:
        return 130


def _entry(argv):
    if argv and argv[0] == "--child":
        return _child(*argv[1:4])
    return main(argv)


if __name__ == "__main__":
    sys.exit(_entry(sys.argv[1:]))
