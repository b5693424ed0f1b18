#!/usr/bin/env python3
"""Soak: crash-and-retry loops for a while, sampling memory, file
descriptors and processes, to show that nothing leaks.

    python3 bench/soak.py [--minutes 10] [--every 30]

Each round runs tasks whose workers die at random (retried), an actor that
is killed and restarts, puts and gets of large and small objects, and
cancellations.  Every `--every` seconds it prints the node daemon's RSS and
open fds, the driver's RSS and fds, the number of live workers and the
object store's use.  Ends with a verdict: flat or growing.
"""

import argparse
import os
import random
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "python"))

import numpy as np  # noqa: E402

import manta as ray  # noqa: E402
from manta._private import node as _node  # noqa: E402


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


@ray.remote(max_retries=-1)
def maybe_crash(i, p):
    if random.random() < p:
        os._exit(1)
    return i


@ray.remote(max_restarts=-1, max_task_retries=-1)
class Restartable:
    def pid(self):
        return os.getpid()

    def work(self, x):
        return x + 1


@ray.remote
def sleeper():
    time.sleep(10)


def one_round(actor):
    refs = [maybe_crash.remote(i, 0.05) for i in range(50)]
    assert ray.get(refs, timeout=300) == list(range(50))
    if random.random() < 0.3:
        os.kill(ray.get(actor.pid.remote(), timeout=60), 9)
    assert ray.get([actor.work.remote(i) for i in range(20)], timeout=300) == \
        [i + 1 for i in range(20)]
    big = ray.put(np.zeros(5_000_000))
    assert ray.get(big).shape == (5_000_000,)
    del big
    small = [ray.put(i) for i in range(200)]
    assert ray.get(small) == list(range(200))
    s = sleeper.remote()
    ray.cancel(s)
    try:
        ray.get(s, timeout=30)
    except ray.exceptions.TaskCancelledError:
        pass


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--every", type=float, default=30.0)
    args = ap.parse_args()
    ctx = ray.init(num_cpus=2)
    session = ctx["session_dir"]
    dpid = _node.read_info(session)["pid"]
    workers_pid = _node.session_paths(session)["workers_pid"]
    actor = Restartable.remote()
    rows = []
    start = time.monotonic()
    next_sample = start
    rounds = 0
    print(f"{'t (s)':>7} | {'rounds':>6} | {'node RSS MB':>11} | {'node fds':>8} | "
          f"{'driver RSS MB':>13} | {'driver fds':>10} | {'workers':>7} | {'store MB':>8}")
    while True:
        now = time.monotonic()
        if now >= next_sample:
            workers = len(_node.read_pids(workers_pid))
            store = ray._private.worker.cluster_status()["nodes"][0]["store_used"] / 2**20
            row = (now - start, rounds, rss_kb(dpid) / 1024, fds(dpid), rss_kb(os.getpid()) / 1024,
                   fds(os.getpid()), workers, store)
            rows.append(row)
            print(f"{row[0]:7.0f} | {row[1]:6d} | {row[2]:11.1f} | {row[3]:8d} | {row[4]:13.1f} | "
                  f"{row[5]:10d} | {row[6]:7d} | {row[7]:8.1f}", flush=True)
            next_sample += args.every
            if now - start >= args.minutes * 60:
                break
        one_round(actor)
        rounds += 1
    ray.shutdown()
    first, last = rows[1] if len(rows) > 2 else rows[0], rows[-1]
    grew = last[2] > first[2] * 1.2 + 2 or last[3] > first[3] + 5 or last[5] > first[5] + 5
    print(f"\n{rounds} rounds in {rows[-1][0]:.0f} s; node RSS {first[2]:.1f} -> {last[2]:.1f} MB, "
          f"node fds {first[3]} -> {last[3]}, driver fds {first[5]} -> {last[5]}: "
          f"{'GROWING' if grew else 'flat'}")
    return 1 if grew else 0


if __name__ == "__main__":
    sys.exit(main())
