"""Several nodes on this machine: spillback, objects between nodes, remote
actors, node failure (retries, restarts, lineage reconstruction, typed
errors) and the cluster token.  Each test forms its own cluster: a head and
one or two nodes that join it, each a daemon with its own store."""

import os
import signal
import socket
import struct
import time

import numpy as np
import pytest

import manta as ray
from manta._private import node as _node
from manta.cluster_utils import Cluster
from manta.util.scheduling_strategies import NodeAffinitySchedulingStrategy
from conftest import _session_pids, assert_no_leftovers, listening_ports, wait_for

T = 60  # bound on any single wait

# Every node of a test's cluster: declared dead after 1 s of silence, and a
# store big enough for the 200 MB object.
FAST_FAILURE = {"node_timeout_ms": 1000, "report_ms": 50}
STORE = 1 << 30


@pytest.fixture
def cluster(request):
    """A head (num_cpus=1, or what the test's indirect parameter says) that
    nodes join with add_node(); at the end it is shut down and no process of
    any of its nodes may be left behind (a node removed during the test was
    checked by remove_node)."""
    head = {"num_cpus": 1, "object_store_memory": STORE, "_system_config": FAST_FAILURE}
    head.update(getattr(request, "param", {}))
    c = Cluster(initialize_head=True, head_node_args=head)
    yield c
    dirs = [n.session_dir for n in c.list_all_nodes()]
    pids = [p for d in dirs for p in _session_pids(d)]
    c.shutdown()
    assert not ray.is_initialized()
    for d in dirs:
        assert_no_leftovers(pids, d)
        assert not os.path.exists(d), f"session directory left behind: {d}"


def node_of():
    return ray.get_runtime_context().get_node_id()


@ray.remote
def where(delay=0.0):
    time.sleep(delay)
    return ray.get_runtime_context().get_node_id()


def head_id():
    return [n["node_id"] for n in ray._private.worker.cluster_status()["nodes"]
            if n["is_head"]][0]


# ---------------------------------------------------------------- scheduling

def test_spillback_when_the_local_node_is_full(cluster):
    side = cluster.add_node(num_cpus=2, object_store_memory=STORE)
    cluster.connect()
    # 3 CPUs in all, one on the head: three 1 s tasks at once must use both nodes.
    t0 = time.monotonic()
    ids = ray.get([where.remote(1.0) for _ in range(3)], timeout=T)
    assert set(ids) == {head_id(), side.node_id}
    assert time.monotonic() - t0 < 1.9, "the tasks ran one after another instead of spilling"


@pytest.mark.parametrize("cluster", [{"num_cpus": 0}], indirect=True)
@pytest.mark.parametrize("strategy", ["DEFAULT", "SPREAD"])
def test_a_lease_request_cancelled_while_the_head_spills_it(cluster, monkeypatch, strategy):
    """The driver cancels a lease request that the head has not read yet;
    the head then spills it (it has no CPUs) and finds nothing to cancel.
    The spill is the request's last answer: the driver drops the request
    and keeps its connection (it once took the spill for a grant without a
    worker and lost the head)."""
    cluster.add_node(num_cpus=2, object_store_memory=STORE)
    monkeypatch.setenv("MANTA_IDLE_LEASE_MS", "60000")  # the driver keeps its lease
    cluster.connect()

    @ray.remote(scheduling_strategy=strategy)
    def nap(x):
        time.sleep(0.1)
        return x

    assert ray.get(nap.remote(0), timeout=T) == 0  # a lease on the node, kept
    head = cluster.head_node.proc
    head.send_signal(signal.SIGSTOP)
    try:
        # One runs on the kept lease; the other two ask the stopped head for
        # leases, and once the queue drains the driver cancels those.
        assert ray.get([nap.remote(i) for i in range(3)], timeout=T) == [0, 1, 2]
    finally:
        head.send_signal(signal.SIGCONT)
    # The head now answers the requests with spills, then the cancels; a put
    # is a round trip behind them on the same connection.
    big = np.ones(1 << 20, dtype=np.uint8)
    assert ray.get(ray.put(big), timeout=T).sum() == 1 << 20
    assert ray.get([nap.remote(i) for i in range(4)], timeout=T) == [0, 1, 2, 3]


def test_a_custom_resource_places_tasks_and_actors_on_its_node(cluster):
    side = cluster.add_node(num_cpus=1, object_store_memory=STORE, resources={"gadget": 1})
    cluster.connect()
    assert ray.get(where.options(resources={"gadget": 1}).remote(), timeout=T) == side.node_id

    @ray.remote(resources={"gadget": 1})
    class Remote:
        def node(self):
            return node_of()

    a = Remote.remote()
    assert ray.get(a.node.remote(), timeout=T) == side.node_id


def test_an_infeasible_demand_waits_until_a_node_that_fits_joins(cluster):
    cluster.connect()
    ref = where.options(resources={"later": 1}).remote()
    ready, _ = ray.wait([ref], timeout=0.5)
    assert not ready
    side = cluster.add_node(num_cpus=1, object_store_memory=STORE, resources={"later": 1})
    assert ray.get(ref, timeout=T) == side.node_id


def test_node_affinity_and_spread(cluster):
    side = cluster.add_node(num_cpus=2, object_store_memory=STORE)
    cluster.connect()
    hard = NodeAffinitySchedulingStrategy(side.node_id, soft=False)
    assert ray.get(where.options(scheduling_strategy=hard).remote(), timeout=T) == side.node_id
    nodes = set(ray.get([where.options(scheduling_strategy="SPREAD").remote(0.3)
                         for _ in range(8)], timeout=T))
    assert nodes == {head_id(), side.node_id}
    gone = NodeAffinitySchedulingStrategy("ab" * 16, soft=False)
    with pytest.raises(ray.exceptions.TaskUnschedulableError):
        ray.get(where.options(scheduling_strategy=gone).remote(), timeout=T)
    soft = NodeAffinitySchedulingStrategy("ab" * 16, soft=True)
    assert ray.get(where.options(scheduling_strategy=soft).remote(), timeout=T)


def test_tasks_go_to_the_node_that_holds_their_big_argument(cluster):
    side = cluster.add_node(num_cpus=1, object_store_memory=STORE, resources={"maker": 1})
    cluster.connect()

    @ray.remote(resources={"maker": 1})
    def make():
        return np.ones(4_000_000, dtype=np.uint8)

    @ray.remote
    def use(a):
        return node_of(), int(a.sum())

    big = make.remote()
    ray.wait([big], timeout=T)
    node, total = ray.get(use.remote(big), timeout=T)
    assert total == 4_000_000
    assert node == side.node_id


# ---------------------------------------------------------------- objects

def test_a_200mb_object_moves_between_nodes(cluster):
    side = cluster.add_node(num_cpus=1, object_store_memory=STORE, resources={"far": 1})
    cluster.connect()

    @ray.remote(resources={"far": 1})
    def make():
        return np.arange(25_000_000, dtype=np.int64)  # 200 MB

    @ray.remote(resources={"far": 1})
    def total(a):
        return int(a.sum()), node_of()

    a = ray.get(make.remote(), timeout=T)  # pulled to the head's store
    assert a.nbytes == 200_000_000 and int(a[-1]) == 24_999_999
    # A put on the head, read on the other node.
    ref = ray.put(np.arange(25_000_000, dtype=np.int64))
    s, node = ray.get(total.remote(ref), timeout=T)
    assert s == 25_000_000 * 24_999_999 // 2
    assert node == side.node_id


def test_concurrent_gets_of_one_remote_object_share_a_copy(cluster):
    cluster.add_node(num_cpus=2, object_store_memory=STORE, resources={"far": 1})
    cluster.connect()

    @ray.remote(resources={"far": 1})
    def make():
        return np.ones(10_000_000, dtype=np.uint8)

    @ray.remote
    def size(a):
        return a.nbytes

    ref = make.remote()
    # Tasks on the head read it at once: one transfer serves them all.
    assert ray.get([size.remote(ref) for _ in range(4)], timeout=T) == [10_000_000] * 4


# ---------------------------------------------------------------- failure

def test_tasks_on_a_killed_node_are_retried_elsewhere(cluster):
    side = cluster.add_node(num_cpus=2, object_store_memory=STORE)
    cluster.connect()
    refs = [where.options(max_retries=3).remote(0.5) for _ in range(6)]
    # Wait until the side node runs some of them, then kill it.  A resource
    # with nothing left is absent from "available", as in Ray.
    assert wait_for(lambda: [n for n in ray._private.worker.cluster_status()["nodes"]
                             if n["node_id"] == side.node_id][0]["available"]
                    .get("CPU", 0) < 2, T)
    cluster.remove_node(side, allow_graceful=False)  # kill -9
    out = ray.get(refs, timeout=T)
    assert all(isinstance(x, str) for x in out)
    assert wait_for(lambda: not [n for n in ray._private.worker.cluster_status()["nodes"]
                                 if n["node_id"] == side.node_id][0]["alive"], T)


def test_an_actor_restarts_on_another_node(cluster):
    side = cluster.add_node(num_cpus=1, object_store_memory=STORE, resources={"first": 1})
    cluster.connect()
    soft = NodeAffinitySchedulingStrategy(side.node_id, soft=True)

    @ray.remote(max_restarts=1, max_task_retries=1)
    class Keeper:
        def node(self):
            return node_of()

    k = Keeper.options(scheduling_strategy=soft).remote()
    assert ray.get(k.node.remote(), timeout=T) == side.node_id
    cluster.remove_node(side, allow_graceful=False)  # kill -9
    assert ray.get(k.node.remote(), timeout=T) == head_id()


def test_a_lost_object_is_rebuilt_from_lineage(cluster):
    side = cluster.add_node(num_cpus=1, object_store_memory=STORE)
    cluster.connect()
    soft = NodeAffinitySchedulingStrategy(side.node_id, soft=True)

    @ray.remote(max_retries=2)
    def make(x):
        return np.full(2_000_000, x, dtype=np.int64), node_of()

    @ray.remote(max_retries=2, num_returns=2)
    def chain(a):
        return a + 1, node_of()

    first, _ = make.options(num_returns=2, scheduling_strategy=soft).remote(7)
    second, made_on = chain.options(scheduling_strategy=soft).remote(first)
    assert ray.get(made_on, timeout=T) == side.node_id
    ray.wait([first, second], num_returns=2, timeout=T)
    cluster.remove_node(side, allow_graceful=False)  # kill -9
    # Both copies were on the dead node: the head makes them again, in order.
    b = ray.get(second, timeout=T)
    assert b.shape == (2_000_000,) and int(b[0]) == 8


def test_lost_objects_that_cannot_be_rebuilt_raise_typed_errors(cluster):
    side = cluster.add_node(num_cpus=1, object_store_memory=STORE, resources={"only": 1})
    cluster.connect()

    @ray.remote(resources={"only": 1}, max_retries=0)
    def make():
        return np.ones(1_000_000)

    @ray.remote(resources={"only": 1})
    def owner_of_nested():
        return [ray.put(np.ones(1_000_000))]

    lost = make.remote()
    nested = ray.get(owner_of_nested.remote(), timeout=T)[0]
    ray.wait([lost], timeout=T)
    cluster.remove_node(side, allow_graceful=False)  # kill -9
    with pytest.raises(ray.exceptions.ObjectLostError):
        ray.get(lost, timeout=T)
    with pytest.raises(ray.exceptions.OwnerDiedError):
        ray.get(nested, timeout=T)


def test_a_silent_node_is_declared_dead(cluster):
    side = cluster.add_node(num_cpus=2, object_store_memory=STORE)
    cluster.connect()
    os.kill(side.pid, signal.SIGSTOP)
    try:
        assert wait_for(lambda: not [n for n in ray._private.worker.cluster_status()["nodes"]
                                     if n["node_id"] == side.node_id][0]["alive"], 10)
        # Work goes on without it.
        assert ray.get(where.remote(), timeout=T) == head_id()
    finally:
        os.kill(side.pid, signal.SIGCONT)
    # Declared dead, it stops itself once it runs again.
    side.proc.wait(T)


# ---------------------------------------------------------------- listeners

@ray.remote
def pid_here():
    return os.getpid()


def test_a_local_cluster_listens_on_no_tcp_port(cluster_factory):
    ctx = cluster_factory(num_cpus=1)
    worker = ray.get(pid_here.remote(), timeout=T)
    daemon = _node.read_info(ctx["session_dir"])["pid"]
    for pid in (os.getpid(), worker, daemon):
        assert not listening_ports(pid), pid


def test_processes_listen_on_tcp_only_once_the_cluster_spans_nodes(cluster):
    cluster.connect()
    worker = ray.get(pid_here.remote(), timeout=T)
    early = ray.put(np.arange(1 << 18))  # in the store, owned by us, before any node joined
    # One node: direct calls go over unix sockets, nobody listens on TCP.
    assert not listening_ports(os.getpid()) and not listening_ports(worker)
    cluster.add_node(num_cpus=1, resources={"side": 1}, object_store_memory=STORE)
    assert wait_for(lambda: listening_ports(os.getpid()) and listening_ports(worker), 10)

    @ray.remote(resources={"side": 1})
    def borrow(refs):
        # A borrowed ref: the other node's worker asks its owner (us) over TCP,
        # at the address the ref got before the node joined.
        return int(ray.get(refs[0]).sum())

    assert ray.get(borrow.remote([early]), timeout=T) == int(np.arange(1 << 18).sum())


# ---------------------------------------------------------------- token

def test_a_peer_with_a_wrong_token_is_refused(cluster):
    cluster.add_node(num_cpus=1, object_store_memory=STORE)
    cluster.connect()
    # A node with the wrong token cannot join.
    with pytest.raises(RuntimeError):
        _node.start(join=cluster.address, token="00" * 32)
    # A raw connection that sends garbage as its first frame is closed, and
    # the head lives on.
    s = socket.create_connection(("127.0.0.1", cluster.head_node.node_manager_port), timeout=5)
    s.sendall(struct.pack("<IHBB", 4, 1, 1, 0) + b"\x12\x02xx")
    s.settimeout(5)
    assert s.recv(100) == b""
    s.close()
    assert ray.get(where.remote(), timeout=T)
    assert len(ray._private.worker.cluster_status()["nodes"]) == 2
