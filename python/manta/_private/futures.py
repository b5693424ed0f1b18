"""ObjectRef.future() and ``await ref``: one background thread per process
turns readiness notices from the runtime into resolved futures."""

import asyncio
import concurrent.futures
import itertools
import threading

from manta import _manta

_lock = threading.Lock()
_pending = {}  # token -> (ref, future)
_tokens = itertools.count(1)
_thread = None


def _resolve(ref, fut):
    from manta._private import worker as _worker

    if fut.done():
        return
    try:
        fut.set_result(_worker.get(ref))
    except BaseException as e:  # noqa: BLE001 - the future carries any failure
        fut.set_exception(e)


def _run():
    global _thread
    while True:
        tokens = _manta.next_ready(0.5)
        if tokens is None:
            with _lock:
                if not _pending:
                    _thread = None
                    return
                # Disconnected with futures outstanding: they can never resolve.
                stale = list(_pending.values())
                _pending.clear()
                _thread = None
            for _ref, fut in stale:
                if not fut.done():
                    fut.set_exception(RuntimeError("manta was shut down"))
            return
        for t in tokens:
            with _lock:
                item = _pending.pop(t, None)
            if item:
                _resolve(*item)


def make_future(ref):
    """A concurrent.futures.Future that resolves to ray.get(ref)."""
    global _thread
    fut = concurrent.futures.Future()
    with _lock:
        token = next(_tokens)
        _pending[token] = (ref, fut)
        if _thread is None:
            _thread = threading.Thread(target=_run, daemon=True, name="manta-futures")
            _thread.start()
    _manta.watch(ref, token)
    return fut


def await_ref(ref):
    return asyncio.wrap_future(make_future(ref)).__await__()


_manta._setup_futures(make_future, await_ref)
