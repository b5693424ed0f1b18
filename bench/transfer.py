#!/usr/bin/env python3
"""Object transfer between two nodes on this machine: a 1 GiB object made on
one node and read on the other (pulled daemon to daemon in chunks, straight
into the reader's store), with memcpy bandwidth beside it.

    python3 bench/transfer.py [--gib 1] [--runs 3]

Prints one table: direction | seconds | GB/s.  Issue target: 1 GB/s or more.
"""

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "python"))

import numpy as np  # noqa: E402

import manta  # noqa: E402
from manta.cluster_utils import Cluster  # noqa: E402


def memcpy_gbps(nbytes):
    a = np.ones(nbytes, dtype=np.uint8)
    b = np.empty_like(a)
    best = 0.0
    for _ in range(3):
        t = time.perf_counter()
        np.copyto(b, a)
        best = max(best, nbytes / (time.perf_counter() - t) / 1e9)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gib", type=float, default=1.0)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    nbytes = int(args.gib * 2**30)
    store = nbytes * 3 + (256 << 20)
    cluster = Cluster(initialize_head=True,
                      head_node_args={"num_cpus": 1, "object_store_memory": store})
    try:
        cluster.add_node(num_cpus=1, resources={"side": 1}, object_store_memory=store)
        cluster.connect()

        @manta.remote(resources={"side": 1})
        def make(n, salt):
            a = np.empty(n, dtype=np.uint8)
            a[:] = salt
            return a

        @manta.remote(resources={"side": 1})
        def touch(a):
            t = time.perf_counter()
            s = int(a[:: 1 << 20].sum())  # the copy is here once the task runs
            return s, time.perf_counter() - t

        rows = []
        for r in range(args.runs):
            ref = make.remote(nbytes, r + 1)
            manta.wait([ref], timeout=600)
            t = time.perf_counter()
            a = manta.get(ref, timeout=600)
            dt = time.perf_counter() - t
            assert a.nbytes == nbytes and int(a[-1]) == r + 1
            rows.append(("other node -> driver's node (get)", dt))
            del a, ref
        for r in range(args.runs):
            ref = manta.put(np.full(nbytes, r + 1, dtype=np.uint8))
            t = time.perf_counter()
            manta.get(touch.remote(ref), timeout=600)
            dt = time.perf_counter() - t
            rows.append(("driver's node -> other node (task argument)", dt))
            del ref
        mc = memcpy_gbps(min(nbytes, 512 << 20))
        print(f"object: {nbytes / 2**30:.2f} GiB; single-thread memcpy {mc:.1f} GB/s; "
              f"{os.cpu_count()} cores")
        print(f"{'direction':46} | {'seconds':>8} | {'GB/s':>6}")
        print("-" * 68)
        best = {}
        for name, dt in rows:
            gbps = nbytes / dt / 1e9
            best[name] = max(best.get(name, 0), gbps)
            print(f"{name:46} | {dt:8.3f} | {gbps:6.2f}")
        print("-" * 68)
        for name, g in best.items():
            print(f"best {name:41} | {'':8} | {g:6.2f}")
    finally:
        cluster.shutdown()


if __name__ == "__main__":
    main()
