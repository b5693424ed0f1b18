"""Another local user cannot steer this user's manta: a session root, a
session directory or a `latest` link that is not private to this user is
refused, and `manta stop` signals a recorded pid only while it is still the
process that was recorded (its start time and program)."""

import os
import signal
import subprocess
import sys

import pytest

import manta
from manta._private import node as _node
from manta.scripts import cli

NOBODY = 65534
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="giving a directory away needs root")


@pytest.fixture
def root(tmp_path, monkeypatch):
    """A session root of this test's own."""
    r = tmp_path / "root"
    r.mkdir(mode=0o700)
    monkeypatch.setenv("MANTA_TEMP_DIR", str(r))
    return r


def _start_time(pid):
    """Field 22 of /proc/<pid>/stat (read here, not by the code under test)."""
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rpartition(")")[2].split()[19])


def _fake_session(parent, name, pid, start, exe, mode=0o700):
    """A session directory whose info file names `pid` as its daemon."""
    d = parent / name
    d.mkdir(mode=mode)
    os.chmod(d, mode)
    (d / "info").write_text(f"node_id=00\nsocket={d}/daemon.sock\nhost=127.0.0.1\nport=-1\n"
                            f"head=1\npid={pid}\nstart={start}\nexe={exe}\n")
    (d / "daemon.pid").write_text(f"{pid} {start}\n")
    (d / "workers.pid").write_text(f"{pid} {start}\n")
    return d


@root_only
def test_foreign_root_is_refused(tmp_path, monkeypatch):
    hostile = tmp_path / "hostile"
    hostile.mkdir(mode=0o700)
    os.chown(hostile, NOBODY, NOBODY)
    monkeypatch.setenv("MANTA_TEMP_DIR", str(hostile))
    with pytest.raises(PermissionError, match="owned by uid 65534"):
        manta.init(address="auto")
    assert not manta.is_initialized()


def test_root_link_is_refused(tmp_path, monkeypatch):
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(real)
    monkeypatch.setenv("MANTA_TEMP_DIR", str(tmp_path / "link"))
    with pytest.raises(PermissionError, match="symbolic link"):
        manta.init(address="auto")


@root_only
def test_latest_to_foreign_session_is_refused(root):
    d = _fake_session(root, "s-hostile", os.getpid(), _start_time(os.getpid()),
                      sys.executable)
    os.chown(d, NOBODY, NOBODY)
    (root / "latest").symlink_to(d)
    with pytest.raises(ConnectionError, match="owned by uid 65534"):
        manta.init(address="auto")


def test_latest_outside_root_is_refused(root, tmp_path):
    elsewhere = _fake_session(tmp_path, "s-elsewhere", os.getpid(),
                              _start_time(os.getpid()), sys.executable)
    (root / "latest").symlink_to(elsewhere)
    with pytest.raises(ConnectionError, match="points outside"):
        manta.init(address="auto")


def test_latest_to_open_session_is_refused(root):
    d = _fake_session(root, "s-open", os.getpid(), _start_time(os.getpid()),
                      sys.executable, mode=0o755)
    (root / "latest").symlink_to(d)
    with pytest.raises(ConnectionError, match="mode 0755"):
        manta.init(address="auto")


@pytest.fixture
def sleeper():
    proc = subprocess.Popen(["sleep", "60"])
    yield proc
    proc.kill()
    proc.wait()


@pytest.mark.parametrize("record", ["start_time", "program", "no_start_time"])
def test_stop_leaves_unrelated_process_alone(root, sleeper, record, capsys):
    """A session's files name a process that is not its daemon: a pid reused
    by another program (same pid, other start time), a process that is not
    mantad (right start time, other program), or a record without a start
    time.  `manta stop` signals none of them."""
    start = _start_time(sleeper.pid)
    assert start > 0
    start, exe = {"start_time": (start + 1, "/bin/sleep"),
                  "program": (start, _node.mantad_path()),
                  "no_start_time": ("", "/bin/sleep")}[record]
    _fake_session(root, "s-fake", sleeper.pid, start, exe)
    assert cli.main(["stop", "--grace-period", "0"]) == 0
    assert sleeper.poll() is None, "manta stop signalled a process that is not its daemon"
    assert "Did not find any active manta nodes." in capsys.readouterr().out


def test_stop_signals_the_recorded_daemon(root, sleeper):
    """The other side: the very process recorded (pid, start time, program)
    is signalled."""
    exe = os.readlink(f"/proc/{sleeper.pid}/exe")
    _fake_session(root, "s-real", sleeper.pid, _start_time(sleeper.pid), exe)
    assert _node.stop_all(timeout=5) == 1
    assert sleeper.wait(10) == -signal.SIGTERM


@root_only
def test_daemon_refuses_a_session_dir_of_another_user(tmp_path):
    session = tmp_path / "s-theirs"
    session.mkdir(mode=0o755)
    os.chown(session, NOBODY, NOBODY)
    out = subprocess.run([_node.mantad_path(), "--session-dir", str(session)],
                         capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
    assert out.returncode == 1
    assert "owned by uid 65534" in out.stderr
    st = session.stat()
    assert (st.st_uid, st.st_mode & 0o777) == (NOBODY, 0o755)  # left as it was
    assert os.listdir(session) == []
