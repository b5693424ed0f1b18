"""Scheduling strategies, as in Ray's ``ray.util.scheduling_strategies``.

A task or actor takes ``scheduling_strategy=``:

- ``"DEFAULT"``: run where it fits, preferring the submitting node and the
  node that holds its largest arguments;
- ``"SPREAD"``: spread over the nodes that fit, in turn;
- ``NodeAffinitySchedulingStrategy(node_id, soft)``: run on that node; if it
  is dead or can never fit, fail (``soft=False``) or run elsewhere
  (``soft=True``).
"""


class NodeAffinitySchedulingStrategy:
    """Run on the node with id ``node_id`` (hex, as ``get_node_id()`` gives)."""

    def __init__(self, node_id: str, soft: bool, _spill_on_unavailable: bool = False,
                 _fail_on_unavailable: bool = False):
        self.node_id = node_id
        self.soft = soft
        self._spill_on_unavailable = _spill_on_unavailable
        self._fail_on_unavailable = _fail_on_unavailable

    def __repr__(self):
        return f"NodeAffinitySchedulingStrategy(node_id={self.node_id!r}, soft={self.soft})"


class PlacementGroupSchedulingStrategy:
    """Placement groups are not supported by manta yet; using one raises."""

    def __init__(self, placement_group, placement_group_bundle_index: int = -1,
                 placement_group_capture_child_tasks=None):
        self.placement_group = placement_group
        self.placement_group_bundle_index = placement_group_bundle_index
        self.placement_group_capture_child_tasks = placement_group_capture_child_tasks


class NodeLabelSchedulingStrategy:
    """Node labels are not supported by manta yet; using one raises."""

    def __init__(self, hard, *, soft=None):
        self.hard = hard
        self.soft = soft


__all__ = ["NodeAffinitySchedulingStrategy", "PlacementGroupSchedulingStrategy",
           "NodeLabelSchedulingStrategy"]
