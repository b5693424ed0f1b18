"""manta: a distributed task and actor runtime with Ray's Python API.

    import manta as ray

    @ray.remote
    def f(x):
        return x * 2

    ray.get([f.remote(i) for i in range(4)])
"""

__version__ = "0.1.0"

from manta import exceptions  # noqa: F401
from manta._manta import ObjectRef
from manta._private.worker import (available_resources, cancel, cluster_resources, get,
                                   get_gpu_ids, init, is_initialized, nodes, put, shutdown,
                                   wait)
from manta import actor  # noqa: F401
from manta.actor import ActorClass, ActorHandle, get_actor, kill, method
from manta.remote_function import RemoteFunction
from manta.runtime_context import get_runtime_context


def remote(*args, **kwargs):
    """Make a function a remote function (a task) -- with or without options:

        @manta.remote
        def f(): ...

        @manta.remote(num_cpus=2, num_returns=2)
        def g(): ...
    """
    import inspect

    if len(args) == 1 and not kwargs and callable(args[0]):
        return _make_remote(args[0], {})
    if args:
        raise TypeError("The @manta.remote decorator must be applied either with no arguments "
                        "and no parentheses, for example '@manta.remote', or it must be applied "
                        "using some of the arguments in the list ['num_returns', 'num_cpus', "
                        "'num_gpus', 'memory', 'resources', 'max_calls', 'max_retries', "
                        "'max_restarts', 'max_task_retries', 'max_concurrency', ...], for "
                        "example '@manta.remote(num_returns=2, resources={\"CustomResource\": 1})'.")

    def decorator(obj):
        return _make_remote(obj, kwargs)

    del inspect
    return decorator


def _make_remote(obj, options):
    import inspect

    if inspect.isclass(obj):
        return ActorClass(obj, options)
    if not callable(obj):
        raise TypeError("The @manta.remote decorator must be applied to either a function or a "
                        "class.")
    return RemoteFunction(obj, options)


__all__ = [
    "ActorClass", "ActorHandle", "cancel", "get_actor", "kill", "method",
    "ObjectRef", "RemoteFunction", "available_resources", "cluster_resources", "exceptions",
    "get", "get_gpu_ids", "get_runtime_context", "init", "is_initialized", "nodes", "put",
    "remote", "shutdown", "wait", "__version__",
]
