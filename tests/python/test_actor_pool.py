"""manta.util.ActorPool (Ray's ray.util.ActorPool): map, map_unordered,
submit/get_next, idle actors, timeouts."""

import faulthandler
import os
import time

import pytest

import manta as ray
from manta.util import ActorPool

T = 30


@pytest.fixture(autouse=True)
def _bounded_in_time():
    faulthandler.dump_traceback_later(120, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


@ray.remote
class Doubler:
    def double(self, v):
        return 2 * v

    def slow_double(self, v):
        time.sleep(0.05 * v)
        return 2 * v

    def gated(self, path, v):
        deadline = time.monotonic() + 20
        while not os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.005)
        return 2 * v

    @ray.method(num_returns=2)
    def both(self, v):
        return v, -v


def test_map_returns_results_in_order(ray_start):
    pool = ActorPool([Doubler.remote(), Doubler.remote()])
    # The first values take longest: finishing order differs from submission order.
    values = [6, 5, 4, 3, 2, 1, 0]
    assert list(pool.map(lambda a, v: a.slow_double.remote(v), values)) == \
        [2 * v for v in values]
    assert not pool.has_next()
    # The pool is reusable.
    assert list(pool.map(lambda a, v: a.double.remote(v), range(10))) == \
        [2 * v for v in range(10)]


def test_map_submits_before_iteration(ray_start):
    """Ray's map() submits every value when called, and returns a generator
    over the results; iteration only collects them."""
    pool = ActorPool([Doubler.remote()])
    it = pool.map(lambda a, v: a.double.remote(v), [1, 2, 3])
    assert pool.has_next()
    assert pool.get_next(timeout=T) == 2
    assert list(it) == [4, 6]


def test_map_unordered_yields_every_result(ray_start):
    pool = ActorPool([Doubler.remote(), Doubler.remote(), Doubler.remote()])
    values = [6, 1, 5, 2, 4, 3]
    out = list(pool.map_unordered(lambda a, v: a.slow_double.remote(v), values))
    assert sorted(out) == sorted(2 * v for v in values)
    assert not pool.has_next()


def test_submit_get_next_has_next(ray_start):
    pool = ActorPool([Doubler.remote(), Doubler.remote()])
    assert not pool.has_next()
    for v in range(5):  # more submissions than actors: the rest wait in the pool
        pool.submit(lambda a, v: a.double.remote(v), v)
    assert pool.has_next()
    assert [pool.get_next(timeout=T) for _ in range(5)] == [0, 2, 4, 6, 8]
    assert not pool.has_next()
    with pytest.raises(StopIteration):
        pool.get_next()

    for v in range(4):
        pool.submit(lambda a, v: a.double.remote(v), v)
    got = [pool.get_next_unordered(timeout=T) for _ in range(4)]
    assert sorted(got) == [0, 2, 4, 6]
    assert not pool.has_next()


def test_has_free_pop_idle_push(ray_start):
    a1, a2 = Doubler.remote(), Doubler.remote()
    pool = ActorPool([a1])
    assert pool.has_free()
    pool.submit(lambda a, v: a.double.remote(v), 1)
    assert not pool.has_free()
    assert pool.pop_idle() is None
    assert pool.get_next(timeout=T) == 2
    assert pool.has_free()
    popped = pool.pop_idle()
    assert popped == a1
    assert not pool.has_free() and pool.pop_idle() is None

    pool.push(a2)
    with pytest.raises(ValueError, match="already belongs"):
        pool.push(a2)
    pool.submit(lambda a, v: a.double.remote(v), 5)
    with pytest.raises(ValueError, match="already belongs"):
        pool.push(a2)  # busy is a member too
    assert pool.get_next(timeout=T) == 10
    pool.push(a1)
    assert sorted(pool.map(lambda a, v: a.double.remote(v), [1, 2])) == [2, 4]


def test_get_next_timeout(ray_start, tmp_path):
    gate = str(tmp_path / "gate")
    pool = ActorPool([Doubler.remote()])
    pool.submit(lambda a, v: a.gated.remote(gate, v), 21)
    t = time.monotonic()
    with pytest.raises(TimeoutError):
        pool.get_next(timeout=0.2)
    assert time.monotonic() - t < 5
    with pytest.raises(TimeoutError):
        pool.get_next_unordered(timeout=0.2)
    assert pool.has_next()  # still there after the timeouts
    open(gate, "w").close()
    assert pool.get_next(timeout=T) == 42
    assert not pool.has_next()


def test_get_next_ignore_if_timedout(ray_start, tmp_path):
    """Ray: with ignore_if_timedout=True a timed-out result is dropped, the
    pool moves past it, and TimeoutError is raised all the same."""
    gate = str(tmp_path / "gate")
    pool = ActorPool([Doubler.remote(), Doubler.remote()])
    pool.submit(lambda a, v: a.gated.remote(gate, v), 1)
    pool.submit(lambda a, v: a.double.remote(v), 2)
    with pytest.raises(TimeoutError):
        pool.get_next(timeout=0.2, ignore_if_timedout=True)
    assert pool.get_next(timeout=T) == 4  # the ignored first result is skipped
    open(gate, "w").close()


def test_fn_returning_several_refs(ray_start):
    """Ray's pool accepts fn returning a list of refs (num_returns > 1)."""
    pool = ActorPool([Doubler.remote(), Doubler.remote()])
    out = list(pool.map(lambda a, v: a.both.remote(v), [1, 2, 3]))
    assert out == [[1, -1], [2, -2], [3, -3]]


def test_an_error_in_a_call_is_raised_by_get_next(ray_start):
    @ray.remote
    class Picky:
        def check(self, v):
            if v == 2:
                raise ValueError("two is bad")
            return v

    pool = ActorPool([Picky.remote()])
    for v in (1, 2, 3):
        pool.submit(lambda a, v: a.check.remote(v), v)
    assert pool.get_next(timeout=T) == 1
    with pytest.raises(ValueError, match="two is bad"):
        pool.get_next(timeout=T)
    assert pool.get_next(timeout=T) == 3  # the actor went back to the pool
