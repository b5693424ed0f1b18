"""The Python worker process: connects to its node, then runs the tasks
pushed to it until the node stops it.  A worker leased for an actor runs
its constructor, then its method calls: one at a time in arrival order, on
several threads (max_concurrency > 1), or as coroutines on one asyncio loop
(an async actor)."""

import atexit
import inspect
import json
import os
import pickle
import sys
import threading
import time
import traceback

from manta import _manta
from manta import exceptions as exc
from manta._private import worker as _worker
from manta._private.serialization import ErrorValue

TASK_OK, TASK_APP_ERROR, TASK_SYSTEM_ERROR, TASK_CANCELLED, TASK_ACTOR_DEAD = 0, 1, 2, 4, 5

_functions = {}
_jobs_seen = set()
_ip = "127.0.0.1"

# The actor this worker runs, once its constructor ran.
_actor = None
_actor_name = None
_actor_async = False
_actor_id_hex = None
_exiting = threading.Event()


def current_actor():
    return _actor


def actor_is_async():
    return _actor_async


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
    if cfg.get("namespace") is not None:
        _worker.state.namespace = cfg["namespace"]


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


def _retryable(task, e):
    """Whether retry_exceptions lets the submitter retry on `e`."""
    spec = task.retry_exceptions
    if not spec:
        return False
    if spec == b"*":
        return True
    try:
        return isinstance(e, pickle.loads(spec))
    except Exception:
        return False


def _fail(task, name, e):
    """Store the task's exception as every return."""
    err = exc.RayTaskError.from_exception(
        e, name, pid=os.getpid(), ip=_ip,
        actor_repr=f"{_actor_name}" if _actor is not None else None,
        actor_id=_actor_id_hex)
    try:
        task.set_error(err)
    except Exception:
        task.set_error(exc.RayTaskError(name, traceback.format_exc(), exc.RayError(str(e)),
                                        pid=os.getpid(), ip=_ip))


def _begin(task):
    gpu_ids = task.gpu_ids
    info = _worker._TaskInfo(task.task_id, task.name, task.resources, gpu_ids,
                             job_id=task.job_id, actor_id=_actor_id_hex)
    info.cancel_check = lambda: task.cancel_requested
    _worker.set_current_task(info)
    saved = os.environ.get("CUDA_VISIBLE_DEVICES") if gpu_ids else None
    if gpu_ids:
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in gpu_ids)
    return gpu_ids, saved


def _end(gpu_ids, saved):
    _worker.set_current_task(None)
    if gpu_ids:
        if saved is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = saved


def _target(task):
    """(callable, name for errors) of a task."""
    kind = task.kind
    if kind == _manta.TASK_ACTOR_CALL:
        if _actor is None:
            raise RuntimeError("this worker runs no actor")
        return getattr(_actor, task.method), f"{_actor_name}.{task.method}"
    return _load_function(task), task.name


def _run(task):
    """Run one task on this thread and send its reply."""
    if task.kind == _manta.TASK_ACTOR_CREATE:
        _create_actor(task)
        return
    gpu_ids, saved = _begin(task)
    name = task.name
    status = TASK_OK
    try:
        _setup_job(task.job_id)
        fn, name = _target(task)
        args, kwargs = _arguments(task)
        _store_returns(task, fn(*args, **kwargs))
    except KeyboardInterrupt:
        # cancel()'s interrupt, or the task's own: Ray reports both as
        # TaskCancelledError.
        status = TASK_CANCELLED
    except BaseException as e:  # noqa: BLE001 - every task error goes to the caller
        if _is_exit(e):
            _end(gpu_ids, saved)
            _exit_actor(task)
            return
        _exit_if_system_exit(e)
        _fail(task, name, e)
        if _retryable(task, e):
            task.set_retryable()
        status = TASK_APP_ERROR
    finally:
        _end(gpu_ids, saved)
    task.finish(status)


def _is_exit(e):
    from manta.actor import _ActorExit
    return isinstance(e, (_ActorExit, exc.AsyncioActorExit))


def _exit_if_system_exit(e):
    """sys.exit() in a task, a method or a constructor ends the worker
    process, as in Ray: its task gets no reply, so the submitter sees the
    worker die (WorkerCrashedError, retried per max_retries; an actor
    restarts per max_restarts, its call fails with ActorDiedError)."""
    if not isinstance(e, SystemExit):
        return
    code = e.code
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    _exiting.set()
    _shutdown_process(code)


def _exit_actor(task):
    """exit_actor(): this call's caller sees the actor die; queued calls
    fail; atexit handlers run; the process ends."""
    _exiting.set()
    _manta.actor_exit()
    task.finish(TASK_ACTOR_DEAD, "The actor exited intentionally by calling exit_actor().")
    _shutdown_process()


def _shutdown_process(code=0):
    try:
        atexit._run_exitfuncs()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


# ---------------------------------------------------------------- actors

def _create_actor(task):
    global _actor, _actor_name, _actor_async, _actor_id_hex
    gpu_ids, saved = _begin(task)
    status = TASK_OK
    name = task.name
    try:
        _setup_job(task.job_id)
        cls = _load_function(task)
        _actor_name = getattr(cls, "__name__", name)
        _actor_id_hex = task.actor_id.hex()
        args, kwargs = _arguments(task)
        _actor = cls(*args, **kwargs)
        _actor_async = task.is_async
        task.set_return(0, None)
    except BaseException as e:  # noqa: BLE001 - the constructor's error fails the actor
        _exit_if_system_exit(e)
        _fail(task, f"{_actor_name or name}.__init__", e)
        status = TASK_APP_ERROR
    finally:
        _end(gpu_ids, saved)
    conc = task.max_concurrency
    task.finish(status)
    if status == TASK_OK:
        _serve_actor(conc)


def _serve_threads(n):
    """max_concurrency > 1: more threads take calls from the same queue."""
    for _ in range(n - 1):
        threading.Thread(target=_loop, daemon=True, name="manta-actor").start()


def _serve_actor(max_concurrency):
    if _actor_async:
        _serve_async(max(1, max_concurrency))
        _shutdown_process()
    if max_concurrency > 1:
        _serve_threads(max_concurrency)


def _serve_async(max_concurrency):
    """Run calls as coroutines on one asyncio loop, up to max_concurrency.

    The loop watches an fd that the runtime makes readable when calls are
    queued, so a call reaches its coroutine without a hand-off between
    threads; cancel() of a running call cancels its asyncio task."""
    import asyncio

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    sem = asyncio.Semaphore(max_concurrency)
    running = {}          # manta task -> asyncio task, for cancel()
    cancels_seen = [0]
    inflight = [0]        # calls taken and not finished

    async def run(task):
        async with sem:
            gpu_ids, saved = _begin(task)
            status, error = TASK_OK, None
            name = task.name
            try:
                running[task] = asyncio.current_task()
                if task.cancel_requested:
                    raise asyncio.CancelledError
                fn, name = _target(task)
                args, kwargs = _arguments(task)
                result = fn(*args, **kwargs)
                if inspect.isawaitable(result):
                    result = await result
                _store_returns(task, result)
            except BaseException as e:  # noqa: BLE001 - exit first, then task errors
                if _is_exit(e):
                    _end(gpu_ids, saved)
                    running.pop(task, None)
                    _exiting.set()
                    _manta.actor_exit()
                    task.finish(TASK_ACTOR_DEAD,
                                "The actor exited intentionally by calling exit_actor().")
                    loop.stop()
                    return
                _exit_if_system_exit(e)
                if isinstance(e, asyncio.CancelledError) and task.cancel_requested:
                    status, error = TASK_CANCELLED, f"{name} was cancelled"
                elif isinstance(e, KeyboardInterrupt):
                    status, error = TASK_CANCELLED, f"{name} was interrupted"
                else:
                    _fail(task, name, e)
                    status = TASK_APP_ERROR
            finally:
                _end(gpu_ids, saved)
                running.pop(task, None)
            task.finish(status, error)
        inflight[0] -= 1
        if inflight[0] == 0:
            loop.call_soon(linger)

    def start(task):
        inflight[0] += 1
        loop.create_task(run(task))

    def linger():
        """Nothing to run: wait a moment for the next call on this thread.
        A caller that waits for each reply sends its next call right away,
        and taking it here saves waking this thread through the fd."""
        if inflight[0] or loop._ready or _exiting.is_set():
            return
        task = _manta.next_task(0.0005)
        if task is not None:
            start(task)

    def ready():
        stop, cancels = _manta.task_ready()
        if stop or _exiting.is_set():
            loop.stop()
            return
        if cancels != cancels_seen[0]:
            cancels_seen[0] = cancels
            for task, fut in list(running.items()):
                if task.cancel_requested:
                    fut.cancel()
        while True:
            task = _manta.next_task(0.0)
            if task is None:
                return
            start(task)

    loop.add_reader(_manta.task_fd(), ready)
    loop.call_soon(ready)
    loop.run_forever()


# ---------------------------------------------------------------- main loop

def _loop():
    while not _exiting.is_set():
        task = _manta.next_task(-1.0)
        if task is None:
            break
        _run(task)
        del task


def _on_sigint(signum, frame):
    """cancel(): the runtime sends SIGINT to interrupt a running task."""
    task = _worker.current_task()
    if task is not None and getattr(task, "cancel_check", lambda: False)():
        raise KeyboardInterrupt


def main():
    import signal

    # Run as `python -m`, this module is __main__; make `import` find this
    # copy (exit_actor() and friends read the actor state kept here).
    sys.modules.setdefault("manta._private.worker_main", sys.modules[__name__])

    signal.signal(signal.SIGINT, _on_sigint)
    _die_with_node()
    if os.environ.get("MANTA_TEST_WORKER_HANG") == "1":
        # Tests of the node's start timeout: a worker that never registers.
        time.sleep(3600)
    _manta.connect(os.environ["MANTA_NODE_SOCKET"], "worker",
                   worker_id=os.environ["MANTA_WORKER_ID"])
    _worker._connected(_worker.WORKER)
    _loop()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
