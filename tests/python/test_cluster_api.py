"""Forming clusters the way users and tests do: manta.cluster_utils.Cluster,
manta.nodes(), placement across nodes, and the `manta start --head` /
`manta start --address` / `manta status` / `manta stop` commands.

Every test keeps its sessions in a directory of its own (MANTA_TEMP_DIR), so
it neither sees nor touches other nodes of this user, and checks that no
process or session directory of its nodes is left behind."""

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import pytest

import manta as ray
from manta._private import node as _node
from manta.cluster_utils import Cluster
from manta.util.scheduling_strategies import NodeAffinitySchedulingStrategy
from conftest import _alive, _session_pids, assert_no_leftovers, listening_ports, wait_for

T = 60  # bound on any single wait

# A node that stops answering is declared dead after 1 s.
FAST = {"node_timeout_ms": 1000, "report_ms": 50}

RAY_NODE_KEYS = {
    "NodeID", "Alive", "NodeManagerAddress", "NodeManagerHostname", "NodeManagerPort",
    "ObjectManagerPort", "ObjectStoreSocketName", "RayletSocketName", "MetricsExportPort",
    "NodeName", "alive", "Resources", "Labels",
}


@pytest.fixture
def temp_root(monkeypatch):
    """A session root of this test's own (short: unix socket paths are
    limited to 108 bytes)."""
    root = tempfile.mkdtemp(prefix="mt-", dir="/tmp")
    monkeypatch.setenv("MANTA_TEMP_DIR", root)
    yield root
    left = [n for n in os.listdir(root) if n.startswith("s-")]
    shutil.rmtree(root, ignore_errors=True)
    assert not left, f"session directories left behind: {left}"


class Tracked:
    """Every node a test's clusters started, to check for leftovers."""

    def __init__(self):
        self.clusters = []

    def __call__(self, **kw):
        c = Cluster(**kw)
        self.clusters.append(c)
        return c

    def pids_and_dirs(self):
        pids, dirs = [], []
        for c in self.clusters:
            for n in c.list_all_nodes():
                n._remember_pids()
                pids += [pid for pid, _start in n._pids]
                dirs.append(n.session_dir)
        return pids, dirs


@pytest.fixture
def make_cluster(temp_root):
    """Cluster(...) that is shut down and checked for leftovers at the end."""
    tracked = Tracked()
    yield tracked
    pids, dirs = tracked.pids_and_dirs()
    for c in tracked.clusters:
        c.shutdown()
    assert not ray.is_initialized()
    for d in dirs:
        assert_no_leftovers(pids, d)
        assert not os.path.exists(d), f"session directory left behind: {d}"


def two_nodes(make_cluster, head=None, side=None):
    """A head and one node that joins it, both with a 1 s node timeout."""
    c = make_cluster(initialize_head=True,
                     head_node_args=dict({"num_cpus": 1, "_system_config": FAST}, **(head or {})))
    n = c.add_node(**(side or {"num_cpus": 1}))
    return c, n


@ray.remote
def where(delay=0.0):
    time.sleep(delay)
    return ray.get_runtime_context().get_node_id()


def node_info(node_id):
    return next(n for n in ray.nodes() if n["NodeID"] == node_id)


# ---------------------------------------------------------------- Cluster

def test_cluster_add_wait_remove_and_shutdown_leave_nothing(make_cluster, temp_root):
    c = make_cluster()
    assert c.address is None and c.list_all_nodes() == []
    head = c.add_node(num_cpus=1)
    a = c.add_node(wait=False, num_cpus=2, resources={"a": 1})
    b = c.add_node(wait=False)
    c.wait_for_nodes()
    assert c.list_all_nodes() == [head, a, b]
    assert head.is_head() and not a.is_head() and not b.is_head()
    assert c.address == f"127.0.0.1:{head.node_manager_port}" == a.address
    assert len({head.node_id, a.node_id, b.node_id}) == 3
    for n in (head, a, b):
        assert re.fullmatch(r"[0-9a-f]{32}", n.node_id)
        assert os.path.isdir(n.get_session_dir_path()) and _alive(n.pid)
        assert n.get_session_dir_path().startswith(temp_root)
    assert c.remaining_processes_alive()

    c.connect()
    assert ray.is_initialized()
    assert ray.get_runtime_context().get_node_id() == head.node_id  # drivers use the head
    total = ray.cluster_resources()
    assert total["CPU"] == 4 and total["a"] == 1

    # Removing a node stops its daemon and workers and removes its session.
    pids = _session_pids(b.session_dir)
    c.remove_node(b)
    assert_no_leftovers(pids, b.session_dir)
    assert not os.path.exists(b.session_dir)
    assert c.list_all_nodes() == [head, a]
    c.wait_for_nodes()
    assert wait_for(lambda: ray.cluster_resources()["CPU"] == 3, T)

    # A node that dies without remove_node makes wait_for_nodes fail.
    a.kill_raylet()
    assert not a.remaining_processes_alive() and not c.remaining_processes_alive()
    with pytest.raises(TimeoutError):
        c.wait_for_nodes(timeout=0.5)

    # Removing the head the driver uses disconnects the driver, as in Ray.
    with pytest.raises(ValueError, match="connected"):
        c.remove_node(head)
    assert not ray.is_initialized()

    c.shutdown()
    assert c.list_all_nodes() == [] and c.address is None
    assert not os.path.exists(head.session_dir) and not os.path.exists(a.session_dir)


def test_cluster_connect_and_shutdown_disconnect_the_driver(make_cluster):
    c = make_cluster(initialize_head=True, connect=True, head_node_args={"num_cpus": 2})
    assert ray.is_initialized() and c.connected
    assert ray.get(where.remote(), timeout=T) == c.head_node.node_id
    pids = _session_pids(c.head_node.session_dir)
    c.shutdown()
    assert not ray.is_initialized()
    assert_no_leftovers(pids, c.list_all_nodes()[0].session_dir if c.list_all_nodes()
                        else _node.session_root())


def test_cluster_checks_its_arguments(make_cluster):
    with pytest.raises(RuntimeError, match="uninitialized"):
        Cluster(connect=True)
    c = make_cluster(initialize_head=True)
    with pytest.raises(TypeError, match="bogus"):
        c.add_node(bogus=1)
    with pytest.raises(ValueError, match="head node"):
        c.add_node(_system_config={"report_ms": 10})
    with pytest.raises(ValueError, match="num_cpus"):
        c.add_node(num_cpus=-1)
    with pytest.raises(ValueError, match="CPU"):
        c.add_node(resources={"CPU": 1})
    assert len(c.list_all_nodes()) == 1


# ---------------------------------------------------------------- nodes()

def test_nodes_in_rays_format_and_a_killed_node_turns_dead(make_cluster):
    c, side = two_nodes(make_cluster, side={"num_cpus": 2, "resources": {"x": 3}})
    # Drivers connect to the head, not to a node that joined it.
    with pytest.raises(ConnectionError, match="head"):
        ray.init(address=f"127.0.0.1:{side.node_manager_port}")
    c.connect()
    nodes = ray.nodes()
    assert len(nodes) == 2
    for n in nodes:
        assert RAY_NODE_KEYS <= set(n), RAY_NODE_KEYS - set(n)
        assert n["Alive"] is True and n["alive"] is True
    head = node_info(c.head_node.node_id)
    assert nodes[0] is not None and nodes[0]["NodeID"] == c.head_node.node_id
    assert head["Resources"]["CPU"] == 1 and "node:__internal_head__" in head["Resources"]
    s = node_info(side.node_id)
    assert s["Resources"]["CPU"] == 2 and s["Resources"]["x"] == 3
    assert s["Resources"]["object_store_memory"] == 150 * 1024 * 1024  # Ray's default
    for n, handle in ((head, c.head_node), (s, side)):
        assert n["NodeManagerAddress"] == "127.0.0.1" == handle.node_ip_address
        assert n["NodeManagerPort"] == handle.node_manager_port > 0
        assert n["ObjectStoreSocketName"] == handle.plasma_store_socket_name
        assert n["RayletSocketName"] == handle.raylet_socket_name
        assert n["Labels"]["ray.io/node_id"] == n["NodeID"]

    c.remove_node(side, allow_graceful=False)
    assert wait_for(lambda: node_info(side.node_id)["Alive"] is False, T)
    dead = node_info(side.node_id)
    assert dead["alive"] is False and dead["Resources"] == {}
    assert node_info(c.head_node.node_id)["Alive"] is True
    assert ray.cluster_resources()["CPU"] == 1 and "x" not in ray.cluster_resources()
    c.wait_for_nodes()


# ---------------------------------------------------------------- placement

def test_a_custom_resource_places_work_on_the_node_that_has_it(make_cluster):
    c, plain = two_nodes(make_cluster, head={"num_cpus": 2})
    fancy = c.add_node(num_cpus=1, resources={"x": 1})
    c.connect()
    assert set(ray.get([where.options(resources={"x": 1}).remote() for _ in range(3)],
                       timeout=T)) == {fancy.node_id}

    @ray.remote(num_cpus=0, resources={"x": 1})
    class OnX:
        def node(self):
            return ray.get_runtime_context().get_node_id()

    assert ray.get(OnX.remote().node.remote(), timeout=T) == fancy.node_id
    assert plain.node_id != fancy.node_id


def test_node_affinity_hard_runs_there_or_fails_unschedulable(make_cluster):
    c, side = two_nodes(make_cluster, head={"num_cpus": 2})
    c.connect()
    hard = NodeAffinitySchedulingStrategy(side.node_id, soft=False)
    assert set(ray.get([where.options(scheduling_strategy=hard).remote() for _ in range(4)],
                       timeout=T)) == {side.node_id}
    home = NodeAffinitySchedulingStrategy(c.head_node.node_id, soft=False)
    assert ray.get(where.options(scheduling_strategy=home).remote(), timeout=T) \
        == c.head_node.node_id

    unknown = NodeAffinitySchedulingStrategy("ab" * 16, soft=False)
    with pytest.raises(ray.exceptions.TaskUnschedulableError):
        ray.get(where.options(scheduling_strategy=unknown).remote(), timeout=T)

    c.remove_node(side, allow_graceful=False)
    assert wait_for(lambda: node_info(side.node_id)["Alive"] is False, T)
    with pytest.raises(ray.exceptions.TaskUnschedulableError):
        ray.get(where.options(scheduling_strategy=hard).remote(), timeout=T)
    soft = NodeAffinitySchedulingStrategy(side.node_id, soft=True)
    assert ray.get(where.options(scheduling_strategy=soft).remote(), timeout=T) \
        == c.head_node.node_id


def test_spread_uses_both_nodes(make_cluster):
    c, side = two_nodes(make_cluster, head={"num_cpus": 2}, side={"num_cpus": 2})
    c.connect()
    both = {c.head_node.node_id, side.node_id}
    # Four tasks fit on either node alone; spread, two go to each.
    got = ray.get([where.options(scheduling_strategy="SPREAD").remote(0.3) for _ in range(4)],
                  timeout=T)
    assert set(got) == both

    @ray.remote(num_cpus=1, scheduling_strategy="SPREAD")
    class Spread:
        def node(self):
            return ray.get_runtime_context().get_node_id()

    actors = [Spread.remote() for _ in range(2)]
    assert set(ray.get([a.node.remote() for a in actors], timeout=T)) == both


# ---------------------------------------------------------------- CLI

def cli(*args, env=None, timeout=60):
    """Run `manta ARGS` in a process of its own; returns (code, stdout, stderr)."""
    full = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    full.update(env or {})
    out = subprocess.run([sys.executable, "-m", "manta", *args], capture_output=True,
                         text=True, timeout=timeout, env=full, stdin=subprocess.DEVNULL)
    return out.returncode, out.stdout, out.stderr


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sessions_of(root):
    return sorted(os.path.join(root, n) for n in os.listdir(root) if n.startswith("s-"))


def all_pids(root):
    pids = []
    for d in sessions_of(root):
        pids += _session_pids(d)
    return pids


def processes_under(root):
    """The session directories under `root` that some process of this user
    belongs to (by the MANTA_SESSION_DIR in its environment)."""
    found = set()
    prefix = f"MANTA_SESSION_DIR={root}/".encode()
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or not _alive(int(pid)):
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        for var in env:
            if var.startswith(prefix):
                found.add(var.split(b"=", 1)[1].decode())
    return found


@pytest.fixture
def cli_root(temp_root):
    """A session root for the CLI; whatever the test started is stopped."""
    yield temp_root
    pids = all_pids(temp_root)
    if ray.is_initialized():
        ray.shutdown()
    cli("stop")
    assert wait_for(lambda: not any(_alive(p) for p in pids), 10), \
        f"processes left behind: {[p for p in pids if _alive(p)]}"


def test_cli_start_head_join_status_stop(cli_root):
    port = free_port()
    address = f"127.0.0.1:{port}"
    code, out, err = cli("start", "--head", "--port", str(port), "--num-cpus", "1")
    assert code == 0, err
    assert f"manta start --address='{address}'" in out
    (head_dir,) = sessions_of(cli_root)
    assert os.path.join(head_dir, "token") in out
    assert os.stat(os.path.join(head_dir, "token")).st_mode & 0o077 == 0

    code, out, err = cli("start", f"--address={address}", "--num-cpus", "2",
                         "--resources", '{"x": 2}', "--object-store-memory", str(100 << 20))
    assert code == 0, err
    assert f"joined the cluster at {address}" in out
    head_id = _node.read_info(head_dir)["node_id"]
    (side_dir,) = [d for d in sessions_of(cli_root) if d != head_dir]
    side_id = _node.read_info(side_dir)["node_id"]

    code, out, err = cli("status")
    assert code == 0, err
    assert out.count("\nNode ") == 2 and "2 nodes" in out
    assert f"Node {head_id} (head)" in out and f"Node {side_id}" in out
    assert re.search(r"\n    x +0/2\n", out), out

    # A driver on the head uses both nodes.
    ray.init(address=address)
    assert ray.get(where.options(resources={"x": 1}).remote(), timeout=T) == side_id
    ray.shutdown()

    pids = all_pids(cli_root)
    code, out, err = cli("stop")
    assert code == 0, err
    assert "Stopped 2 manta nodes" in out
    assert wait_for(lambda: not any(_alive(p) for p in pids), 10), \
        f"processes left behind: {[p for p in pids if _alive(p)]}"
    assert sessions_of(cli_root) == []
    code, out, _ = cli("status")
    assert code == 1 and "No cluster is running" in out


def test_cli_start_on_every_interface_warns_and_prints_a_real_address(cli_root):
    code, out, err = cli("start", "--head", "--port", "0", "--node-ip-address", "0.0.0.0",
                         "--num-cpus", "1")
    assert code == 0, err
    assert "--node-ip-address 0.0.0.0 listens on every interface" in err
    assert "0.0.0.0" not in out
    host, port = re.search(r"\n  address   (\S+):(\d+)\n", out).groups()
    assert f"manta start --address='{host}:{port}'" in out
    # A real address of this machine (the default route's, or loopback):
    # one it can bind to.  Nothing is sent to it.
    with socket.socket() as s:
        s.bind((host, 0))
    (head_dir,) = sessions_of(cli_root)
    assert _node.read_info(head_dir)["host"] == host
    # It does listen on every interface, as asked, and its log says so.
    daemon = _node.read_info(head_dir)["pid"]
    assert ("00000000", int(port)) in listening_ports(daemon)
    with open(_node.session_paths(head_dir)["log"]) as f:
        assert f"other nodes and clients are told its address {host}" in f.read()


def test_cli_join_refused_or_impossible_says_why_and_leaves_nothing(cli_root):
    port = free_port()
    address = f"127.0.0.1:{port}"
    code, out, err = cli("start", "--address", address)
    assert code == 1 and "No manta head node answers" in err and address in err

    assert cli("start", "--head", "--port", str(port), "--num-cpus", "1")[0] == 0
    (head_dir,) = sessions_of(cli_root)

    wrong = "0" * 64
    code, out, err = cli("start", "--address", address, env={"MANTA_CLUSTER_TOKEN": wrong})
    assert code == 1
    assert "refused" in err and "token" in err, err
    code, out, err = cli("start", "--address", address, env={"MANTA_CLUSTER_TOKEN": "xyz"})
    assert code == 1 and "MANTA_CLUSTER_TOKEN" in err, err
    # No token on this machine for a head in another session root.
    other = tempfile.mkdtemp(prefix="mt-", dir="/tmp")
    try:
        code, out, err = cli("start", "--address", address, env={"MANTA_TEMP_DIR": other})
        assert code == 1 and "MANTA_CLUSTER_TOKEN" in err, err
        assert os.listdir(other) == [] or not any(n.startswith("s-") for n in os.listdir(other))
    finally:
        shutil.rmtree(other, ignore_errors=True)
    code, out, err = cli("start", "--address", address, "--port", "1")
    assert code == 2 and "--port" in err

    # The refused nodes left no session and no process; the head is alone.
    assert sessions_of(cli_root) == [head_dir]
    assert wait_for(lambda: processes_under(cli_root) <= {head_dir}, 10), \
        processes_under(cli_root)
    code, out, _ = cli("status")
    assert code == 0 and "1 node\n" in out
