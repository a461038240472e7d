#!/usr/bin/env bash
# Device check: the whole test suite on this host's accelerator, then bench_taylor.py and
# bench_gpu.py (if present), inside a fixed time budget, with a compact summary printed last.
#
#   bash benchmarks/device_check.sh                       # GPU host: ~8 min budget in all
#   DEVICE_CHECK_QUICK=1 bash benchmarks/device_check.sh  # CPU smoke run: one test file, tiny benchmarks
#
# No network and no installs: the project is imported from the checkout (PYTHONPATH=.).
# Environment knobs (all optional):
#   DEVICE_CHECK_BUDGET   total seconds (default 480; quick: 300)
#   DEVICE_CHECK_JOBS     pytest-xdist workers (default: min(10, cores - 2); quick: 0 = no xdist)
#   DEVICE_CHECK_TESTS    test paths/ids to run (default: tests; quick: tests/test_svd.py)
#   DEVICE_CHECK_OUT      folder for logs and JSON (default: a fresh temporary folder)
#   PYTHON                interpreter (default: python)
# Each stage runs under `timeout` with its share of what is left, so the summary always
# prints; a stage cut short is reported as such.  Exit status: 0 when every test that ran
# passed and nothing timed out, 1 otherwise.
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}" XLA_PYTHON_CLIENT_PREALLOCATE=false MPLBACKEND=Agg
export PYTHONDONTWRITEBYTECODE=1
PY=${PYTHON:-python}
QUICK=${DEVICE_CHECK_QUICK:-0}
[ "$QUICK" = 0 ] && QUICK=""
OUT=${DEVICE_CHECK_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/device_check.XXXXXX")}
mkdir -p "$OUT"
START=$(date +%s)
if [ -n "$QUICK" ]; then
  BUDGET=${DEVICE_CHECK_BUDGET:-300}
  JOBS=${DEVICE_CHECK_JOBS:-0}
  TESTS=${DEVICE_CHECK_TESTS:-tests/test_svd.py}
  PER_TEST=120
else
  BUDGET=${DEVICE_CHECK_BUDGET:-480}
  CORES=$(nproc 2>/dev/null || echo 4)
  JOBS=${DEVICE_CHECK_JOBS:-$(( CORES - 2 < 1 ? 1 : (CORES - 2 > 10 ? 10 : CORES - 2) ))}
  TESTS=${DEVICE_CHECK_TESTS:-tests}
  PER_TEST=240
fi

left() { echo $(( BUDGET - ($(date +%s) - START) )); }
# run_stage NAME SECONDS CMD...: output to $OUT/NAME.log, exit status to $OUT/NAME.rc, wall time to $OUT/NAME.s
run_stage() {
  local name=$1 secs=$2 t0 rc
  shift 2
  if [ "$secs" -lt 20 ]; then
    echo "skipped: no time left" > "$OUT/$name.log"; echo 125 > "$OUT/$name.rc"; echo 0 > "$OUT/$name.s"
    return
  fi
  echo "== $name (limit ${secs}s): $*"
  t0=$(date +%s)
  # SIGINT first (pytest and the benchmarks stop and report), SIGKILL 15 s later
  timeout --signal=INT --kill-after=15 "$secs" "$@" > "$OUT/$name.log" 2>&1
  rc=$?
  echo "$rc" > "$OUT/$name.rc"; echo $(( $(date +%s) - t0 )) > "$OUT/$name.s"
  tail -n 3 "$OUT/$name.log"
}

# 0. the host
"$PY" - > "$OUT/host.log" 2>&1 <<'EOF'
import platform, jax
print(f"jax {jax.__version__}, backend {jax.default_backend()}, devices {[str(d) for d in jax.devices()]}, "
      f"{platform.machine()}")
try:
    import torch
    print(f"torch {torch.__version__}, cuda {torch.cuda.is_available()}")
except ImportError:
    print("torch: not importable")
EOF
cat "$OUT/host.log"

# 1. the test suite: about 60 % of the budget (benchmarks get the rest, at least 150 s)
XDIST=()
[ "$JOBS" != 0 ] && XDIST=(-n "$JOBS")
if [ -n "$QUICK" ]; then T_TESTS=$(( $(left) / 2 )); else T_TESTS=$(( $(left) - 150 )); fi
TIMEOUT_ARG=()
"$PY" -c "import pytest_timeout" 2> /dev/null && TIMEOUT_ARG=(--timeout="$PER_TEST")
# shellcheck disable=SC2086  # TESTS is a list of paths
run_stage tests "$T_TESTS" "$PY" -m pytest -q "${XDIST[@]}" -p no:benchmark -p no:cacheprovider \
  "${TIMEOUT_ARG[@]}" -rfE --junitxml="$OUT/junit.xml" $TESTS

# 2. benchmarks: bench_taylor (quick), then bench_gpu (quick) if it exists; half of what is left each
TAYLOR_ARGS=(--quick --budget 5 --json "$OUT/bench_taylor.json")
[ -n "$QUICK" ] && TAYLOR_ARGS+=(--orders 1,2 --no-torch)
if [ -e benchmarks/bench_gpu.py ]; then T_TAYLOR=$(( $(left) / 2 )); else T_TAYLOR=$(( $(left) - 5 )); fi
run_stage bench_taylor "$T_TAYLOR" "$PY" benchmarks/bench_taylor.py "${TAYLOR_ARGS[@]}"
if [ -e benchmarks/bench_gpu.py ]; then
  GPU_ARGS=()
  # the quick CPU run: the smallest size; on an accelerator: 4096^2 (the issue's size), 5 repeats
  if [ -n "$QUICK" ]; then GPU_ARGS+=(--quick); else GPU_ARGS+=(${DEVICE_CHECK_GPU_ARGS:---sizes 4096 --repeats 5}); fi
  grep -q -- '"--json"' benchmarks/bench_gpu.py && GPU_ARGS+=(--json "$OUT/bench_gpu.json")
  run_stage bench_gpu $(( $(left) - 5 )) "$PY" benchmarks/bench_gpu.py "${GPU_ARGS[@]}"
fi

# 3. the summary, last
"$PY" - "$OUT" "$BUDGET" "$START" "$JOBS" <<'EOF'
import os, sys, time
import xml.etree.ElementTree as ET

out, budget, start, jobs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
bad = False


def read(name, default=""):
    try:
        with open(os.path.join(out, name)) as f:
            return f.read().strip()
    except OSError:
        return default


def status(stage):
    rc = read(f"{stage}.rc", "")
    if rc == "":
        return None, "not run"
    rc = int(rc)
    secs = read(f"{stage}.s", "?")
    what = {0: "ok", 124: "TIMED OUT", 125: "skipped (no time left)", 130: "TIMED OUT (interrupted)",
            137: "KILLED (time)"}.get(rc, f"exit {rc}")
    return rc, f"{what}, {secs} s"


print("\n======================== device check summary ========================")
print(read("host.log").replace("\n", "; "))
rc, st = status("tests")
fails = []
try:
    root = ET.parse(os.path.join(out, "junit.xml")).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    tot = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
    for case in root.iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            kind = "FAILED" if case.find("failure") is not None else "ERROR"
            where = case.get("classname", "").replace(".", "/")
            fails.append(f"{kind} {where + '.py::' if where else ''}{case.get('name')}")
    passed = tot["tests"] - tot["failures"] - tot["errors"] - tot["skipped"]
    counts = (f"{passed} passed, {tot['failures']} failed, {tot['errors']} errors, "
              f"{tot['skipped']} skipped")
    bad = bad or tot["failures"] > 0 or tot["errors"] > 0 or tot["tests"] == 0
except (OSError, ET.ParseError):
    last = [ln for ln in read("tests.log").splitlines() if " in " in ln and ("passed" in ln or "failed" in ln)]
    counts = last[-1] if last else "no result (see tests.log)"
    fails = [ln for ln in read("tests.log").splitlines() if ln.startswith(("FAILED", "ERROR"))]
    bad = True
print(f"tests ({'-n ' + jobs if jobs != '0' else 'serial'}; {st}): {counts}")
bad = bad or rc not in (0, None)
for f in fails[:40]:
    print("  " + f)
if len(fails) > 40:
    print(f"  ... and {len(fails) - 40} more")
for stage in ("bench_taylor", "bench_gpu"):
    rc, st = status(stage)
    if rc is None:
        print(f"{stage}: not run (script absent)")
        continue
    print(f"{stage}: {st}")
    bad = bad or rc != 0
    lines = [ln for ln in read(f"{stage}.log").splitlines() if ln.strip()]
    key = [ln for ln in lines if "compile" in ln.lower() or "x svd" in ln or "speedup" in ln.lower()][:12]
    for ln in key + [ln for ln in lines[-8:] if ln not in key]:
        print("  " + ln[:160])
print(f"total {int(time.time()) - start} s of a {budget} s budget; logs in {out}")
print("RESULT:", "FAIL" if bad else "PASS")
sys.exit(1 if bad else 0)
EOF
