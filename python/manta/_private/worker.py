"""The state of manta in this process and the functions behind the public
API: init/shutdown, put/get/wait, function export, runtime context."""

import atexit
import hashlib
import json
import logging
import os
import pickle
import sys
import threading

import cloudpickle

from manta import _manta
from manta import exceptions as exc
from manta._private import node as _node
from manta._private import futures as _futures  # noqa: F401 - installs future()/await hooks
from manta._private import serialization

logger = logging.getLogger("manta")

# What each manta error code raises: Ray's exception types (as Ray's
# check_status maps its statuses); codes not listed raise RuntimeError.
_ERROR_TYPES = {
    _manta.ETIMEDOUT: exc.GetTimeoutError,
    _manta.ESTOREFULL: exc.ObjectStoreFullError,
    _manta.EEXIST: ValueError,
    _manta.ECONN: exc.RaySystemError,
    _manta.ESHUTDOWN: exc.RaySystemError,
    _manta.EPROTO: exc.RaySystemError,
    _manta.EAUTH: exc.RaySystemError,
    _manta.EVERSION: exc.RaySystemError,
    _manta.ESYS: exc.RaySystemError,
}
_manta._setup(pickle.dumps, pickle.loads, cloudpickle.dumps, serialization.ErrorValue,
              serialization._rebuild_ref, _ERROR_TYPES)

DRIVER = "driver"
WORKER = "worker"


class _State:
    def __init__(self):
        self.lock = threading.RLock()
        self.connected = False
        self.mode = None
        self.info = {}
        self.node_proc = None  # the embedded node we started
        self.session = 0       # bumps with every connect: function exports are per session
        self.namespace = None
        self.exported = set()
        self.task_local = threading.local()


state = _State()


class RayContext(dict):
    """What init() returns: a dict of addresses that also reads as attributes."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __enter__(self):
        return self

    def __exit__(self, *a):
        shutdown()

    def disconnect(self):
        shutdown()


# ---------------------------------------------------------------- init

_INIT_KWARGS_IGNORED = {
    "include_dashboard", "dashboard_host", "dashboard_port", "job_config", "configure_logging",
    "logging_level", "logging_format", "log_to_driver", "local_mode", "runtime_env",
    "_enable_object_reconstruction", "_redis_password", "_temp_dir", "_metrics_export_port",
    "_system_config", "_tracing_startup_hook", "_node_ip_address", "_plasma_directory",
    "_memory", "labels", "storage", "logging_config", "enable_resource_isolation",
    "_node_name", "_driver_object_store_memory", "_skip_env_hook",
}


def _check_amount(name, value):
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be a non-negative number, got {value}")


def init(address=None, *, num_cpus=None, num_gpus=None, resources=None,
         object_store_memory=None, namespace=None, ignore_reinit_error=False, **kwargs):
    unknown = set(kwargs) - _INIT_KWARGS_IGNORED
    if unknown:
        raise RuntimeError(f"Unknown keyword argument(s): {', '.join(sorted(unknown))}")
    with state.lock:
        if state.connected:
            if ignore_reinit_error:
                logger.info("Calling manta.init() again after it has already been called.")
                return _context()
            raise RuntimeError(
                "Maybe you called ray.init twice by accident? This error can be suppressed by "
                "passing in 'ignore_reinit_error=True' or by calling 'ray.shutdown()' prior to "
                "'ray.init()'.")
        for name, value in (("num_cpus", num_cpus), ("num_gpus", num_gpus),
                            ("object_store_memory", object_store_memory)):
            _check_amount(name, value)
        if resources is not None:
            if not isinstance(resources, dict):
                raise TypeError("resources must be a dict of resource name to amount")
            for k, v in resources.items():
                if k in ("CPU", "GPU"):
                    raise ValueError("Use the 'num_cpus' and 'num_gpus' keyword instead of "
                                     "'CPU' and 'GPU' in 'resources' keyword")
                _check_amount(f"resources[{k!r}]", v)
        if address is None:
            address = os.environ.get("MANTA_ADDRESS") or os.environ.get("RAY_ADDRESS") or None
        if address in (None, "local"):
            sock, pid, _d, _port, proc = _node.start(
                embedded=True, num_cpus=num_cpus, num_gpus=num_gpus, resources=resources,
                object_store_memory=object_store_memory)
            state.node_proc = proc
            try:
                _manta.connect(sock, DRIVER, owns_cluster=True, daemon_pid=pid)
            except Exception:
                proc.kill()
                proc.wait()
                state.node_proc = None
                raise
        else:
            if num_cpus is not None or num_gpus is not None:
                raise ValueError("When connecting to an existing cluster, num_cpus and num_gpus "
                                 "must not be provided.")
            if resources is not None or object_store_memory is not None:
                raise ValueError("When connecting to an existing cluster, resources and "
                                 "object_store_memory must not be provided.")
            sock = _node.find(address)
            _manta.connect(sock, DRIVER, address=_node.address_of(address, sock))
        if namespace is not None:
            from manta._private.options import validate_namespace
            validate_namespace(namespace)
        else:
            import uuid
            namespace = str(uuid.uuid4())  # Ray's anonymous namespace of a job
        _connected(DRIVER, namespace)
        _publish_job_config()
        return _context()


def _connected(mode, namespace=None):
    state.connected = True
    state.mode = mode
    state.info = _manta.info()
    state.session += 1
    state.exported = set()
    state.namespace = namespace


def _publish_job_config():
    """Workers of this job import what the driver can: same sys.path and cwd."""
    cfg = {"sys_path": [p for p in sys.path if p], "cwd": os.getcwd(),
           "namespace": state.namespace}
    _manta.kv_put("job", str(state.info["job_id"]).encode(), json.dumps(cfg).encode())


def _context():
    info = state.info
    return RayContext(
        address_info={"node_id": info.get("node_id"), "session_dir": info.get("session_dir"),
                      "address": "auto"},
        node_id=info.get("node_id"), session_dir=info.get("session_dir"),
        dashboard_url=None, python_version=sys.version.split()[0], manta_version=_version())


def _version():
    from manta import __version__
    return __version__


def is_initialized():
    return state.connected


def shutdown(_exiting_interpreter=False):
    with state.lock:
        if not state.connected:
            return
        owns = state.node_proc is not None
        state.connected = False
        state.mode = None
        _manta.disconnect(owns)
        proc, state.node_proc = state.node_proc, None
        if proc is not None:
            try:
                proc.wait(10)
            except Exception:
                proc.kill()
                proc.wait()


atexit.register(shutdown, True)


def ensure_initialized():
    """get/put/wait/remote before init() start a local cluster, as in Ray."""
    if not state.connected:
        with state.lock:
            if not state.connected:
                init()


# ---------------------------------------------------------------- objects

def put(value, *, _owner=None):
    ensure_initialized()
    if _owner is not None:
        raise NotImplementedError("put(_owner=...) is not supported")
    return _manta.put(value)


def _timeout_arg(timeout):
    if timeout is None:
        return -1.0
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be a number or None, got {type(timeout).__name__}")
    if timeout < 0:
        raise ValueError("'timeout' must be a positive number or None")
    return float(timeout)


def get(object_refs, *, timeout=None):
    ensure_initialized()
    single = isinstance(object_refs, _manta.ObjectRef)
    if single:
        refs = [object_refs]
    elif isinstance(object_refs, list):
        refs = object_refs
        for r in refs:
            if not isinstance(r, _manta.ObjectRef):
                raise TypeError(f"Attempting to call `get` on the value {r!r}, which is not an "
                                "ray.ObjectRef.")
    else:
        raise ValueError("'object_refs' must either be an ObjectRef or a list of ObjectRefs.")
    values = _manta.get(refs, _timeout_arg(timeout))
    for i, v in enumerate(values):
        if type(v) is serialization.ErrorValue:
            raise v.as_exception(refs[i].hex())
    return values[0] if single else values


def wait(object_refs, *, num_returns=1, timeout=None, fetch_local=True):
    ensure_initialized()
    if isinstance(object_refs, _manta.ObjectRef) or not isinstance(object_refs, list):
        raise TypeError(f"wait() expected a list of ray.ObjectRef, got {type(object_refs)}")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))):
        raise TypeError(f"timeout must be a number or None, got {type(timeout).__name__}")
    if timeout is not None and timeout < 0:
        raise ValueError(f"The 'timeout' argument must be nonnegative. Received {timeout}")
    if not object_refs:
        return [], []
    if isinstance(num_returns, bool) or not isinstance(num_returns, int):
        raise TypeError(f"num_returns must be an int, got {type(num_returns).__name__}")
    if num_returns <= 0:
        raise ValueError(f"Invalid number of objects to return {num_returns}.")
    # The refs' types, duplicates and num_returns > len are checked there.
    return _manta.wait(object_refs, num_returns, _timeout_arg(timeout), bool(fetch_local))


def cancel(ref, *, force=False, recursive=True):
    """Cancel the task that makes `ref`: a queued task never runs, a running
    one gets KeyboardInterrupt (force=True kills its worker); get() then
    raises TaskCancelledError."""
    ensure_initialized()
    if not isinstance(ref, _manta.ObjectRef):
        raise TypeError("ray.cancel() only supported for object refs. For actors, try "
                        f"ray.kill(). Got: {type(ref)}.")
    _manta.cancel(ref, bool(force), bool(recursive))


# ---------------------------------------------------------------- functions

def export_function(pickled, name):
    """Register a pickled function in the control store once per session;
    returns its id (hash of the bytes)."""
    fn_id = hashlib.sha1(pickled).digest()[:16]
    key = (state.session, fn_id)
    if key not in state.exported:
        _manta.fn_register(fn_id, pickled, name)
        state.exported.add(key)
    return fn_id


# ---------------------------------------------------------------- context

class _TaskInfo:
    __slots__ = ("task_id", "name", "resources", "gpu_ids", "actor_id", "job_id", "cancel_check")

    def __init__(self, task_id, name, resources, gpu_ids, actor_id=None, job_id=0):
        self.job_id = job_id
        self.task_id = task_id
        self.name = name
        self.resources = resources
        self.gpu_ids = gpu_ids
        self.actor_id = actor_id


def current_task():
    return getattr(state.task_local, "task", None)


def set_current_task(info):
    state.task_local.task = info


def cluster_status():
    ensure_initialized()
    return _manta.status()


def cluster_resources():
    total = {}
    for n in cluster_status()["nodes"]:
        if n["alive"]:
            for k, v in n["total"].items():
                total[k] = total.get(k, 0.0) + v
    return total


def available_resources():
    avail = {}
    for n in cluster_status()["nodes"]:
        if n["alive"]:
            for k, v in n["available"].items():
                if v > 0:
                    avail[k] = avail.get(k, 0.0) + v
    return avail


def nodes():
    """One dict per node the head knows, dead ones too, in Ray's format.

    A node's TCP port serves both its lease requests and its object
    transfers, so NodeManagerPort and ObjectManagerPort are the same; its
    unix socket serves both its clients and its store.  A node started by
    init() alone has no TCP port (0).  Dead nodes have no Resources, as in Ray.
    """
    out = []
    for n in cluster_status()["nodes"]:
        host, port = "127.0.0.1", 0
        endpoint = n.get("endpoint") or ""
        if endpoint.startswith("tcp:"):
            host, _, p = endpoint[len("tcp:"):].rpartition(":")
            port = int(p) if p.isdigit() else 0
        sock = _node.session_paths(n["session_dir"])["socket"] if n.get("session_dir") else ""
        alive = bool(n["alive"])
        out.append({
            "NodeID": n["node_id"], "Alive": alive,
            "NodeManagerAddress": host, "NodeManagerHostname": _hostname(host),
            "NodeManagerPort": port, "ObjectManagerPort": port,
            "ObjectStoreSocketName": sock, "RayletSocketName": sock,
            "MetricsExportPort": 0, "NodeName": host, "RuntimeEnvAgentPort": 0,
            "DeathReason": 0, "DeathReasonMessage": "",
            "alive": alive, "Resources": dict(n["total"]) if alive else {},
            "Labels": {"ray.io/node_id": n["node_id"]},
        })
    return out


def _hostname(host):
    """The name of the machine at `host`: this one's for a loopback address."""
    import socket

    if host.startswith("127.") or host in ("::1", "localhost"):
        return socket.gethostname()
    return host


def get_gpu_ids():
    task = current_task()
    if task is not None:
        return list(task.gpu_ids)
    return []
