#!/usr/bin/env python3
"""Every row of `ray microbenchmark` on manta and on Ray, alternating, in one
run: row | manta ops/s | Ray ops/s | manta/Ray, then the C API rows beside the
machine's floor.  The same as `manta microbenchmark --vs-ray`.

    python3 bench/compare_ray.py [--quick] [--rows REGEX] [--json] [--ray-python PATH]

Ray comes from a virtual environment of its own ($MANTA_RAY_VENV, default
~/.cache/manta/ray-venv), installed from PyPI the first time.
"""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python"))

from manta._private import microbenchmark  # noqa: E402

if __name__ == "__main__":
    argv = sys.argv[1:]
    if "--vs-ray" not in argv:
        argv = ["--vs-ray"] + argv
    sys.exit(microbenchmark.main(argv, prog="compare_ray.py"))
