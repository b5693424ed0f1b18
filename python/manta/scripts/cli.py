"""The ``manta`` command: start, stop and inspect manta nodes on this machine.

    manta start --head [--port 6379] [--num-cpus 4] [--resources '{"a": 1}']
    manta start --address HOST:PORT [--num-cpus 4] [--resources '{"a": 1}']
    manta status
    manta stop

The shapes follow Ray's ``ray start`` / ``ray status`` / ``ray stop``.  Nodes
are found through their session directories under ``/tmp/manta-<uid>`` (see
docs/architecture.md); ``manta stop`` signals the pids recorded there, never
processes found by name.
"""

import argparse
import json
import math
import os
import socket
import sys
import time

DEFAULT_PORT = 6379
DEFAULT_HOST = "127.0.0.1"

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


class CliError(Exception):
    """An error to print (without a traceback) before exiting with `code`."""

    def __init__(self, message, code=EXIT_ERROR):
        super().__init__(message)
        self.code = code


def _node():
    """manta._private.node, imported lazily so `manta --help` stays fast."""
    try:
        from manta._private import node
    except ImportError as e:
        raise CliError(f"cannot load manta ({e}); is manta built and installed?") from None
    return node


def _ext():
    try:
        from manta import _manta
    except ImportError as e:
        raise CliError(f"cannot load manta's C extension ({e}); is manta built?") from None
    return _manta


# ---------------------------------------------------------------- argument types

def _non_negative(text, what):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what} must be a number, got {text!r}") from None
    if not math.isfinite(v) or v < 0:
        raise argparse.ArgumentTypeError(f"{what} must be a non-negative number, got {text!r}")
    return int(v) if v.is_integer() else v


def _amount(what):
    def parse(text):
        return _non_negative(text, what)
    parse.__name__ = what  # argparse names the type in its messages
    return parse


def _port(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}") from None
    if not 0 <= v <= 65535:
        raise argparse.ArgumentTypeError(f"port must be in 0..65535, got {v}")
    return v


def _bytes(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of bytes, got {text!r}") from None
    if not math.isfinite(v) or v <= 0 or not v.is_integer():
        raise argparse.ArgumentTypeError(f"must be a positive whole number of bytes, got {text!r}")
    return int(v)


def parse_resources(text):
    """The --resources JSON: an object of resource name to non-negative number."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError as e:
        raise CliError(f"--resources must be a JSON object such as '{{\"GPU_TYPE_A\": 2}}': "
                       f"{e}") from None
    if not isinstance(value, dict):
        raise CliError("--resources must be a JSON object of resource name to number, such as "
                       f"'{{\"GPU_TYPE_A\": 2}}'; got {type(value).__name__}")
    for name, amount in value.items():
        if name in ("CPU", "GPU"):
            raise CliError("Use the '--num-cpus' and '--num-gpus' options instead of 'CPU' and "
                           "'GPU' in '--resources'.")
        if not name:
            raise CliError("--resources: a resource name must not be empty")
        if isinstance(amount, bool) or not isinstance(amount, (int, float)):
            raise CliError(f"--resources: the amount of {name!r} must be a number, got "
                           f"{json.dumps(amount)}")
        if not math.isfinite(amount) or amount < 0:
            raise CliError(f"--resources: the amount of {name!r} must be a non-negative number, "
                           f"got {amount}")
    return value


# ---------------------------------------------------------------- start

def _port_owner(node, port):
    """The session of a live node of this user that listens on `port`, if any."""
    for d, info in _live_sessions(node):
        if info["port"] == port:
            return d
    return None


def _check_listen(host, port):
    """Fail clearly if a TCP listener could not bind host:port right now."""
    import errno

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise CliError(f"--node-ip-address {host!r} is not a usable address: {e}") from None
    family, _type, _proto, _name, addr = infos[0]
    s = socket.socket(family, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(addr)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise CliError(f"Port {port} on {host} is already in use by another program. "
                           "Choose another port with --port.") from None
        if e.errno == errno.EACCES:
            return  # let the daemon say what it cannot do
        raise CliError(f"Cannot listen on {host}:{port}: {e.strerror}"
                       + (" (is --node-ip-address an address of this machine?)"
                          if e.errno == errno.EADDRNOTAVAIL else "")) from None
    finally:
        s.close()


def _told_host(asked, info):
    """The address the daemon tells other nodes: --node-ip-address, unless
    that is 0.0.0.0 / ::, for which the daemon picked a real address of
    this machine (the default route's); say so, as Ray users often pass
    0.0.0.0 meaning "reachable from anywhere"."""
    host = info.get("host") or asked
    if host != asked:
        print(f"Warning: --node-ip-address {asked} listens on every interface of this "
              f"machine; other nodes reach it at {host}. Pass the address they should "
              "use to silence this.", file=sys.stderr)
    return host


def _start_detached(node, **kw):
    """node.start(detach=True) with the daemon's stdout/stderr sent to a file.

    A detached daemon must not keep the terminal's (or a caller's pipe's)
    stdout/stderr open: whoever reads our output would wait for the daemon to
    exit.  What it prints while starting goes to a file that we show if it
    fails; later it lands in <session>/logs/mantad.out.
    """
    out_path = node.root_paths()["start_output"]
    out_fd = os.open(out_path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        os.dup2(out_fd, 1)
        os.dup2(out_fd, 2)
        try:
            result = node.start(embedded=False, head=True, detach=True, **kw)
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
    except BaseException as e:
        os.lseek(out_fd, 0, os.SEEK_SET)
        said = os.read(out_fd, 1 << 16).decode(errors="replace").strip()
        os.close(out_fd)
        os.unlink(out_path)
        if isinstance(e, Exception):
            raise CliError(f"{said}\n({e})" if said else f"{e}") from None
        raise
    finally:
        for fd in saved:
            os.close(fd)
    session_dir = result[2]
    try:
        os.replace(out_path, node.session_paths(session_dir)["out"])
    except OSError:
        try:
            os.unlink(out_path)
        except OSError:
            pass
    os.close(out_fd)
    return result


def _parse_address(text):
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) <= 65535:
        raise CliError(f"--address must be the head node's HOST:PORT, got {text!r}", EXIT_USAGE)
    return host, int(port)


def _check_head_reachable(address):
    """Fail clearly if nothing listens at the head's address."""
    host, port = _parse_address(address)
    try:
        socket.create_connection((host, port), timeout=5).close()
    except OSError as e:
        raise CliError(f"No manta head node answers at {address} ({e.strerror or e}). Start "
                       f"one with `manta start --head --port {port}`, or check the address."
                       ) from None


def _cluster_token(node, address):
    tok = os.environ.get("MANTA_CLUSTER_TOKEN")
    if tok is None:
        try:
            tok = node.token_for(address)
        except ConnectionError as e:
            raise CliError(str(e)) from None
    if len(tok) != 64 or any(c not in "0123456789abcdefABCDEF" for c in tok):
        raise CliError("MANTA_CLUSTER_TOKEN must hold the cluster token: the 64 hex digits "
                       "in the head node's <session>/token file.")
    return tok


def cmd_start(args):
    if args.head and args.address is not None:
        raise CliError("--head starts a new cluster and --address joins an existing one: "
                       "pass only one of them.", EXIT_USAGE)
    if not args.head and args.address is None:
        raise CliError("Nothing to start: pass --head to start the head node of a new cluster "
                       "(`manta start --head`), or --address HOST:PORT to join the cluster "
                       "whose head is there.", EXIT_USAGE)
    if args.address is not None and args.port is not None:
        raise CliError("--port is the head node's port and goes with --head; a node that "
                       "joins a cluster picks a free port of its own.", EXIT_USAGE)
    resources = parse_resources(args.resources)
    node = _node()
    if args.head:
        return _start_head(node, args, resources)
    return _start_joining(node, args, resources)


def _start_head(node, args, resources):
    port = DEFAULT_PORT if args.port is None else args.port
    owner = _port_owner(node, port) if port else None
    if owner:
        raise CliError(f"A manta node of this user already listens on port {port} "
                       f"(session {owner}). Stop it with `manta stop`, or choose another "
                       "port with --port.")
    _check_listen(args.node_ip_address, port)
    _sock, pid, session_dir, port, _proc = _start_detached(
        node, port=port, host=args.node_ip_address, num_cpus=args.num_cpus,
        num_gpus=args.num_gpus, resources=resources,
        object_store_memory=args.object_store_memory)
    info = node.read_info(session_dir) or {}
    host = _told_host(args.node_ip_address, info)
    address = f"{host}:{port}"
    paths = node.session_paths(session_dir)
    token = paths["token"]
    print(f"""\
--------------------
Manta runtime started.
--------------------

Node {info.get('node_id', '?')} (head), pid {pid}
  address   {address}
  session   {session_dir}
  logs      {paths['logs']}
  token     {token} (readable by you only)

Next steps
  To add another node to this cluster, run on this machine:
    manta start --address='{address}'
  or anywhere that reaches {address} (it must listen on an address other nodes
  can reach: see --node-ip-address), with the cluster token:
    MANTA_CLUSTER_TOKEN=$(cat {token}) manta start --address='{address}'

  To connect to this manta cluster from Python on this machine:
    import manta
    manta.init(address="auto")        # or manta.init(address="{address}")

  To see the state of the cluster:
    manta status

  To terminate the manta runtime:
    manta stop""")
    return EXIT_OK


def _start_joining(node, args, resources):
    address = args.address
    _check_head_reachable(address)
    token = _cluster_token(node, address)
    _check_listen(args.node_ip_address, 0)
    _sock, pid, session_dir, port, _proc = _start_detached(
        node, join=address, token=token, host=args.node_ip_address, num_cpus=args.num_cpus,
        num_gpus=args.num_gpus, resources=resources,
        object_store_memory=args.object_store_memory)
    info = node.read_info(session_dir) or {}
    host = _told_host(args.node_ip_address, info)
    logs = node.session_paths(session_dir)["logs"]
    print(f"""\
--------------------
Manta runtime started.
--------------------

Node {info.get('node_id', '?')}, pid {pid}, joined the cluster at {address}
  address   {host}:{port}
  session   {session_dir}
  logs      {logs}

Next steps
  Drivers connect to the head node:
    import manta
    manta.init(address="{address}")

  To see the state of the cluster:
    manta status

  To terminate the manta runtime (every node of this user on this machine):
    manta stop""")
    return EXIT_OK


# ---------------------------------------------------------------- stop

def _live_sessions(node):
    """The running nodes (a zombie daemon does not run: priv.h)."""
    return node.live_sessions()


def _reap_dead_sessions(node):
    """Remove the sessions whose daemon is dead (the leftovers of a kill -9),
    killing the workers they recorded. Returns how many were removed."""
    removed = 0
    for d in node.session_dirs():
        pids = node.read_pids(node.session_paths(d)["daemon_pid"])
        if not pids or node.proc_runs(*pids[0]) or not node.private_session(d):
            continue  # being created right now, a kept log folder, alive, or not ours
        node.reap_session(d)
        removed += 1
    return removed


def cmd_stop(args):
    node = _node()
    timeout = 0.0 if args.force else args.grace_period
    daemons = [i for _d, i in _live_sessions(node)]
    node.stop_all(timeout=timeout)
    stopped = len(daemons)
    # A daemon that had to be killed leaves its session behind; so does one
    # killed earlier with kill -9.  Its workers die with it; clean the rest.
    deadline = time.monotonic() + 2.0
    while any(node.daemon_runs(i) for i in daemons) and time.monotonic() < deadline:
        time.sleep(0.02)
    reaped = _reap_dead_sessions(node)
    if reaped > len(daemons):
        n = reaped - len(daemons)
        print(f"Removed {n} session director{'ies' if n != 1 else 'y'} of nodes that had died.")
    if stopped:
        print(f"Stopped {stopped} manta node{'s' if stopped != 1 else ''}.")
    else:
        print("Did not find any active manta nodes.")
    return EXIT_OK


# ---------------------------------------------------------------- status

def _gib(nbytes):
    return f"{nbytes / (1 << 30):.2f}"


def _size(nbytes):
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if nbytes >= 1 << shift:
            return f"{nbytes / (1 << shift):.2f} {unit}"
    return f"{int(nbytes)} B"


def _num(x):
    return f"{x:g}" if float(x).is_integer() else f"{x:.4g}"


def _node_lines(n):
    total, avail = n.get("total", {}), n.get("available", {})

    def used(key):
        return total.get(key, 0.0) - avail.get(key, 0.0)

    rows = []
    for key in ("CPU", "GPU"):
        rows.append((key, f"{_num(used(key))}/{_num(total.get(key, 0.0))}"))
    rows.append(("memory", f"{_gib(used('memory'))}/{_gib(total.get('memory', 0.0))} GiB"))
    for key in sorted(total):
        if key in ("CPU", "GPU", "memory", "object_store_memory") or key.startswith("node:"):
            continue
        rows.append((key, f"{_num(used(key))}/{_num(total[key])}"))
    address = n.get("endpoint") or n.get("address", "")  # tcp:HOST:PORT, else the socket
    if address.startswith("tcp:"):
        address = address[len("tcp:"):]
    lines = [f"Node {n.get('node_id', '?')}{' (head)' if n.get('is_head') else ''}",
             f"  {'address':<16}{address}",
             "  Resources (used/total)"]
    width = max(14, max(len(k) for k, _ in rows) + 2)
    lines += [f"    {k:<{width}}{v}" for k, v in rows]
    lines += [
        f"  {'object store':<16}{_size(n.get('store_used', 0))} used of "
        f"{_size(n.get('store_capacity', 0))}, {n.get('num_objects', 0)} objects",
        f"  {'workers':<16}{n.get('num_workers', 0)}",
        f"  {'drivers':<16}{n.get('num_drivers', 0)}",
        f"  {'pending leases':<16}{n.get('pending_leases', 0)}",
    ]
    if not n.get("alive", True):
        lines.insert(1, "  (dead)")
    return lines


def cmd_status(args):
    node = _node()
    if args.address:
        try:
            sock = node.find(args.address)
        except ValueError as e:
            raise CliError(str(e), EXIT_USAGE) from None
        except ConnectionError:
            print("No cluster is running" + ("." if args.address == "auto" else
                                             f" at {args.address}."))
            return EXIT_ERROR
        sessions = [(d, i) for d, i in _live_sessions(node) if i["socket"] == sock]
        if not sessions:
            sessions = [(node.session_of(sock), {"socket": sock})]
    else:
        sessions = _live_sessions(node)
    # Ask heads first: a head knows every node of its cluster (dead ones too),
    # a node that joined knows little about the others.
    sessions.sort(key=lambda s: not s[1].get("head", True))
    if not sessions:
        print("No cluster is running.")
        return EXIT_ERROR
    ext = _ext()
    # Each node on this machine describes itself (workers, drivers and store
    # use are not in its reports to the head); the head adds the nodes of its
    # cluster that are elsewhere or dead.
    views, own, errors = [], {}, []
    for d, info in sessions:
        try:
            status = ext.status_from_bytes(ext.cli_status(info["socket"]))
        except Exception as e:  # the node may be stopping right now
            errors.append(f"{d}: no answer ({e})")
            continue
        views.append(status)
        for n in status.get("nodes", []):
            if n.get("node_id") == info.get("node_id"):
                own[n["node_id"]] = n
    blocks, seen, dead = [], set(), 0
    for status in views:
        for n in status.get("nodes", []):
            if n.get("node_id") in seen:
                continue
            seen.add(n.get("node_id"))
            if n.get("alive", True):
                n = own.get(n.get("node_id"), n)
            dead += not n.get("alive", True)
            blocks.append(_node_lines(n))
    if not blocks:
        for e in errors:
            print(e, file=sys.stderr)
        print("No cluster is running.")
        return EXIT_ERROR
    print(f"======== manta status: {time.strftime('%Y-%m-%d %H:%M:%S')} ========")
    print(f"{len(blocks)} node{'s' if len(blocks) != 1 else ''}"
          + (f" ({dead} dead)" if dead else ""))
    for b in blocks:
        print()
        print("\n".join(b))
    for e in errors:
        print(e, file=sys.stderr)
    return EXIT_OK


# ---------------------------------------------------------------- microbenchmark

def cmd_microbenchmark(args):
    try:
        from manta._private import microbenchmark
    except ImportError as e:
        raise CliError(f"cannot load manta ({e}); is manta built and installed?") from None
    return microbenchmark.run(args)


# ---------------------------------------------------------------- parser

def build_parser():
    from manta import __version__ as version

    p = argparse.ArgumentParser(
        prog="manta",
        description="Start, inspect and stop manta nodes on this machine. A Python program "
                    "connects to a started node with manta.init(address=\"auto\"); "
                    "manta.init() without an address starts a private node instead.",
        epilog="Run 'manta COMMAND --help' for the options of a command.")
    p.add_argument("--version", action="version", version=f"manta {version}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    s = sub.add_parser(
        "start", help="start a node that runs until `manta stop`",
        description="Start a manta node that runs in the background until `manta stop`: "
                    "the head of a new cluster (--head), or a node that joins the cluster "
                    "whose head is at --address. Programs on this machine connect to the "
                    "head with manta.init(address=\"auto\") or "
                    "manta.init(address=\"IP:PORT\").",
        epilog="examples: manta start --head --port 6379 --num-cpus 4; "
               "manta start --address=127.0.0.1:6379 --resources '{\"accel\": 2}'")
    s.add_argument("--head", action="store_true",
                   help="start the head node of a new cluster (it holds the control store)")
    s.add_argument("--address", metavar="HOST:PORT",
                   help="join the cluster whose head node is at HOST:PORT; the cluster token "
                        "is found on this machine or read from MANTA_CLUSTER_TOKEN")
    s.add_argument("--port", type=_port,
                   help=f"TCP port of the head node (default {DEFAULT_PORT}; 0 picks a free "
                        "port); a node that joins picks a free port")
    s.add_argument("--node-ip-address", metavar="IP", default=DEFAULT_HOST,
                   help=f"IP address the node listens on (default {DEFAULT_HOST}: only this "
                        "machine can reach it)")
    s.add_argument("--num-cpus", type=_amount("--num-cpus"), metavar="N",
                   help="CPUs the node offers to tasks (default: the CPUs this process may use)")
    s.add_argument("--num-gpus", type=_amount("--num-gpus"), metavar="N",
                   help="GPUs the node offers to tasks (default 0)")
    s.add_argument("--resources", metavar="JSON",
                   help="custom resources as a JSON object of name to amount, "
                        "e.g. '{\"accel\": 2}'")
    s.add_argument("--object-store-memory", type=_bytes, metavar="BYTES",
                   help="size of the shared-memory object store in bytes "
                        "(default: 30%% of the memory available, within the "
                        "container's limit if there is one)")
    s.set_defaults(func=cmd_start)

    t = sub.add_parser(
        "stop", help="stop every manta node of this user on this machine",
        description="Stop every manta node of this user on this machine, with its workers "
                    "(including nodes that manta.init() started for running programs), and "
                    "remove the session directories of nodes that were killed. Processes "
                    "are found by the pids their nodes recorded, never by name.")
    t.add_argument("-f", "--force", action="store_true",
                   help="kill the nodes at once instead of letting them stop cleanly")
    t.add_argument("--grace-period", type=_amount("--grace-period"), default=10, metavar="S",
                   help="seconds to wait for a node to stop before killing it (default 10)")
    t.set_defaults(func=cmd_stop)

    st = sub.add_parser(
        "status", help="show the nodes, their resources, objects and workers",
        description="Show every running manta node of this user on this machine (or the one "
                    "at --address): resources used/total, object store use, workers, "
                    "drivers and pending leases. Exits with 1 when no node is running.")
    st.add_argument("--address", metavar="auto|HOST:PORT",
                    help="only the cluster at this address ('auto': the newest started "
                         "with `manta start`)")
    st.set_defaults(func=cmd_status)

    mb = sub.add_parser(
        "microbenchmark", help="run the rows of `ray microbenchmark` (and compare with Ray)",
        description="Run the rows of `ray microbenchmark` (same names and shapes) on manta, "
                    "each in a process and local cluster of its own, then the C API rows "
                    "beside the machine's floor measured in the same run. With --vs-ray, run "
                    "every row on Ray as well, alternating manta and Ray row by row, and print "
                    "manta ops/s, Ray ops/s and their ratio.",
        epilog="example: manta microbenchmark --vs-ray --rows 'actor'")
    from manta._private.microbenchmark import add_arguments
    add_arguments(mb)
    mb.set_defaults(func=cmd_microbenchmark)
    return p


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except CliError as e:
        print(f"manta {args.command}: error: {e}", file=sys.stderr)
        return e.code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
