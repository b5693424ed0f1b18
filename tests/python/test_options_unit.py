"""Unit tests of manta._private.options (no cluster needed).

Run: cd /work/main && PYTHONPATH=python python3 -m pytest tests/python/test_options_unit.py -q
"""

import re
import warnings

import pytest

from manta._private import options as o


def vt(**opts):
    o.validate_task_options(opts, in_options=False)


def va(**opts):
    o.validate_actor_options(opts, in_options=False)


class NodeAffinitySchedulingStrategy:
    """Stands for the class of manta.util.scheduling_strategies (matched by name)."""

    def __init__(self, node_id, soft):
        self.node_id = node_id
        self.soft = soft


# -- tables and defaults -------------------------------------------------------


def test_task_defaults_are_rays():
    d = o.TASK_DEFAULTS
    assert d["num_cpus"] == 1
    assert d["num_gpus"] is None
    assert d["max_retries"] == 3
    assert d["retry_exceptions"] is False
    assert d["max_calls"] == 0
    assert d["num_returns"] is None
    assert d["enable_task_events"] is True
    assert d["placement_group"] == "default"
    assert d["placement_group_bundle_index"] == -1
    for k in ("resources", "memory", "runtime_env", "scheduling_strategy", "name",
              "accelerator_type", "label_selector", "object_store_memory"):
        assert d[k] is None, k


def test_actor_defaults_are_rays():
    d = o.ACTOR_DEFAULTS
    assert d["num_cpus"] is None
    assert d["max_restarts"] == 0
    assert d["max_task_retries"] == 0
    assert d["max_pending_calls"] == -1
    assert d["max_concurrency"] is None
    assert d["lifetime"] is None
    assert d["namespace"] is None
    assert d["get_if_exists"] is False
    assert d["enable_task_events"] is True
    assert d["concurrency_groups"] is None
    assert o.DEFAULT_MAX_CONCURRENCY_THREADED == 1
    assert o.DEFAULT_MAX_CONCURRENCY_ASYNC == 1000


def test_option_names():
    task_only = {"max_calls", "max_retries", "num_returns", "retry_exceptions",
                 "_generator_backpressure_num_objects"}
    actor_only = {"concurrency_groups", "lifetime", "max_concurrency", "max_restarts",
                  "max_task_retries", "max_pending_calls", "namespace",
                  "get_if_exists", "allow_out_of_order_execution",
                  "enable_tensor_transport"}
    common = {"num_cpus", "num_gpus", "resources", "memory", "object_store_memory",
              "accelerator_type", "name", "scheduling_strategy", "runtime_env",
              "label_selector", "_metadata", "enable_task_events", "placement_group",
              "placement_group_bundle_index", "placement_group_capture_child_tasks",
              "_labels"}
    assert task_only | common <= set(o.task_options)
    assert actor_only | common <= set(o.actor_options)
    assert not (task_only & set(o.actor_options))
    assert not (actor_only & set(o.task_options))
    assert set(o.valid_options) == set(o.task_options) | set(o.actor_options)


def test_defaults_validate():
    o.validate_task_options(dict(o.TASK_DEFAULTS), in_options=False)
    no_max_calls = {k: v for k, v in o.TASK_DEFAULTS.items() if k != "max_calls"}
    o.validate_task_options(no_max_calls, in_options=True)
    o.validate_actor_options(dict(o.ACTOR_DEFAULTS), in_options=False)
    no_cg = {k: v for k, v in o.ACTOR_DEFAULTS.items() if k != "concurrency_groups"}
    o.validate_actor_options(no_cg, in_options=True)


def test_every_option_checks_its_type():
    unique_object = type("###", (), {})()
    for table in (o.task_options, o.actor_options):
        for k, opt in table.items():
            opt.validate(k, opt.default_value)
            with pytest.raises(TypeError, match=re.escape(f"keyword '{k}'")):
                opt.validate(k, unique_object)


# -- unknown and mistyped options ----------------------------------------------------


def test_unknown_task_option():
    with pytest.raises(ValueError) as ei:
        vt(num_cpu=1)
    msg = str(ei.value)
    assert msg.startswith("Invalid option keyword num_cpu for remote functions. "
                          "Valid ones are [")
    assert "'num_cpus'" in msg
    # actor-only options are unknown to tasks
    with pytest.raises(ValueError, match="Invalid option keyword max_restarts for "
                                         "remote functions"):
        vt(max_restarts=1)


def test_unknown_actor_option():
    with pytest.raises(ValueError, match=r"^Invalid option keyword max_retries for "
                                         r"actors\. Valid ones are \["):
        va(max_retries=1)


@pytest.mark.parametrize("keyword", ["max_retries", "max_calls"])
def test_task_type_error_message(keyword):
    expected = (f"The type of keyword '{keyword}' must be {(int, type(None))}, "
                f"but received type {float}")
    assert expected == ("The type of keyword '%s' must be (<class 'int'>, "
                        "<class 'NoneType'>), but received type <class 'float'>"
                        % keyword)
    with pytest.raises(TypeError, match=re.escape(expected)):
        vt(**{keyword: 0.5})


@pytest.mark.parametrize("keyword", ["max_restarts", "max_task_retries",
                                     "max_concurrency", "max_pending_calls"])
def test_actor_type_error_message(keyword):
    with pytest.raises(TypeError, match=re.escape(
            f"The type of keyword '{keyword}' must be {(int, type(None))}, "
            f"but received type {float}")):
        va(**{keyword: 1.5})


def test_other_type_errors():
    with pytest.raises(TypeError, match=re.escape(
            f"The type of keyword 'num_returns' must be {(int, str, type(None))}")):
        vt(num_returns=1.0)
    with pytest.raises(TypeError, match=re.escape(
            f"The type of keyword '_metadata' must be {(dict, type(None))}")):
        va(_metadata=3.14)
    with pytest.raises(TypeError, match="keyword 'num_cpus'"):
        vt(num_cpus="1")
    with pytest.raises(TypeError, match="keyword 'resources'"):
        vt(resources=[("a", 1)])
    with pytest.raises(TypeError, match="keyword 'get_if_exists'"):
        va(get_if_exists=None)
    with pytest.raises(TypeError, match="keyword 'retry_exceptions'"):
        vt(retry_exceptions="yes")
    with pytest.raises(TypeError, match="keyword 'runtime_env'"):
        vt(runtime_env="env")
    with pytest.raises(TypeError, match="quantity of resource a in 'resources' must"):
        vt(resources={"a": "1"})


# -- value checks ----------------------------------------------------------------


def test_counting_options():
    infinite = ("The keyword '{}' only accepts None, 0, -1 or a positive integer, "
                "where -1 represents infinity.")
    finite = "The keyword '{}' only accepts None, 0 or a positive integer."
    vt(max_retries=-1)
    vt(max_retries=0)
    vt(max_retries=5)
    with pytest.raises(ValueError, match=re.escape(infinite.format("max_retries"))):
        vt(max_retries=-2)
    for k in ("max_restarts", "max_task_retries", "max_pending_calls"):
        va(**{k: -1})
        with pytest.raises(ValueError, match=re.escape(infinite.format(k))):
            va(**{k: -7})
    for v in (-1, -50):
        with pytest.raises(ValueError, match=re.escape(finite.format("max_calls"))):
            vt(max_calls=v)
        with pytest.raises(ValueError, match=re.escape(finite.format("max_concurrency"))):
            va(max_concurrency=v)


def test_max_concurrency_at_least_one():
    va(max_concurrency=1)
    va(max_concurrency=64)
    with pytest.raises(ValueError, match="max_concurrency must be >= 1"):
        va(max_concurrency=0)


def test_num_returns():
    vt(num_returns=0)
    vt(num_returns=3)
    vt(num_returns=None)
    for bad in (-1, -10, "two"):
        with pytest.raises(ValueError, match="The keyword 'num_returns' only accepts "
                                             "None, a non-negative integer"):
            vt(num_returns=bad)
    for generator_mode in ("streaming", "dynamic"):
        with pytest.raises(ValueError, match=f"num_returns='{generator_mode}' "
                                             r"\(generator tasks\) is not supported"):
            vt(num_returns=generator_mode)


def test_resource_amounts():
    vt(num_cpus=0, num_gpus=0.5, memory=100 * 2**20, resources={"custom": 0.25})
    vt(num_cpus=2.5)
    for k in ("num_cpus", "num_gpus", "memory"):
        with pytest.raises(ValueError, match=f"The quantity of resource {k} cannot be "
                                             "negative"):
            vt(**{k: -1})
        with pytest.raises(ValueError, match=f"The quantity of resource {k} cannot be "
                                             "negative"):
            va(**{k: -0.5})
    with pytest.raises(ValueError, match="The quantity of resource custom cannot be "
                                         "negative"):
        vt(resources={"custom": -1})
    with pytest.raises(ValueError, match="The precision of the fractional quantity of "
                                         "resource num_gpus cannot go beyond 0.0001"):
        vt(num_gpus=0.0000001)
    with pytest.raises(ValueError, match="The precision of the fractional quantity of "
                                         "resource custom_resource cannot go beyond"):
        vt(resources={"custom_resource": 0.0000001})


@pytest.mark.parametrize("bad, why", [
    (1e15, r"above the maximum of 1000000000"), (2**70, "above the maximum"),
    (float("nan"), "must be a finite number, not nan"),
    (float("inf"), "must be a finite number, not inf"),
    (float("-inf"), "must be a finite number, not -inf"),
])
def test_out_of_range_amounts(bad, why):
    # Ray takes 1e15 and leaves the task pending for good, and fails on NaN
    # and infinity with float-to-int conversion errors; here each is a
    # ValueError naming the resource.
    for k in ("num_cpus", "num_gpus"):
        with pytest.raises(ValueError, match=f"The quantity of resource {k} .*{why}"):
            vt(**{k: bad})
        with pytest.raises(ValueError, match=f"The quantity of resource {k} .*{why}"):
            va(**{k: bad})
    with pytest.raises(ValueError, match=f"The quantity of resource custom .*{why}"):
        vt(resources={"custom": bad})
    with pytest.raises(ValueError, match=f"The quantity of resource custom .*{why}"):
        va(resources={"custom": bad})


def test_amount_limits():
    vt(num_cpus=1e9, resources={"custom": 10**9}, memory=10**14)
    with pytest.raises(ValueError, match=r"resource memory \(1e\+30\) is above the maximum of "
                                         "100000000000000"):
        vt(memory=1e30)
    # Demands are checked where they are made, too.
    with pytest.raises(ValueError, match="must be a finite number"):
        o.resources_from_options({"num_cpus": float("nan")}, is_actor=False)


@pytest.mark.parametrize("key", ["CPU", "GPU"])
def test_cpu_gpu_in_resources(key):
    msg = ("Use the 'num_cpus' and 'num_gpus' keyword instead of 'CPU' and 'GPU' "
           "in 'resources' keyword")
    with pytest.raises(ValueError, match=re.escape(msg)):
        vt(resources={key: 1})
    with pytest.raises(ValueError, match=re.escape(msg)):
        va(resources={key: 1})


def test_object_store_memory():
    with pytest.raises(ValueError, match="Setting 'object_store_memory' is not "
                                         "implemented for tasks"):
        vt(object_store_memory=100)
    vt(object_store_memory=None)
    with pytest.warns(DeprecationWarning, match="object_store_memory"):
        va(object_store_memory=100)
    with pytest.raises(ValueError, match="keyword 'object_store_memory' only accepts"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            va(object_store_memory=-1)


def test_retry_exceptions():
    vt(retry_exceptions=True)
    vt(retry_exceptions=[ValueError, KeyError])
    vt(retry_exceptions=(OSError,))
    msg = "retry_exceptions must be either a boolean or a list of exceptions"
    with pytest.raises(ValueError, match=msg):
        vt(retry_exceptions=[ValueError, "KeyError"])
    with pytest.raises(ValueError, match=msg):
        vt(retry_exceptions=[int])


def test_lifetime():
    for v in (None, "detached", "non_detached"):
        va(lifetime=v)
    with pytest.raises(ValueError, match="actor `lifetime` argument must be one of "
                                         "'detached', 'non_detached' and 'None'."):
        va(lifetime="forever")


def test_in_options_restrictions():
    with pytest.raises(ValueError, match=re.escape(
            "Setting 'max_calls' is not supported in '.options()'.")):
        o.validate_task_options({"max_calls": 1}, in_options=True)
    vt(max_calls=1)
    with pytest.raises(ValueError, match=re.escape(
            "Setting 'concurrency_groups' is not supported in '.options()'.")):
        o.validate_actor_options({"concurrency_groups": []}, in_options=True)
    va(concurrency_groups={"io": 2})


def test_get_if_exists_needs_name():
    with pytest.raises(ValueError, match="The actor name must be specified to use "
                                         "`get_if_exists`."):
        va(get_if_exists=True)
    va(get_if_exists=True, name="a")


def test_scheduling_strategy():
    vt(scheduling_strategy="SPREAD")
    vt(scheduling_strategy="DEFAULT")
    vt(scheduling_strategy=None)
    va(scheduling_strategy=NodeAffinitySchedulingStrategy("ab", soft=True))
    with pytest.raises(TypeError, match="keyword 'scheduling_strategy'"):
        vt(scheduling_strategy=42)
    o.validate_scheduling_strategy_value("SPREAD")
    with pytest.raises(ValueError, match="Invalid scheduling_strategy value FOO"):
        o.validate_scheduling_strategy_value("FOO")


def test_placement_group_and_strategy_conflict():
    with pytest.raises(ValueError, match="Placement groups should be specified via the "
                                         "scheduling_strategy option"):
        vt(placement_group="pg", scheduling_strategy="SPREAD")
    vt(placement_group=None, scheduling_strategy="SPREAD")


def test_label_selector():
    vt(label_selector={"region": "us-west1", "gpu": "!A100",
                       "zone": "in(a, b)", "example.com/team": "!in(x,y)"})
    with pytest.raises(ValueError, match="Invalid label key name `-bad`"):
        vt(label_selector={"-bad": "x"})
    with pytest.raises(ValueError, match="Invalid label selector value `@x`"):
        va(label_selector={"ok": "@x"})
    with pytest.raises(TypeError, match="keyword 'label_selector'"):
        vt(label_selector="region=us")


def test_fallback_strategy():
    vt(fallback_strategy=[{"label_selector": {"zone": "a"}}])
    with pytest.raises(ValueError, match="Fallback strategy must be a list of dicts"):
        vt(fallback_strategy=["zone"])


def test_generator_backpressure():
    vt(_generator_backpressure_num_objects=-1)
    with pytest.raises(ValueError, match="_generator_backpressure_num_objects=0 is "
                                         "not allowed"):
        vt(_generator_backpressure_num_objects=0)


def test_actor_name_and_namespace():
    o.validate_actor_name_and_namespace("a", "ns")
    o.validate_actor_name_and_namespace(None, None)
    with pytest.raises(ValueError, match="Actor name cannot be an empty string."):
        o.validate_actor_name_and_namespace("", None)
    with pytest.raises(TypeError, match="name must be None or a string"):
        o.validate_actor_name_and_namespace(3, None)
    with pytest.raises(ValueError, match='"" is not a valid namespace'):
        o.validate_actor_name_and_namespace("a", "")
    with pytest.raises(TypeError, match="namespace must be None or a string"):
        o.validate_namespace(5)


def test_remote_args_error_string():
    assert o.REMOTE_ARGS_ERROR_STRING.startswith(
        "The @ray.remote decorator must be applied either with no arguments")
    assert "'max_restarts'" in o.REMOTE_ARGS_ERROR_STRING


# -- merge and defaults ----------------------------------------------------------


def test_merge_like_update_options():
    base = {"_metadata": {"ns1": {"a1": 1, "b1": 2, "c1": 3}, "ns2": {"a2": 1}},
            "num_cpus": 1, "xxx": {"x": 2}, "zzz": 42}
    over = {"_metadata": {"ns1": {"b1": 22}, "ns3": {"b3": 2}},
            "num_cpus": 2, "xxx": {"y": 2}, "yyy": 3}
    assert o.merge(base, over) == {
        "_metadata": {"ns1": {"a1": 1, "b1": 22, "c1": 3}, "ns2": {"a2": 1},
                      "ns3": {"b3": 2}},
        "num_cpus": 2, "xxx": {"y": 2}, "yyy": 3, "zzz": 42,
    }
    # inputs unchanged
    assert base["_metadata"]["ns1"]["b1"] == 2 and "ns3" not in base["_metadata"]
    assert o.update_options is o.merge


def test_decorator_task_defaults_gpu_max_calls():
    assert o.decorator_task_defaults({"num_gpus": 2}) == {"num_gpus": 2, "max_calls": 1}
    assert o.decorator_task_defaults({"num_gpus": 2, "max_calls": 5})["max_calls"] == 5
    assert "max_calls" not in o.decorator_task_defaults({"num_cpus": 2})


def test_fill_defaults():
    filled = o.fill_defaults({"num_cpus": 3}, is_actor=False)
    assert filled["num_cpus"] == 3 and filled["max_retries"] == 3
    filled = o.fill_defaults({}, is_actor=True)
    assert filled["max_restarts"] == 0 and filled["num_cpus"] is None


# -- resource demands ----------------------------------------------------------------


def test_task_resources():
    assert o.resources_from_options({}, is_actor=False) == {"CPU": 1.0}
    assert o.resources_from_options(dict(o.TASK_DEFAULTS), is_actor=False) == {"CPU": 1.0}
    assert o.resources_from_options({"num_cpus": 0}, is_actor=False) == {}
    demand = o.resources_from_options(
        {"num_cpus": 2, "num_gpus": 0.5, "memory": 1000.7,
         "resources": {"custom": 3, "zero": 0}, "accelerator_type": "A100"},
        is_actor=False)
    assert demand == {"CPU": 2.0, "GPU": 0.5, "memory": 1000.0, "custom": 3.0,
                      "accelerator_type:A100": 0.001}
    assert all(isinstance(v, float) for v in demand.values())


def test_fractional_amounts_above_one():
    # CPU and custom resources may be fractional above 1; GPUs may not.
    assert o.resources_from_options({"num_cpus": 1.5}, is_actor=False) == {"CPU": 1.5}
    assert o.resources_from_options({"resources": {"c": 2.5}}, is_actor=False) == {
        "CPU": 1.0, "c": 2.5}
    assert o.resources_from_options({"num_gpus": 0.5}, is_actor=False)["GPU"] == 0.5
    assert o.resources_from_options({"num_gpus": 2.0}, is_actor=False)["GPU"] == 2.0
    with pytest.raises(ValueError, match="GPU resource quantities >1 must be whole "
                                         "numbers. The specified quantity 1.5 is "
                                         "invalid."):
        o.resources_from_options({"num_gpus": 1.5}, is_actor=False)


def test_reserved_resource_keys():
    for key in ("memory", "object_store_memory"):
        with pytest.raises(ValueError, match="must not contain the key 'memory' or "
                                             "'object_store_memory'"):
            o.resources_from_options({"resources": {key: 1}}, is_actor=False)
    with pytest.raises(ValueError, match="must not contain the key 'CPU' or 'GPU'"):
        o.resources_from_options({"resources": {"CPU": 1}}, is_actor=True)
    with pytest.raises(ValueError, match="`bundle` which is reserved"):
        o.resources_from_options({"resources": {"bundle": 1}}, is_actor=False)


def test_actor_resources_default():
    # 1 CPU to place it, 0 while it runs.
    held, placement = o.actor_resource_demands({})
    assert held == {} and placement == {"CPU": 1.0}
    assert o.resources_from_options(dict(o.ACTOR_DEFAULTS), is_actor=True) == {}
    held, placement = o.actor_resource_demands({"memory": 500})
    assert held == {"memory": 500.0}
    assert placement == {"memory": 500.0, "CPU": 1.0}


def test_actor_resources_specified():
    held, placement = o.actor_resource_demands({"num_cpus": 2})
    assert held == placement == {"CPU": 2.0}
    held, placement = o.actor_resource_demands({"num_gpus": 1})
    assert held == placement == {"CPU": 1.0, "GPU": 1.0}
    held, placement = o.actor_resource_demands({"num_cpus": 0})
    assert held == placement == {}
    held, placement = o.actor_resource_demands({"resources": {"disk": 1}})
    assert held == placement == {"disk": 1.0, "CPU": 1.0}
