"""Unit tests of manta.exceptions (no cluster needed).

Run: cd /work/main && PYTHONPATH=python python3 -m pytest tests/python/test_exceptions_unit.py -q
"""

import logging
import os
import pickle
import threading

import pytest

import manta.exceptions as exc
from manta.exceptions import (
    ActorDiedError,
    ActorUnavailableError,
    GetTimeoutError,
    ObjectLostError,
    RayActorError,
    RayError,
    RayTaskError,
)

try:
    import cloudpickle
except ImportError:  # pragma: no cover
    cloudpickle = None


# -- helpers ---------------------------------------------------------------


class CustomError(Exception):
    """A user exception with an attribute of its own."""

    def __init__(self, msg, code):
        super().__init__(msg)
        self.code = code


class NoSubclassError(Exception):
    """An exception class that refuses to be subclassed."""

    def __init_subclass__(cls, **kwargs):
        raise TypeError("no subclasses, please")


class UnpicklableError(Exception):
    def __init__(self, msg):
        super().__init__(msg)
        self.lock = threading.Lock()


def user_function(x):
    if x < 0:
        raise ValueError(f"negative input {x}")
    return x


def run_like_a_worker(fn, *args, **kwargs):
    """Call fn as a worker would, returning the stored RayTaskError."""
    try:
        fn(*args)
    except Exception as e:
        return RayTaskError.from_exception(e, fn.__name__, pid=4242, ip="10.1.2.3",
                                           **kwargs)
    raise AssertionError("fn did not raise")


def roundtrip(obj, dumps=pickle.dumps):
    return pickle.loads(dumps(obj))


PICKLERS = [pytest.param(pickle.dumps, id="pickle")]
if cloudpickle is not None:
    PICKLERS.append(pytest.param(cloudpickle.dumps, id="cloudpickle"))


# -- the hierarchy ---------------------------------------------------------

HIERARCHY = {
    "RayError": (Exception,),
    "CrossLanguageError": (exc.RayError,),
    "TaskCancelledError": (exc.RayError,),
    "RayTaskError": (exc.RayError,),
    "LocalRayletDiedError": (exc.RayError,),
    "WorkerCrashedError": (exc.RayError,),
    "RayActorError": (exc.RayError,),
    "ActorDiedError": (exc.RayActorError,),
    "ActorUnavailableError": (exc.RayActorError,),
    "ActorUnschedulableError": (exc.RayError,),
    "RaySystemError": (exc.RayError,),
    "UserCodeException": (exc.RayError,),
    "ObjectStoreFullError": (exc.RayError,),
    "OutOfDiskError": (exc.RayError,),
    "OutOfMemoryError": (exc.RayError,),
    "NodeDiedError": (exc.RayError,),
    "ObjectLostError": (exc.RayError,),
    "ObjectFetchTimedOutError": (exc.ObjectLostError,),
    "RpcError": (exc.RayError,),
    "ReferenceCountingAssertionError": (exc.ObjectLostError, AssertionError),
    "ObjectFreedError": (exc.ObjectLostError,),
    "OwnerDiedError": (exc.ObjectLostError,),
    "ObjectReconstructionFailedError": (exc.ObjectLostError,),
    "ObjectReconstructionFailedMaxAttemptsExceededError": (exc.ObjectLostError,),
    "ObjectReconstructionFailedLineageEvictedError": (exc.ObjectLostError,),
    "GetTimeoutError": (exc.RayError, TimeoutError),
    "PlasmaObjectNotAvailable": (exc.RayError,),
    "AsyncioActorExit": (exc.RayError,),
    "RuntimeEnvSetupError": (exc.RayError,),
    "TaskPlacementGroupRemoved": (exc.RayError,),
    "ActorPlacementGroupRemoved": (exc.RayError,),
    "PendingCallsLimitExceeded": (exc.RayError,),
    "TaskUnschedulableError": (exc.RayError,),
    "ObjectRefStreamEndOfStreamError": (exc.RayError,),
    "RayChannelError": (exc.RaySystemError,),
    "RayChannelTimeoutError": (exc.RayChannelError, TimeoutError),
}


@pytest.mark.parametrize("name", sorted(HIERARCHY))
def test_class_exists_with_ray_bases(name):
    cls = getattr(exc, name)
    assert isinstance(cls, type) and issubclass(cls, Exception)
    assert cls.__bases__ == HIERARCHY[name]
    assert name in exc.__all__


def test_everything_is_a_ray_error():
    for name in HIERARCHY:
        assert issubclass(getattr(exc, name), RayError)


def test_timeouts_are_builtin_timeouts():
    assert issubclass(GetTimeoutError, TimeoutError)
    with pytest.raises(TimeoutError):
        raise GetTimeoutError("Get timed out: some object(s) not ready.")
    e = GetTimeoutError("Get timed out")
    assert str(e) == "Get timed out"
    assert isinstance(e, RayError)
    assert issubclass(exc.RayChannelTimeoutError, TimeoutError)


def test_actor_errors_are_ray_actor_errors():
    assert issubclass(ActorDiedError, RayActorError)
    assert issubclass(ActorUnavailableError, RayActorError)
    assert not issubclass(exc.ActorUnschedulableError, RayActorError)
    with pytest.raises(RayActorError):
        raise ActorDiedError()


def test_reference_counting_error_is_assertion_error():
    e = exc.ReferenceCountingAssertionError("ab" * 4, None, "")
    assert isinstance(e, AssertionError) and isinstance(e, ObjectLostError)


def test_ray_exception_types_list():
    assert RayTaskError in exc.RAY_EXCEPTION_TYPES
    assert ActorDiedError in exc.RAY_EXCEPTION_TYPES
    assert all(issubclass(t, RayError) for t in exc.RAY_EXCEPTION_TYPES)


def test_task_prefix_is_rays():
    assert exc.TASK_PREFIX == "ray::"


# -- RayTaskError ------------------------------------------------------------


def test_from_exception_fields_and_str():
    err = run_like_a_worker(user_function, -5)
    assert isinstance(err, RayTaskError)
    assert isinstance(err.cause, ValueError)
    assert err.function_name == "user_function"
    assert err.pid == 4242 and err.ip == "10.1.2.3"
    assert err.proctitle == "ray::user_function"
    text = str(err)
    lines = text.split("\n")
    assert lines[0] == "ray::user_function() (pid=4242, ip=10.1.2.3)"
    assert "Traceback (most recent call last)" not in text
    assert "in user_function" in text
    assert 'raise ValueError(f"negative input {x}")' in text
    assert lines[-1] == "ValueError: negative input -5"
    # skip_frames=1 drops the frame of the worker code that called fn.
    assert "in run_like_a_worker" not in text


def test_from_exception_skip_frames_zero_keeps_caller():
    err = run_like_a_worker(user_function, -1, skip_frames=0)
    assert "in run_like_a_worker" in str(err)


def test_defaults_for_pid_ip_proctitle():
    err = RayTaskError("f", "Traceback (most recent call last):\nValueError: x",
                       ValueError("x"))
    assert err.pid == os.getpid()
    assert isinstance(err.ip, str) and err.ip
    assert str(err).startswith(f"ray::f() (pid={os.getpid()}, ip={err.ip})")


def test_traceback_without_header_line_still_gets_header():
    err = RayTaskError("g", "KeyError: 'k'", KeyError("k"), pid=1, ip="1.1.1.1")
    assert str(err) == "ray::g() (pid=1, ip=1.1.1.1)\nKeyError: 'k'"


def test_internal_frames_are_hidden():
    tb = (
        "Traceback (most recent call last):\n"
        '  File "/site/manta/_private/worker_main.py", line 10, in execute\n'
        "    out = fn(*args)\n"
        '  File "/home/u/app.py", line 3, in f\n'
        "    raise ValueError('bad')\n"
        "ValueError: bad"
    )
    err = RayTaskError("f", tb, ValueError("bad"), pid=7, ip="h")
    assert str(err) == (
        "ray::f() (pid=7, ip=h)\n"
        '  File "/home/u/app.py", line 3, in f\n'
        "    raise ValueError('bad')\n"
        "ValueError: bad"
    )


def test_actor_header_shows_actor_id_and_repr():
    err = RayTaskError("Counter.incr", "Traceback (most recent call last):\nE: x",
                       ValueError("x"), proctitle="ray::Counter.incr", pid=3,
                       ip="h", actor_repr="<Counter 1>", actor_id="ab12")
    assert str(err).split("\n")[0] == (
        "ray::Counter.incr() (pid=3, ip=h, actor_id=ab12, repr=<Counter 1>)"
    )


def test_traceback_str_required():
    with pytest.raises(ValueError):
        RayTaskError("f", None, ValueError())


def test_as_instanceof_cause_is_both():
    err = run_like_a_worker(user_function, -2)
    dual = err.as_instanceof_cause()
    assert isinstance(dual, RayTaskError)
    assert isinstance(dual, ValueError)
    assert type(dual).__name__ == "RayTaskError(ValueError)"
    assert str(dual) == str(err)
    assert dual.cause is err.cause
    assert dual.function_name == "user_function"
    assert dual.pid == 4242 and dual.ip == "10.1.2.3"
    assert dual.traceback_str == err.traceback_str


def test_except_by_cause_type_catches_remote_error():
    err = run_like_a_worker(user_function, -3)
    with pytest.raises(ValueError, match="negative input -3"):
        raise err.as_instanceof_cause()
    try:
        raise err.as_instanceof_cause()
    except ValueError as caught:
        assert "ray::user_function()" in str(caught)
    try:
        raise err.as_instanceof_cause()
    except RayTaskError as caught:
        assert isinstance(caught.cause, ValueError)


def test_dual_class_forwards_cause_attributes():
    def f():
        raise CustomError("custom", code=17)

    err = run_like_a_worker(f)
    dual = err.as_instanceof_cause()
    assert isinstance(dual, CustomError)
    assert dual.code == 17
    with pytest.raises(AttributeError):
        dual.no_such_attribute


def test_dual_class_is_cached_per_cause_class():
    a = run_like_a_worker(user_function, -1).as_instanceof_cause()
    b = run_like_a_worker(user_function, -9).as_instanceof_cause()
    assert type(a) is type(b)


def test_dual_with_os_error_and_ray_error_causes():
    def f():
        raise FileNotFoundError(2, "No such file", "/nope")

    dual = run_like_a_worker(f).as_instanceof_cause()
    assert isinstance(dual, FileNotFoundError) and isinstance(dual, OSError)

    def g():
        raise exc.TaskCancelledError("ff00")

    dual = run_like_a_worker(g).as_instanceof_cause()
    assert isinstance(dual, exc.TaskCancelledError)
    assert isinstance(dual, RayTaskError)


def test_cause_already_satisfied_returns_self():
    err = RayTaskError("f", "E: x", Exception("plain"), pid=1, ip="h")
    assert err.as_instanceof_cause() is err


def test_unsubclassable_cause_falls_back(caplog):
    def f():
        raise NoSubclassError("stubborn")

    err = run_like_a_worker(f)
    with caplog.at_level(logging.WARNING, logger="manta.exceptions"):
        out = err.as_instanceof_cause()
    assert out is err
    assert type(out) is RayTaskError
    assert "can't be subclassed" in caplog.text
    assert isinstance(out.cause, NoSubclassError)


def test_unpicklable_cause_is_replaced(caplog):
    def f():
        raise UnpicklableError("holds a lock")

    with caplog.at_level(logging.WARNING, logger="manta.exceptions"):
        err = run_like_a_worker(f)
    assert type(err.cause) is RayError
    assert "isn't serializable" in str(err.cause)
    assert "UnpicklableError" in str(err)  # the traceback text is kept
    roundtrip(err)


def test_nested_task_error_is_not_nested():
    inner = run_like_a_worker(user_function, -4).as_instanceof_cause()

    def outer():
        raise inner  # a task that re-raises what its ray.get raised

    err = run_like_a_worker(outer)
    assert type(err.cause) is ValueError
    assert isinstance(err.as_instanceof_cause(), ValueError)
    text = str(err)
    assert text.startswith("ray::outer() (pid=4242")
    assert "ray::user_function()" in text  # the inner traceback is shown


def test_make_task_error_helper():
    try:
        user_function(-8)
    except ValueError as e:
        err = exc._make_task_error("user_function", e, "tb text", pid=1, ip="h")
        err2 = exc._make_task_error("user_function", e, pid=1, ip="h")
    assert err.traceback_str == "tb text"
    assert err.cause.args == ("negative input -8",)
    assert "ValueError: negative input -8" in err2.traceback_str


# -- pickling ----------------------------------------------------------------


@pytest.mark.parametrize("dumps", PICKLERS)
def test_task_error_pickles(dumps):
    err = run_like_a_worker(user_function, -6, actor_repr="<A>", actor_id="cafe")
    back = roundtrip(err, dumps)
    assert type(back) is RayTaskError
    assert str(back) == str(err)
    assert (back.pid, back.ip, back.function_name) == (4242, "10.1.2.3",
                                                       "user_function")
    assert back.actor_repr == "<A>" and back._actor_id == "cafe"
    assert isinstance(back.cause, ValueError)


@pytest.mark.parametrize("dumps", PICKLERS)
def test_dual_instance_pickles(dumps):
    def f():
        raise CustomError("custom", code=5)

    dual = run_like_a_worker(f).as_instanceof_cause()
    back = roundtrip(dual, dumps)
    assert isinstance(back, CustomError) and isinstance(back, RayTaskError)
    assert type(back) is type(dual)
    assert back.code == 5
    assert str(back) == str(dual)
    assert back.pid == 4242
    with pytest.raises(CustomError):
        raise back


def test_dual_instance_pickles_inside_containers():
    dual = run_like_a_worker(user_function, -1).as_instanceof_cause()
    back = roundtrip({"errors": [dual, dual]})
    assert isinstance(back["errors"][0], ValueError)


def test_to_bytes_from_bytes():
    err = run_like_a_worker(user_function, -1)
    back = RayError.from_bytes(err.to_bytes())
    assert str(back) == str(err)
    with pytest.raises(RuntimeError, match="Failed to unpickle"):
        RayError.from_bytes(b"not a pickle")


def _samples():
    task_err = RayTaskError("f", "Traceback (most recent call last):\nE: x",
                            ValueError("x"), pid=1, ip="h")
    return [
        exc.RayError("plain"),
        exc.CrossLanguageError("An exception raised from C:\nboom"),
        exc.TaskCancelledError(),
        exc.TaskCancelledError("abcd", "cancelled by user"),
        exc.TaskCancelledError(task_id="abcd"),
        task_err,
        exc.LocalRayletDiedError(),
        exc.WorkerCrashedError(),
        exc.RayActorError(),
        exc.RayActorError("ab", "msg", True, True),
        exc.RayActorError(cause=task_err),
        exc.ActorDiedError(),
        exc.ActorDiedError(task_err),
        exc.ActorDiedError({"class_name": "A", "actor_id": b"\x01\x02",
                            "pid": 9, "error_message": "killed"}),
        exc.ActorUnavailableError("connection lost", b"\xab\xcd"),
        exc.ActorUnavailableError("connection lost", None),
        exc.ActorUnschedulableError("node died"),
        exc.RaySystemError("daemon died", "tb"),
        exc.UserCodeException("wrapped"),
        exc.ObjectStoreFullError("store full"),
        exc.OutOfDiskError("disk full"),
        exc.OutOfMemoryError("oom"),
        exc.NodeDiedError("node died"),
        exc.ObjectLostError("ab" * 14, b"owner", "a.py:1 | b.py:2"),
        exc.ObjectFetchTimedOutError("ab" * 14, None, ""),
        exc.RpcError("rpc failed", rpc_code=14),
        exc.ReferenceCountingAssertionError("ab" * 14, None, ""),
        exc.ObjectFreedError("ab" * 14, None, ""),
        exc.OwnerDiedError("ab" * 14, "10.0.0.1:1234", ""),
        exc.ObjectReconstructionFailedError("ab" * 14, None, ""),
        exc.ObjectReconstructionFailedMaxAttemptsExceededError("ab" * 14, None, ""),
        exc.ObjectReconstructionFailedLineageEvictedError("ab" * 14, None, ""),
        exc.GetTimeoutError("Get timed out"),
        exc.PlasmaObjectNotAvailable(),
        exc.AsyncioActorExit(),
        exc.RuntimeEnvSetupError("pip failed"),
        exc.RuntimeEnvSetupError(),
        exc.TaskPlacementGroupRemoved(),
        exc.ActorPlacementGroupRemoved(),
        exc.PendingCallsLimitExceeded("too many"),
        exc.TaskUnschedulableError("node died"),
        exc.ObjectRefStreamEndOfStreamError(),
        exc.RayChannelError("channel"),
        exc.RayChannelTimeoutError("channel timeout"),
    ]


@pytest.mark.parametrize("dumps", PICKLERS)
def test_every_exception_pickles(dumps):
    for e in _samples():
        back = roundtrip(e, dumps)
        assert type(back) is type(e), e
        assert str(back) == str(e), type(e)
        assert vars(back).keys() == vars(e).keys(), type(e)


# -- messages ----------------------------------------------------------------


def test_object_lost_messages():
    e = exc.ObjectLostError("ff" * 14, None, "a.py:1 | b.py:2")
    assert e.call_site == "a.py:1\n  b.py:2"
    s = str(e)
    assert s.startswith(f"Failed to retrieve object {'ff' * 14}. "
                        "The ObjectRef was created at: a.py:1\n  b.py:2")
    assert f"All copies of {'ff' * 14} have been lost due to node failure" in s
    e = exc.ObjectLostError("ff" * 14, None, "")
    assert "RAY_record_ref_creation_sites=1" in str(e)
    assert "timed out because no locations" in str(
        exc.ObjectFetchTimedOutError("a", None, ""))
    assert "The object's owner has exited" in str(exc.OwnerDiedError("a", None, ""))
    assert "(default 3)" in str(
        exc.ObjectReconstructionFailedMaxAttemptsExceededError("a", None, ""))


def test_actor_died_messages():
    e = ActorDiedError()
    assert str(e) == "The actor died unexpectedly before finishing this task."
    assert not e.actor_init_failed and not e.preempted and e.actor_id is None

    task_err = RayTaskError("A.__init__", "Traceback (most recent call last):\n"
                            "ValueError: bad init", ValueError("bad init"),
                            pid=5, ip="h", actor_id="aa11")
    e = ActorDiedError(task_err)
    assert e.actor_init_failed
    assert e.actor_id == "aa11"
    assert str(e).startswith(
        "The actor died because of an error raised in its creation task, "
        "ray::A.__init__() (pid=5, ip=h")
    assert ActorDiedError.from_task_error(task_err).actor_init_failed

    e = ActorDiedError({"class_name": "Counter", "actor_id": b"\x0a\x0b",
                        "pid": 77, "name": "c1", "ray_namespace": "ns",
                        "node_ip_address": "1.2.3.4", "error_message": "killed",
                        "never_started": True, "preempted": True})
    s = str(e)
    assert s.split("\n")[:7] == [
        "The actor died unexpectedly before finishing this task.",
        "\tclass_name: Counter",
        "\tactor_id: 0a0b",
        "\tpid: 77",
        "\tname: c1",
        "\tnamespace: ns",
        "\tip: 1.2.3.4",
    ]
    assert "killed" in s and "never ran" in s
    assert e.actor_id == "0a0b" and e.preempted


def test_ray_actor_error_signatures():
    e = RayActorError()
    assert str(e) == RayActorError.BASE_ERROR_MSG
    e = RayActorError("ab", "custom message", actor_init_failed=True)
    assert str(e) == "custom message" and e.actor_init_failed and e.actor_id == "ab"
    e = RayActorError(cause=None)
    assert str(e) == RayActorError.BASE_ERROR_MSG
    task_err = RayTaskError("A.__init__", "E: x", ValueError("x"), pid=1, ip="h")
    e = RayActorError(cause=task_err)
    assert e.actor_init_failed and "creation task" in str(e)


def test_actor_unavailable_message():
    e = ActorUnavailableError("connection reset", b"\x01\xff")
    assert e.actor_id == "01ff"
    assert str(e) == ("The actor 01ff is unavailable: connection reset. The task "
                      "may or may not have been executed on the actor.")


def test_misc_messages():
    assert str(exc.TaskCancelledError("t1")) == "Task: t1 was cancelled. "
    assert str(exc.TaskCancelledError(None, "why")) == "why"
    assert "cancelled" in str(exc.TaskCancelledError())
    assert str(exc.RaySystemError("x", "tb")) == "System error: x\ntraceback: tb"
    assert str(exc.RuntimeEnvSetupError("pip")) == (
        "Failed to set up runtime environment.\npip")
    assert str(exc.TaskUnschedulableError("n")) == "The task is not schedulable: n"
    assert str(exc.ActorUnschedulableError("n")) == "The actor is not schedulable: n"
    assert str(exc.WorkerCrashedError()).startswith(
        "The worker died unexpectedly while executing this task.")
    assert str(exc.ObjectStoreFullError("full")).startswith("full\nThe local object")
    assert str(exc.OutOfMemoryError("oom msg")) == "oom msg"


def test_cross_language_error():
    class Info:
        language = "C"
        formatted_exception_string = "segfault in f"

    e = exc.CrossLanguageError(Info())
    assert str(e) == "An exception raised from C:\nsegfault in f"
    back = roundtrip(e)
    assert str(back) == str(e)
