"""Options of ``@remote`` tasks and actors: the valid names, defaults and checks.

The rules and the error messages follow Ray's ``ray_option_utils`` so a
program written for Ray gets the same errors from manta:

* an unknown option is a ``ValueError``:
  ``Invalid option keyword foo for remote functions. Valid ones are [...].``
  (``... for actors. ...`` for actor classes);
* a value of the wrong type is a ``TypeError``:
  ``The type of keyword 'max_retries' must be (<class 'int'>, <class
  'NoneType'>), but received type <class 'float'>``;
* a value out of range is a ``ValueError`` naming the option.

Defaults (``TASK_DEFAULTS`` / ``ACTOR_DEFAULTS``) are Ray's:

* a task needs 1 CPU unless ``num_cpus`` says otherwise; ``max_retries`` is 3;
  ``retry_exceptions`` False; ``num_returns`` None, meaning 1 (Ray uses
  "streaming" for generator functions);
* an actor's ``num_cpus`` default is None, which means: when the actor asks
  for no resource at all (memory aside) it needs 1 CPU to be *placed* but
  holds 0 CPU while it lives; as soon as it asks for any resource (num_gpus,
  resources, accelerator_type, ...) it holds ``num_cpus`` (default 1) CPUs
  for its lifetime and its placement needs exactly what it holds.  See
  :func:`actor_resource_demands`.

Typical use by the API layer::

    validate_task_options(decorator_kwargs, in_options=False)   # @remote(...)
    validate_task_options(options_kwargs, in_options=True)      # .options(...)
    opts = merge(decorator_kwargs, options_kwargs)
    demand = resources_from_options(opts, is_actor=False)       # {"CPU": 1.0}
"""

import math
import re
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Tuple, Union

# ---------------------------------------------------------------------------
# Constants (Ray's values)
# ---------------------------------------------------------------------------

#: Default ``max_retries`` of a task.
DEFAULT_TASK_MAX_RETRIES = 3
#: ``max_concurrency`` of an actor without async methods when not given.
DEFAULT_MAX_CONCURRENCY_THREADED = 1
#: ``max_concurrency`` of an actor with async methods when not given.
DEFAULT_MAX_CONCURRENCY_ASYNC = 1000
#: An actor that asks for no resources: CPUs held while alive / extra CPU
#: needed to place it.
DEFAULT_ACTOR_CREATION_CPU_SIMPLE = 0
DEFAULT_ACTOR_METHOD_CPU_SIMPLE = 1
#: An actor that asks for some resources: CPUs held when num_cpus is not
#: given / extra CPU needed to place it.
DEFAULT_ACTOR_CREATION_CPU_SPECIFIED = 1
DEFAULT_ACTOR_METHOD_CPU_SPECIFIED = 0
#: Resource amounts are fixed point with this many units per 1.0.
RESOURCE_UNIT_SCALING = 10000
#: Largest amount of a resource a task or actor may ask for; "memory" and
#: "object_store_memory" count bytes and have their own (the limits of
#: src/sched/resources.h, which every node applies too).
MAX_RESOURCE_QUANTITY = 10**9
MAX_RESOURCE_BYTES = 10**14
_BYTE_RESOURCES = ("memory", "object_store_memory")
#: Demand added for ``accelerator_type=X`` under the key ``accelerator_type:X``.
RESOURCE_CONSTRAINT_PREFIX = "accelerator_type:"
ACCELERATOR_TYPE_DEMAND = 0.001
#: Resource name reserved for placement group bundles.
PLACEMENT_GROUP_BUNDLE_RESOURCE_NAME = "bundle"
#: Resources handed out as whole instances (a GPU is one device): an amount
#: above 1 must be a whole number.  Ray's default unit-instance resources.
UNIT_INSTANCE_RESOURCES = frozenset({"GPU", "neuron_cores", "TPU", "NPU", "HPU", "RBLN"})

#: ``num_returns`` strings Ray accepts; manta does not run generator tasks yet.
NUM_RETURNS_STRINGS = ("dynamic", "streaming")
#: The ones this manta supports (none yet; add here when generators land).
SUPPORTED_NUM_RETURNS_STRINGS: Tuple[str, ...] = ()

_STRATEGY_CLASS_NAMES = (
    "PlacementGroupSchedulingStrategy",
    "NodeAffinitySchedulingStrategy",
    "NodeLabelSchedulingStrategy",
)


# ---------------------------------------------------------------------------
# Option
# ---------------------------------------------------------------------------

TypeSpec = Union[type, Tuple[type, ...]]


@dataclass
class Option:
    """One option: accepted types, a value check and the default.

    Attributes:
        type_constraint: A type or tuple of types, or a function returning
            one (for types imported lazily); None accepts every type.
        value_constraint: Returns None if the value is fine, else the
            message of the ValueError to raise.
        default_value: The default.
        class_names: Names of classes also accepted by name (for classes
            that live in modules this one must not import at load time).
    """

    type_constraint: Optional[Union[TypeSpec, Callable[[], TypeSpec]]] = None
    value_constraint: Optional[Callable[[Any], Optional[str]]] = None
    default_value: Any = None
    class_names: Tuple[str, ...] = ()

    def types(self) -> Optional[TypeSpec]:
        tc = self.type_constraint
        if tc is not None and not isinstance(tc, (type, tuple)):
            tc = tc()
        return tc

    def validate(self, keyword: str, value: Any) -> None:
        """Raise TypeError or ValueError if ``value`` is not valid for ``keyword``."""
        types = self.types()
        if types is not None and not isinstance(value, types):
            if type(value).__name__ not in self.class_names:
                raise TypeError(
                    f"The type of keyword '{keyword}' must be {types}, "
                    f"but received type {type(value)}"
                )
        if self.value_constraint is not None:
            message = self.value_constraint(value)
            if message:
                raise ValueError(message)


def _counting_option(name: str, infinite: bool = True, default_value: Any = None):
    """An integer option: None, 0, a positive integer, and -1 if ``infinite``."""
    if infinite:
        return Option(
            (int, type(None)),
            lambda x: None
            if (x is None or x >= -1)
            else f"The keyword '{name}' only accepts None, 0, -1"
            " or a positive integer, where -1 represents infinity.",
            default_value=default_value,
        )
    return Option(
        (int, type(None)),
        lambda x: None
        if (x is None or x >= 0)
        else f"The keyword '{name}' only accepts None, 0 or a positive integer.",
        default_value=default_value,
    )


def _validate_resource_quantity(name: str, quantity) -> Optional[str]:
    if isinstance(quantity, float) and not math.isfinite(quantity):
        # Ray fails here with float-to-int conversion errors; say what is wrong.
        return f"The quantity of resource {name} must be a finite number, not {quantity}"
    if quantity < 0:
        return f"The quantity of resource {name} cannot be negative"
    limit = MAX_RESOURCE_BYTES if name in _BYTE_RESOURCES else MAX_RESOURCE_QUANTITY
    if quantity > limit:
        return f"The quantity of resource {name} ({quantity}) is above the maximum of {limit}"
    if (
        isinstance(quantity, float)
        and quantity != 0.0
        and int(quantity * RESOURCE_UNIT_SCALING) == 0
    ):
        return (
            f"The precision of the fractional quantity of resource {name}"
            " cannot go beyond 0.0001"
        )
    return None


def _resource_option(name: str, default_value: Any = None):
    """A resource amount: None or a non-negative int/float."""
    return Option(
        (float, int, type(None)),
        lambda x: None if x is None else _validate_resource_quantity(name, x),
        default_value=default_value,
    )


def _validate_resources(resources: Optional[Dict[str, float]]) -> Optional[str]:
    if resources is None:
        return None
    if "CPU" in resources or "GPU" in resources:
        return (
            "Use the 'num_cpus' and 'num_gpus' keyword instead of 'CPU' and 'GPU' "
            "in 'resources' keyword"
        )
    for name, quantity in resources.items():
        if isinstance(quantity, bool) or not isinstance(quantity, (int, float)):
            # Ray fails here with a bare comparison TypeError; say what is wrong.
            raise TypeError(
                f"The quantity of resource {name} in 'resources' must be an int "
                f"or a float, but received type {type(quantity)}"
            )
        message = _validate_resource_quantity(name, quantity)
        if message:
            return message
    return None


# -- labels (Kubernetes label syntax, as Ray's label_utils) -----------------

_LABEL_RE = r"([a-zA-Z0-9]([a-zA-Z0-9_.-]{0,61}[a-zA-Z0-9])?)"
_LABEL_PREFIX_RE = rf"^({_LABEL_RE}?(\.{_LABEL_RE}?)*)$"
_LABEL_OPERATORS = {"in"}
_OPERATOR_RE = "|".join(re.escape(op) for op in sorted(_LABEL_OPERATORS))
_LABEL_SELECTOR_RE = re.compile(
    rf"^!?(?:{_OPERATOR_RE})?\({_LABEL_RE}(?:, ?{_LABEL_RE})*\)$|^!?{_LABEL_RE}$"
)


def _validate_label_key(key) -> Optional[str]:
    if not isinstance(key, str):
        return f"Invalid label key `{key}`. Label keys must be strings."
    if "/" in key:
        prefix, name = key.rsplit("/", 1)
        if len(prefix) > 253 or not re.fullmatch(_LABEL_PREFIX_RE, prefix):
            return (
                f"Invalid label key prefix `{prefix}`. Prefix must be a series of "
                "DNS labels separated by dots (.), not longer than 253 characters "
                "in total."
            )
    else:
        name = key
    if len(name) > 63 or not re.fullmatch(_LABEL_RE, name):
        return (
            f"Invalid label key name `{name}`. Name must be 63 chars or less "
            "beginning and ending with an alphanumeric character ([a-z0-9A-Z]) "
            "with dashes (-), underscores (_),dots (.), and alphanumerics between."
        )
    return None


def _validate_label_selector_value(selector) -> Optional[str]:
    if selector == "":
        return None
    if not isinstance(selector, str) or not _LABEL_SELECTOR_RE.fullmatch(selector):
        return (
            f"Invalid label selector value `{selector}`. The label selector value "
            "should contain optional operators and a label value. Supported "
            f"operators are: ! and {_LABEL_OPERATORS}. Value must be 63 chars or "
            "less beginning and ending with an alphanumeric character "
            "([a-z0-9A-Z]) with dashes (-), underscores (_),dots (.), and "
            "alphanumerics between."
        )
    return None


def _validate_label_selector(label_selector) -> Optional[str]:
    if label_selector is None:
        return None
    for key, value in label_selector.items():
        message = _validate_label_key(key)
        if message:
            return message
        if value is not None:
            message = _validate_label_selector_value(value)
            if message:
                return message
    return None


def _validate_fallback_strategy(strategy) -> Optional[str]:
    if strategy is None:
        return None
    for item in strategy:
        if not isinstance(item, dict):
            return (
                "Fallback strategy must be a list of dicts, "
                f"but got list containing {type(item)}"
            )
        selector = item.get("label_selector")
        if selector is not None:
            if not isinstance(selector, dict):
                return "Invalid fallback strategy element: invalid 'label_selector'."
            message = _validate_label_selector(selector)
            if message:
                return message
    return None


def _validate_num_returns(x) -> Optional[str]:
    if x is None:
        return None
    if isinstance(x, str):
        if x in NUM_RETURNS_STRINGS:
            if x in SUPPORTED_NUM_RETURNS_STRINGS:
                return None
            return (
                f"num_returns={x!r} (generator tasks) is not supported by manta "
                "yet; use a non-negative integer num_returns."
            )
    elif x >= 0:
        return None
    return (
        "Default None. When None is passed, The default value is 1 for a task "
        "and actor task, and 'streaming' for generator tasks and generator actor "
        "tasks. The keyword 'num_returns' only accepts None, a non-negative "
        "integer, 'streaming' (for generators), or 'dynamic'. 'dynamic' flag "
        "will be deprecated in the future, and it is recommended to use "
        "'streaming' instead."
    )


def _issubclass_safe(obj: Any, cls_: type) -> bool:
    try:
        return issubclass(obj, cls_)
    except TypeError:
        return False


def _validate_retry_exceptions(x) -> Optional[str]:
    if isinstance(x, bool):
        return None
    if isinstance(x, (list, tuple)) and all(
        _issubclass_safe(e, Exception) for e in x
    ):
        return None
    return "retry_exceptions must be either a boolean or a list of exceptions"


# -- lazily imported types -------------------------------------------------


def _placement_group_types() -> TypeSpec:
    types = [type(None), str]
    try:
        from manta.util.placement_group import PlacementGroup

        types.append(PlacementGroup)
    except Exception:  # module not written yet, or import cycle at startup
        pass
    return tuple(types)


def _scheduling_strategy_types() -> TypeSpec:
    types = [type(None), str]
    try:
        from manta.util import scheduling_strategies as ss

        for name in _STRATEGY_CLASS_NAMES:
            cls = getattr(ss, name, None)
            if isinstance(cls, type):
                types.append(cls)
    except Exception:
        pass
    return tuple(types)


# ---------------------------------------------------------------------------
# The option tables
# ---------------------------------------------------------------------------

_common_options: Dict[str, Option] = {
    "label_selector": Option((dict, type(None)), _validate_label_selector),
    "fallback_strategy": Option((list, type(None)), _validate_fallback_strategy),
    "accelerator_type": Option((str, type(None))),
    "memory": _resource_option("memory"),
    "name": Option((str, type(None))),
    "num_cpus": _resource_option("num_cpus"),
    "num_gpus": _resource_option("num_gpus"),
    "object_store_memory": _counting_option("object_store_memory", False),
    # Deprecated in Ray in favour of scheduling_strategy; still accepted.
    "placement_group": Option(
        _placement_group_types, default_value="default",
        class_names=("PlacementGroup",),
    ),
    "placement_group_bundle_index": Option(int, default_value=-1),
    "placement_group_capture_child_tasks": Option((bool, type(None))),
    "resources": Option((dict, type(None)), _validate_resources),
    "runtime_env": Option((dict, type(None))),
    "scheduling_strategy": Option(
        _scheduling_strategy_types, class_names=_STRATEGY_CLASS_NAMES
    ),
    "_metadata": Option((dict, type(None))),
    "enable_task_events": Option(bool, default_value=True),
    "_labels": Option((dict, type(None))),
}

_task_only_options: Dict[str, Option] = {
    "max_calls": _counting_option("max_calls", False, default_value=0),
    "max_retries": _counting_option(
        "max_retries", default_value=DEFAULT_TASK_MAX_RETRIES
    ),
    # Overrides the common entry: tasks default to 1 CPU.
    "num_cpus": _resource_option("num_cpus", default_value=1),
    "num_returns": Option((int, str, type(None)), _validate_num_returns,
                          default_value=None),
    # Overrides the common entry: not settable for tasks.
    "object_store_memory": Option(
        (int, type(None)),
        lambda x: None
        if x is None
        else "Setting 'object_store_memory' is not implemented for tasks",
    ),
    "retry_exceptions": Option(
        (bool, list, tuple), _validate_retry_exceptions, default_value=False
    ),
    "_generator_backpressure_num_objects": Option(
        (int, type(None)),
        lambda x: None
        if x != 0
        else (
            "_generator_backpressure_num_objects=0 is not allowed. "
            "Use a value > 0. If the value is equal to 1, the behavior "
            "is identical to Python generator (generator 1 object "
            "whenever `next` is called). Use -1 to disable this feature. "
        ),
    ),
}

_actor_only_options: Dict[str, Option] = {
    "concurrency_groups": Option((list, dict, type(None))),
    "enable_tensor_transport": Option(bool, default_value=False),
    "lifetime": Option(
        (str, type(None)),
        lambda x: None
        if x in (None, "detached", "non_detached")
        else "actor `lifetime` argument must be one of 'detached', "
        "'non_detached' and 'None'.",
    ),
    "max_concurrency": _counting_option("max_concurrency", False),
    "max_restarts": _counting_option("max_restarts", default_value=0),
    "max_task_retries": _counting_option("max_task_retries", default_value=0),
    "max_pending_calls": _counting_option("max_pending_calls", default_value=-1),
    "namespace": Option((str, type(None))),
    "get_if_exists": Option(bool, default_value=False),
    "allow_out_of_order_execution": Option((bool, type(None))),
}

#: Every option of a task, by name.
task_options: Dict[str, Option] = {**_common_options, **_task_only_options}
#: Every option of an actor class, by name.
actor_options: Dict[str, Option] = {**_common_options, **_actor_only_options}
#: Every option ``@remote`` accepts (for functions or classes).
valid_options: Dict[str, Option] = {
    **_task_only_options,
    **_actor_only_options,
    **_common_options,
}

#: Ray's defaults of every task option.
TASK_DEFAULTS: Dict[str, Any] = {k: v.default_value for k, v in task_options.items()}
#: Ray's defaults of every actor option (``num_cpus`` None: see module doc;
#: ``max_concurrency`` None: 1, or 1000 for an actor with async methods).
ACTOR_DEFAULTS: Dict[str, Any] = {k: v.default_value for k, v in actor_options.items()}

#: Message for a malformed ``@remote(...)`` call.
REMOTE_ARGS_ERROR_STRING = (
    "The @ray.remote decorator must be applied either with no arguments and no "
    "parentheses, for example '@ray.remote', or it must be applied using some of "
    f"the arguments in the list {list(valid_options.keys())}, for example "
    "'@ray.remote(num_returns=2, resources={\"CustomResource\": 1})'."
)


# ---------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------


def _check_deprecated_placement_group(options: Dict[str, Any]) -> None:
    placement_group = options.get("placement_group", "default")
    scheduling_strategy = options.get("scheduling_strategy")
    if placement_group not in ("default", None) and scheduling_strategy is not None:
        raise ValueError(
            "Placement groups should be specified via the "
            "scheduling_strategy option. "
            "The placement_group option is deprecated."
        )


def warn_if_using_deprecated_placement_group(options: Dict[str, Any],
                                            caller_stacklevel: int) -> None:
    """Warn (DeprecationWarning) for each deprecated placement group option set."""
    msg = (
        "{} parameter is deprecated. Use "
        "scheduling_strategy=PlacementGroupSchedulingStrategy(...) instead."
    )
    if options.get("placement_group", "default") != "default":
        warnings.warn(msg.format("placement_group"), DeprecationWarning,
                      stacklevel=caller_stacklevel + 1)
    if options.get("placement_group_bundle_index", -1) != -1:
        warnings.warn(msg.format("placement_group_bundle_index"),
                      DeprecationWarning, stacklevel=caller_stacklevel + 1)
    if options.get("placement_group_capture_child_tasks"):
        warnings.warn(msg.format("placement_group_capture_child_tasks"),
                      DeprecationWarning, stacklevel=caller_stacklevel + 1)


def validate_task_options(opts: Dict[str, Any], in_options: bool) -> None:
    """Check the options of a remote function; raise ValueError/TypeError.

    Args:
        opts: The options given to ``@remote(...)`` or ``.options(...)``.
        in_options: True for ``.options(...)``, where ``max_calls`` is refused.
    """
    for k, v in opts.items():
        if k not in task_options:
            raise ValueError(
                f"Invalid option keyword {k} for remote functions. "
                f"Valid ones are {list(task_options)}."
            )
        task_options[k].validate(k, v)
    if in_options and "max_calls" in opts:
        raise ValueError("Setting 'max_calls' is not supported in '.options()'.")
    _check_deprecated_placement_group(opts)


def validate_actor_options(opts: Dict[str, Any], in_options: bool) -> None:
    """Check the options of an actor class; raise ValueError/TypeError.

    Args:
        opts: The options given to ``@remote(...)`` or ``.options(...)``.
        in_options: True for ``.options(...)``, where ``concurrency_groups``
            is refused.
    """
    for k, v in opts.items():
        if k not in actor_options:
            raise ValueError(
                f"Invalid option keyword {k} for actors. "
                f"Valid ones are {list(actor_options)}."
            )
        actor_options[k].validate(k, v)
    if in_options and "concurrency_groups" in opts:
        raise ValueError(
            "Setting 'concurrency_groups' is not supported in '.options()'."
        )
    if opts.get("get_if_exists") and not opts.get("name"):
        raise ValueError("The actor name must be specified to use `get_if_exists`.")
    if opts.get("max_concurrency") == 0:
        # Ray's option table lets 0 through and then cannot run the actor.
        raise ValueError("max_concurrency must be >= 1")
    if opts.get("object_store_memory") is not None:
        warnings.warn(
            "Setting 'object_store_memory' for actors is deprecated since it "
            "doesn't actually reserve the required object store memory.",
            DeprecationWarning,
            stacklevel=2,
        )
    _check_deprecated_placement_group(opts)


def validate_namespace(namespace) -> None:
    """Check a namespace given to an actor (None means "not given")."""
    if not isinstance(namespace, str):
        raise TypeError("namespace must be None or a string.")
    if namespace == "":
        raise ValueError(
            '"" is not a valid namespace. Pass None to not specify a namespace.'
        )


def validate_actor_name_and_namespace(name, namespace) -> None:
    """The checks Ray makes on ``name``/``namespace`` when an actor is created."""
    if name is not None:
        if not isinstance(name, str):
            raise TypeError(f"name must be None or a string, got: '{type(name)}'.")
        if name == "":
            raise ValueError("Actor name cannot be an empty string.")
    if namespace is not None:
        validate_namespace(namespace)


SCHED_DEFAULT, SCHED_SPREAD, SCHED_NODE_AFFINITY = 0, 1, 2


def strategy_args(strategy):
    """(strategy, node id bytes, soft) for the C layer."""
    if strategy is None or strategy == "DEFAULT":
        return SCHED_DEFAULT, b"", False
    if strategy == "SPREAD":
        return SCHED_SPREAD, b"", False
    validate_scheduling_strategy_value(strategy)
    kind = type(strategy).__name__
    if kind == "NodeAffinitySchedulingStrategy":
        node = strategy.node_id
        try:
            raw = bytes.fromhex(node) if isinstance(node, str) else bytes(node)
        except (TypeError, ValueError):
            raw = b""
        if len(raw) != 16:
            raise ValueError(f"NodeAffinitySchedulingStrategy: {node!r} is not a node id "
                             "(a 32-digit hex string, as get_runtime_context().get_node_id() "
                             "gives)")
        return SCHED_NODE_AFFINITY, raw, bool(strategy.soft)
    raise ValueError(f"scheduling_strategy={kind} is not supported by manta yet")


def validate_scheduling_strategy_value(strategy) -> None:
    """Check a string scheduling strategy at submission ("DEFAULT"/"SPREAD")."""
    if isinstance(strategy, str) and strategy not in ("DEFAULT", "SPREAD"):
        raise ValueError(
            f"Invalid scheduling_strategy value {strategy}. "
            'Valid values are ["DEFAULT" | "SPREAD" | '
            "PlacementGroupSchedulingStrategy | NodeAffinitySchedulingStrategy | "
            "NodeLabelSchedulingStrategy]"
        )


# ---------------------------------------------------------------------------
# Merging and defaults
# ---------------------------------------------------------------------------


def merge(base: Dict[str, Any], overrides: Dict[str, Any]) -> Dict[str, Any]:
    """Options of ``base`` updated by ``overrides`` (a new dict; inputs unchanged).

    ``_metadata`` maps namespaces to dicts; each namespace is merged on its
    own, as Ray does.
    """
    merged = {**base, **overrides}
    if base.get("_metadata") is not None and overrides.get("_metadata") is not None:
        metadata = dict(base["_metadata"])
        for namespace, config in overrides["_metadata"].items():
            metadata[namespace] = {**metadata.get(namespace, {}), **config}
        merged["_metadata"] = metadata
    return merged


#: Ray's name for :func:`merge`.
update_options = merge


def decorator_task_defaults(opts: Dict[str, Any]) -> Dict[str, Any]:
    """The options ``@remote`` records for a function (Ray's adjustments).

    A function that needs GPUs gets ``max_calls=1`` unless it sets max_calls,
    so its worker exits after each call and frees the GPU memory.
    """
    out = dict(opts)
    if (out.get("num_gpus") or 0) > 0 and "max_calls" not in out:
        out["max_calls"] = 1
    return out


def fill_defaults(opts: Dict[str, Any], is_actor: bool) -> Dict[str, Any]:
    """``opts`` with every missing option set to its default."""
    defaults = ACTOR_DEFAULTS if is_actor else TASK_DEFAULTS
    return {**defaults, **opts}


# ---------------------------------------------------------------------------
# Resource demands
# ---------------------------------------------------------------------------


def _raw_resources(opts: Dict[str, Any]) -> Dict[str, Any]:
    """Ray's resources_from_ray_options: one dict of every requested amount."""
    resources = dict(opts.get("resources") or {})
    if "CPU" in resources or "GPU" in resources:
        raise ValueError(
            "The resources dictionary must not contain the key 'CPU' or 'GPU'"
        )
    if "memory" in resources or "object_store_memory" in resources:
        raise ValueError(
            "The resources dictionary must not "
            "contain the key 'memory' or 'object_store_memory'"
        )
    if PLACEMENT_GROUP_BUNDLE_RESOURCE_NAME in resources:
        raise ValueError(
            "The resource should not include `bundle` which "
            f"is reserved for Ray. resources: {resources}"
        )
    if opts.get("num_cpus") is not None:
        resources["CPU"] = opts["num_cpus"]
    if opts.get("num_gpus") is not None:
        resources["GPU"] = opts["num_gpus"]
    if opts.get("memory") is not None:
        resources["memory"] = int(opts["memory"])
    if opts.get("object_store_memory") is not None:
        resources["object_store_memory"] = opts["object_store_memory"]
    if opts.get("accelerator_type") is not None:
        key = f"{RESOURCE_CONSTRAINT_PREFIX}{opts['accelerator_type']}"
        resources[key] = ACCELERATOR_TYPE_DEMAND
    return resources


def _demand(resources: Dict[str, Any]) -> Dict[str, float]:
    """Check amounts as Ray does at submission and drop the zero ones."""
    out: Dict[str, float] = {}
    for key, value in resources.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError("Resource quantities may only be ints or floats.")
        if value < 0:
            raise ValueError("Resource quantities may not be negative.")
        message = _validate_resource_quantity(str(key), value)
        if message:  # e.g. an actor's placement: its num_cpus plus 1
            raise ValueError(message)
        if value == 0:
            continue
        if (
            value >= 1
            and isinstance(value, float)
            and not value.is_integer()
            and str(key) in UNIT_INSTANCE_RESOURCES
        ):
            raise ValueError(
                f"{key} resource quantities >1 must be whole numbers. "
                f"The specified quantity {value} is invalid."
            )
        out[str(key)] = float(value)
    return out


def actor_resource_demands(opts: Dict[str, Any]) -> Tuple[Dict[str, float], Dict[str, float]]:
    """(held, placement) demands of an actor: what it holds while alive, and
    what a node must have free to place it.

    An actor that asks for nothing but memory holds ``{}`` and needs
    ``{"CPU": 1.0}`` to be placed; otherwise it holds num_cpus (default 1)
    plus what it asked for, and placement needs the same.  Zero amounts
    are left out.
    """
    resources = _raw_resources(opts)
    if not set(resources).difference({"memory", "object_store_memory"}):
        resources.setdefault("CPU", DEFAULT_ACTOR_CREATION_CPU_SIMPLE)
        method_cpu = DEFAULT_ACTOR_METHOD_CPU_SIMPLE
    else:
        resources.setdefault("CPU", DEFAULT_ACTOR_CREATION_CPU_SPECIFIED)
        method_cpu = DEFAULT_ACTOR_METHOD_CPU_SPECIFIED
    held = _demand(resources)
    if method_cpu:
        placement_raw = dict(resources)
        placement_raw["CPU"] = placement_raw["CPU"] + method_cpu
        placement = _demand(placement_raw)
    else:
        placement = dict(held)
    return held, placement


def resources_from_options(opts: Dict[str, Any], is_actor: bool) -> Dict[str, float]:
    """One demand dict (``{"CPU": 1.0, "GPU": 0.5, "memory": ...}``) for ``opts``.

    For a task, missing num_cpus means 1 CPU.  For an actor this is what it
    holds while alive (see :func:`actor_resource_demands` for its placement
    demand).  Zero amounts are left out; ``accelerator_type=X`` adds
    ``{"accelerator_type:X": 0.001}``; memory is in bytes.  Raises ValueError
    for a GPU amount above 1 that is not whole, and for reserved keys in
    ``resources``.
    """
    if is_actor:
        return actor_resource_demands(opts)[0]
    task = dict(opts)
    if task.get("num_cpus") is None:
        task["num_cpus"] = TASK_DEFAULTS["num_cpus"]
    return _demand(_raw_resources(task))


__all__ = [
    "Option",
    "task_options",
    "actor_options",
    "valid_options",
    "TASK_DEFAULTS",
    "ACTOR_DEFAULTS",
    "REMOTE_ARGS_ERROR_STRING",
    "validate_task_options",
    "validate_actor_options",
    "validate_namespace",
    "validate_actor_name_and_namespace",
    "validate_scheduling_strategy_value",
    "warn_if_using_deprecated_placement_group",
    "merge",
    "update_options",
    "decorator_task_defaults",
    "fill_defaults",
    "resources_from_options",
    "actor_resource_demands",
]
