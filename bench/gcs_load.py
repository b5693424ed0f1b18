#!/usr/bin/env python3
"""Control-store messages per task: a 100,000-task run on a two-node cluster
(head + one joined node), counting the messages the control store handled
before and after.  Plain tasks should cost none: a function is registered
once, a worker fetches it once, and leases and pushes go between daemons and
workers directly.

    python3 bench/gcs_load.py [--tasks 100000]

Prints: tasks | seconds | control-store messages | per task.
"""

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "python"))

import manta  # noqa: E402
from manta.cluster_utils import Cluster  # noqa: E402
from manta._private.worker import cluster_status  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=100_000)
    args = ap.parse_args()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        cluster.add_node(num_cpus=1)
        cluster.connect()

        @manta.remote
        def f(i):
            return i

        # Warm up: the function is registered and fetched, workers started.
        manta.get([f.remote(i) for i in range(200)])
        before = cluster_status()["gcs_messages"]
        t = time.perf_counter()
        done, batch = 0, 10_000
        while done < args.tasks:
            n = min(batch, args.tasks - done)
            out = manta.get([f.remote(i) for i in range(n)])
            assert out[-1] == n - 1
            done += n
        dt = time.perf_counter() - t
        after = cluster_status()["gcs_messages"]
        msgs = after - before
        nodes = len([n for n in cluster_status()["nodes"] if n["alive"]])
        print(f"nodes: {nodes}")
        print(f"{'tasks':>8} | {'seconds':>8} | {'control-store msgs':>18} | {'per task':>8}")
        print(f"{args.tasks:8d} | {dt:8.2f} | {msgs:18d} | {msgs / args.tasks:8.5f}")
        print("(node heartbeats, every report_ms per node, are not control-store requests and "
              "are not counted)")
    finally:
        cluster.shutdown()


if __name__ == "__main__":
    main()
