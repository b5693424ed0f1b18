"""ActorPool: spread work over a fixed set of actors (Ray's ray.util.ActorPool).

    pool = ActorPool([Worker.remote(), Worker.remote()])
    results = list(pool.map(lambda a, v: a.double.remote(v), [1, 2, 3]))
"""

import manta


def _key(future):
    """A dict key for what fn returned: one ref, or a list of refs."""
    return tuple(future) if isinstance(future, list) else future


def _wait_target(future):
    return future[0] if isinstance(future, list) else future


class ActorPool:
    """Schedule ``fn(actor, value)`` calls on idle actors of the pool.

    Results come back in submission order (``get_next``/``map``) or as they
    finish (``get_next_unordered``/``map_unordered``).
    """

    def __init__(self, actors):
        self._idle_actors = list(actors)
        self._future_to_actor = {}   # key of fn's result -> (index, actor)
        self._index_to_future = {}   # submission index -> fn's result
        self._next_task_index = 0    # index the next submit() gets
        self._next_return_index = 0  # index get_next() returns next
        self._pending_submits = []   # (fn, value) waiting for an idle actor

    def _drop_outstanding(self):
        # Results an earlier map left unread are dropped, not waited for.
        while self.has_next():
            try:
                self.get_next(timeout=0, ignore_if_timedout=True)
            except TimeoutError:
                pass

    def map(self, fn, values):
        """Submit fn(actor, v) for every value now; iterate results in order."""
        self._drop_outstanding()
        for v in values:
            self.submit(fn, v)

        def results():
            while self.has_next():
                yield self.get_next()

        return results()

    def map_unordered(self, fn, values):
        """Like map(), but yield each result as soon as it is ready."""
        self._drop_outstanding()
        for v in values:
            self.submit(fn, v)

        def results():
            while self.has_next():
                yield self.get_next_unordered()

        return results()

    def submit(self, fn, value):
        """Run fn(actor, value) on an idle actor (or when one becomes idle)."""
        if self._idle_actors:
            actor = self._idle_actors.pop()
            future = fn(actor, value)
            self._future_to_actor[_key(future)] = (self._next_task_index, actor)
            self._index_to_future[self._next_task_index] = future
            self._next_task_index += 1
        else:
            self._pending_submits.append((fn, value))

    def has_next(self):
        """Whether results are outstanding."""
        return bool(self._future_to_actor) or bool(self._pending_submits)

    def get_next(self, timeout=None, ignore_if_timedout=False):
        """The next result in submission order.  On timeout raise
        TimeoutError; with ignore_if_timedout the result is dropped first
        (its actor goes back to the pool)."""
        if not self.has_next():
            raise StopIteration("No more results to get")
        if self._next_return_index >= self._next_task_index:
            raise ValueError("It is not allowed to call get_next() after get_next_unordered().")
        future = self._index_to_future[self._next_return_index]
        if timeout is not None:
            ready, _ = manta.wait([_wait_target(future)], timeout=timeout)
            if not ready:
                if not ignore_if_timedout:
                    raise TimeoutError("Timed out waiting for result")
                self._finish(future)
                raise TimeoutError("Timed out waiting for result. The task "
                                   f"{self._next_return_index - 1} has been ignored.")
        self._finish(future)
        return manta.get(future)

    def _finish(self, future):
        del self._index_to_future[self._next_return_index]
        self._next_return_index += 1
        _, actor = self._future_to_actor.pop(_key(future))
        self._return_actor(actor)

    def get_next_unordered(self, timeout=None, ignore_if_timedout=False):
        """Any next result, the first to be ready."""
        if not self.has_next():
            raise StopIteration("No more results to get")
        targets = {_wait_target(self._index_to_future[i]): i for i, _ in
                   self._future_to_actor.values()}
        ready, _ = manta.wait(list(targets), num_returns=1, timeout=timeout)
        if not ready:
            if not ignore_if_timedout:
                raise TimeoutError("Timed out waiting for result")
            return None
        index = targets[ready[0]]
        future = self._index_to_future.pop(index)
        _, actor = self._future_to_actor.pop(_key(future))
        self._next_return_index = max(self._next_return_index, index + 1)
        self._return_actor(actor)
        return manta.get(future)

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
