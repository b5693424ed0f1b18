"""ActorPool: spread work over a fixed set of actors (Ray's ray.util.ActorPool).

    pool = ActorPool([Worker.remote(), Worker.remote()])
    results = list(pool.map(lambda a, v: a.double.remote(v), [1, 2, 3]))
"""

import manta


class ActorPool:
    """Schedule ``fn(actor, value)`` calls on idle actors of the pool.

    Results come back in submission order (``get_next``/``map``) or as they
    finish (``get_next_unordered``/``map_unordered``).
    """

    def __init__(self, actors):
        self._idle_actors = list(actors)
        self._future_to_actor = {}   # ObjectRef -> (index, actor)
        self._index_to_future = {}   # submission index -> ObjectRef
        self._next_task_index = 0    # index the next submit() gets
        self._next_return_index = 0  # index get_next() returns next
        self._pending_submits = []   # (fn, value) waiting for an idle actor

    def map(self, fn, values):
        """Apply fn(actor, v) to every value; yield results in order."""
        while self.has_next():  # drain what an earlier map left unread
            self.get_next_unordered()
        for v in values:
            self.submit(fn, v)
        while self.has_next():
            yield self.get_next()

    def map_unordered(self, fn, values):
        """Like map(), but yield each result as soon as it is ready."""
        while self.has_next():
            self.get_next_unordered()
        for v in values:
            self.submit(fn, v)
        while self.has_next():
            yield self.get_next_unordered()

    def submit(self, fn, value):
        """Run fn(actor, value) on an idle actor (or when one becomes idle)."""
        if self._idle_actors:
            actor = self._idle_actors.pop()
            ref = fn(actor, value)
            self._future_to_actor[ref] = (self._next_task_index, actor)
            self._index_to_future[self._next_task_index] = ref
            self._next_task_index += 1
        else:
            self._pending_submits.append((fn, value))

    def has_next(self):
        """Whether results are outstanding."""
        return bool(self._future_to_actor) or bool(self._pending_submits)

    def get_next(self, timeout=None, ignore_if_timedout=False):
        """The next result in submission order."""
        if not self.has_next():
            raise StopIteration("No more results to get")
        if self._next_return_index >= self._next_task_index:
            raise ValueError("It is not allowed to call get_next() after get_next_unordered().")
        ref = self._index_to_future[self._next_return_index]
        if timeout is not None:
            ready, _ = manta.wait([ref], timeout=timeout)
            if not ready:
                if not ignore_if_timedout:
                    raise TimeoutError("Timed out waiting for result")
                return None
        del self._index_to_future[self._next_return_index]
        self._next_return_index += 1
        _, actor = self._future_to_actor.pop(ref)
        self._return_actor(actor)
        return manta.get(ref)

    def get_next_unordered(self, timeout=None, ignore_if_timedout=False):
        """Any next result, the first to be ready."""
        if not self.has_next():
            raise StopIteration("No more results to get")
        ready, _ = manta.wait(list(self._future_to_actor), num_returns=1, timeout=timeout)
        if not ready:
            if not ignore_if_timedout:
                raise TimeoutError("Timed out waiting for result")
            return None
        ref = ready[0]
        index, actor = self._future_to_actor.pop(ref)
        self._index_to_future.pop(index, None)
        self._next_return_index = max(self._next_return_index, index + 1)
        self._return_actor(actor)
        return manta.get(ref)

    def _return_actor(self, actor):
        self._idle_actors.append(actor)
        if self._pending_submits:
            self.submit(*self._pending_submits.pop(0))

    def has_free(self):
        """Whether an actor is idle and no submission waits."""
        return bool(self._idle_actors) and not self._pending_submits

    def pop_idle(self):
        """Take an idle actor out of the pool (None if there is none)."""
        if self.has_free():
            return self._idle_actors.pop()
        return None

    def push(self, actor):
        """Add an actor to the pool."""
        busy = [a for _, a in self._future_to_actor.values()]
        if actor in self._idle_actors or actor in busy:
            raise ValueError("Actor already belongs to current ActorPool")
        self._return_actor(actor)
