#!/usr/bin/env python3
"""check_includes.py -- the include graph of src/ runs one way.

Two levels, each with a layer order (bottom first):
  * components: the folders of src/ (and include/, the public header);
  * the client runtime: the files of src/core, by the layering of
    docs/architecture.md (loop.c the floor ... router.c the top).
A file may include headers of its own layer or of layers below it; an
include that goes up, or a cycle between layers, fails the check with the
file, line and edge.  Headers of the build (manta.pb-c.h) and of the system
are not part of the graph.

  scripts/check_includes.py             check the tree this script sits in
  scripts/check_includes.py --graph     also print the component edges
  scripts/check_includes.py --root DIR  check the tree at DIR
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Components, bottom first.  A folder may include its own headers and those
# of the folders before it.
COMPONENTS = ["include", "common", "wire", "net", "store", "sched", "gcs", "node",
              "core", "python"]

# Edges that go up, each with why; none today.  An entry is a pair
# (from, to) of component names.
ALLOWED_UP = set()

# src/core, bottom first: a file's layer is its name's (x.c and x.h share
# one).  value: values; core: the runtime's types (core.h); loop: the loop,
# peers and calls (the floor); plasma:
# the store client; objects: ownership; task: one task for both submitters;
# submit, actor: the submitters; exec: the worker side; router: the top;
# start, capi, capi_actor, worker_main: the C API and programs, above it all.
CORE_LAYERS = [
    ["value"], ["core"], ["loop"], ["plasma"], ["objects"], ["task"], ["submit"], ["actor"],
    ["exec"], ["router"], ["start", "capi", "capi_actor", "worker_main"],
]

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def sources():
    """(path relative to ROOT, component) of every C source and header."""
    for top in ("include", "src"):
        base = os.path.join(ROOT, top)
        for dirpath, _, files in os.walk(base):
            for f in sorted(files):
                if not f.endswith((".c", ".h")):
                    continue
                rel = os.path.relpath(os.path.join(dirpath, f), ROOT)
                parts = rel.split(os.sep)
                comp = "include" if parts[0] == "include" else parts[1]
                yield rel, comp


def header_index(files):
    """header name -> component, for headers of the tree (names are unique)."""
    idx = {}
    for rel, comp in files:
        if rel.endswith(".h"):
            name = os.path.basename(rel)
            if name in idx and idx[name] != comp:
                sys.exit("check_includes: header %s in both %s and %s" % (name, idx[name], comp))
            idx[name] = comp
    return idx


def includes(rel):
    with open(os.path.join(ROOT, rel), encoding="utf-8") as f:
        text = f.read()
    for m in INCLUDE.finditer(text):
        yield text.count("\n", 0, m.start()) + 1, os.path.basename(m.group(1))


def core_layer(name):
    stem = os.path.splitext(name)[0]
    for i, layer in enumerate(CORE_LAYERS):
        if stem in layer:
            return i
    return None


def find_cycle(edges):
    """A cycle in {a: {b, ...}} as a list of nodes, or None."""
    state = {}

    def visit(n, path):
        state[n] = 1
        path.append(n)
        for m in sorted(edges.get(n, ())):
            if state.get(m) == 1:
                return path[path.index(m):] + [m]
            if not state.get(m):
                found = visit(m, path)
                if found:
                    return found
        state[n] = 2
        path.pop()
        return None

    for n in sorted(edges):
        if not state.get(n):
            found = visit(n, [])
            if found:
                return found
    return None


def main(argv):
    global ROOT
    if "--root" in argv:
        ROOT = os.path.abspath(argv[argv.index("--root") + 1])
    files = list(sources())
    idx = header_index(files)
    rank = {c: i for i, c in enumerate(COMPONENTS)}
    errors = []
    comp_edges = {}
    core_edges = {}
    for rel, comp in files:
        if comp not in rank:
            errors.append("%s: component %s has no place in COMPONENTS" % (rel, comp))
            continue
        for line, name in includes(rel):
            to = idx.get(name)
            if to is None:
                continue  # system or generated header
            if to != comp:
                comp_edges.setdefault(comp, set()).add(to)
                if rank[to] > rank[comp] and (comp, to) not in ALLOWED_UP:
                    errors.append("%s:%d: %s includes %s of %s, a component above it"
                                  % (rel, line, comp, name, to))
            elif comp == "core":
                src_l, dst_l = core_layer(os.path.basename(rel)), core_layer(name)
                if src_l is None or dst_l is None:
                    errors.append("%s:%d: %s or %s has no layer in CORE_LAYERS"
                                  % (rel, line, os.path.basename(rel), name))
                    continue
                if dst_l != src_l:
                    core_edges.setdefault(src_l, set()).add(dst_l)
                if dst_l > src_l:
                    errors.append("%s:%d: includes %s, a layer of src/core above it"
                                  % (rel, line, name))
    graph = {a: {b for b in bs if (a, b) not in ALLOWED_UP} for a, bs in comp_edges.items()}
    cycle = find_cycle(graph)
    if cycle:
        errors.append("components include each other in a cycle: " + " -> ".join(cycle))
    cycle = find_cycle(core_edges)
    if cycle:
        errors.append("src/core layers include each other in a cycle: "
                      + " -> ".join("/".join(CORE_LAYERS[i]) for i in cycle))
    if "--graph" in argv:
        for a in COMPONENTS:
            print("%-8s -> %s" % (a, " ".join(c for c in COMPONENTS if c in comp_edges.get(a, ()))))
    for e in errors:
        print("check_includes: " + e, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
