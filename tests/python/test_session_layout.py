"""The session directory as Python sees it: every path and every parse comes
from the C side's one description of the layout (src/common/layout.h), so
what the daemon writes is what Python reads."""

import os

import manta
from manta import _manta, exceptions
from manta._private import node as _node


def _start_time(pid):
    """Field 22 of /proc/<pid>/stat (read here, not by the code under test)."""
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rpartition(")")[2].split()[19])


def test_what_the_daemon_writes_python_reads(cluster_factory):
    @manta.remote
    def pid():
        return os.getpid()

    ctx = cluster_factory(num_cpus=1)
    worker = manta.get(pid.remote(), timeout=60)
    d = ctx["session_dir"]
    paths = _node.session_paths(d)
    info = _node.read_info(d)
    assert info["socket"] == paths["socket"] and os.path.exists(paths["socket"])
    assert info["head"] is True and info["port"] == -1  # init() alone: no TCP port
    assert info["exe"] == os.path.realpath(_node.mantad_path())
    assert info["start"] == _start_time(info["pid"])
    assert _node.daemon_runs(info)
    assert info["node_id"] == manta.get_runtime_context().get_node_id()
    pids = dict(_node.session_pids(d))
    assert pids[info["pid"]] == info["start"] and pids[worker] == _start_time(worker)
    assert len(_node.read_token(d)) == 64
    assert d in _node.session_dirs()
    assert os.path.isdir(paths["workers_dir"]) and os.path.isdir(paths["logs"])
    me = _manta.info()["endpoint"]
    assert me.startswith("unix:" + paths["workers_dir"] + "/")
    assert paths["log"] in str(exceptions.WorkerCrashedError())  # this session's log


def test_malformed_files_are_not_taken_for_a_node(tmp_path):
    d = tmp_path / "s-bad"
    d.mkdir(mode=0o700)
    paths = _node.session_paths(str(d))
    good = (f"node_id=00\nsocket={paths['socket']}\nhost=127.0.0.1\nport=-1\nhead=1\n"
            f"pid={os.getpid()}\nstart={_start_time(os.getpid())}\nexe=/bin/x\n")
    for bad in (good.replace("head=1\n", ""),                       # a key missing
                good.replace("port=-1", "port=99999999999999999999"),  # out of range
                good.replace("host=127.0.0.1", "host=" + "h" * 300),  # longer than its field
                good + "pid=2\n"):                                   # a key twice
        with open(paths["info"], "w") as f:
            f.write(bad)
        assert _node.read_info(str(d)) is None
        try:
            _manta.read_info(str(d))
        except ValueError as e:
            assert str(e).startswith("info")
        else:
            raise AssertionError(f"accepted {bad!r}")
    with open(paths["workers_pid"], "w") as f:
        f.write(f"12\n3 4 5\n{'9' * 40} 1\n7 8\n")
    assert _node.read_pids(paths["workers_pid"]) == [(7, 8)]
    assert _node.read_pids(paths["daemon_pid"]) == []  # none


def test_error_messages_name_this_session_root(tmp_path, monkeypatch):
    """Where to look for logs follows MANTA_TEMP_DIR (the session root), not
    a fixed /tmp/manta-<uid>."""
    root = tmp_path / "root"
    monkeypatch.setenv("MANTA_TEMP_DIR", str(root))
    text = str(exceptions.WorkerCrashedError())
    assert str(root) in text, text
    assert _node.root_paths()["latest"] in text, text
