#!/usr/bin/env bash
# test.sh -- build manta and run every test, from a clean clone.
#
#   1. scripts/deps.sh (installs what is missing), then
#      scripts/check_includes.py (the include graph runs one way)
#   2. cmake configure + build into build/ (RelWithDebInfo, tests on,
#      extension and programs copied into python/manta for in-tree use)
#   3. fuzz: when clang and its libFuzzer runtime are there, every fuzz
#      target is built with libFuzzer (into $BUILD-fuzz) and run for a
#      bounded time from its corpus; a crash, leak or UB fails the run
#   4. ctest: C unit tests, C examples, fuzz replays
#   5. a check that ctest left no manta process of this checkout alive
#   6. pytest tests/python (the lead's conftest checks leaks per test)
#
# The output ends with ctest's and then pytest's own summary; the exit
# status is the first failure's (ctest, leak check, pytest, fuzz).
#
#   MANTA_BUILD_DIR=build-x scripts/test.sh   build elsewhere
#   PYTEST_ARGS="-x -k objects" scripts/test.sh
#   MANTA_FUZZ=0 scripts/test.sh      skip the fuzz stage (CI=true: installs
#                                     clang for it unless MANTA_FUZZ=0)
#   MANTA_FUZZ_SECONDS=N              seconds per handler target (default 60;
#                                     the decoder targets get a sixth)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT"
BUILD=${MANTA_BUILD_DIR:-build}
SESSIONS=${MANTA_TEMP_DIR:-/tmp/manta-$(id -u)}

# CI installs what the fuzz stage needs too.
if [ "${CI:-}" = true ] && [ -z "${MANTA_FUZZ:-}" ]; then export MANTA_FUZZ=1; fi
scripts/deps.sh

echo "== include graph"
python3 scripts/check_includes.py

# The extension must match the python3 that runs pytest (a pyenv shim is
# resolved to the real interpreter).
PY=$(python3 -c 'import sys; print(sys.executable)')

# Every process this run starts carries this tag in its environment (drivers
# pass their environment to the daemons they start, daemons to workers).
MANTA_TEST_RUN="$$-$(date +%s%N)"
export MANTA_TEST_RUN

echo "== build ($BUILD, $(nproc) jobs)"
mkdir -p "$BUILD"
# Configure quietly; its output is kept in $BUILD/configure.log.
if ! cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMANTA_BUILD_TESTS=ON \
  -DMANTA_BUILD_PYTHON=ON -DMANTA_INPLACE=ON -DPython3_EXECUTABLE="$PY" \
  >"$BUILD/configure.log" 2>&1; then
  cat "$BUILD/configure.log"
  echo "test.sh: cmake configure failed" >&2
  exit 1
fi
cmake --build "$BUILD" -j "$(nproc)"

# ---------------------------------------------------------------- leak check
# A process is alive unless gone or a zombie (init may reap late).
alive() {
  local s
  s=$(cat 2>/dev/null "/proc/$1/stat") || return 1
  s=${s##*) }
  [ "${s%% *}" != Z ]
}

# Whether pid $1 was started by this run (our tag), or runs a program of this
# checkout and started after this script did.
ours() {
  local pid=$1 exe
  if tr '\0' '\n' 2>/dev/null <"/proc/$pid/environ" | grep -qxF "MANTA_TEST_RUN=$MANTA_TEST_RUN"; then
    return 0
  fi
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
  case "$exe" in "$ROOT"/*) ;; *) return 1 ;; esac
  local mine theirs
  mine=$(starttime $$) theirs=$(starttime "$pid") || return 1
  [ "$theirs" -ge "$mine" ]
}

starttime() {
  local s f
  s=$(cat 2>/dev/null "/proc/$1/stat") || return 1
  s=${s##*) }
  read -r -a f <<<"$s"
  echo "${f[19]}" # field 22 of stat; fields after the name start at 3
}

# Print the manta processes of this checkout still alive, by the pids in the
# session directories (never found by name).
leaked() {
  local d f pid
  for d in "$SESSIONS"/s-*; do
    [ -d "$d" ] || continue
    for f in daemon.pid workers.pid; do
      while read -r pid _; do
        if ! [[ "$pid" =~ ^[0-9]+$ ]] || [ "$pid" -le 1 ]; then continue; fi
        if ! alive "$pid" || ! ours "$pid"; then continue; fi
        echo "$pid ${f%.pid} $d: $(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | cut -c1-160)"
      done < <(cat 2>/dev/null "$d/$f")
    done
  done
}

# Wait a little for daemons to stop after their drivers, then report what is
# left, kill what this run started, and fail.
check_leaks() {
  local what=$1 left i
  for i in $(seq 50); do
    left=$(leaked)
    [ -n "$left" ] || return 0
    [ "$i" = 50 ] || sleep 0.1
  done
  {
    echo "test.sh: $what left manta processes running (pid, role, session: command):"
    while read -r line; do echo "  $line"; done <<<"$left"
  } >&2
  while read -r pid _; do
    if tr '\0' '\n' 2>/dev/null <"/proc/$pid/environ" | grep -qxF "MANTA_TEST_RUN=$MANTA_TEST_RUN"; then
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done <<<"$left"
  return 1
}

# ---------------------------------------------------------------- fuzz
# libFuzzer needs clang and its runtime (Debian: clang, libclang-rt-14-dev).
have_libfuzzer() {
  command -v clang >/dev/null 2>&1 || return 1
  local d
  d=$(mktemp -d)
  printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }\n' >"$d/t.c"
  clang -fsanitize=fuzzer,address,undefined "$d/t.c" -o "$d/t" >/dev/null 2>&1
  local rc=$?
  rm -rf "$d"
  return $rc
}

fuzz_rc=0
if [ "${MANTA_FUZZ:-}" = 0 ]; then
  echo "== fuzz: skipped (MANTA_FUZZ=0)"
elif ! have_libfuzzer; then
  echo "== fuzz: skipped: no clang with libFuzzer here (MANTA_FUZZ=1 scripts/deps.sh installs it)"
else
  case $BUILD in /*) FBUILD="$BUILD-fuzz" ;; *) FBUILD="$ROOT/$BUILD-fuzz" ;; esac
  mkdir -p "$SESSIONS" # the targets' scratch sessions go there (TMPDIR)
  SECS=${MANTA_FUZZ_SECONDS:-60}
  echo "== fuzz ($FBUILD, ${SECS}s per handler target)"
  mkdir -p "$FBUILD"
  if ! CC=clang cmake -S . -B "$FBUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMANTA_LIBFUZZER=ON \
    -DMANTA_BUILD_PYTHON=OFF -DMANTA_INPLACE=OFF >"$FBUILD/configure.log" 2>&1; then
    cat "$FBUILD/configure.log"
    fuzz_rc=1
  fi
  targets=(fuzz_node fuzz_core fuzz_frame fuzz_decode fuzz_value fuzz_resources fuzz_layout)
  if [ "$fuzz_rc" = 0 ] && ! cmake --build "$FBUILD" -j "$(nproc)" --target "${targets[@]}"; then
    echo "fuzz: FAILED: the libFuzzer build of the targets failed (above)" >&2
    fuzz_rc=1
  fi
  for t in "${targets[@]}"; do
    [ "$fuzz_rc" = 0 ] || break
    # Handler targets read their corpus from the repository; the others'
    # seeds are written at build time.  New inputs go to a scratch folder.
    corpus="$ROOT/fuzz/corpus/$t"
    [ -d "$corpus" ] || corpus="$FBUILD/fuzz/corpus/$t"
    secs=$SECS
    case $t in fuzz_node | fuzz_core) ;; *) secs=$(((SECS + 5) / 6)) ;; esac
    found="$FBUILD/fuzz/found/$t"
    mkdir -p "$found" "$FBUILD/fuzz/crashes"
    log="$FBUILD/fuzz/$t.log"
    if (cd "$FBUILD/fuzz" && TMPDIR="$SESSIONS" "./$t" -max_total_time="$secs" -timeout=30 \
      -rss_limit_mb=4096 -print_final_stats=1 -artifact_prefix="$FBUILD/fuzz/crashes/" \
      "$found" "$corpus" >"$log" 2>&1); then
      echo "fuzz $t: ok, $(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$') runs in ${secs}s," \
        "$(grep -o 'cov: [0-9]*' "$log" | tail -1)"
    else
      echo "fuzz $t: FAILED (log $log, input in $FBUILD/fuzz/crashes/):" >&2
      grep -E 'ERROR|runtime error|SUMMARY|fuzz check|Test unit written' "$log" | head -20 >&2
      fuzz_rc=1
    fi
  done
fi


# ---------------------------------------------------------------- tests
echo "== ctest"
ctest_rc=0
ctest --test-dir "$BUILD" --output-on-failure || ctest_rc=$?
leak_rc=0
check_leaks ctest || leak_rc=1

echo "== pytest"
pytest_rc=0
# shellcheck disable=SC2086 # PYTEST_ARGS is a list of words
PYTHONPATH="$ROOT/python${PYTHONPATH:+:$PYTHONPATH}" "$PY" -m pytest tests/python -q \
  -p no:cacheprovider --timeout=300 ${PYTEST_ARGS:-} || pytest_rc=$?
# Exit 5 is "no tests collected": ctest ran the tests there are.
[ "$pytest_rc" != 5 ] || pytest_rc=0

if [ "$ctest_rc" != 0 ]; then exit "$ctest_rc"; fi
if [ "$leak_rc" != 0 ]; then exit "$leak_rc"; fi
if [ "$pytest_rc" != 0 ]; then exit "$pytest_rc"; fi
exit "$fuzz_rc"
