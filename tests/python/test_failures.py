"""Failures on one node: retries, restarts, cancellation, memory pressure,
drivers that die, hostile input, and a clean lifecycle."""

import contextlib
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

import pytest

import manta as ray
from manta._private import node as _node
from conftest import _alive, _session_pids, assert_no_leftovers, stop_started_node, wait_for
import peer_wire
from peer_wire import frame as _frame, message as _pb

T = 30  # seconds: the bound of every get that should succeed quickly


# ---------------------------------------------------------------- task retries

def test_worker_death_is_retried_until_retries_run_out(ray_start, tmp_path):
    counter = tmp_path / "count"

    @ray.remote(max_retries=2)
    def die_twice(path):
        n = int(open(path).read()) if os.path.exists(path) else 0
        open(path, "w").write(str(n + 1))
        if n < 2:
            os._exit(1)
        return n

    assert ray.get(die_twice.remote(str(counter)), timeout=60) == 2

    @ray.remote(max_retries=1)
    def always_die():
        os.kill(os.getpid(), signal.SIGKILL)

    with pytest.raises(ray.exceptions.WorkerCrashedError):
        ray.get(always_die.remote(), timeout=60)


def test_max_retries_minus_one_retries_forever(ray_start, tmp_path):
    counter = tmp_path / "count"

    @ray.remote(max_retries=-1)
    def die_five_times(path):
        n = int(open(path).read()) if os.path.exists(path) else 0
        open(path, "w").write(str(n + 1))
        if n < 5:
            os._exit(1)
        return n

    assert ray.get(die_five_times.remote(str(counter)), timeout=60) == 5


def test_retry_exceptions(ray_start, tmp_path):
    counter = tmp_path / "count"

    @ray.remote(max_retries=3, retry_exceptions=True)
    def flaky(path):
        n = int(open(path).read()) if os.path.exists(path) else 0
        open(path, "w").write(str(n + 1))
        if n < 2:
            raise IOError("transient")
        return n

    assert ray.get(flaky.remote(str(counter))) == 2

    @ray.remote(max_retries=3, retry_exceptions=[KeyError])
    def wrong_type():
        raise ValueError("not in the list")

    with pytest.raises(ValueError):
        ray.get(wrong_type.remote())

    @ray.remote(max_retries=2, retry_exceptions=True)
    def always():
        raise RuntimeError("every time")

    with pytest.raises(RuntimeError, match="every time"):
        ray.get(always.remote())


def test_a_retried_task_yields_one_result(ray_start, tmp_path):
    marker = tmp_path / "m"

    @ray.remote(max_retries=3)
    def once_then_fine(path):
        if not os.path.exists(path):
            open(path, "w").close()
            os._exit(1)
        return "fine"

    refs = [once_then_fine.remote(str(tmp_path / f"m{i}")) for i in range(4)]
    assert ray.get(refs, timeout=60) == ["fine"] * 4
    del marker


# ---------------------------------------------------------------- actor restarts

@ray.remote(max_restarts=2, max_task_retries=1)
class Phoenix:
    def __init__(self):
        self.calls = 0

    def pid(self):
        return os.getpid()

    def count(self):
        self.calls += 1
        return self.calls


def test_actor_restarts_and_runs_out(ray_start):
    a = Phoenix.remote()
    p1 = ray.get(a.pid.remote())
    assert ray.get(a.count.remote()) == 1
    os.kill(p1, signal.SIGKILL)
    p2 = ray.get(a.pid.remote(), timeout=30)
    assert p2 != p1
    assert ray.get(a.count.remote()) == 1  # the constructor ran again
    os.kill(p2, signal.SIGKILL)
    p3 = ray.get(a.pid.remote(), timeout=30)
    os.kill(p3, signal.SIGKILL)
    with pytest.raises(ray.exceptions.ActorDiedError):
        ray.get(a.pid.remote(), timeout=30)


def test_kill_without_no_restart_restarts(ray_start):
    a = Phoenix.remote()
    p1 = ray.get(a.pid.remote())
    ray.kill(a, no_restart=False)
    assert ray.get(a.pid.remote(), timeout=30) != p1
    ray.kill(a)
    with pytest.raises(ray.exceptions.ActorDiedError):
        ray.get(a.pid.remote(), timeout=30)


def test_calls_in_flight_fail_without_task_retries(ray_start, tmp_path):
    started = tmp_path / "nap-started"

    @ray.remote(max_restarts=1)
    class Slow:
        def pid(self):
            return os.getpid()

        def nap(self, started):
            open(started, "w").close()
            time.sleep(10)

    a = Slow.remote()
    pid = ray.get(a.pid.remote())
    ref = a.nap.remote(str(started))
    assert wait_for(started.exists, 10)  # the call is running when the actor dies
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(ray.exceptions.RayActorError):
        ray.get(ref, timeout=30)
    assert ray.get(a.pid.remote(), timeout=30) != pid  # calls after the death wait for it


# ---------------------------------------------------------------- sys.exit() and other BaseExceptions

def _runs(path):
    return int(open(path).read()) if os.path.exists(path) else 0


def _count_run(path):
    n = _runs(path) + 1
    with open(path, "w") as f:
        f.write(str(n))


@pytest.mark.parametrize("code", [3, None, "bye"])
def test_sys_exit_in_a_task_is_a_worker_crash(ray_start, tmp_path, code):
    # As in Ray: the worker process ends, the task fails with
    # WorkerCrashedError and is retried per max_retries.
    @ray.remote
    def leave(path):
        _count_run(path)
        sys.exit(code)

    once, thrice = str(tmp_path / "once"), str(tmp_path / "thrice")
    with pytest.raises(ray.exceptions.WorkerCrashedError):
        ray.get(leave.options(max_retries=0).remote(once), timeout=T)
    with pytest.raises(ray.exceptions.WorkerCrashedError):
        ray.get(leave.options(max_retries=2).remote(thrice), timeout=T)
    assert (_runs(once), _runs(thrice)) == (1, 3)


class _Quit(BaseException):
    pass


def _make_leaver(kind):
    if kind == "async":
        @ray.remote
        class Leaver:
            async def leave(self):
                sys.exit(1)

            async def pid(self):
                return os.getpid()
        return Leaver

    @ray.remote(max_concurrency=2 if kind == "threaded" else 1)
    class Leaver:
        def leave(self):
            sys.exit(1)

        def pid(self):
            return os.getpid()
    return Leaver


@pytest.mark.parametrize("kind", ["sequential", "threaded", "async"])
def test_sys_exit_in_an_actor_method_is_an_actor_death(ray_start, kind):
    # The call fails with ActorDiedError; the actor restarts per max_restarts.
    Leaver = _make_leaver(kind)
    once = Leaver.options(max_restarts=0).remote()
    pid = ray.get(once.pid.remote(), timeout=T)
    with pytest.raises(ray.exceptions.ActorDiedError):
        ray.get(once.leave.remote(), timeout=T)
    assert wait_for(lambda: not _alive(pid), T)
    with pytest.raises(ray.exceptions.ActorDiedError):
        ray.get(once.pid.remote(), timeout=T)

    again = Leaver.options(max_restarts=1).remote()
    pid = ray.get(again.pid.remote(), timeout=T)
    with pytest.raises(ray.exceptions.ActorDiedError):
        ray.get(again.leave.remote(), timeout=T)
    assert ray.get(again.pid.remote(), timeout=T) != pid


def test_sys_exit_and_base_exceptions_in_a_constructor(ray_start, tmp_path):
    # sys.exit() ends the worker (restarted per max_restarts); any other
    # exception fails the creation for good, as an Exception does.
    @ray.remote(max_restarts=1)
    class Ctor:
        def __init__(self, path, how):
            _count_run(path)
            if how == "exit":
                sys.exit(2)
            raise _Quit("no")

        def ping(self):
            return 1

    exits, quits = str(tmp_path / "exits"), str(tmp_path / "quits")
    with pytest.raises(ray.exceptions.ActorDiedError, match="unexpectedly"):
        ray.get(Ctor.remote(exits, "exit").ping.remote(), timeout=T)
    with pytest.raises(ray.exceptions.ActorDiedError, match="creation task"):
        ray.get(Ctor.remote(quits, "quit").ping.remote(), timeout=T)
    assert (_runs(exits), _runs(quits)) == (2, 1)


def test_keyboard_interrupt_and_base_exceptions_are_task_errors(ray_start):
    # As in Ray: the worker lives on; KeyboardInterrupt reads as a
    # cancelled task, another BaseException as the task's own error.
    @ray.remote(max_retries=2)
    def raise_(e):
        raise e

    @ray.remote
    class Raiser:
        def raise_(self, e):
            raise e

        def pid(self):
            return os.getpid()

    with pytest.raises(ray.exceptions.TaskCancelledError):
        ray.get(raise_.remote(KeyboardInterrupt()), timeout=T)
    with pytest.raises(_Quit):
        ray.get(raise_.remote(_Quit("q")), timeout=T)
    a = Raiser.options(max_restarts=1).remote()
    pid = ray.get(a.pid.remote(), timeout=T)
    with pytest.raises(ray.exceptions.TaskCancelledError):
        ray.get(a.raise_.remote(KeyboardInterrupt()), timeout=T)
    with pytest.raises(_Quit):
        ray.get(a.raise_.remote(_Quit("q")), timeout=T)
    assert ray.get(a.pid.remote(), timeout=T) == pid


# ---------------------------------------------------------------- cancel

def test_cancel_queued_running_forced(cluster_factory, tmp_path):
    cluster_factory(num_cpus=1)

    @ray.remote
    def sleep(t, started=None):
        if started:
            open(started, "w").close()
        time.sleep(t)
        return t

    running = sleep.remote(30, str(tmp_path / "running"))
    queued = sleep.remote(30, str(tmp_path / "queued"))
    # One CPU: once the first runs, the second is queued behind it.
    assert wait_for((tmp_path / "running").exists, 10)
    ray.cancel(queued)
    with pytest.raises(ray.exceptions.TaskCancelledError):
        ray.get(queued, timeout=10)
    assert not (tmp_path / "queued").exists()
    ray.cancel(running)
    with pytest.raises(ray.exceptions.TaskCancelledError):
        ray.get(running, timeout=10)
    forced = sleep.remote(30, str(tmp_path / "forced"))
    assert wait_for((tmp_path / "forced").exists, 10)
    ray.cancel(forced, force=True)
    with pytest.raises(ray.exceptions.TaskCancelledError):
        ray.get(forced, timeout=10)
    assert ray.get(sleep.remote(0)) == 0  # the node goes on


def test_cancel_is_recursive(cluster_factory, tmp_path):
    cluster_factory(num_cpus=2)
    flag = tmp_path / "child-finished"
    started = tmp_path / "child-started"
    ended = tmp_path / "child-ended"

    @ray.remote
    def child(path, started, ended):
        open(started, "w").write(str(os.getpid()))
        try:
            time.sleep(3)
            open(path, "w").close()
        finally:
            open(ended, "w").close()

    @ray.remote
    def parent(path, started, ended):
        ray.get(child.remote(path, started, ended))

    p = parent.remote(str(flag), str(started), str(ended))
    assert wait_for(lambda: started.exists() and started.read_text(), 10)
    child_pid = int(started.read_text())
    ray.cancel(p, recursive=True)
    with pytest.raises(ray.exceptions.TaskCancelledError):
        ray.get(p, timeout=10)
    # The child's body is over (or its worker is gone): it can no longer write the flag.
    assert wait_for(lambda: ended.exists() or not _alive(child_pid), 10)
    assert not flag.exists()


def test_cancel_queued_actor_call(ray_start, tmp_path):
    started, gate = tmp_path / "started", tmp_path / "gate"

    @ray.remote
    class Busy:
        def hold(self, started, gate):
            """Runs until the test opens `gate`."""
            open(started, "w").close()
            deadline = time.monotonic() + 30
            while not os.path.exists(gate) and time.monotonic() < deadline:
                time.sleep(0.005)
            return "held"

        def nap(self, t):
            time.sleep(t)
            return t

    b = Busy.remote()
    first = b.hold.remote(str(started), str(gate))
    second = b.nap.remote(0)
    assert wait_for(started.exists, 10)  # second is queued behind first
    ray.cancel(second)
    with pytest.raises(ray.exceptions.TaskCancelledError):
        ray.get(second, timeout=10)
    gate.touch()
    assert ray.get(first, timeout=10) == "held"
    with pytest.raises(ValueError, match="force"):
        ray.cancel(b.nap.remote(0), force=True)
    with pytest.raises(TypeError):
        ray.cancel(b)


# ---------------------------------------------------------------- memory pressure

def _memory_used():
    m = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, v = line.split(":")
            m[k] = int(v.split()[0]) * 1024
    return 1 - m["MemAvailable"] / m["MemTotal"], m["MemTotal"]


def test_memory_pressure_kills_the_newest_task(cluster_factory, monkeypatch):
    used, total = _memory_used()
    # The threshold sits 1 GiB above today's use: a task holding 2 GiB crosses it.
    monkeypatch.setenv("MANTA_MEMORY_USAGE_THRESHOLD", str(used + 2**30 / total))
    cluster_factory(num_cpus=1)

    @ray.remote(max_retries=0)
    def hog():
        x = bytearray(2 * 2**30)
        for i in range(0, len(x), 4096):
            x[i] = 1
        time.sleep(30)
        return len(x)

    with pytest.raises(ray.exceptions.OutOfMemoryError):
        ray.get(hog.remote(), timeout=60)


# ---------------------------------------------------------------- drivers

def test_a_dying_driver_leaves_others_undisturbed(tmp_path):
    from manta._private import node

    sock, pid, session, port, proc = node.start(embedded=False, head=True, port=0, detach=True)
    script = tmp_path / "doomed.py"
    script.write_text(
        "import manta, os, time\n"
        f"manta.init(address='127.0.0.1:{port}')\n"
        "@manta.remote\n"
        "class A:\n"
        "    def pid(self): return os.getpid()\n"
        "@manta.remote\n"
        "def pid(): return os.getpid()\n"
        "a = A.remote()\n"
        "print(manta.get(a.pid.remote()), manta.get(pid.remote()), flush=True)\n"
        "big = manta.put(b'x' * (50 << 20))\n"
        "os._exit(3)\n")
    try:
        ray.init(address=f"127.0.0.1:{port}")

        @ray.remote
        class Survivor:
            def ping(self):
                return "pong"

        s = Survivor.remote()
        assert ray.get(s.ping.remote()) == "pong"
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
        out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                             timeout=60, env=env)
        actor_pid, task_pid = (int(x) for x in out.stdout.split())
        # Its actor and workers go; its 50 MB object is freed; we go on.
        assert wait_for(lambda: not os.path.exists(f"/proc/{actor_pid}"), 10)
        assert wait_for(lambda: not os.path.exists(f"/proc/{task_pid}"), 10)
        from manta._private.worker import cluster_status
        assert wait_for(lambda: cluster_status()["nodes"][0]["store_used"] == 0, 10)
        assert ray.get(s.ping.remote()) == "pong"
    finally:
        stop_started_node(proc, session)


# ---------------------------------------------------------------- hostile input

@pytest.mark.parametrize("junk", [
    b"\x00" * 3,                                  # truncated header
    b"GET / HTTP/1.1\r\n\r\n",                    # not our protocol
    _frame(1, b"\xff" * 40),                      # Hello that does not decode
    _frame(1, b"", version=9),                    # wrong version
    struct.pack("<IHBB", 1 << 30, 1, 1, 0),        # absurd length
    _frame(999, b"x"),                            # unknown type
    _frame(20, b"\x0a\x05hello"),                 # ObjCreate before Hello
    bytes(random.Random(7).getrandbits(8) for _ in range(4096)),
])
def test_the_node_survives_malformed_input(ray_start, junk):
    from manta._private.worker import state
    sock_path = _node.session_paths(state.info["session_dir"])["socket"]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(sock_path)
    s.sendall(junk)
    # The node closes that one connection (or waits for more) ...
    try:
        s.recv(1)
    except socket.timeout:
        pass
    s.close()

    # ... and everyone else goes on.
    @ray.remote
    def ok():
        return "ok"

    assert ray.get(ok.remote(), timeout=20) == "ok"


MSG_HELLO, MSG_HELLO_REPLY, MSG_LEASE_REQUEST, MSG_LEASE_GRANT = 1, 2, 10, 11
ROLE_DRIVER, ROLE_LESSEE, LANG_PYTHON, SCHED_NODE_AFFINITY = 1, 7, 1, 2  # proto/manta.proto


@contextlib.contextmanager
def _raw_client(role):
    """A connection to this test's node that said Hello as `role`."""
    from manta._private.worker import state
    p = peer_wire.connect_unix(os.path.join(state.info["session_dir"], "daemon.sock"))
    try:
        p.send(MSG_HELLO, _pb((1, 1), (3, role), (4, os.urandom(16)), (5, os.getpid())))
        reply = p.recv_one_of(MSG_HELLO_REPLY)
        assert reply is not None and reply.get(1, 0) == 0, reply
        yield p
    finally:
        p.close()


def _asked_twice(p, type_, body, reply_type):
    """Send the request twice (ids 7 and 8): both are answered, so the node
    kept the connection.  The replies."""
    replies = []
    for request_id in (7, 8):
        p.send(type_, _pb((1, request_id)) + body)
        reply = p.recv_one_of(reply_type)  # news for every client may come first
        assert reply is not None, "the node closed the connection"
        assert reply[1] == request_id
        replies.append(reply)
    return replies


@ray.remote
def _ok():
    return "ok"


def _resource(name, amount):
    return _pb((1, name), (2, amount))


@pytest.mark.parametrize("fields, why", [
    ([(2, _resource("x", -10000))], "amount of resource 'x' is negative"),
    ([(2, _resource("x", 10**15 * 10000))], "amount of resource 'x' is negative"),  # wraps
    ([(2, _resource("x", 10**10 * 10000))], "amount of resource 'x' is above the maximum"),
    ([(2, _resource("x", 10**13)), (2, _resource("x", 10**13))], "above the maximum"),
    ([(2, _resource("", 10000))], "empty resource name"),
    ([(7, _resource("CPU", -1))], "amount of resource 'CPU' is negative"),
    ([(10, 9)], "unknown scheduling strategy 9"),
    ([(10, SCHED_NODE_AFFINITY)], "node affinity without a node"),
    ([(3, 77)], "unknown language 77"),
    ([(4, "sh:rm -rf /")], "unknown runtime 'sh:rm -rf /'"),
])
def test_a_bad_lease_request_gets_an_error_not_a_closed_connection(ray_start, fields, why):
    """The node answers a lease request it cannot take with an error for
    that request; the client's connection and its other work go on (it
    once closed the connection, which lost a driver over one bad option)."""
    language = b"" if any(num == 3 for num, _ in fields) else _pb((3, LANG_PYTHON))
    with _raw_client(ROLE_LESSEE) as p:
        for grant in _asked_twice(p, MSG_LEASE_REQUEST, language + _pb(*fields), MSG_LEASE_GRANT):
            assert grant[2] == (1 << 64) - 1  # MANTA_EINVAL (-1)
            assert why in grant[7].decode(), grant[7]
    assert ray.get(_ok.remote(), timeout=20) == "ok"


OID = bytes(range(20))  # an object id (MT_OBJECT_ID_LEN bytes)


@pytest.mark.parametrize("type_, payload, reply_type, status_of", [
    # ObjCreate without an owner -> ObjCreateReply.status
    (20, _pb((2, OID), (3, 10)), 21, lambda r: r[2]),
    # ObjGet of two objects with one location -> each ObjLocation.status
    (23, _pb((2, OID), (2, OID), (3, 0), (5, bytes(16))), 24, lambda r: peer_wire.parse(r[2])[2][-1]),
    # ActorRegister without the actor -> ActorRegisterReply.status
    (46, b"", 47, lambda r: r[2]),
], ids=["ObjCreate", "ObjGet", "ActorRegister"])
def test_a_malformed_request_gets_an_error_reply_not_a_closed_connection(
        ray_start, type_, payload, reply_type, status_of):
    with _raw_client(ROLE_DRIVER) as p:
        for reply in _asked_twice(p, type_, payload, reply_type):
            assert status_of(reply) == (1 << 64) - 1  # MANTA_EINVAL
    assert ray.get(_ok.remote(), timeout=20) == "ok"


MSG_WARNING = 35


@pytest.mark.parametrize("type_, body, why", [
    (22, b"", "ignored a MSG_OBJ_SEAL without an object id"),
    (27, b"", "ignored a MSG_OBJ_ABORT without an object id"),
    (25, _pb((1, b"")), "ignored a MSG_OBJ_RELEASE without an object id"),
    (12, b"", "ignored a MSG_LEASE_RETURN without a worker id"),
    (50, b"", "ignored an ActorUpdate without an actor id"),
    (40, b"", "ignored a FnRegister without a function id"),
])
def test_a_malformed_message_without_a_reply_is_ignored_with_a_warning(ray_start, type_, body,
                                                                         why):
    with _raw_client(ROLE_DRIVER) as p:
        for _ in range(2):  # the second is answered too: still connected
            p.send(type_, body)
            warning = p.recv_one_of(MSG_WARNING)
            assert warning is not None, "the node closed the connection"
            assert why in warning[1].decode(), warning
    assert ray.get(_ok.remote(), timeout=20) == "ok"


ROLE_CLI, ROLE_GCS_CLIENT, ROLE_NODE_PEER = 4, 6, 8
MSG_WORKER_BLOCKED, MSG_OBJ_GET, MSG_OBJ_GET_REPLY, MSG_EVENT = 14, 23, 24, 30
MSG_STATUS_REQUEST, MSG_STATUS_REPLY, MSG_SHUTDOWN, MSG_RESOURCE_REPORT = 32, 33, 34, 37
MSG_KV_GET, MSG_KV_GET_REPLY, MSG_OBJ_PULL = 44, 45, 70


def _answered(p, type_, body, reply_type, first=b""):
    """Send frames `first`, then a request (id 9): its reply, or None if
    the node closed the connection instead."""
    p.sendall(first + _frame(type_, _pb((1, 9)) + body))
    return p.recv_one_of(reply_type, news=(MSG_EVENT, MSG_WARNING))


def test_each_role_sends_only_its_messages(ray_start):
    """The daemon takes from a client what its Hello's role may send; any
    other message closes that connection (after a message the role may
    send but the node ignores, it stays open), and the node goes on."""
    kv_get = (MSG_KV_GET, _pb((2, "t"), (3, b"k")), MSG_KV_GET_REPLY)
    status = (MSG_STATUS_REQUEST, b"", MSG_STATUS_REPLY)
    obj_get = (MSG_OBJ_GET, _pb((2, OID), (3, 0)), MSG_OBJ_GET_REPLY)
    allowed = [(ROLE_DRIVER, kv_get), (ROLE_DRIVER, obj_get), (ROLE_DRIVER, status),
               (ROLE_GCS_CLIENT, kv_get), (ROLE_LESSEE, status), (ROLE_CLI, status)]
    for role, (type_, body, reply_type) in allowed:
        with _raw_client(role) as s:
            assert _answered(s, type_, body, reply_type) is not None, (role, type_)
    refused = [(ROLE_LESSEE, kv_get), (ROLE_CLI, kv_get), (ROLE_CLI, obj_get),
               (ROLE_GCS_CLIENT, status), (ROLE_GCS_CLIENT, obj_get), (ROLE_NODE_PEER, status)]
    for role, (type_, body, reply_type) in refused:
        with _raw_client(role) as s:
            assert _answered(s, type_, body, reply_type) is None, (role, type_)
    # Messages without a reply: what the role may not send closes ...
    for role, type_ in [(ROLE_LESSEE, MSG_SHUTDOWN), (ROLE_LESSEE, MSG_WORKER_BLOCKED),
                        (ROLE_DRIVER, MSG_RESOURCE_REPORT), (ROLE_DRIVER, MSG_OBJ_PULL)]:
        with _raw_client(role) as s:
            assert _answered(s, *status, first=_frame(type_, b"")) is None, (role, type_)
    # ... what it may send but is not obeyed from it is ignored.
    with _raw_client(ROLE_DRIVER) as s:
        ignored = _frame(MSG_SHUTDOWN, b"") + _frame(MSG_WORKER_BLOCKED, b"")
        assert _answered(s, *status, first=ignored) is not None
    assert ray.get(_ok.remote(), timeout=20) == "ok"


def test_worker_sockets_survive_malformed_input(ray_start):
    @ray.remote
    class Echo:
        def addr(self):
            from manta import _manta
            return _manta.info()["endpoint"]

        def echo(self, x):
            return x

    e = Echo.remote()
    ep = ray.get(e.addr.remote())
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(ep[len("unix:"):])
    s.sendall(_frame(60, b"\xff" * 64) + b"garbage")
    try:
        s.recv(1)
    except socket.timeout:
        pass
    s.close()
    assert ray.get(e.echo.remote(5), timeout=20) == 5


# ---------------------------------------------------------------- lifecycle

def test_hung_starting_worker_is_killed(cluster_factory, monkeypatch, capfd):
    monkeypatch.setenv("MANTA_WORKER_START_TIMEOUT_MS", "500")
    monkeypatch.setenv("MANTA_TEST_WORKER_HANG", "1")
    cluster_factory(num_cpus=1)

    @ray.remote
    def f():
        return 1

    f.remote()
    assert wait_for(lambda: "fail to start" in capfd.readouterr().err, 20)


def test_kill_9_of_the_node_is_cleaned_by_the_next_start():
    from manta._private import node

    sock, pid, session, port, proc = node.start(embedded=False, head=True, port=0, detach=True)
    pids = _session_pids(session)
    os.kill(pid, signal.SIGKILL)
    proc.wait(10)
    assert os.path.exists(session)  # the dead one left its session behind
    sock2, pid2, session2, port2, proc2 = node.start(embedded=False, head=True, port=0,
                                                     detach=True)
    try:
        assert wait_for(lambda: not os.path.exists(session), 10)
        assert wait_for(lambda: not any(os.path.exists(f"/proc/{p}") and
                                        open(f"/proc/{p}/stat").read().split(")")[-1].split()[0]
                                        != "Z" for p in pids), 10)
    finally:
        pids2 = _session_pids(session2)
        proc2.terminate()
        proc2.wait(10)
        assert_no_leftovers(pids2, session2)


# ---------------------------------------------------------------- fault injection

def test_random_worker_kills_during_a_mixed_workload(cluster_factory):
    """Kill workers at random moments while tasks and actor calls run: every
    result is right, or a correctly typed error."""
    cluster_factory(num_cpus=2)

    @ray.remote(max_retries=-1)
    def square(x):
        time.sleep(random.random() * 0.02)
        return os.getpid(), x * x

    @ray.remote(max_restarts=-1, max_task_retries=-1)
    class Adder:
        def add(self, x):
            time.sleep(random.random() * 0.02)
            return os.getpid(), x + 1

    adder = Adder.remote()
    stop = threading.Event()
    victims = set()
    kills = [0]

    def killer():
        rng = random.Random(1)
        while not stop.is_set():
            time.sleep(rng.uniform(0.05, 0.2))
            pids = list(victims)
            if pids:
                try:
                    os.kill(rng.choice(pids), signal.SIGKILL)
                    kills[0] += 1
                except ProcessLookupError:
                    pass

    t = threading.Thread(target=killer)
    t.start()
    try:
        for round_ in range(6):
            refs = [square.remote(i) for i in range(30)]
            calls = [adder.add.remote(i) for i in range(30)]
            for i, r in enumerate(refs):
                pid, v = ray.get(r, timeout=120)
                victims.add(pid)
                assert v == i * i
            for i, r in enumerate(calls):
                try:
                    pid, v = ray.get(r, timeout=120)
                    victims.add(pid)
                    assert v == i + 1
                except ray.exceptions.RayActorError:
                    pass  # a typed error is an allowed outcome for an actor call
    finally:
        stop.set()
        t.join()
    assert kills[0] > 0


def _zygote_pid():
    sess = ray._private.worker.state.info["session_dir"]
    with open(os.path.join(sess, "zygote.pid")) as f:
        return int(f.read().strip() or 0)


def test_workers_are_forked_by_the_zygote(ray_start):
    @ray.remote
    def parent_pid():
        return os.getppid()

    zpid = _zygote_pid()
    assert zpid > 0
    assert ray.get(parent_pid.remote(), timeout=30) == zpid


def test_a_killed_zygote_is_replaced_and_tasks_go_on(ray_start):
    @ray.remote(max_retries=3)
    def pid():
        return os.getpid()

    ray.get([pid.remote() for _ in range(4)], timeout=30)
    old = _zygote_pid()
    os.kill(old, signal.SIGKILL)
    # Its workers die with it; the node starts a new zygote for the next ones.
    assert wait_for(lambda: _zygote_pid() not in (0, old), timeout=30)
    pids = ray.get([pid.remote() for _ in range(4)], timeout=30)
    assert all(p > 0 for p in pids)
