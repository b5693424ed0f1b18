#!/usr/bin/env bash
# quickstart.sh -- install manta from this checkout and run the quickstart.
#
#   scripts/quickstart.sh
#
# Installs what is missing (scripts/deps.sh), then `python3 -m pip install .`
# (a venv in .venv-quickstart/ instead when python3 is Debian's own,
# "externally managed" one), then runs examples/python/quickstart.py with the
# installed package from a directory outside the checkout.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT"
scripts/deps.sh

PY=$(python3 -c 'import sys; print(sys.executable)')
if "$PY" -c 'import os, sys, sysconfig
sys.exit(not (sys.prefix == sys.base_prefix and
              os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED"))))'; then
  # Debian's python3 takes no pip installs; its numpy/cloudpickle come from
  # apt (deps.sh), so the venv sees the system's packages.
  if [ ! -x "$ROOT/.venv-quickstart/bin/python" ]; then
    echo "quickstart.sh: $PY is externally managed; making a venv in .venv-quickstart/"
    "$PY" -m venv --system-site-packages "$ROOT/.venv-quickstart"
  fi
  PY=$ROOT/.venv-quickstart/bin/python
fi

LOG=$(mktemp "${TMPDIR:-/tmp}/manta-quickstart-pip.XXXXXX")
RUN=$(mktemp -d "${TMPDIR:-/tmp}/manta-quickstart.XXXXXX")
trap 'rm -rf "$LOG" "$RUN"' EXIT

printf 'quickstart.sh: building and installing manta with %s -m pip ... ' "$PY"
if ! "$PY" -m pip install --disable-pip-version-check --no-input "$ROOT" >"$LOG" 2>&1 </dev/null; then
  echo "failed"
  tail -n 40 "$LOG" >&2
  exit 1
fi
# Run from outside the checkout, so `import manta` finds the installed package.
cp examples/python/quickstart.py "$RUN/"
cd "$RUN"
unset PYTHONPATH
echo "done ($("$PY" -c 'import manta, os; print("manta", manta.__version__, "in", os.path.dirname(manta.__file__))'))"
"$PY" quickstart.py
