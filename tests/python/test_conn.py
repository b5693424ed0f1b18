"""Connections: what a peer may do before its Hello (frame size, deadline,
how many wait), descriptors at the limit, large frames right after the
handshake, and descriptors across init()/shutdown() cycles."""

import os
import resource
import socket
import struct
import time

import pytest

import manta as ray
from manta import _manta
from conftest import _session_pids, assert_no_leftovers, stop_started_node, wait_for

MiB = 1 << 20


def _fds(pid="self"):
    return len(os.listdir(f"/proc/{pid}/fd"))


def _cpu_s(pid):
    """User + system CPU seconds of `pid` so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def _closed_by_peer(s):
    """Whether the other end closed `s` (non-blocking)."""
    try:
        return s.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


# ---------------------------------------------------------------- large frames after Hello

def test_a_closure_over_64_kib_works_right_after_init(cluster_factory):
    cluster_factory(num_cpus=1)
    big = os.urandom(200_000)

    @ray.remote
    def size():
        return len(big)

    # The first frames after the Hello are larger than what a peer may send
    # before it: they must be read with the limit of an accepted peer.
    assert ray.get(size.remote(), timeout=60) == 200_000


def test_a_function_larger_than_a_frame_is_a_clear_error(cluster_factory, monkeypatch):
    monkeypatch.setenv("MANTA_MAX_FRAME_BYTES", str(MiB))
    cluster_factory(num_cpus=1)
    big = os.urandom(2 * MiB)

    @ray.remote
    def size():
        return len(big)

    with pytest.raises(ValueError, match="too large"):
        size.remote()
    # The driver is still connected and works.
    @ray.remote
    def small():
        return 1

    assert ray.get(small.remote(), timeout=60) == 1


def test_many_small_returns_beyond_a_frame_reach_the_caller(cluster_factory, monkeypatch):
    # Each return is small enough to travel in line, all of them together
    # are more than a frame: the worker must move the rest to the store
    # (Ray's inlined-bytes budget), not send a reply its caller refuses.
    monkeypatch.setenv("MANTA_MAX_FRAME_BYTES", str(MiB))
    cluster_factory(num_cpus=1)
    n, size = 30, 90_000

    @ray.remote(num_returns=n)
    def many():
        return [bytes([i]) * size for i in range(n)]

    @ray.remote
    class Many:
        @ray.method(num_returns=n)
        def many(self):
            return [bytes([i]) * size for i in range(n)]

    want = [bytes([i]) * size for i in range(n)]
    assert ray.get(many.remote(), timeout=60) == want
    assert ray.get(Many.remote().many.remote(), timeout=60) == want


def test_many_small_ref_arguments_beyond_a_frame_reach_the_callee(cluster_factory, monkeypatch):
    # Refs to small values travel in line; many together are more than a
    # frame: the caller must pass the rest by reference through the store,
    # to a task and to an actor alike.
    monkeypatch.setenv("MANTA_MAX_FRAME_BYTES", str(MiB))
    cluster_factory(num_cpus=1)
    refs = [ray.put(bytes([i]) * 90_000) for i in range(30)]

    @ray.remote
    def total(*values):
        return [v[:1] * len(v) == v and len(v) for v in values]

    @ray.remote
    class Total:
        def total(self, *values):
            return [v[:1] * len(v) == v and len(v) for v in values]

    @ray.remote
    class Holder:
        def __init__(self, *values):
            self.lens = [len(v) for v in values]

        def sizes(self):
            return self.lens

    # Each call with refs of its own (the first copies them to the store).
    assert ray.get(total.remote(*refs), timeout=60) == [90_000] * 30
    refs = [ray.put(bytes([i]) * 90_000) for i in range(30)]
    assert ray.get(Total.remote().total.remote(*refs), timeout=60) == [90_000] * 30
    refs = [ray.put(bytes([i]) * 90_000) for i in range(30)]
    assert ray.get(Holder.remote(*refs).sizes.remote(), timeout=60) == [90_000] * 30
    # The driver still reads them from its own memory as well.
    assert ray.get(refs[-1], timeout=60) == bytes([29]) * 90_000


@ray.remote(max_concurrency=2)
class _Latch:
    def __init__(self):
        import threading

        self.event = threading.Event()

    def wait(self):
        return self.event.wait(60)

    def open(self):
        self.event.set()


def test_ref_arguments_resolved_beyond_a_frame_fail_the_call_clearly(cluster_factory, monkeypatch):
    # Refs still pending at the call cannot be moved to the store first;
    # resolved to more in-line bytes than a frame, the call fails with a
    # clear error, and the caller (and the worker) live on.
    monkeypatch.setenv("MANTA_MAX_FRAME_BYTES", str(MiB))
    cluster_factory(num_cpus=2)
    latch = _Latch.remote()
    opened = latch.wait.remote()

    @ray.remote
    def part(_, i):
        return bytes([i]) * 90_000

    @ray.remote
    def count(*values):
        return len(values)

    parts = [part.remote(opened, i) for i in range(30)]
    call = count.remote(*parts)
    latch.open.remote()
    with pytest.raises(ray.exceptions.RaySystemError, match="carry .* bytes in line"):
        ray.get(call, timeout=60)
    assert ray.get(count.remote(*parts[:5]), timeout=60) == 5


@pytest.mark.parametrize("setting", ["0", str(8 << 30)])
def test_max_frame_bytes_out_of_range_means_what_the_connections_use(cluster_factory, monkeypatch,
                                                                    setting):
    # 0 (the default) and more than a frame's length field can say (4 GiB)
    # are what every connection reads with; the senders' checks must agree.
    monkeypatch.setenv("MANTA_MAX_FRAME_BYTES", setting)
    cluster_factory(num_cpus=1)

    @ray.remote
    def echo(x):
        return x

    assert ray.get(echo.remote(b"x" * 1000), timeout=60) == b"x" * 1000


def test_a_name_larger_than_a_frame_is_a_clear_error(cluster_factory, monkeypatch):
    # Names travel beside the values in several messages: one too long is
    # the caller's error, not a message that costs the driver its node.
    monkeypatch.setenv("MANTA_MAX_FRAME_BYTES", str(MiB))
    cluster_factory(num_cpus=1)
    huge = "n" * (2 * MiB)

    @ray.remote
    def one():
        return 1

    @ray.remote
    class Named:
        def one(self):
            return 1

    with pytest.raises(ValueError, match="task name is .* bytes long"):
        one.options(name=huge).remote()
    with pytest.raises(ValueError, match="actor name is .* bytes long"):
        Named.options(name=huge).remote()
    assert ray.get(one.remote(), timeout=60) == 1
    assert ray.get(Named.remote().one.remote(), timeout=60) == 1


# ---------------------------------------------------------------- descriptors per cycle

@ray.remote
def _fetch(refs):
    return ray.get(refs[0])


def test_init_shutdown_cycles_leak_no_descriptors():
    def cycle():
        ctx = ray.init(num_cpus=1)
        pids = _session_pids(ctx["session_dir"])
        # A borrowed ref makes the worker connect to this driver.
        assert ray.get(_fetch.remote([ray.put(5)]), timeout=60) == 5
        ray.shutdown()
        assert_no_leftovers(pids, ctx["session_dir"])

    cycle()
    fds, threads = _fds(), len(os.listdir("/proc/self/task"))
    for _ in range(4):
        cycle()
    assert _fds() == fds, os.listdir("/proc/self/fd")
    assert len(os.listdir("/proc/self/task")) == threads


# ---------------------------------------------------------------- peers before their Hello

@pytest.fixture
def head():
    """A head node listening on TCP whose peers get 0.5 s to say Hello;
    yields a function that starts it with extra environment."""
    from manta._private import node

    started = []

    def start(**env):
        env = {"MANTA_HELLO_TIMEOUT_MS": "500", **{k: str(v) for k, v in env.items()}}
        sock, pid, session, port, proc = node.start(embedded=False, head=True, port=0,
                                                    detach=True, extra_env=env)
        started.append((proc, session))
        return pid, session, port

    yield start
    for proc, session in started:
        stop_started_node(proc, session)


def _connect_idle(port, n):
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.setblocking(False)
        socks.append(s)
    return socks


@pytest.mark.parametrize("cap, deadline_ms", [(16, 500), (10000, 2500)])
def test_idle_peers_cost_no_cpu_and_are_closed_after_the_deadline(head, cap, deadline_ms):
    pid, session, port = head(MANTA_MAX_HELLO_CONNS=cap, MANTA_HELLO_TIMEOUT_MS=deadline_ms)
    # Few descriptors to spare: with a cap of 10000 the idle peers use them
    # all, and accept() fails with EMFILE for the rest of the CPU window.
    limit = _fds(pid) + 56
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (limit, limit))
    socks = _connect_idle(port, 100)
    try:
        cpu = _cpu_s(pid)
        time.sleep(2.0)  # a window to measure CPU use in, not a wait for an event
        used = _cpu_s(pid) - cpu
        assert used < 0.3, f"the node used {used:.2f} s of CPU in 2 s with idle peers"
        # Every idle peer is hung up on: after its deadline, or at once when
        # the node has no descriptor for it.
        assert wait_for(lambda: all(_closed_by_peer(s) for s in socks), 30), \
            f"{sum(not _closed_by_peer(s) for s in socks)} idle peers still connected"
        ray.init(address=f"127.0.0.1:{port}")

        @ray.remote
        def f():
            return 7

        assert ray.get(f.remote(), timeout=60) == 7
        ray.shutdown()
    finally:
        for s in socks:
            s.close()


def test_a_driver_connects_while_peers_wait_at_the_tcp_port(head):
    pid, session, port = head(MANTA_MAX_HELLO_CONNS=8, MANTA_HELLO_TIMEOUT_MS=60000)
    socks = _connect_idle(port, 40)
    try:
        t0 = time.monotonic()
        ray.init(address=f"127.0.0.1:{port}")
        assert ray.get(ray.put(3), timeout=30) == 3
        ray.shutdown()
        assert time.monotonic() - t0 < 30
    finally:
        for s in socks:
            s.close()


def _varint(n):
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def _hello(token, role=4):
    """A Hello frame from a CLI client (version, token, role)."""
    tok = token.encode()
    body = b"\x08" + _varint(1) + b"\x12" + _varint(len(tok)) + tok + b"\x18" + _varint(role)
    return _frame_header(len(body)) + body


def _recv_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        assert chunk, "the node closed the connection"
        data += chunk
    return data


def test_peers_holding_every_place_do_not_shut_the_tcp_port(head):
    # Idle peers fill the places at the gate and the backlog behind them; an
    # honest TCP client must still get in (idle ones give up their place),
    # not wait behind them until their deadline.
    from manta._private import node

    pid, session, port = head(MANTA_MAX_HELLO_CONNS=8, MANTA_HELLO_TIMEOUT_MS=60000)
    socks = _connect_idle(port, 40)
    try:
        t0 = time.monotonic()
        with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
            s.sendall(_hello(node.read_token(session)))
            length, msg_type = struct.unpack("<IH", _recv_exact(s, 8)[:6])
        assert msg_type == 2  # HelloReply
        assert time.monotonic() - t0 < 10
        # Those that gave up their place were closed; a few still wait.
        assert wait_for(lambda: sum(_closed_by_peer(x) for x in socks) >= 32, timeout=10)
    finally:
        for s in socks:
            s.close()


def _frame_header(length, msg_type=1):
    return struct.pack("<IHBB", length, msg_type, 1, 0)


@ray.remote
class _Probe:
    def where(self):
        ctx = ray.get_runtime_context()
        return os.getpid(), ctx.get_worker_id()

    def ping(self):
        return "pong"


def test_a_huge_length_prefix_before_hello_is_dropped_without_growth(cluster_factory):
    ctx = cluster_factory(num_cpus=1)
    probe = _Probe.remote()
    pid, wid = ray.get(probe.where.remote(), timeout=60)
    path = _manta.worker_socket(ctx["session_dir"], wid)
    assert os.path.exists(path)
    rss = _rss(pid)
    for _ in range(3):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        s.settimeout(10)
        sent = 0
        try:
            s.sendall(_frame_header(400 * MiB))
            chunk = bytes(MiB)
            while sent < 48 * MiB:
                sent += s.send(chunk)
        except OSError:
            pass  # dropped: what should happen
        s.close()
        assert sent < 48 * MiB, "the worker kept reading a frame it must refuse"
    assert _rss(pid) - rss < 16 * MiB, f"the worker grew by {(_rss(pid) - rss) / MiB:.0f} MiB"
    assert ray.get(probe.ping.remote(), timeout=60) == "pong"


def test_a_flood_of_bad_peers_is_not_a_flood_of_log_lines(cluster_factory, capfd):
    ctx = cluster_factory(num_cpus=1)
    probe = _Probe.remote()
    _pid, wid = ray.get(probe.where.remote(), timeout=60)
    path = _manta.worker_socket(ctx["session_dir"], wid)
    for _ in range(20):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        s.sendall(b"\xff" * 8)
        s.settimeout(10)
        try:
            s.recv(1)
        except OSError:
            pass
        s.close()
    assert ray.get(probe.ping.remote(), timeout=60) == "pong"
    err = []

    def lines():
        err.append(capfd.readouterr().err)
        return [ln for ln in "".join(err).splitlines() if "incoming fd" in ln]

    # The worker's log reaches this console through its node: wait for the
    # first line, then (bounded) for more.
    assert wait_for(lambda: lines(), 10)
    wait_for(lambda: len(lines()) > 2, 2)
    assert len(lines()) <= 2, "\n".join(lines())


# ---------------------------------------------------------------- peers that never read

def test_a_peer_that_never_reads_its_replies_is_not_buffered_without_bound(cluster_factory,
                                                                             monkeypatch):
    # A client sends requests as fast as it can and never reads a reply:
    # past max_reply_backlog_bytes the node stops reading it (its requests
    # wait in its own socket) instead of queuing replies in its memory.
    monkeypatch.setenv("MANTA_MAX_REPLY_BACKLOG_BYTES", str(MiB))
    ctx = cluster_factory(num_cpus=1)
    with open(os.path.join(ctx["session_dir"], "daemon.pid")) as f:
        daemon = int(f.read().split()[0])
    status_request = _frame_header(2, msg_type=32) + b"\x08\x01"
    batch = status_request * 1000
    rss = _rss(daemon)
    s = socket.socket(socket.AF_UNIX)
    s.connect(os.path.join(ctx["session_dir"], "daemon.sock"))
    try:
        s.sendall(_hello(""))
        s.setblocking(False)
        sent, last_progress = 0, time.monotonic()
        # Some 200 MiB of replies, unless the node stops taking requests.
        while sent < 500_000 and time.monotonic() - last_progress < 1:
            try:
                n = s.send(batch)
            except BlockingIOError:
                time.sleep(0.01)
                continue
            sent += n // len(status_request)
            last_progress = time.monotonic()
        grew = _rss(daemon) - rss
        assert grew < 48 * MiB, f"the node grew by {grew / MiB:.0f} MiB for {sent} requests"
    finally:
        s.close()
    assert ray.get(ray.put(1), timeout=30) == 1
