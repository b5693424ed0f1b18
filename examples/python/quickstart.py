"""manta quickstart: the seeds' programs with Ray's API.

    python examples/python/quickstart.py

`import manta as ray` works too: the calls are Ray's.  manta.init() with no
address starts a private local cluster (one node) that stops with this
program.
"""

import os
import tempfile

import numpy as np

import manta


# -------------------------------------------------------------- zeros / dot
# Functions become tasks; calling .remote() returns a future (an ObjectRef)
# at once.  A future passed to another task is resolved before it runs, so
# the three calls below form a small task graph.

@manta.remote
def zeros(shape):
    return np.zeros(shape)


@manta.remote
def dot(a, b):
    return np.dot(a, b)


# -------------------------------------------------------------- read_array / add

@manta.remote
def read_array(file):
    return np.load(file)


@manta.remote
def add(a, b):
    return np.add(a, b)


def main():
    manta.init()
    try:
        print("cluster resources:", {k: v for k, v in manta.cluster_resources().items()
                                     if k in ("CPU", "GPU")})

        ref1 = zeros.remote([5, 5])
        ref2 = zeros.remote([5, 5])
        ref3 = dot.remote(ref1, ref2)
        result = manta.get(ref3)
        print("dot(zeros([5, 5]), zeros([5, 5])) =")
        print(result)
        assert result.shape == (5, 5) and not result.any()

        with tempfile.TemporaryDirectory(prefix="manta-quickstart-") as tmp:
            file1 = os.path.join(tmp, "a.npy")
            file2 = os.path.join(tmp, "b.npy")
            np.save(file1, np.arange(10, dtype=np.float64))
            np.save(file2, np.full(10, 0.5))
            id1 = read_array.remote(file1)
            id2 = read_array.remote(file2)
            id3 = add.remote(id1, id2)
            total = manta.get(id3)
        print("add(read_array(a.npy), read_array(b.npy)) =", total)
        assert np.array_equal(total, np.arange(10) + 0.5)

        # Many tasks at once; get() takes a list of futures.
        squares = manta.get([dot.remote(np.eye(2) * i, np.eye(2) * i) for i in range(4)])
        print("traces of four more tasks:", [float(np.trace(s)) for s in squares])
    finally:
        manta.shutdown()
    print("quickstart: ok")


if __name__ == "__main__":
    main()
