"""The Python worker process: connects to its node, then runs the tasks
pushed to it until the node stops it."""

import json
import os
import pickle
import socket
import sys
import traceback

from manta import _manta
from manta import exceptions as exc
from manta._private import worker as _worker
from manta._private.serialization import ErrorValue

TASK_OK, TASK_APP_ERROR, TASK_SYSTEM_ERROR = 0, 1, 2

_functions = {}
_jobs_seen = set()
_ip = "127.0.0.1"


def _die_with_node():
    """Exit if the node daemon goes away, even if it is killed."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
    except Exception:
        pass
    want = os.environ.get("MANTA_NODE_PID")
    if want and os.getppid() != int(want):
        os._exit(0)


def _setup_job(job_id):
    """Make this worker import what its driver can (sys.path, cwd)."""
    if job_id in _jobs_seen:
        return
    _jobs_seen.add(job_id)
    raw = _manta.kv_get("job", str(job_id).encode(), 10.0)
    if not raw:
        return
    cfg = json.loads(raw)
    for p in reversed(cfg.get("sys_path", [])):
        if p not in sys.path:
            sys.path.insert(1, p)
    cwd = cfg.get("cwd")
    if cwd and os.path.isdir(cwd):
        try:
            os.chdir(cwd)
        except OSError:
            pass


def _load_function(task):
    fn_id = task.fn_id
    fn = _functions.get(fn_id)
    if fn is None:
        body = _manta.fn_get(fn_id, 30.0)
        if body is None:
            raise RuntimeError(f"function {task.name} was never registered")
        fn = pickle.loads(body)
        _functions[fn_id] = fn
    return fn


def _arguments(task):
    tmpl = task.arg(0)
    if type(tmpl) is ErrorValue:
        raise tmpl.as_exception()
    args, kwargs, slots = tmpl
    if slots:
        args = list(args)
        kwargs = dict(kwargs) if kwargs else {}
        for i, slot in enumerate(slots):
            v = task.arg(i + 1)
            if type(v) is ErrorValue:
                raise v.as_exception()
            if isinstance(slot, int):
                args[slot] = v
            else:
                kwargs[slot] = v
    return args, kwargs or {}


def _store_returns(task, result):
    n = task.num_returns
    if n == 1:
        task.set_return(0, result)
    elif n > 1:
        try:
            values = list(result)
        except TypeError:
            values = None
        if values is None or len(values) != n:
            raise ValueError(
                f"Task returned {len(values) if values is not None else 'a non-iterable'} "
                f"objects, but num_returns={n}.")
        for i, v in enumerate(values):
            task.set_return(i, v)


def _run(task):
    name = task.name
    gpu_ids = task.gpu_ids
    saved_cuda = os.environ.get("CUDA_VISIBLE_DEVICES")
    try:
        _setup_job(task.job_id)
        fn = _load_function(task)
        args, kwargs = _arguments(task)
        _worker.set_current_task(_worker._TaskInfo(task.task_id, name, task.resources, gpu_ids,
                                                   job_id=task.job_id))
        if gpu_ids:
            os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in gpu_ids)
        result = fn(*args, **kwargs)
        _store_returns(task, result)
        status = TASK_OK
    except Exception as e:  # noqa: BLE001 - every task error goes to the caller
        err = exc.RayTaskError.from_exception(e, name, pid=os.getpid(), ip=_ip)
        try:
            task.set_error(err)
        except Exception:
            task.set_error(exc.RayTaskError(name, traceback.format_exc(), exc.RayError(str(e)),
                                            pid=os.getpid(), ip=_ip))
        status = TASK_APP_ERROR
    finally:
        _worker.set_current_task(None)
        if gpu_ids:
            if saved_cuda is None:
                os.environ.pop("CUDA_VISIBLE_DEVICES", None)
            else:
                os.environ["CUDA_VISIBLE_DEVICES"] = saved_cuda
    task.finish(status)


def main():
    _die_with_node()
    _manta.connect(os.environ["MANTA_NODE_SOCKET"], "worker",
                   worker_id=os.environ["MANTA_WORKER_ID"])
    _worker._connected(_worker.WORKER)
    while True:
        task = _manta.next_task(-1.0)
        if task is None:
            break
        _run(task)
        del task
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
