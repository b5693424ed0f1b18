"""@manta.remote on a class: actors.

``Cls.remote(*args)`` creates the actor and returns an ActorHandle at once;
``handle.method.remote(...)`` returns ObjectRefs.  Calls from one caller run
in the order they were made.  A handle can be passed to tasks and actors and
returned from them.  A non-detached actor ends when every handle to it is
gone and its calls are done.
"""

import inspect
import pickle

import cloudpickle

from manta import _manta
from manta import exceptions as exc
from manta._private import options as _options
from manta._private import worker as _worker

_ACTOR_ALIVE, _ACTOR_DEAD = 2, 4
_METHOD_OPTIONS = {"num_returns", "concurrency_group", "max_task_retries", "retry_exceptions",
                   "_generator_backpressure_num_objects", "enable_task_events",
                   "tensor_transport"}


def method(*args, **kwargs):
    """Options of one actor method, e.g. ``@manta.method(num_returns=2)``."""
    if args or not kwargs:
        raise ValueError(
            "The @ray.method decorator must be applied using at least one of the arguments in "
            f"the list {sorted(_METHOD_OPTIONS)}, for example "
            "'@ray.method(num_returns=2)'.")
    for k in kwargs:
        if k not in _METHOD_OPTIONS:
            raise ValueError(f"Invalid option keyword {k} for actor methods. Valid ones are "
                             f"{sorted(_METHOD_OPTIONS)}.")
    n = kwargs.get("num_returns")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 0):
        raise ValueError("num_returns must be a non-negative integer")

    def annotate(m):
        if n is not None:
            m.__ray_num_returns__ = n
        return m

    return annotate


def _methods_of(cls):
    """name -> num_returns of every method a handle can call."""
    out = {}
    for name, member in inspect.getmembers(cls):
        if name.startswith("__") and name.endswith("__"):
            continue
        if inspect.isfunction(member) or inspect.ismethod(member) or \
                inspect.ismethoddescriptor(member):
            out[name] = getattr(member, "__ray_num_returns__", 1)
    return out


def _is_async(cls):
    return any(inspect.iscoroutinefunction(m) or inspect.isasyncgenfunction(m)
               for _, m in inspect.getmembers(cls))


class ActorID:
    """The id of an actor (hex() / binary())."""

    __slots__ = ("_b",)

    def __init__(self, b):
        self._b = b

    def hex(self):
        return self._b.hex()

    def binary(self):
        return self._b

    def __eq__(self, other):
        return isinstance(other, ActorID) and other._b == self._b

    def __hash__(self):
        return hash(self._b)

    def __repr__(self):
        return f"ActorID({self.hex()})"


class ActorMethod:
    """``handle.method``: call it with ``.remote(...)``."""

    def __init__(self, handle, name, num_returns):
        self._handle = handle
        self._name = name
        self._num_returns = num_returns

    def __call__(self, *args, **kwargs):
        raise TypeError("Actor methods cannot be called directly. Instead of running "
                        f"'object.{self._name}()', try 'object.{self._name}.remote()'.")

    def remote(self, *args, **kwargs):
        return self._remote(args, kwargs, self._num_returns)

    def options(self, **opts):
        for k in opts:
            if k not in _METHOD_OPTIONS and k != "name":
                raise ValueError(f"Invalid option keyword {k} for actor methods.")
        n = opts.get("num_returns", self._num_returns)
        m = self

        class _Options:
            def remote(self, *args, **kwargs):
                return m._remote(args, kwargs, n)

        return _Options()

    def _remote(self, args, kwargs, num_returns):
        h = self._handle
        _worker.ensure_initialized()
        return _manta.actor_call(h._ray_actor_id, self._name, args, kwargs or None,
                                 int(num_returns), h._ray_anchor)

    def bind(self, *args, **kwargs):
        raise NotImplementedError("DAG building (bind) is not supported")


class ActorHandle:
    """A handle to an actor: ``handle.method.remote(...)``."""

    def __init__(self, actor_id, class_name, methods, is_async, anchor, detached):
        self._ray_actor_id = actor_id
        self._ray_class_name = class_name
        self._ray_methods = methods
        self._ray_is_async = is_async
        self._ray_anchor = anchor  # ObjectRef of the actor's anchor; None if detached
        self._ray_detached = detached

    def __getattr__(self, name):
        methods = self.__dict__.get("_ray_methods")
        if methods is not None and name in methods:
            return ActorMethod(self, name, methods[name])
        raise AttributeError(f"'ActorHandle' object has no attribute '{name}'")

    @property
    def _actor_id(self):
        return ActorID(self._ray_actor_id)

    def __reduce__(self):
        return (_rebuild_handle, (self._ray_actor_id, self._ray_class_name, self._ray_methods,
                                  self._ray_is_async, self._ray_anchor, self._ray_detached))

    def __repr__(self):
        return f"Actor({self._ray_class_name}, {self._ray_actor_id.hex()})"

    def __eq__(self, other):
        return isinstance(other, ActorHandle) and other._ray_actor_id == self._ray_actor_id

    def __hash__(self):
        return hash(self._ray_actor_id)


def _rebuild_handle(actor_id, class_name, methods, is_async, anchor, detached):
    return ActorHandle(actor_id, class_name, methods, is_async, anchor, detached)


def _handle_from_info(info):
    """A handle to an actor found in the control store (get_actor)."""
    class_name, methods, is_async = pickle.loads(info["handle"])
    anchor = None
    if not info["detached"]:
        anchor = _manta.ref_from_wire(info["actor_id"] + b"\xff\xff\xff\xff", info["owner"])
    return ActorHandle(info["actor_id"], class_name, methods, is_async, anchor, info["detached"])


class ActorClass:
    """A class made remote: ``Cls.remote(*args)`` creates an actor."""

    def __init__(self, cls, options):
        _options.validate_actor_options(options, in_options=False)
        self._cls = cls
        self._class_name = cls.__name__
        self._methods = _methods_of(cls)
        self._is_async = _is_async(cls)
        self._default_options = dict(options)
        self._pickled = None
        self.__doc__ = cls.__doc__
        self.__name__ = cls.__name__
        self.__module__ = cls.__module__
        self.__qualname__ = cls.__qualname__

    def __call__(self, *args, **kwargs):
        raise TypeError("Actors cannot be instantiated directly. Instead of "
                        f"'{self._class_name}()', use '{self._class_name}.remote()'.")

    def __getstate__(self):
        return {"_cls": self._cls, "_default_options": self._default_options}

    def __setstate__(self, st):
        self.__init__(st["_cls"], st["_default_options"])

    def remote(self, *args, **kwargs):
        return self._remote(args, kwargs, {})

    def options(self, **actor_options):
        _options.validate_actor_options(actor_options, in_options=True)
        cls = self

        class _Options:
            def remote(self, *args, **kwargs):
                return cls._remote(args, kwargs, actor_options)

            def bind(self, *args, **kwargs):
                raise NotImplementedError("DAG building (bind) is not supported")

        return _Options()

    def bind(self, *args, **kwargs):
        raise NotImplementedError("DAG building (bind) is not supported")

    def _fn_id(self):
        if self._pickled is None:
            self._pickled = cloudpickle.dumps(self._cls)
        return _worker.export_function(self._pickled, self._class_name)

    def _remote(self, args, kwargs, overrides):
        _worker.ensure_initialized()
        opts = _options.merge(self._default_options, overrides)
        name = opts.get("name")
        namespace = opts.get("namespace")
        _options.validate_actor_name_and_namespace(name, namespace)
        ns = namespace if namespace is not None else _worker.state.namespace
        if opts.get("get_if_exists") and name:
            info = _manta.actor_lookup(name, ns)
            if info is not None and info["state"] != _ACTOR_DEAD:
                return _handle_from_info(info)
        detached = opts.get("lifetime") == "detached"
        held, placement = _options.actor_resource_demands(opts)
        max_conc = opts.get("max_concurrency")
        if max_conc is None:
            max_conc = (_options.DEFAULT_MAX_CONCURRENCY_ASYNC if self._is_async
                        else _options.DEFAULT_MAX_CONCURRENCY_THREADED)
        meta = pickle.dumps((self._class_name, self._methods, self._is_async))
        strategy, node, soft = _options.strategy_args(opts.get("scheduling_strategy"))
        r = _manta.actor_create(
            self._fn_id(), self._class_name, args, kwargs or None, held, placement, name or None,
            ns, detached, int(max_conc), self._is_async, int(opts.get("max_restarts") or 0),
            int(opts.get("max_task_retries") or 0), meta, strategy, node, soft)
        if isinstance(r, dict):
            if opts.get("get_if_exists"):
                return _handle_from_info(r)
            raise ValueError(
                f"The name {name} (namespace={ns}) is already taken. Please use a different "
                f"name or get the existing actor using ray.get_actor('{name}', "
                f"namespace='{ns}')")
        actor_id, anchor = r
        return ActorHandle(actor_id, self._class_name, self._methods, self._is_async, anchor,
                           detached)


def get_actor(name, namespace=None):
    """The handle of the named actor ``name`` (in ``namespace``, default: ours)."""
    if not isinstance(name, str) or not name:
        raise ValueError("Please supply a non-empty value to get_actor")
    if namespace is not None:
        _options.validate_namespace(namespace)
    _worker.ensure_initialized()
    ns = namespace if namespace is not None else _worker.state.namespace
    info = _manta.actor_lookup(name, ns)
    if info is None or info["state"] == _ACTOR_DEAD:
        raise ValueError(
            f"Failed to look up actor with name '{name}'. This could because 1. You are trying "
            "to look up a named actor you didn't create. 2. The named actor died. 3. You did not "
            "use a namespace matching the namespace of the actor.")
    return _handle_from_info(info)


def kill(actor, *, no_restart=True):
    """Kill an actor at once; its pending and later calls raise ActorDiedError."""
    if not isinstance(actor, ActorHandle):
        raise ValueError("ray.kill() only supported for actors. For tasks, try ray.cancel(). "
                         f"Got: {type(actor)}.")
    _worker.ensure_initialized()
    _manta.actor_kill(actor._ray_actor_id, bool(no_restart))


class _ActorExit(BaseException):
    """Raised by exit_actor(): the worker ends the actor after this call."""


def exit_actor():
    """Exit the current actor: this call's caller sees the actor die, calls
    not yet started fail with RayActorError, atexit handlers run."""
    from manta._private import worker_main

    if worker_main.current_actor() is None:
        raise TypeError("exit_actor API is called on a non-actor worker, which is not "
                        "supported. Use ray.kill() to kill an actor from outside.")
    if worker_main.actor_is_async():
        raise exc.AsyncioActorExit()
    raise _ActorExit()
