"""Starting and finding nodes on this machine.

A node is one ``mantad`` process with a session directory under
``/tmp/manta-<uid>`` (see docs/architecture.md).  The directory's layout --
its paths, and its info, pid and token files -- is known only to the C side
(src/common/layout.h); this module asks ``_manta`` for every path and parse.  ``init()`` starts an
embedded node that stops when the driver leaves; ``manta start --head``
starts one that lives until ``manta stop``.
"""

import os
import select
import shutil
import signal
import subprocess
import sys
import time

from manta import _manta

_PKG_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def mantad_path():
    env = os.environ.get("MANTA_DAEMON")
    if env:
        return env
    return os.path.join(_PKG_DIR, "_bin", "mantad")


def session_root():
    """$MANTA_TEMP_DIR or /tmp/manta-<uid>, created 0700; PermissionError if
    it is a link, or another user's (the check is the C side's: priv.h)."""
    return _manta.session_root()


def private_session(session_dir):
    """Whether `session_dir` is a real directory of this user, mode 0700."""
    try:
        _manta.check_session(session_dir)
    except OSError:
        return False
    return True


def session_paths(session_dir):
    """{name: path} of the files of a session directory: "socket",
    "workers_dir", "daemon_pid", "workers_pid", "zygote_pid", "token",
    "info", "logs", "log" (the daemon's), "out" (a detached daemon's output)."""
    return _manta.session_paths(session_dir)


def session_of(socket_path):
    """The session directory of a daemon's socket."""
    return _manta.session_of(socket_path)


def session_dirs(root=None):
    """The session directories in the session root, newest first (not
    checked: see private_session)."""
    return _manta.list_sessions(root or session_root())


def root_paths(root=None):
    """{name: path} of the session root's own entries: "latest" (the link
    to the newest session) and "start_output" (where `manta start` keeps
    what a daemon says while it starts)."""
    return _manta.root_paths(root or session_root())


def new_session_dir():
    return _manta.new_session_dir(session_root())


def read_info(session_dir):
    """What the daemon of `session_dir` recorded once up: {"node_id",
    "socket", "host", "port" (-1: none), "head" (bool), "pid", "start",
    "exe"}; None if there is no info file or it is malformed."""
    try:
        return _manta.read_info(session_dir)
    except (OSError, ValueError):
        return None


def daemon_runs(info):
    """Whether the daemon `info` records still runs: that very process (pid,
    start time and program), not another that reused its pid."""
    return _manta.proc_is(info["pid"], info["start"], info["exe"])


def signal_daemon(info, sig):
    """Send `sig` to the daemon `info` records if it is still that process."""
    return _manta.signal_process(info["pid"], info["start"], sig, info["exe"])


def live_sessions():
    """(session_dir, info) of every running node of this user, newest first.
    Directories that are not private to this user are skipped."""
    out = []
    for d in session_dirs():
        if not private_session(d):
            continue
        info = read_info(d)
        if info and daemon_runs(info):
            out.append((d, info))
    return out


def find(address):
    """The daemon socket of the head of the cluster at ``address`` ("auto" or
    "host:port"): drivers connect to the head, never to a node that joined it."""
    root = session_root()
    if address == "auto":
        try:
            target = _manta.latest_session(root)
        except OSError as e:
            raise ConnectionError(f"Refusing to connect to the latest manta cluster: {e}") from None
        info = read_info(target) if target else None
        if info and info["head"] and daemon_runs(info):
            return info["socket"]
        raise ConnectionError(
            "Could not find any running manta instance. Please specify the one to connect "
            "to by setting `address`, or start one with `manta start --head`.")
    host, port = _split_address(address)
    joined = None
    for d, info in _sessions_at(host, port):
        if info["head"]:
            return info["socket"]
        joined = d
    if joined:
        raise ConnectionError(
            f"The manta node at {address} joined a cluster but is not its head (session "
            f"{joined}); connect drivers to the head's address.")
    raise ConnectionError(
        f"No manta cluster of this user on this machine listens on {address}. "
        "Start one with `manta start --head`.")


def address_of(address, sock):
    """How errors name the head a driver connects to: "host:port" as given,
    or for "auto" the head's own (None when it has no TCP port: its socket)."""
    if address != "auto":
        return address
    info = read_info(session_of(sock))
    return f"{info['host']}:{info['port']}" if info and info["port"] > 0 else None


def _split_address(address):
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"address must be 'auto' or 'host:port', got {address!r}")
    return host, port


def _sessions_at(host, port):
    """(session_dir, info) of the live nodes of this user listening on
    host:port.  ConnectionError if `host` does not resolve or is not an
    address of this machine: a driver connects to a head on its own machine
    (through its unix socket), so a cluster elsewhere cannot be joined."""
    address = f"{host}:{port}"
    try:
        local = _manta.same_host(None, host)
    except ConnectionError as e:
        raise ConnectionError(f"Cannot connect to {address}: {e}.") from None
    if not local:
        raise ConnectionError(
            f"Cannot connect to {address}: {host} is not an address of this machine, and a "
            "manta driver connects to the head node of a cluster on its own machine. Run the "
            "program on the head's machine, or start a head here with `manta start --head`.")
    return [(d, info) for d, info in live_sessions()
            if info["port"] == int(port) and _manta.same_host(info["host"] or None, host)]


def _worker_site():
    return os.environ.get("MANTA_WORKER_SITE") == "1"


def _env_for_node():
    env = dict(os.environ)
    # Workers must import this very manta package, and (started with -S)
    # find every package this interpreter finds.
    # This package's own directory comes first, then this interpreter's
    # path in its order (which holds PYTHONPATH ahead of site-packages), so
    # another installed copy of manta never shadows this one.
    parent = os.path.dirname(_PKG_DIR)
    ours = [parent] + ([] if _worker_site() else sys.path)
    paths = []
    for p in ours + env.get("PYTHONPATH", "").split(os.pathsep):
        if p and p not in paths:
            paths.append(p)
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def read_token(session_dir):
    """The cluster token of a session (OSError if it has none, ValueError
    if the file does not hold one)."""
    return _manta.read_token(session_dir)


def token_for(address):
    """The cluster token of the head at "host:port", if it runs on this
    machine for this user (MANTA_CLUSTER_TOKEN overrides)."""
    tok = os.environ.get("MANTA_CLUSTER_TOKEN")
    if tok:
        return tok
    host, port = _split_address(address)
    try:
        sessions = _sessions_at(host, port)
    except ConnectionError:
        sessions = []  # a head elsewhere: its token is not on this machine
    for d, info in sessions:
        if info["head"]:
            return read_token(d)
    raise ConnectionError(
        f"No cluster token for {address}: the head is not a node of this user on this machine. "
        "Set MANTA_CLUSTER_TOKEN to the head's token (its session directory holds it).")


# The smallest object store a node starts with (Ray's figure: 75 MiB).
OBJECT_STORE_MINIMUM = _manta.STORE_MIN_BYTES


def start(*, head=True, embedded=True, port=None, host="127.0.0.1", num_cpus=None,
          num_gpus=None, resources=None, object_store_memory=None, detach=False, join=None,
          token=None, extra_env=None):
    """Start a node daemon; returns (socket_path, pid, session_dir, tcp_port, proc).

    join="host:port" starts a node that joins the cluster whose head listens
    there (token: the cluster token; found on this machine if not given)."""
    import json

    if object_store_memory is not None and int(object_store_memory) < OBJECT_STORE_MINIMUM:
        raise ValueError(
            f"Attempting to cap object store memory usage at {int(object_store_memory)} bytes, "
            f"but the minimum allowed is {OBJECT_STORE_MINIMUM} bytes.")
    if object_store_memory is not None:
        total = _manta.memory()[0]  # this machine's, or its container's limit
        if total and int(object_store_memory) > total:
            raise ValueError(
                f"The requested object store memory size ({int(object_store_memory)} bytes) is "
                f"greater than the total available memory ({total} bytes).")
    d = new_session_dir()
    r, w = os.pipe()
    args = [mantad_path(), "--session-dir", d, "--ready-fd", str(w), "--python", sys.executable]
    if not _worker_site():
        args.append("--python-no-site")
    env = _env_for_node()
    if extra_env:
        env.update(extra_env)
    if join:
        embedded = head = False
        args += ["--address", join]
        env["MANTA_CLUSTER_TOKEN"] = token or token_for(join)
    args += ["--embedded"] if embedded else ["--head"] if head else []
    if port is not None:
        args += ["--port", str(port), "--host", host]
    elif join:
        args += ["--host", host]
    if num_cpus is not None:
        args += ["--num-cpus", repr(float(num_cpus))]
    if num_gpus is not None:
        args += ["--num-gpus", repr(float(num_gpus))]
    if resources:
        args += ["--resources", json.dumps(resources)]
    if object_store_memory:
        args += ["--object-store-memory", str(int(object_store_memory))]
    if not os.path.exists(args[0]):
        os.close(r)
        os.close(w)
        raise RuntimeError(f"manta's node daemon is missing ({args[0]}): is manta built?")
    try:
        proc = subprocess.Popen(args, pass_fds=(w,), env=env, stdin=subprocess.DEVNULL,
                                start_new_session=detach)
    finally:
        os.close(w)
    line = b""
    deadline = time.monotonic() + 30
    try:
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([r], [], [], left)[0]:
                break
            chunk = os.read(r, 64)
            if not chunk:
                break
            line += chunk
    finally:
        os.close(r)
    if not line.startswith(b"ready"):
        try:
            proc.kill()
            proc.wait(5)
        except Exception:
            pass
        raise RuntimeError(f"manta's node daemon failed to start (exit {proc.poll()})")
    tcp_port = int(line.split()[1])
    if head and not embedded:
        try:
            _manta.set_latest(session_root(), d)
        except OSError:
            pass
    return session_paths(d)["socket"], proc.pid, d, tcp_port, proc


def read_pids(path):
    """The (pid, start time) pairs a session's pid file lists (empty if it is
    gone); a line that is not "<pid> <start>" is skipped: without its start
    time a pid cannot be told to be the process recorded."""
    try:
        return _manta.read_pids(path)
    except (OSError, ValueError):
        return []


def session_pids(session_dir):
    """(pid, start) of the daemon, then of its live workers and zygote."""
    paths = session_paths(session_dir)
    return read_pids(paths["daemon_pid"]) + read_pids(paths["workers_pid"])


def proc_runs(pid, start):
    """Whether the process recorded as (pid, start) still runs."""
    return _manta.proc_is(pid, start)


def in_session(pid, start, session_dir):
    """Whether (pid, start) is still a process of `session_dir`."""
    return _manta.proc_is(pid, start, None, session_dir)


def reap_session(session_dir, pids=()):
    """Clean up after a daemon that died without cleaning up (kill -9): kill
    the processes of its session among `pids` ((pid, start) pairs) and those
    it recorded, then remove the session directory.  A directory that is not
    private to this user is left alone."""
    if not private_session(session_dir):
        return
    for pid, start in set(pids):
        _manta.signal_process(pid, start, signal.SIGKILL, None, session_dir)
    _manta.signal_listed(session_paths(session_dir)["workers_pid"], signal.SIGKILL, None,
                         session_dir)
    shutil.rmtree(session_dir, ignore_errors=True)
    _manta.drop_latest(os.path.dirname(session_dir), None)


def stop_all(timeout=10.0):
    """Stop every node of this user on this machine by its recorded pid,
    each checked to be that daemon (start time and program) first."""
    sessions = live_sessions()
    stopped = sum(1 for _d, info in sessions if signal_daemon(info, signal.SIGTERM))
    deadline = time.monotonic() + timeout
    for _d, info in sessions:
        while daemon_runs(info) and time.monotonic() < deadline:
            time.sleep(0.02)
        signal_daemon(info, signal.SIGKILL)
    _manta.drop_latest(session_root(), None)
    return stopped
