"""Utilities on top of manta's core API (Ray's ray.util)."""

from manta.util import scheduling_strategies
from manta.util.actor_pool import ActorPool

__all__ = ["ActorPool", "scheduling_strategies"]
