"""Exception types raised by manta, with the names and hierarchy of ``ray.exceptions``.

A program written for Ray catches these under the same names after
``import manta as ray``: ``ray.exceptions.RayTaskError``,
``ray.exceptions.GetTimeoutError`` (which is also a built-in ``TimeoutError``),
``ray.exceptions.ActorDiedError`` (a ``RayActorError``), and so on.

Every exception here survives a pickle round trip, because errors travel
between processes as pickled values: a task that raises stores a
``RayTaskError`` as each of its return values, and the process that reads
such a value raises ``error.as_instanceof_cause()``, an exception that is at
the same time a ``RayTaskError`` and an instance of the class the task
raised, so ``except ValueError`` catches a ``ValueError`` raised remotely.

Workers build that error with :meth:`RayTaskError.from_exception` (or the
module function :func:`_make_task_error`) inside the ``except`` block that
caught the user's exception.
"""

import logging
import os
import pickle
import socket
import threading
import traceback
from typing import Any, Optional, Tuple, Type

try:  # cloudpickle pickles what plain pickle cannot (lambdas, local classes).
    import cloudpickle as _pickler
except ImportError:  # pragma: no cover - cloudpickle is a dependency in practice
    _pickler = pickle

logger = logging.getLogger(__name__)

#: Prefix of a worker's process title while it runs a task: ``ray::f`` for a
#: task ``f``, ``ray::Counter.incr`` for an actor method.  It starts the header
#: line of a remote traceback (``ray::f() (pid=..., ip=...)``).  Ray's exact
#: text is kept so that programs and tests matching on it keep working.
TASK_PREFIX = "ray::"

#: In a call-site string recorded for an object ref, frames are joined by this.
CALL_STACK_LINE_DELIMITER = " | "

#: Traceback lines from files under these paths are manta's own plumbing and
#: are left out of the remote traceback shown to the user.
_INTERNAL_FILE_MARKERS = (
    "manta/_private/",
    "manta/worker.py",
    "manta/_raylet",
    "manta/_manta",
)


def _log_hint(what: str = "logs") -> str:
    """Where the cluster's logs are ("logs": the folder, "log": the daemon's
    log): this process's session's, else those of the newest session
    `manta start` recorded (see docs/architecture.md)."""
    try:
        from manta._private import node, worker

        connected = worker.state.connected and worker.state.info.get("session_dir")
        session = connected or node.root_paths()["latest"]
        return node.session_paths(session)[what]
    except Exception:  # no session root (a foreign one is refused): name none
        return "the session directory's logs"


_ip_lock = threading.Lock()
_ip_cache: Optional[str] = None


def _node_ip_address() -> str:
    """Best guess of this node's IP address, used when an error records none.

    Asks the kernel which source address it would use for an outbound UDP
    "connection" (no packet is sent); falls back to 127.0.0.1.
    """
    global _ip_cache
    with _ip_lock:
        if _ip_cache is not None:
            return _ip_cache
        ip = os.environ.get("MANTA_NODE_IP_ADDRESS") or ""
        if not ip:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                s.connect(("10.255.255.255", 1))
                ip = s.getsockname()[0]
            except OSError:
                ip = "127.0.0.1"
            finally:
                s.close()
        _ip_cache = ip
        return ip


def _pickle_check(obj: Any) -> Tuple[Optional[str], bool]:
    """(reason ``obj`` does not pickle or None, whether it also unpickles)."""
    try:
        data = _pickler.dumps(obj)
    except Exception as e:  # pickling can fail with many exception types
        return f"{type(e).__name__}: {e}", False
    try:
        pickle.loads(data)
    except Exception:
        return None, False
    return None, True


def _restore_exception(cls, args, state):
    """Unpickle helper: rebuild an exception without calling its ``__init__``.

    Exceptions pickle as ``cls(*args)`` plus their ``__dict__``, which breaks
    for classes whose ``__init__`` takes other arguments than it passes to
    ``Exception.__init__``.  Rebuilding from ``args`` and ``__dict__`` alone
    works for those too.
    """
    try:
        obj = cls.__new__(cls, *args)
    except TypeError:
        obj = cls.__new__(cls)
    obj.args = args
    if state:
        obj.__dict__.update(state)
    return obj


class _PortableException:
    """Pickles as a call to :func:`_restore_exception` for ``exc``."""

    __slots__ = ("exc",)

    def __init__(self, exc: BaseException):
        self.exc = exc

    def __reduce__(self):
        e = self.exc
        return (_restore_exception, (type(e), e.args, dict(getattr(e, "__dict__", {}))))


# ---------------------------------------------------------------------------
# Base classes
# ---------------------------------------------------------------------------


class RayError(Exception):
    """Base class of every exception manta raises for a remote failure."""

    def __reduce__(self):
        # Rebuild from args and __dict__ without calling __init__: the
        # subclasses' constructors take other arguments than they store in
        # args (and some never call Exception.__init__ at all).
        return (_restore_exception, (type(self), self.args, dict(self.__dict__)))

    def to_bytes(self) -> bytes:
        """Serialize this error (pickled; cloudpickle when available)."""
        return _pickler.dumps(self)

    @staticmethod
    def from_bytes(b: bytes) -> "RayError":
        """Inverse of :meth:`to_bytes`."""
        try:
            return pickle.loads(b)
        except Exception as e:
            raise RuntimeError("Failed to unpickle serialized exception") from e


class CrossLanguageError(RayError):
    """An exception raised by code written in another language (e.g. a C task).

    ``ray_exception`` is either an object with ``language`` and
    ``formatted_exception_string`` attributes (a language name or number and
    the error text), or an already formatted message string.
    """

    def __init__(self, ray_exception):
        if isinstance(ray_exception, str):
            msg = ray_exception
        else:
            language = getattr(ray_exception, "language", "UNKNOWN")
            text = getattr(ray_exception, "formatted_exception_string", "")
            if isinstance(text, bytes):
                text = text.decode("utf-8", "replace")
            msg = f"An exception raised from {language}:\n{text}"
        super().__init__(msg)


class TaskCancelledError(RayError):
    """Raised when this task, or a task it depends on, was cancelled.

    Args:
        task_id: ID (or its hex) of the task that was cancelled directly.
        error_message: Optional detail.
    """

    def __init__(self, task_id=None, error_message: Optional[str] = None):
        self.task_id = task_id
        self.error_message = error_message

    def __str__(self):
        msg = ""
        if self.task_id:
            msg = "Task: " + str(self.task_id) + " was cancelled. "
        if self.error_message:
            msg += self.error_message
        if not msg:
            # Ray prints nothing here; an empty message helps nobody.
            msg = "This task or its dependency was cancelled."
        return msg


# ---------------------------------------------------------------------------
# RayTaskError and its dual-class form
# ---------------------------------------------------------------------------

# One dual class per cause class, so that type(a) is type(b) when two errors
# have the same cause type.
_dual_classes = {}
_dual_lock = threading.Lock()


def _rebuild_task_error(function_name, traceback_str, cause, proctitle, pid, ip,
                        actor_repr, actor_id, dual):
    """Unpickle helper: rebuild a RayTaskError (or its dual form) from its fields."""
    err = RayTaskError(function_name, traceback_str, cause, proctitle=proctitle,
                       pid=pid, ip=ip, actor_repr=actor_repr, actor_id=actor_id)
    return err.as_instanceof_cause() if dual else err


class RayTaskError(RayError):
    """A task (or actor method) raised an exception while it ran.

    The error is stored as every return value of the failed task; getting any
    of them raises ``as_instanceof_cause()`` of it.

    Attributes:
        function_name: Name of the function that raised.
        traceback_str: The remote traceback, as text.
        cause: The exception the task raised.
        proctitle: Process title of the worker (``ray::f``).
        pid: Process ID of the worker.
        ip: IP address of the worker's node.
        actor_repr: ``repr()`` of the actor for an actor method, else None.
    """

    def __init__(
        self,
        function_name,
        traceback_str,
        cause,
        proctitle=None,
        pid=None,
        ip=None,
        actor_repr=None,
        actor_id=None,
    ):
        if traceback_str is None:
            raise ValueError("RayTaskError needs a traceback string")
        self.proctitle = proctitle or f"{TASK_PREFIX}{function_name}"
        self.pid = pid or os.getpid()
        self.ip = ip or _node_ip_address()
        self.function_name = function_name
        self.traceback_str = traceback_str
        self.actor_repr = actor_repr
        self._actor_id = actor_id
        self.cause = cause
        problem, round_trips = _pickle_check(cause)
        if problem is not None:
            msg = (
                "The original cause of the RayTaskError"
                f" ({cause.__class__}) isn't serializable: {problem}."
                " Overwriting the cause to a RayError."
            )
            logger.warning(msg)
            self.cause = RayError(msg)
            round_trips = True
        # A cause that pickles but does not unpickle (its __init__ wants other
        # arguments than its args) travels as args + __dict__ instead.
        self._portable_cause = not round_trips
        self.args = (function_name, traceback_str, self.cause, self.proctitle,
                     self.pid, self.ip)

    def __reduce__(self):
        return (_rebuild_task_error, self._fields() + (False,))

    # -- building one inside a worker ------------------------------------

    @classmethod
    def from_exception(
        cls,
        exc: BaseException,
        function_name: str,
        *,
        pid: Optional[int] = None,
        ip: Optional[str] = None,
        proctitle: Optional[str] = None,
        actor_repr: Optional[str] = None,
        actor_id: Optional[str] = None,
        skip_frames: int = 1,
    ) -> "RayTaskError":
        """Build the error a worker stores when a task raised ``exc``.

        Call it in the ``except`` block around the call of the user's function.
        ``skip_frames`` leading traceback frames are dropped: the default 1
        drops the frame of the caller itself (the worker code that called the
        user's function), so the traceback starts at the user's code.

        If ``exc`` is already a ``RayTaskError`` (the task re-raised the error
        of a task it waited on) its cause is reused instead of nesting errors;
        the new traceback still shows the inner one.
        """
        tb = exc.__traceback__
        for _ in range(max(0, skip_frames)):
            if tb is None or tb.tb_next is None:
                break
            tb = tb.tb_next
        tb_str = "".join(traceback.format_exception(type(exc), exc, tb))
        cause = exc.cause if isinstance(exc, RayTaskError) else exc
        return cls(function_name, tb_str, cause, proctitle=proctitle, pid=pid,
                   ip=ip, actor_repr=actor_repr, actor_id=actor_id)

    # -- the dual class --------------------------------------------------

    def _fields(self) -> Tuple:
        cause = self.cause
        if getattr(self, "_portable_cause", False) and isinstance(cause, BaseException):
            cause = _PortableException(cause)
        return (self.function_name, self.traceback_str, cause,
                self.proctitle, self.pid, self.ip, self.actor_repr,
                self._actor_id)

    def make_dual_exception_type(self) -> Type:
        """Return the class deriving from both RayTaskError and the cause's class.

        Raises TypeError when the cause's class cannot be subclassed that way.
        """
        cause_cls = self.cause.__class__
        with _dual_lock:
            dual = _dual_classes.get(cause_cls)
            if dual is not None:
                return dual

            def __init__(inner_self, cause):
                inner_self.cause = cause
                inner_self.args = (cause,)

            def __getattr__(inner_self, name):
                # Only reached for attributes the instance lacks: look them up
                # on the user's exception.
                if name == "cause" or name.startswith("__"):
                    raise AttributeError(name)
                return getattr(inner_self.cause, name)

            def __reduce__(inner_self):
                return (_rebuild_task_error, RayTaskError._fields(inner_self) + (True,))

            name = f"RayTaskError({cause_cls.__name__})"
            dual = type(name, (RayTaskError, cause_cls), {
                "__init__": __init__,
                "__getattr__": __getattr__,
                "__reduce__": __reduce__,
                "__module__": __name__,
                "__qualname__": name,
                "__doc__": (f"A RayTaskError that is also a {cause_cls.__name__}"
                            " (see RayTaskError.as_instanceof_cause)."),
            })
            _dual_classes[cause_cls] = dual
            return dual

    def as_instanceof_cause(self) -> "RayTaskError":
        """Return an exception that is an instance of the cause's class too.

        The result derives from both RayTaskError and ``type(self.cause)``, so
        ``except ValueError`` catches it when the task raised a ValueError; its
        str() is this error's (the remote traceback) and attributes it lacks
        are looked up on the cause.  When the cause's class cannot be combined
        with RayTaskError (a layout conflict, a refusing ``__init_subclass__``,
        an odd ``__new__``), a warning is logged and ``self`` is returned.
        """
        cause_cls = self.cause.__class__
        if issubclass(RayTaskError, cause_cls) or isinstance(self.cause, RayTaskError):
            return self  # already an instance of the cause's class
        try:
            dual_cls = self.make_dual_exception_type()
            dual = dual_cls(self.cause)
        except Exception as e:
            logger.warning(
                f"User exception type {cause_cls} in RayTaskError can't be"
                " subclassed! This exception is raised as RayTaskError only."
                " You can use `ray_task_error.cause` to access the user"
                f" exception. Failure in subclassing: {e}"
            )
            return self
        # Give the dual instance every RayTaskError attribute, so str(),
        # pickling and the documented attributes work on it.
        dual.function_name = self.function_name
        dual.traceback_str = self.traceback_str
        dual.proctitle = self.proctitle
        dual.pid = self.pid
        dual.ip = self.ip
        dual.actor_repr = self.actor_repr
        dual._actor_id = self._actor_id
        dual._portable_cause = self._portable_cause
        dual.__cause__ = self.__cause__
        dual.__traceback__ = self.__traceback__
        return dual

    # -- formatting ------------------------------------------------------

    def _header(self) -> str:
        line = f"{self.proctitle}() (pid={self.pid}, ip={self.ip}"
        if self.actor_repr:
            line += f", actor_id={self._actor_id}, repr={self.actor_repr})"
        else:
            line += ")"
        return line

    def __str__(self):
        """The remote traceback, headed by ``ray::f() (pid=..., ip=...)``.

        The "Traceback (most recent call last):" line becomes that header, and
        frames of manta's own worker code are left out.
        """
        lines = self.traceback_str.strip().split("\n")
        out = []
        saw_header = False
        skip_code_line = False
        for i, line in enumerate(lines):
            if line.startswith("Traceback "):
                out.append(self._header())
                saw_header = True
                skip_code_line = False
            elif line.startswith("  File ") and any(
                m in line for m in _INTERNAL_FILE_MARKERS
            ):
                # An internal frame: drop it, and its source line if present.
                skip_code_line = i + 1 < len(lines) and lines[i + 1].startswith(
                    "    "
                )
            elif skip_code_line:
                skip_code_line = False
            else:
                out.append(line)
        if not saw_header:
            out.insert(0, self._header())
        return "\n".join(out)


def _make_task_error(fn_name: str, exc: BaseException, tb_str: Optional[str] = None,
                     **kwargs) -> RayTaskError:
    """Build the RayTaskError for a task ``fn_name`` that raised ``exc``.

    ``tb_str`` is the remote traceback text; when None it is formatted from
    ``exc.__traceback__`` as in :meth:`RayTaskError.from_exception`.  Other
    keyword arguments (pid, ip, proctitle, actor_repr, actor_id, and
    skip_frames when tb_str is None) are passed on.
    """
    if tb_str is None:
        return RayTaskError.from_exception(exc, fn_name, **kwargs)
    kwargs.pop("skip_frames", None)
    cause = exc.cause if isinstance(exc, RayTaskError) else exc
    return RayTaskError(fn_name, tb_str, cause, **kwargs)


# ---------------------------------------------------------------------------
# Process and actor failures
# ---------------------------------------------------------------------------


class LocalRayletDiedError(RayError):
    """The node daemon of the task's node died."""

    def __str__(self):
        return (
            "The task's local raylet died. Check "
            f"{_log_hint('log')} for more information."
        )


class WorkerCrashedError(RayError):
    """The worker process died unexpectedly while running the task."""

    def __str__(self):
        return (
            "The worker died unexpectedly while executing this task. "
            f"Check {_log_hint('log')} for more information."
        )


def _context_get(ctx, key, default=None):
    if isinstance(ctx, dict):
        return ctx.get(key, default)
    return getattr(ctx, key, default)


def _hex_id(actor_id):
    if actor_id is None:
        return None
    if isinstance(actor_id, (bytes, bytearray)):
        return bytes(actor_id).hex()
    if hasattr(actor_id, "hex") and not isinstance(actor_id, str):
        return actor_id.hex()
    return str(actor_id)


def _actor_died_fields(cause):
    """(actor_id, message, actor_init_failed, preempted) for an ActorDiedError."""
    base = ActorDiedError.BASE_ERROR_MSG
    if not cause:
        return None, base, False, False
    if isinstance(cause, RayTaskError):
        return (
            cause._actor_id,
            "The actor died because of an error raised in its creation task, "
            f"{cause.__str__()}",
            True,
            False,
        )
    # A system-level death: a context object or dict with the fields of
    # Ray's ActorDiedErrorContext (class_name, actor_id, pid, name,
    # ray_namespace, node_ip_address, error_message, never_started, preempted).
    actor_id = _hex_id(_context_get(cause, "actor_id"))
    lines = [base]
    lines.append(f"\tclass_name: {_context_get(cause, 'class_name', '')}")
    lines.append(f"\tactor_id: {actor_id}")
    if _context_get(cause, "pid", 0):
        lines.append(f"\tpid: {_context_get(cause, 'pid')}")
    if _context_get(cause, "name", ""):
        lines.append(f"\tname: {_context_get(cause, 'name')}")
    if _context_get(cause, "ray_namespace", ""):
        lines.append(f"\tnamespace: {_context_get(cause, 'ray_namespace')}")
    if _context_get(cause, "node_ip_address", ""):
        lines.append(f"\tip: {_context_get(cause, 'node_ip_address')}")
    lines.append(str(_context_get(cause, "error_message", "") or ""))
    if _context_get(cause, "never_started", False):
        lines.append(
            "The actor never ran - it was cancelled before it started running."
        )
    preempted = bool(_context_get(cause, "preempted", False))
    return actor_id, "\n".join(lines), False, preempted


class RayActorError(RayError):
    """The actor failed (died, or is unreachable) before finishing the task.

    Ray raises the subclasses :class:`ActorDiedError` and
    :class:`ActorUnavailableError`; catch this class to handle both.

    Args:
        actor_id: Hex ID of the actor, if known.
        error_msg: The message.
        actor_init_failed: True if the actor's ``__init__`` raised.
        preempted: True if the actor's node was preempted.
        cause: Accepted for the older signature ``RayActorError(cause)``:
            when given, the fields are computed as for ``ActorDiedError``.
    """

    BASE_ERROR_MSG = "The actor experienced an error before finishing this task."

    def __init__(
        self,
        actor_id: Optional[str] = None,
        error_msg: str = BASE_ERROR_MSG,
        actor_init_failed: bool = False,
        preempted: bool = False,
        *,
        cause=None,
    ):
        if cause is not None:
            actor_id, error_msg, actor_init_failed, preempted = _actor_died_fields(
                cause
            )
        self.actor_id = actor_id
        self.error_msg = error_msg
        self._actor_init_failed = actor_init_failed
        self._preempted = preempted

    def __str__(self) -> str:
        return self.error_msg

    @property
    def preempted(self) -> bool:
        """True if the actor died because its node was preempted."""
        return self._preempted

    @property
    def actor_init_failed(self) -> bool:
        """True if the actor died because its ``__init__`` raised."""
        return self._actor_init_failed


class ActorDiedError(RayActorError):
    """The actor died: its process exited, or a task went to a dead actor.

    Args:
        cause: None if the cause is unknown; a RayTaskError if the actor's
            ``__init__`` raised; otherwise a context (object or dict) with
            the fields class_name, actor_id, pid, name, ray_namespace,
            node_ip_address, error_message, never_started, preempted.
    """

    BASE_ERROR_MSG = "The actor died unexpectedly before finishing this task."

    def __init__(self, cause=None):
        actor_id, msg, init_failed, preempted = _actor_died_fields(cause)
        super().__init__(actor_id, msg, init_failed, preempted)

    @staticmethod
    def from_task_error(task_error: RayTaskError) -> "ActorDiedError":
        """The error for an actor whose creation task raised ``task_error``."""
        return ActorDiedError(task_error)


class ActorUnavailableError(RayActorError):
    """The actor is unreachable for now but may be reachable again later.

    Args:
        error_message: What went wrong.
        actor_id: Binary (bytes) or hex ID of the actor, or None.
    """

    def __init__(self, error_message: str, actor_id=None):
        actor_hex = _hex_id(actor_id)
        msg = (
            f"The actor {actor_hex} is unavailable: {error_message}. The task may "
            "or may not have been executed on the actor."
        )
        super().__init__(actor_hex, msg, False, False)


class RaySystemError(RayError):
    """manta hit a system error (for example its node daemon was killed)."""

    def __init__(self, client_exc, traceback_str=None):
        self.client_exc = client_exc
        self.traceback_str = traceback_str

    def __str__(self):
        error_msg = f"System error: {self.client_exc}"
        if self.traceback_str:
            error_msg += f"\ntraceback: {self.traceback_str}"
        return error_msg


class UserCodeException(RayError):
    """Wraps an exception raised by user code; ``retry_exceptions`` looks at
    its ``__cause__``."""


# ---------------------------------------------------------------------------
# Memory and node failures
# ---------------------------------------------------------------------------


class ObjectStoreFullError(RayError):
    """The object store is full of objects that are still referenced."""

    def __str__(self):
        return super().__str__() + (
            "\n"
            "The local object store is full of objects that are still in "
            "scope and cannot be evicted. Tip: Use the `ray memory` command "
            "to list active objects in the cluster."
        )


class OutOfDiskError(RayError):
    """Both the object store and the local disk are full."""

    def __str__(self):
        return super().__str__() + (
            "\n"
            "The object cannot be created because the local object store"
            " is full and the local disk's utilization is over capacity"
            " (95% by default)."
            "Tip: Use `df` on this node to check disk usage and "
            "`ray memory` to check object store memory usage."
        )


class OutOfMemoryError(RayError):
    """The node ran low on memory and the task or actor was killed."""

    def __init__(self, message):
        self.message = message

    def __str__(self):
        return self.message


class NodeDiedError(RayError):
    """The node is dead or unreachable."""

    def __init__(self, message):
        self.message = message

    def __str__(self):
        return self.message


# ---------------------------------------------------------------------------
# Lost objects
# ---------------------------------------------------------------------------


class ObjectLostError(RayError):
    """The object's value is gone (node failure or a system error).

    Args:
        object_ref_hex: Hex ID of the object.
        owner_address: Address of the object's owner, if known.
        call_site: Where the ObjectRef was created (frames joined by " | "),
            or "" when not recorded.
    """

    def __init__(self, object_ref_hex, owner_address, call_site):
        self.object_ref_hex = object_ref_hex
        self.owner_address = owner_address
        self.call_site = (call_site or "").replace(
            CALL_STACK_LINE_DELIMITER, "\n  "
        )

    def _base_str(self):
        msg = f"Failed to retrieve object {self.object_ref_hex}. "
        if self.call_site:
            msg += f"The ObjectRef was created at: {self.call_site}"
        else:
            msg += (
                "To see information about where this ObjectRef was created "
                "in Python, set the environment variable "
                "RAY_record_ref_creation_sites=1 during `ray start` and "
                "`ray.init()`."
            )
        return msg

    def __str__(self):
        return (
            self._base_str()
            + "\n\n"
            + (
                f"All copies of {self.object_ref_hex} have been lost due to node "
                f"failure. Check cluster logs (`{_log_hint()}`) for "
                "more information about the failure."
            )
        )


class ObjectFetchTimedOutError(ObjectLostError):
    """Fetching the object timed out: no location of it was found."""

    def __str__(self):
        return (
            self._base_str()
            + "\n\n"
            + (
                f"Fetch for object {self.object_ref_hex} timed out because no "
                "locations were found for the object. This may indicate a "
                "system-level bug."
            )
        )


class RpcError(RayError):
    """An error in the underlying RPC layer."""

    def __init__(self, message, rpc_code=None):
        self.message = message
        self.rpc_code = rpc_code

    def __str__(self):
        return self.message


class ReferenceCountingAssertionError(ObjectLostError, AssertionError):
    """The object was deleted while a reference to it still existed."""

    def __str__(self):
        return (
            self._base_str()
            + "\n\n"
            + (
                "The object has already been deleted by the reference counting "
                "protocol. This should not happen."
            )
        )


class ObjectFreedError(ObjectLostError):
    """The object was freed explicitly by the application."""

    def __str__(self):
        return (
            self._base_str()
            + "\n\n"
            + (
                "The object was manually freed using the internal `free` call. "
                "Please ensure that `free` is only called once the object is no "
                "longer needed."
            )
        )


class OwnerDiedError(ObjectLostError):
    """The object's owner (the process that created its ref) has exited."""

    def __str__(self):
        log_loc = f"`{_log_hint()}`"
        if self.owner_address:
            addr = self.owner_address
            if isinstance(addr, (bytes, bytearray)):
                addr = bytes(addr).hex()
            log_loc += f" (owner address: {addr})"
        return (
            self._base_str()
            + "\n\n"
            + (
                "The object's owner has exited. This is the Python "
                "worker that first created the ObjectRef via `.remote()` or "
                "`ray.put()`. "
                f"Check cluster logs ({log_loc}) for more "
                "information about the Python worker failure."
            )
        )


class ObjectReconstructionFailedError(ObjectLostError):
    """The object is lost and cannot be rebuilt."""

    def __str__(self):
        return (
            self._base_str()
            + "\n\n"
            + (
                "The object cannot be reconstructed "
                "because it was created by an actor, ray.put() call, or its "
                "ObjectRef was created by a different worker."
            )
        )


class ObjectReconstructionFailedMaxAttemptsExceededError(ObjectLostError):
    """The object is lost and its task has no retries left to rebuild it."""

    def __str__(self):
        return (
            self._base_str()
            + "\n\n"
            + (
                "The object cannot be reconstructed "
                "because the maximum number of task retries has been exceeded. "
                "To prevent this error, set "
                "`@ray.remote(max_retries=<num retries>)` (default 3)."
            )
        )


class ObjectReconstructionFailedLineageEvictedError(ObjectLostError):
    """The object is lost and its lineage was evicted to save memory."""

    def __str__(self):
        return (
            self._base_str()
            + "\n\n"
            + (
                "The object cannot be reconstructed because its lineage has been "
                "evicted to reduce memory pressure. "
                "To prevent this error, set the environment variable "
                "RAY_max_lineage_bytes=<bytes> (default 1GB) during `ray start`."
            )
        )


# ---------------------------------------------------------------------------
# Timeouts, scheduling and the rest
# ---------------------------------------------------------------------------


class GetTimeoutError(RayError, TimeoutError):
    """``get`` (or another call with a timeout) timed out."""


class PlasmaObjectNotAvailable(RayError):
    """An object was not available within the given timeout."""


class AsyncioActorExit(RayError):
    """Raised inside an asyncio actor that exits via ``exit_actor()``."""


class RuntimeEnvSetupError(RayError):
    """The runtime environment of a task or actor could not be set up."""

    def __init__(self, error_message: Optional[str] = None):
        self.error_message = error_message

    def __str__(self):
        msgs = ["Failed to set up runtime environment."]
        if self.error_message:
            msgs.append(self.error_message)
        return "\n".join(msgs)


class TaskPlacementGroupRemoved(RayError):
    """The placement group of the task was removed."""

    def __str__(self):
        return "The placement group corresponding to this task has been removed."


class ActorPlacementGroupRemoved(RayError):
    """The placement group of the actor was removed."""

    def __str__(self):
        return "The placement group corresponding to this Actor has been removed."


class PendingCallsLimitExceeded(RayError):
    """An actor handle has more pending calls than its ``max_pending_calls``."""


class TaskUnschedulableError(RayError):
    """The task can never be scheduled (e.g. its affinity node is dead)."""

    def __init__(self, error_message: str):
        self.error_message = error_message

    def __str__(self):
        return f"The task is not schedulable: {self.error_message}"


class ActorUnschedulableError(RayError):
    """The actor can never be scheduled (e.g. its affinity node is dead)."""

    def __init__(self, error_message: str):
        self.error_message = error_message

    def __str__(self):
        return f"The actor is not schedulable: {self.error_message}"


class ObjectRefStreamEndOfStreamError(RayError):
    """A streaming generator has no more ObjectRefs to give."""


class RayChannelError(RaySystemError):
    """A system error in an experimental channel."""


class RayChannelTimeoutError(RayChannelError, TimeoutError):
    """An experimental channel operation timed out."""


#: The exception types of this module (as Ray's list of the same name).
RAY_EXCEPTION_TYPES = [
    PlasmaObjectNotAvailable,
    RayError,
    RayTaskError,
    WorkerCrashedError,
    RayActorError,
    ObjectStoreFullError,
    ObjectLostError,
    ObjectFetchTimedOutError,
    ReferenceCountingAssertionError,
    ObjectReconstructionFailedError,
    ObjectReconstructionFailedMaxAttemptsExceededError,
    ObjectReconstructionFailedLineageEvictedError,
    OwnerDiedError,
    GetTimeoutError,
    AsyncioActorExit,
    RuntimeEnvSetupError,
    TaskPlacementGroupRemoved,
    ActorPlacementGroupRemoved,
    PendingCallsLimitExceeded,
    LocalRayletDiedError,
    TaskUnschedulableError,
    ActorDiedError,
    ActorUnschedulableError,
    ActorUnavailableError,
    RayChannelError,
    RayChannelTimeoutError,
]

__all__ = [
    "RayError",
    "CrossLanguageError",
    "TaskCancelledError",
    "RayTaskError",
    "LocalRayletDiedError",
    "WorkerCrashedError",
    "RayActorError",
    "ActorDiedError",
    "ActorUnavailableError",
    "RaySystemError",
    "UserCodeException",
    "ObjectStoreFullError",
    "OutOfDiskError",
    "OutOfMemoryError",
    "NodeDiedError",
    "ObjectLostError",
    "ObjectFetchTimedOutError",
    "RpcError",
    "ReferenceCountingAssertionError",
    "ObjectFreedError",
    "OwnerDiedError",
    "ObjectReconstructionFailedError",
    "ObjectReconstructionFailedMaxAttemptsExceededError",
    "ObjectReconstructionFailedLineageEvictedError",
    "GetTimeoutError",
    "PlasmaObjectNotAvailable",
    "AsyncioActorExit",
    "RuntimeEnvSetupError",
    "TaskPlacementGroupRemoved",
    "ActorPlacementGroupRemoved",
    "PendingCallsLimitExceeded",
    "TaskUnschedulableError",
    "ActorUnschedulableError",
    "ObjectRefStreamEndOfStreamError",
    "RayChannelError",
    "RayChannelTimeoutError",
    "RAY_EXCEPTION_TYPES",
]
