"""A hand-written speaker of manta's wire, for tests that play a node or a
client the daemons must not trust: frames (u32 length, u16 type, u8
version, u8 flags) around protobuf messages encoded field by field.  Only
the messages and fields the tests use are here (numbers from
proto/manta.proto)."""

import socket
import struct

HELLO, HELLO_REPLY = 1, 2
OBJ_GET, OBJ_GET_REPLY = 23, 24
OBJ_PULL, OBJ_CHUNK = 70, 71
ROLE_DRIVER, ROLE_NODE = 1, 5


def varint(x):
    x &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = x & 0x7F
        x >>= 7
        out.append(b | (0x80 if x else 0))
        if not x:
            return bytes(out)


def field(num, value):
    """One field: ints as varints, bytes/str length-delimited."""
    if isinstance(value, int):
        return varint(num << 3) + varint(value)
    if isinstance(value, str):
        value = value.encode()
    return varint(num << 3 | 2) + varint(len(value)) + value


def message(*fields):
    return b"".join(field(n, v) for n, v in fields if v is not None)


def frame(mtype, payload, version=1):
    return struct.pack("<IHBB", len(payload), mtype, version, 0) + payload


def parse(payload):
    """{field number: [values]}: varints as ints, the rest as bytes."""
    out, i = {}, 0
    while i < len(payload):
        key, i = _read_varint(payload, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            v, i = _read_varint(payload, i)
        elif wire == 2:
            n, i = _read_varint(payload, i)
            v, i = payload[i:i + n], i + n
        elif wire == 1:
            v, i = payload[i:i + 8], i + 8
        elif wire == 5:
            v, i = payload[i:i + 4], i + 4
        else:
            raise ValueError(f"wire type {wire}")
        out.setdefault(num, []).append(v)
    return out


def _read_varint(b, i):
    x = shift = 0
    while True:
        c = b[i]
        i += 1
        x |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            return x, i


class Peer:
    """A framed connection (TCP or unix) with a deadline on every read."""

    def __init__(self, sock, timeout=10):
        self.sock = sock
        self.sock.settimeout(timeout)

    def send(self, mtype, payload):
        self.sock.sendall(frame(mtype, payload))

    def recv(self):
        hdr = self._exact(8)
        n, mtype, _ver, _flags = struct.unpack("<IHBB", hdr)
        return mtype, parse(self._exact(n))

    def recv_type(self, mtype):
        while True:
            t, m = self.recv()
            if t == mtype:
                return m

    def recv_one_of(self, *mtypes, news=None):
        """The next message of one of `mtypes` ({field: last value}), passing
        over news the node sends every client (only the types in `news`, if
        given); None once the peer closed."""
        try:
            while True:
                t, m = self.recv()
                if t in mtypes:
                    return {k: v[-1] for k, v in m.items()}
                assert news is None or t in news, f"unexpected message type {t}"
        except ConnectionError:
            return None

    def sendall(self, data):
        """Raw bytes (several frames, or not a frame at all)."""
        self.sock.sendall(data)

    def _exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("peer closed the connection")
            buf += chunk
        return buf

    def close(self):
        self.sock.close()


def connect_unix(path, timeout=10):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    return Peer(s, timeout)
