#!/usr/bin/env bash
# deps.sh -- install what building and testing manta needs, if it is missing.
#
# For Debian 12 (apt); non-interactive, so it runs in CI (CI=true, no stdin).
# Idempotent and quiet: it checks first (pkg-config, commands, dpkg, imports)
# and prints only when it installs something or fails.
#
#   scripts/deps.sh              build tools, libraries, Python test packages
#   MANTA_FUZZ=1 scripts/deps.sh also clang and its libFuzzer runtime
#   PYTHON=/path/python3 ...     the Python to check (default: python3 on PATH)
set -euo pipefail

PY=${PYTHON:-python3}
APT_LOG=${TMPDIR:-/tmp}/manta-deps-$$.log
trap 'rm -f "$APT_LOG"' EXIT

say() { echo "deps.sh: $*" >&2; }
die() {
  say "error: $*"
  exit 1
}
have() { command -v "$1" >/dev/null 2>&1; }
pc() { have pkg-config && pkg-config --exists "$1"; }
deb_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'; }

cmake_ok() {
  have cmake || return 1
  local v
  v=$(cmake --version | sed -n '1s/[^0-9]*\([0-9][0-9]*\.[0-9][0-9]*\).*/\1/p')
  [ -n "$v" ] || return 1
  # ctest --test-dir needs 3.20
  [ "$(printf '%s\n3.20\n' "$v" | sort -V | head -1)" = "3.20" ]
}

have "$PY" || die "no '$PY' on PATH: install Python 3.8 or newer (Debian: apt-get install python3)"

# One look at the Python in use (a pyenv shim costs a fraction of a second a
# call): its path, whether it has C headers, whether it is Debian's own
# "externally managed" python3 (PEP 668: its packages come from apt, and
# `pip install .` needs a venv), whether it can make venvs, and which of the
# test packages it lacks (found without importing them).
py_modules=(numpy cloudpickle pytest pytest_timeout)
pip_names=(numpy cloudpickle pytest pytest-timeout)
deb_names=(python3-numpy python3-cloudpickle python3-pytest python3-pytest-timeout)
py_facts() {
  "$PY" - "${py_modules[@]}" <<'PYEOF'
import importlib.util, os, sys, sysconfig
print(sys.executable)
print(int(os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h"))))
print(int(sys.base_prefix == "/usr"))
print(int(sys.prefix == sys.base_prefix and
          os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED"))))
print(int(all(importlib.util.find_spec(m) for m in ("ensurepip", "venv"))))
print(" ".join(m for m in sys.argv[1:] if importlib.util.find_spec(m) is None))
PYEOF
}
facts=$(py_facts) || die "cannot run $PY"
{
  read -r py_exe
  read -r py_headers
  read -r py_is_debian
  read -r py_managed
  read -r py_venv
  read -r py_missing || true
} <<<"$facts"

# ---------------------------------------------------------------- apt packages
apt=()
{ have cc && have make; } || apt+=(build-essential)
cmake_ok || apt+=(cmake)
have pkg-config || apt+=(pkg-config)
pc libuv || apt+=(libuv1-dev)
pc libprotobuf-c || apt+=(libprotobuf-c-dev)
have protoc-c || apt+=(protobuf-c-compiler)
pc check || apt+=(check)

# Headers of the Python in use (the extension is built against it).
if [ "$py_headers" != 1 ]; then
  if [ "$py_is_debian" = 1 ]; then
    apt+=(python3-dev)
  else
    die "$py_exe has no C headers (Python.h): install its development files, or use Debian's python3"
  fi
fi
if [ "$py_managed" = 1 ] && [ "$py_venv" != 1 ]; then
  apt+=(python3-venv)
fi

if [ "${MANTA_FUZZ:-0}" = 1 ]; then
  have clang || apt+=(clang)
  deb_installed libclang-rt-14-dev || apt+=(libclang-rt-14-dev)
fi

# ---------------------------------------------------------------- Python packages
pip=()
for i in "${!py_modules[@]}"; do
  case " $py_missing " in
  *" ${py_modules[$i]} "*)
    if [ "$py_managed" = 1 ]; then
      apt+=("${deb_names[$i]}")
    else
      pip+=("${pip_names[$i]}")
    fi
    ;;
  esac
done

# ---------------------------------------------------------------- install
if [ "${#apt[@]}" -gt 0 ]; then
  have apt-get || die "missing: ${apt[*]}; apt-get is not available here: install these (or their equivalents) by hand"
  sudo=()
  if [ "$(id -u)" != 0 ]; then
    have sudo || die "missing: ${apt[*]}; need root or sudo to install them with apt-get"
    sudo=(sudo -n)
  fi
  say "installing with apt-get: ${apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! "${sudo[@]}" apt-get update -q >"$APT_LOG" 2>&1 ||
    ! "${sudo[@]}" apt-get install -y -q --no-install-recommends "${apt[@]}" >>"$APT_LOG" 2>&1 </dev/null; then
    tail -n 30 "$APT_LOG" >&2
    die "apt-get failed to install: ${apt[*]}"
  fi
fi

if [ "${#pip[@]}" -gt 0 ]; then
  "$PY" -m pip --version >/dev/null 2>&1 || die "missing Python packages ${pip[*]}, and $PY has no pip (python3 -m ensurepip)"
  say "installing with pip for $py_exe: ${pip[*]}"
  "$PY" -m pip install -q --disable-pip-version-check --no-input "${pip[@]}" </dev/null ||
    die "pip failed to install: ${pip[*]}"
fi

# Check again after installing, so a broken install is reported here and
# not later as a build or import error.
if [ "${#apt[@]}" -gt 0 ] || [ "${#pip[@]}" -gt 0 ]; then
  facts=$(py_facts) || die "cannot run $PY"
  missing=$(sed -n 6p <<<"$facts")
  [ -z "$missing" ] || die "Python modules still missing for $py_exe: $missing"
  if ! { pc libuv && pc libprotobuf-c && pc check && have protoc-c && cmake_ok; }; then
    die "build dependencies are still missing after installing (see above)"
  fi
  if [ "${MANTA_FUZZ:-0}" = 1 ] && ! { have clang && deb_installed libclang-rt-14-dev; }; then
    die "clang or its libFuzzer runtime (libclang-rt-14-dev) is still missing after installing"
  fi
fi
exit 0
