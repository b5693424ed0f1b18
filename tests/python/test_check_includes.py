"""scripts/check_includes.py: passes on this tree, fails on an upward include
or a cycle, between components and between the layers of src/core."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "check_includes.py")


def run(root=None):
    args = [sys.executable, SCRIPT] + (["--root", str(root)] if root else [])
    return subprocess.run(args, capture_output=True, text=True, timeout=60)


def tree(tmp_path, files):
    for rel, text in files.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return tmp_path


BASE = {
    "include/manta.h": "",
    "src/common/mt.h": '#include "manta.h"\n',
    "src/core/core.h": '#include "mt.h"\n',
    "src/core/objects.h": '#include "core.h"\n',
    "src/core/objects.c": '#include "objects.h"\n',
    "src/core/router.h": '#include "objects.h"\n',
    "src/core/router.c": '#include "router.h"\n',
}


def test_this_tree_passes():
    r = run()
    assert r.returncode == 0, r.stderr


def test_a_clean_tree_passes(tmp_path):
    r = run(tree(tmp_path, BASE))
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize(
    "path,text,errors",
    [
        # objects.c reaching up to the router
        ("src/core/objects.c", '#include "objects.h"\n#include "router.h"\n',
         ["src/core/objects.c:2: includes router.h, a layer of src/core above it"]),
        # a base component reaching up to the client runtime: also a cycle
        ("src/common/mt.h", '#include "manta.h"\n#include "core.h"\n',
         ["src/common/mt.h:2: common includes core.h of core, a component above it",
          "cycle: common -> core -> common"]),
        # a file of src/core that the layering does not place
        ("src/core/stray.c", '#include "core.h"\n', ["stray.c or core.h has no layer"]),
    ],
)
def test_a_bad_include_fails(tmp_path, path, text, errors):
    files = dict(BASE)
    files[path] = text
    r = run(tree(tmp_path, files))
    assert r.returncode == 1
    for e in errors:
        assert e in r.stderr
