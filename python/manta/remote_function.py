"""@manta.remote on a function: a RemoteFunction whose .remote() submits a
task and returns ObjectRefs at once."""

import functools

import cloudpickle

from manta import _manta
from manta._private import options as _options
from manta._private import worker as _worker


def _task_options(opts):
    """The C-side options object for a full option dict (cached by callers)."""
    demand = _options.resources_from_options(opts, is_actor=False)
    num_returns = opts.get("num_returns")
    if num_returns is None:
        num_returns = 1
    max_retries = opts.get("max_retries")
    if max_retries is None:
        max_retries = _options.DEFAULT_TASK_MAX_RETRIES
    retry = opts.get("retry_exceptions")
    if retry is True:
        retry_exc = b"*"
    elif retry:
        retry_exc = cloudpickle.dumps(tuple(retry))
    else:
        retry_exc = b""
    strategy, node, soft = _options.strategy_args(opts.get("scheduling_strategy"))
    return _manta.TaskOptions(demand, int(num_returns), int(max_retries), retry_exc, strategy, node,
                              soft)


class RemoteFunction:
    """A function that runs as a task: call ``f.remote(...)``."""

    def __init__(self, function, options):
        _options.validate_task_options(options, in_options=False)
        self._function = function
        self._function_name = f"{function.__module__}.{function.__qualname__}"
        self._name = function.__qualname__
        self._default_options = _options.decorator_task_defaults(options)
        self._pickled = None
        self._c_opts = None
        functools.update_wrapper(self, function)

    def __call__(self, *args, **kwargs):
        raise TypeError(
            "Remote functions cannot be called directly. Instead of running "
            f"'{self._function_name}()', try '{self._function_name}.remote()'.")

    def __getstate__(self):
        return {"_function": self._function, "_default_options": self._default_options,
                "_function_name": self._function_name, "_name": self._name}

    def __setstate__(self, st):
        self.__dict__.update(st)
        self._pickled = None
        self._c_opts = None

    def _fn_id(self):
        if self._pickled is None:
            self._pickled = cloudpickle.dumps(self._function)
        return _worker.export_function(self._pickled, self._name)

    def remote(self, *args, **kwargs):
        return self._remote(args, kwargs, None)

    def options(self, **task_options):
        _options.validate_task_options(task_options, in_options=True)
        merged = _options.merge(self._default_options, task_options)
        c_opts = _task_options(merged)
        func = self

        class _Options:
            def remote(self, *args, **kwargs):
                return func._remote(args, kwargs, (merged, c_opts))

            def bind(self, *args, **kwargs):
                raise NotImplementedError("DAG building (bind) is not supported")

        return _Options()

    def _remote(self, args, kwargs, override):
        _worker.ensure_initialized()
        if override is None:
            if self._c_opts is None:
                self._c_opts = _task_options(self._default_options)
            opts, c_opts = self._default_options, self._c_opts
        else:
            opts, c_opts = override
        fn_id = self._fn_id()
        refs = _manta.submit(_manta.TASK_NORMAL, fn_id, opts.get("name") or self._name, args,
                             kwargs or None, c_opts)
        if opts.get("num_returns") == 0:
            return None
        return refs

    def bind(self, *args, **kwargs):
        raise NotImplementedError("DAG building (bind) is not supported")
