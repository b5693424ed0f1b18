"""Peers that misbehave: a node that serves hostile chunk offsets and
lengths cannot make the daemon pulling from it write outside the object
(the pull fails, every other object keeps its bytes), and an address that
drops our packets stalls neither a daemon nor a driver that connects to it."""

import os
import socket
import threading
import time

import numpy as np
import pytest

import manta as ray
from manta import _manta
from manta._private import node as _node
from manta.cluster_utils import Cluster, _status
from conftest import _session_pids, assert_no_leftovers, wait_for
from peer_wire import (HELLO, HELLO_REPLY, OBJ_CHUNK, OBJ_GET, OBJ_GET_REPLY, OBJ_PULL, ROLE_DRIVER,
                       ROLE_NODE, Peer, connect_unix, message, parse)


@pytest.fixture
def head():
    c = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "object_store_memory": 100 << 20,
        "_system_config": {"connect_timeout_ms": 1500}})
    c.connect()
    yield c.head_node
    d = c.head_node.session_dir
    pids = _session_pids(d)
    c.shutdown()
    assert_no_leftovers(pids, d)


def fake_node(head, listener=None):
    """Join the head as a node whose daemon listens on `listener` (a new
    socket if None); returns (node id, its connection to the head, listener)."""
    if listener is None:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        listener.settimeout(10)
    nid = os.urandom(16)
    status = message((1, nid), (13, f"tcp:127.0.0.1:{listener.getsockname()[1]}"))
    conn = Peer(socket.create_connection(("127.0.0.1", head.node_manager_port), timeout=10))
    conn.send(HELLO, message((1, 1), (2, _node.read_token(head.session_dir)), (3, ROLE_NODE),
                             (5, os.getpid()), (11, nid), (12, status)))
    assert not conn.recv_type(HELLO_REPLY).get(1), "the head refused the node"
    return nid, conn, listener


def driver_conn(head):
    """A raw client of the head's daemon, introduced as a driver."""
    client = connect_unix(_node.session_paths(head.session_dir)["socket"])
    client.send(HELLO, message((1, 1), (3, ROLE_DRIVER), (4, os.urandom(16)), (5, os.getpid())))
    client.recv_type(HELLO_REPLY)
    return client


def get_from(client, nid):
    """Ask the head for an object that, says the caller, sits on node nid:
    the head pulls it from there.  Returns the object's id."""
    oid = os.urandom(20)
    client.send(OBJ_GET, message((1, 7), (2, oid), (3, -1), (4, 1), (5, nid)))
    return oid


def get_status(client):
    """The status the head answered the get of get_from() with."""
    reply = client.recv_type(OBJ_GET_REPLY)
    return parse(reply[2][0]).get(2, [0])[0]


@pytest.mark.parametrize("offset,length", [
    ((1 << 64) - 4096, 8192),  # offset + length wraps to 4096
    (1 << 16, 64),             # past the end
    (0, 64),                   # the first chunk again: a hole would be sealed
])
def test_a_hostile_chunk_fails_the_pull_and_touches_no_other_object(head, offset, length):
    victim = ray.put(np.full(1 << 20, 7, np.uint8))
    nid, node_conn, listener = fake_node(head)
    client = driver_conn(head)
    try:
        oid = get_from(client, nid)
        link = Peer(listener.accept()[0])
        assert link.recv_type(OBJ_PULL)[1] == [oid]
        size = 1 << 16
        link.send(OBJ_CHUNK, message((1, oid), (3, size), (4, 0), (5, b"\xaa" * 64)))
        link.send(OBJ_CHUNK, message((1, oid), (3, size), (4, offset), (5, b"\xee" * length)))
        client.sock.settimeout(5)
        try:
            status = get_status(client)
        except socket.timeout:
            status = None
        assert (ray.get(victim) == 7).all(), "a chunk was written outside its object"
        assert status is not None, "the pull went on after a hostile chunk"
        assert status != 0, "the get of the object succeeded"
        link.close()
    finally:
        client.close()
        node_conn.close()
        listener.close()

    assert ray.get(one.remote(), timeout=60) == 1


@ray.remote
def one():
    return 1


def syns_to(port):
    """Sockets of this machine waiting for an answer to a SYN sent to port."""
    n = 0
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(name) as f:
            for line in f.read().splitlines()[1:]:
                cols = line.split()
                if cols[3] == "02" and int(cols[2].rsplit(":", 1)[1], 16) == port:
                    n += 1
    return n


def black_hole():
    """A TCP port on loopback that drops every SYN: a listener with a full
    backlog that never accepts.  Returns (port, sockets to close)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    held = [listener]
    for _ in range(2):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        held.append(s)
    return port, held


def test_a_node_that_drops_our_packets_does_not_stall_the_head(head):
    port, held = black_hole()
    nid, node_conn, _ = fake_node(head, held[0])
    client = driver_conn(head)
    try:
        before = syns_to(port)
        get_from(client, nid)
        assert wait_for(lambda: syns_to(port) > before, 10), "the head never tried the node"
        # While the head's connection waits for an answer, it serves others.
        sock = _node.session_paths(head.session_dir)["socket"]
        t0 = time.monotonic()
        assert len(_status(sock)) == 2
        assert time.monotonic() - t0 < 2.0, "the head stalled while connecting to a node"
        # The connection gives up after connect_timeout_ms: the pull fails.
        client.sock.settimeout(30)
        assert get_status(client) != 0
    finally:
        client.close()
        node_conn.close()
        for s in held:
            s.close()
    assert ray.get(one.remote(), timeout=60) == 1


def test_an_owner_whose_address_drops_packets_does_not_stall_the_driver(cluster_factory,
                                                                        monkeypatch):
    monkeypatch.setenv("MANTA_CONNECT_TIMEOUT_MS", "1500")
    cluster_factory(num_cpus=1)

    assert ray.get(one.remote(), timeout=60) == 1
    port, held = black_hole()
    # A ref whose owner lives on another node at that address: taking it
    # registers us with the owner, which means connecting there.
    owner = message((1, os.urandom(16)), (2, os.urandom(16)), (4, f"tcp:127.0.0.1:{port}"))
    before = syns_to(port)
    done = []
    t = threading.Thread(target=lambda: done.append(_manta.ref_from_wire(os.urandom(20), owner)))
    t.start()
    try:
        assert wait_for(lambda: syns_to(port) > before, 10), "the driver never tried the owner"
        # While that connection waits for an answer, the driver's other
        # threads go on using the runtime.
        t0 = time.monotonic()
        assert ray.get(one.remote(), timeout=60) == 1
        assert time.monotonic() - t0 < 2.0, "the driver stalled while connecting to a peer"
        t.join(30)
        assert done, "taking the ref never finished"
    finally:
        t.join(30)
        for s in held:
            s.close()
