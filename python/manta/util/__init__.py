"""Utilities on top of manta's core API (Ray's ray.util)."""

from manta.util.actor_pool import ActorPool

__all__ = ["ActorPool"]
