"""The fork server of a node's Python workers.

Starting an interpreter and importing manta costs about 0.1 s of CPU; a
fork of a process that has done so once costs about a millisecond.  The
node starts one zygote, which imports what a worker needs and then forks a
worker for each request on its control socket (fd 3, SOCK_SEQPACKET):

    node -> zygote   b"F" + worker id (hex), with the child's stdout and
                     stderr write ends attached (SCM_RIGHTS)
    zygote -> node   b"P<worker id> <pid>"   the child's pid
                     b"X<pid> <code>"        a child exited (code, or -signal)

The zygote has no threads and no connection, so forking it is safe.  It
dies with the node (PR_SET_PDEATHSIG) and its children die with it.
"""

import gc
import os
import select
import signal
import socket
import sys


def _pdeathsig():
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
    except Exception:
        pass


def _child(ctl, wake_r, wake_w, wid, out_fd, err_fd, worker_main, zygote_pid):
    """Runs in the forked child: become a worker."""
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        ctl.close()
        os.close(wake_r)
        os.close(wake_w)
        os.dup2(out_fd, 1)
        os.dup2(err_fd, 2)
        os.close(out_fd)
        os.close(err_fd)
        os.environ["MANTA_WORKER_ID"] = wid
        # The zygote is our parent: die with it (it dies with the node).  Its
        # pid comes from before the fork: if it died since, getppid() would
        # name init, and the worker would outlive it.
        os.environ["MANTA_NODE_PID"] = str(zygote_pid)
        worker_main.main()
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        os._exit(1)


def _exit_code(status):
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def main():
    _pdeathsig()
    want = os.environ.get("MANTA_NODE_PID")
    if want and os.getppid() != int(want):
        os._exit(0)
    # What every worker imports, done once here.
    from manta._private import worker_main

    # Keep what was imported out of the children's garbage collections: a
    # collection writes to every object it visits, copying the shared pages.
    gc.collect()
    gc.freeze()

    ctl = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET, fileno=3)
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *a: None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    children = set()
    zygote_pid = os.getpid()
    while True:
        try:
            ready, _, _ = select.select([ctl, wake_r], [], [])
        except InterruptedError:
            ready = []
        if wake_r in ready:
            try:
                os.read(wake_r, 512)
            except BlockingIOError:
                pass
        # Report every child that exited.
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            children.discard(pid)
            ctl.send(b"X%d %d" % (pid, _exit_code(status)))
        if ctl not in ready:
            continue
        try:
            msg, fds, _, _ = socket.recv_fds(ctl, 256, 2)
        except (BlockingIOError, InterruptedError):
            continue
        if not msg:
            os._exit(0)  # the node closed the socket
        if msg[:1] != b"F" or len(fds) != 2:
            for fd in fds:
                os.close(fd)
            continue
        wid = msg[1:].decode()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _child(ctl, wake_r, wake_w, wid, fds[0], fds[1], worker_main, zygote_pid)
        os.close(fds[0])
        os.close(fds[1])
        children.add(pid)
        ctl.send(b"P%s %d" % (wid.encode(), pid))


if __name__ == "__main__":
    main()
