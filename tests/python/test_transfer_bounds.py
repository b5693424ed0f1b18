"""A node that serves an object with hostile chunk offsets and lengths
cannot make the daemon that pulls it write outside the object: the pull
fails and every other object of the store keeps its bytes."""

import os
import socket

import numpy as np
import pytest

import manta as ray
from manta._private import node as _node
from manta.cluster_utils import Cluster
from conftest import _session_pids, assert_no_leftovers
from peer_wire import (HELLO, HELLO_REPLY, OBJ_CHUNK, OBJ_GET, OBJ_GET_REPLY, OBJ_PULL, ROLE_DRIVER,
                       ROLE_NODE, Peer, connect_unix, message, parse)


@pytest.fixture
def head():
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1,
                                                      "object_store_memory": 100 << 20})
    c.connect()
    yield c.head_node
    d = c.head_node.session_dir
    pids = _session_pids(d)
    c.shutdown()
    assert_no_leftovers(pids, d)


def fake_node(head):
    """Join the head as a node whose daemon listens on `listener`."""
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


@pytest.mark.parametrize("offset,length", [
    ((1 << 64) - 4096, 8192),  # offset + length wraps to 4096
    (1 << 16, 64),             # past the end
    (0, 64),                   # the first chunk again: a hole would be sealed
])
def test_a_hostile_chunk_fails_the_pull_and_touches_no_other_object(head, offset, length):
    victim = ray.put(np.full(1 << 20, 7, np.uint8))
    nid, node_conn, listener = fake_node(head)
    client = connect_unix(os.path.join(head.session_dir, "daemon.sock"))
    try:
        client.send(HELLO, message((1, 1), (3, ROLE_DRIVER), (4, os.urandom(16)), (5, os.getpid())))
        client.recv_type(HELLO_REPLY)
        # A get of an object that, says the caller, sits on the fake node:
        # the head pulls it from there.
        oid = os.urandom(20)
        client.send(OBJ_GET, message((1, 7), (2, oid), (3, -1), (4, 1), (5, nid)))
        link = Peer(listener.accept()[0])
        assert link.recv_type(OBJ_PULL)[1] == [oid]
        size = 1 << 16
        link.send(OBJ_CHUNK, message((1, oid), (3, size), (4, 0), (5, b"\xaa" * 64)))
        link.send(OBJ_CHUNK, message((1, oid), (3, size), (4, offset), (5, b"\xee" * length)))
        client.sock.settimeout(5)
        try:
            reply = client.recv_type(OBJ_GET_REPLY)
        except socket.timeout:
            reply = None
        assert (ray.get(victim) == 7).all(), "a chunk was written outside its object"
        assert reply is not None, "the pull went on after a hostile chunk"
        status = parse(reply[2][0]).get(2, [0])[0]
        assert status != 0, "the get of the object succeeded"
        link.close()
    finally:
        client.close()
        node_conn.close()
        listener.close()

    @ray.remote
    def one():
        return 1

    assert ray.get(one.remote(), timeout=60) == 1
