"""Clusters of several nodes on one machine, for tests: Ray's
``ray.cluster_utils.Cluster``.

    from manta.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    side = cluster.add_node(num_cpus=2, resources={"accel": 1})
    cluster.connect()                 # manta.init(address=cluster.address)
    ...
    cluster.remove_node(side, allow_graceful=False)   # kill -9 the node's daemon
    cluster.shutdown()

Every node is a ``mantad`` with its own session directory, object store and
workers; the first one added is the head and the others join it over TCP
with the cluster token.  ``shutdown()`` (also run at exit) stops them all by
pid and leaves no process or session directory behind.
"""

import atexit
import collections
import logging
import os
import signal
import time

from manta._private import node as _node

logger = logging.getLogger(__name__)

# add_node's defaults, as in Ray.
_DEFAULTS = {"num_cpus": 1, "num_gpus": 0, "object_store_memory": 150 * 1024 * 1024}

# Ray's node arguments that mean nothing here (no dashboard, log monitor,
# worker port ranges or separate object manager); accepted and ignored.
_IGNORED_ARGS = frozenset({
    "dashboard_port", "dashboard_host", "include_dashboard", "dashboard_agent_listen_port",
    "min_worker_port", "max_worker_port", "worker_port_list", "node_manager_port",
    "object_manager_port", "metrics_export_port", "metrics_agent_port", "redis_port",
    "redis_password", "redis_max_memory", "include_log_monitor", "node_name", "labels",
    "enable_object_reconstruction", "raylet_ip_address", "temp_dir", "_temp_dir",
    "plasma_directory", "object_spilling_directory", "runtime_env_agent_port",
    "cleanup", "redirect_output", "setup_worker_path", "worker_path",
})

_GRACE_S = 10.0    # a node asked to stop is killed after this long
_WAIT_S = 30.0     # default bound on waiting for a node to appear

ProcessInfo = collections.namedtuple("ProcessInfo", ["process"])


def _status(socket_path):
    """The node table as the node at `socket_path` sees it."""
    from manta import _manta

    return _manta.status_from_bytes(_manta.cli_status(socket_path))["nodes"]


def _advertised_host(session_dir, host):
    """The address the node at session_dir tells others: its host, or for
    0.0.0.0 / :: a real address of this machine."""
    return (_node.read_info(session_dir) or {}).get("host") or host


def _system_config_env(system_config):
    """_system_config={"node_timeout_ms": 1000} as the daemon's environment
    (MANTA_NODE_TIMEOUT_MS=1000): the names are those of src/common/config.h."""
    env = {}
    for key, value in (system_config or {}).items():
        if isinstance(value, bool):
            value = int(value)
        env[f"MANTA_{key.upper()}"] = str(value)
    return env


class Node:
    """A node that a Cluster started: its daemon's process and session.

    The attribute names are those of Ray's node handle that tests use:
    ``node_id`` (hex, as ``get_runtime_context().get_node_id()`` gives),
    ``address`` (the cluster's address, to pass to ``init``),
    ``node_ip_address``, ``node_manager_port``, ``unique_id``, ...
    """

    def __init__(self, head, cluster_address, proc, session_dir, tcp_port, host):
        info = _node.read_info(session_dir) or {}
        self.head = head
        self.proc = proc
        self.pid = proc.pid
        self.session_dir = session_dir
        self.node_id = info.get("node_id", "")
        self.node_ip_address = host
        self.raylet_ip_address = host
        self.node_manager_address = host
        self.node_manager_port = tcp_port
        self.object_manager_port = tcp_port
        self.metrics_export_port = 0
        self.plasma_store_socket_name = _node.session_paths(session_dir)["socket"]
        self.raylet_socket_name = self.plasma_store_socket_name
        self._raylet_socket_name = self.plasma_store_socket_name
        self.address = self.gcs_address = cluster_address
        self.unique_id = f"{host}:{self.plasma_store_socket_name}"
        self.all_processes = {"raylet": [ProcessInfo(proc)]}
        self._pids = []  # (pid, start) of every process of the node seen so far

    def __repr__(self):
        return (f"Node(node_id={self.node_id!r}, head={self.head}, "
                f"address={self.node_ip_address}:{self.node_manager_port}, pid={self.pid})")

    def is_head(self):
        return self.head

    def get_session_dir_path(self):
        return self.session_dir

    def get_logs_dir_path(self):
        return _node.session_paths(self.session_dir)["logs"]

    def get_temp_dir_path(self):
        return os.path.dirname(self.session_dir)

    @property
    def address_info(self):
        return {"node_ip_address": self.node_ip_address, "node_id": self.node_id,
                "raylet_ip_address": self.raylet_ip_address,
                "object_store_address": self.plasma_store_socket_name,
                "raylet_socket_name": self.raylet_socket_name,
                "session_dir": self.session_dir, "gcs_address": self.gcs_address,
                "address": self.address, "webui_url": None, "metrics_export_port": 0}

    def _remember_pids(self):
        self._pids = sorted(set(self._pids) | set(_node.session_pids(self.session_dir)))

    def any_processes_alive(self):
        """Whether the daemon or any of its workers still runs."""
        self._remember_pids()
        return self.proc.poll() is None or any(
            _node.in_session(p, s, self.session_dir) for p, s in self._pids)

    def remaining_processes_alive(self):
        """Whether the daemon still runs."""
        return self.proc.poll() is None

    def kill_raylet(self, check_alive=True):
        """Kill the node's daemon at once (kill -9); its workers die with it."""
        self.kill_all_processes(check_alive=check_alive, allow_graceful=False, wait=True)

    def kill_all_processes(self, check_alive=True, allow_graceful=False, wait=False):
        """Stop the node: SIGTERM and wait if `allow_graceful` (SIGKILL after
        a grace period), else SIGKILL.  Whatever the daemon leaves behind --
        workers, its session directory -- is removed.  `wait` is accepted for
        Ray's signature: this always waits for the daemon to be gone."""
        del wait
        self._remember_pids()
        if self.proc.poll() is not None:
            if check_alive:
                raise RuntimeError(f"the daemon of {self!r} has already exited")
        else:
            self.proc.send_signal(signal.SIGTERM if allow_graceful else signal.SIGKILL)
            try:
                self.proc.wait(_GRACE_S if allow_graceful else 10)
            except Exception:
                self.proc.kill()
                self.proc.wait()
        # A clean exit removed the session; a killed daemon leaves it and
        # perhaps workers that have not noticed yet.
        _node.reap_session(self.session_dir, self._pids)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(
                _node.in_session(p, s, self.session_dir) for p, s in self._pids):
            time.sleep(0.01)


class Cluster:
    """Nodes on this machine forming one cluster; Ray's names and defaults.

    Args:
        initialize_head: start the head node now (with `head_node_args`).
        connect: with `initialize_head`, connect this process as a driver.
        head_node_args: arguments of `add_node` for the head.
        shutdown_at_exit: stop every node when this process exits.
    """

    def __init__(self, initialize_head=False, connect=False, head_node_args=None,
                 shutdown_at_exit=True):
        if connect and not initialize_head:
            raise RuntimeError("Cannot connect to uninitialized cluster.")
        self.head_node = None
        self.worker_nodes = []
        self.connected = False
        self._system_env = {}
        self._shutdown_at_exit = shutdown_at_exit
        self._at_exit = False  # shutdown() registered with atexit
        if initialize_head:
            self.add_node(**(head_node_args or {}))
            if connect:
                self.connect()

    # ------------------------------------------------------------ addresses

    @property
    def address(self):
        """The head's "host:port", the address drivers and nodes join."""
        if self.head_node is None:
            return None
        return f"{self.head_node.node_ip_address}:{self.head_node.node_manager_port}"

    gcs_address = address

    def connect(self, namespace=None):
        """Connect this process to the cluster as a driver."""
        import manta

        assert self.address is not None, "the cluster has no head node"
        assert not self.connected, "already connected"
        ctx = manta.init(address=self.address, namespace=namespace, ignore_reinit_error=True)
        self.connected = True
        return ctx

    # ------------------------------------------------------------ nodes

    def add_node(self, wait=True, **node_args):
        """Start a node: the head if there is none yet, else a node that joins
        the head.  Defaults: num_cpus=1, num_gpus=0, object_store_memory=150 MiB.

        node_args: num_cpus, num_gpus, resources, object_store_memory,
        node_ip_address (the address it listens on, default 127.0.0.1),
        port (the head's port, default: a free one), env_vars (environment
        of the daemon and its workers), and, on the head only, _system_config
        (manta's tunables by name, e.g. {"node_timeout_ms": 1000}; they apply
        to every node of the cluster).  Ray's arguments that mean nothing
        here are ignored; others raise TypeError.

        With `wait`, returns once the head lists the node as alive."""
        args = dict(_DEFAULTS)
        args.update(node_args)
        unknown = set(args) - set(_DEFAULTS) - _IGNORED_ARGS - {
            "resources", "node_ip_address", "port", "env_vars", "_system_config"}
        if unknown:
            raise TypeError(f"add_node() got unexpected argument(s): {', '.join(sorted(unknown))}")
        from manta._private.worker import _check_amount

        for name in ("num_cpus", "num_gpus", "object_store_memory"):
            _check_amount(name, args[name])
        if any(k in ("CPU", "GPU") for k in args.get("resources") or {}):
            raise ValueError("Use the 'num_cpus' and 'num_gpus' keyword instead of 'CPU' and "
                             "'GPU' in 'resources' keyword")
        head = self.head_node is None
        if args.get("_system_config") and not head:
            raise ValueError("System config parameters can only be set on the head node.")
        if head:
            self._system_env = _system_config_env(args.get("_system_config"))
        env = dict(self._system_env)
        env.update({k: str(v) for k, v in (args.get("env_vars") or {}).items()})
        host = args.get("node_ip_address") or "127.0.0.1"
        kw = dict(num_cpus=args["num_cpus"], num_gpus=args["num_gpus"],
                  resources=args.get("resources"),
                  object_store_memory=args["object_store_memory"], host=host, extra_env=env)
        if head:
            _sock, _pid, d, port, proc = _node.start(
                head=True, embedded=False, port=args.get("port") or 0, **kw)
            host = _advertised_host(d, host)
            node = Node(True, f"{host}:{port}", proc, d, port, host)
            self.head_node = node
        else:
            _sock, _pid, d, port, proc = _node.start(
                join=self.address, token=_node.read_token(self.head_node.session_dir), **kw)
            node = Node(False, self.address, proc, d, port, _advertised_host(d, host))
            self.worker_nodes.append(node)
        node._remember_pids()
        if self._shutdown_at_exit and not self._at_exit:
            atexit.register(self.shutdown)
            self._at_exit = True
        if wait:
            self._wait_for_node(node)
        return node

    def remove_node(self, node, allow_graceful=True):
        """Stop a node: SIGTERM its daemon if `allow_graceful`, else SIGKILL
        it (a node that dies, as the head will see it).  Removing the head
        that this process's driver is connected to disconnects the driver
        and raises ValueError, as in Ray."""
        if node is self.head_node and self._driver_connected():
            import manta

            manta.shutdown()
            self.connected = False
            raise ValueError(
                "Removing a node that is connected to this Ray client is not allowed because "
                "it will break the driver. You can use the get_other_node utility to avoid "
                "removing a node that the Ray client is connected.")
        node.kill_all_processes(check_alive=False, allow_graceful=allow_graceful, wait=True)
        if node is self.head_node:
            self.head_node = None
        else:
            self.worker_nodes.remove(node)
        assert not node.any_processes_alive(), \
            "There are zombie processes left over after killing."

    def _wait_for_node(self, node, timeout=_WAIT_S):
        """Wait until the head lists `node` as alive."""
        deadline = time.monotonic() + timeout
        while True:
            if any(n["node_id"] == node.node_id and n["alive"] for n in self._head_view()):
                return
            if node.proc.poll() is not None:
                raise RuntimeError(f"{node!r} exited (code {node.proc.returncode}) while "
                                   f"joining; see {node.get_logs_dir_path()}")
            if time.monotonic() >= deadline:
                raise TimeoutError(f"Timed out after {timeout} s waiting for {node!r} to join "
                                   "the cluster.")
            time.sleep(0.01)

    def wait_for_nodes(self, timeout=_WAIT_S):
        """Wait until the head counts exactly as many live nodes as were
        added and not removed (a node that died unremoved makes this fail).

        Raises TimeoutError when `timeout` seconds pass first."""
        deadline = time.monotonic() + timeout
        expected = len(self.list_all_nodes())
        while True:
            live = sum(1 for n in self._head_view() if n["alive"])
            if live == expected:
                return
            if time.monotonic() >= deadline:
                raise TimeoutError(f"Timed out while waiting for nodes to join: the head "
                                   f"counts {live} live nodes, {expected} expected.")
            time.sleep(0.01)

    def _head_view(self):
        if self.head_node is None:
            return []
        try:
            return _status(self.head_node.plasma_store_socket_name)
        except Exception:  # the head may be starting or stopping right now
            return []

    def list_all_nodes(self):
        """Every node added and not removed, the head first."""
        return ([self.head_node] if self.head_node else []) + list(self.worker_nodes)

    def remaining_processes_alive(self):
        """Whether the daemon of every node still runs."""
        return all(n.remaining_processes_alive() for n in self.list_all_nodes())

    def _driver_connected(self):
        """Whether this process is a driver connected to this cluster's head."""
        from manta._private import worker

        return (self.head_node is not None and worker.state.connected
                and worker.state.info.get("session_dir") == self.head_node.session_dir)

    def shutdown(self):
        """Disconnect this process's driver if it is connected here, then stop
        every node (the others first, then the head)."""
        if self._driver_connected():
            import manta

            manta.shutdown()
        self.connected = False
        nodes = list(self.worker_nodes)
        for n in nodes:  # ask them all at once: each may take a while to stop
            if n.proc.poll() is None:
                n._remember_pids()
                n.proc.send_signal(signal.SIGTERM)
        for n in nodes:
            self.remove_node(n)
        if self.head_node is not None:
            self.remove_node(self.head_node)
        if self._at_exit:
            atexit.unregister(self.shutdown)
            self._at_exit = False
