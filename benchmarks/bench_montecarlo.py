"""Monte Carlo throughput and memory: jaxsvd Taylor mode against the jnp routes.

Rows (matrices per second, vmapped over NUM matrices of SHAPE, float64, jit):

  svd_uv          jnp.linalg.svd(full_matrices=False)        (the baseline)
  svdvals         jnp.linalg.svdvals
  taylor_K        jaxsvd.derivatives(a, h, K)                (K = 2, 4, 8)
  nested_jvp_K    K nested jax.jvp through jnp.linalg.svdvals (K = 2, 4, 8 -- 2^K cost)
  jax_hessian     D^2 sigma[H, H] for all sigma from jax.hessian(jnp.linalg.svdvals)
                  (r x (mn)^2 per matrix: run on a small NUM_H)
  jaxsvd_hessian  vmapped jaxsvd.hessian(a, 0) (skipped if jaxsvd.hessian is absent)
  jax_hessian_k0  vmapped jax.hessian(lambda a: jnp.linalg.svdvals(a)[0]) (same output)

and the sensitivity() driver itself (chunked, batch 1024).  Each: one warm-up
call (compile time reported separately), then the median of REPS timed calls with
block_until_ready.  Ratios are printed against svd_uv and nested_jvp_K.

Peak memory (run first, while this process is small): sensitivity((6, 10), num,
order=2, batch_size=1024) in fresh subprocesses for num = 1e5 and 1e6 (--quick:
1e4, 1e5), peak RSS from /proc/self/status VmHWM (ru_maxrss would include the
parent's peak at fork); the (num, 3, 6) float64 result array is the only thing that
should grow with num.

    python benchmarks/bench_montecarlo.py [--quick] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import textwrap
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402

import jaxsvd  # noqa: E402
import jaxsvd.montecarlo as mc  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def compile_time(fn, *args):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    return max(first - (time.perf_counter() - t0), 0.0)


def interleaved(cases, reps: int):
    """Time every case once per round, ``reps`` rounds (so load drift on a shared
    machine hits all cases alike); median and min per case."""
    times = {name: [] for name in cases}
    for _ in range(reps):
        for name, (fn, args) in cases.items():
            t0 = time.perf_counter()
            jax.block_until_ready(fn(*args))
            times[name].append(time.perf_counter() - t0)
    return {name: {"median_s": statistics.median(t), "min_s": min(t)} for name, t in times.items()}


def nested_jvp(a, h, order):
    """D^j svdvals(a)[h,..,h], j = 0..order, by nesting jax.jvp (independent route)."""
    fns = [lambda t: jnp.linalg.svdvals(a + t * h)]
    for _ in range(order):
        fns.append(lambda t, g=fns[-1]: jax.jvp(g, (t,), (jnp.ones((), a.dtype),))[1])
    t0 = jnp.zeros((), a.dtype)
    return jnp.stack([g(t0) for g in fns])


def hessian_second(a, h):
    """D^2 sigma_k[h, h] for all k from the full jax.hessian of jnp.linalg.svdvals."""
    hess = jax.hessian(jnp.linalg.svdvals)(a)  # (r, m, n, m, n)
    return jnp.einsum("kijab,ij,ab->k", hess, h, h)


_MEM = textwrap.dedent("""
    import json, resource, sys, time, jax
    jax.config.update("jax_enable_x64", True)
    import jaxsvd.montecarlo as mc
    num = int(sys.argv[1])
    t0 = time.perf_counter()
    res = mc.sensitivity(jax.random.key(0), (6, 10), num, order=2, batch_size=1024, progress=False)
    dt = time.perf_counter() - t0
    assert res.derivatives.shape == (num, 3, 6)
    # VmHWM: this process's own peak (ru_maxrss would include the forking parent's peak)
    try:
        with open("/proc/self/status") as f:
            rss_mb = next(int(l.split()[1]) for l in f if l.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    result_mb = res.derivatives.nbytes / 2**20
    print(json.dumps({"num": num, "seconds": dt, "maxrss_mb": rss_mb, "result_mb": result_mb}))
""")


def memory_rows(nums):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    rows = []
    for num in nums:
        out = subprocess.run([sys.executable, "-c", _MEM, str(num)], env=env, capture_output=True, text=True,
                             check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return rows


def memory_section(quick, results):
    nums = (10_000, 100_000) if quick else (100_000, 1_000_000)
    print("\npeak memory, sensitivity((6, 10), num, order=2, batch_size=1024), fresh process:")
    mem = memory_rows(nums)
    for r in mem:
        print(f"  num={r['num']:>9,}  max RSS {r['maxrss_mb']:8.1f} MB  "
              f"(result array {r['result_mb']:6.1f} MB)  {r['seconds']:6.1f} s  "
              f"{r['num'] / r['seconds']:,.0f} /s")
    growth = mem[-1]["maxrss_mb"] - mem[0]["maxrss_mb"]
    result_growth = mem[-1]["result_mb"] - mem[0]["result_mb"]
    print(f"  RSS growth {growth:.1f} MB for {mem[-1]['num'] // mem[0]['num']}x num; "
          f"result array growth {result_growth:.1f} MB; other growth {growth - result_growth:.1f} MB")
    results["memory"] = {"runs": mem, "rss_growth_mb": growth, "result_growth_mb": result_growth}



def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes, fewer reps, no order 8 nested jvp")
    p.add_argument("--json", default=None, help="write the results here")
    p.add_argument("--num", type=int, default=None)
    p.add_argument("--reps", type=int, default=None)
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs")
    p.add_argument("--memory-only", action="store_true", help="only the peak-memory runs")
    args = p.parse_args(argv)

    m, n = 16, 32
    num = args.num or (1024 if args.quick else 4096)
    reps = args.reps or (3 if args.quick else 5)
    num_h = 16 if args.quick else 64
    orders = (2, 4) if args.quick else (2, 4, 8)
    nested_orders = (2, 4) if args.quick else (2, 4, 8)

    results = {"device": jax.devices()[0].device_kind, "platform": platform.platform(),
               "jax": jax.__version__, "shape": [m, n], "num": num, "num_hessian": num_h, "reps": reps,
               "dtype": "float64", "rows": {}}
    if not args.no_memory:  # first, while this parent process is still small
        memory_section(args.quick, results)
    if args.memory_only:
        return _finish(results, args.json)

    key = jax.random.key(0)
    ka, kh = jax.random.split(key)
    a = jax.random.normal(ka, (num, m, n), jnp.float64)
    h = jax.random.normal(kh, (num, m, n), jnp.float64)
    rows = results["rows"]

    cases, counts, compile_s = {}, {}, {}

    def add(name, fn, *xs, count):
        fn = jax.jit(fn)
        compile_s[name] = compile_time(fn, *xs)
        cases[name], counts[name] = (fn, xs), count
        print(f"  compiled {name:<16} {compile_s[name]:7.2f} s", flush=True)

    print(f"{m}x{n} float64, num={num}, reps={reps} (interleaved), device {results['device']}", flush=True)
    add("svd_uv", jax.vmap(lambda x: jnp.linalg.svd(x, full_matrices=False)), a, count=num)
    add("svdvals", jax.vmap(jnp.linalg.svdvals), a, count=num)
    for k in orders:
        add(f"taylor_{k}", jax.vmap(lambda x, y, k=k: jaxsvd.derivatives(x, y, k)), a, h, count=num)
    for k in nested_orders:
        cnt = num if k <= 4 else min(num, 512)
        add(f"nested_jvp_{k}", jax.vmap(lambda x, y, k=k: nested_jvp(x, y, k)), a[:cnt], h[:cnt], count=cnt)
    add("jax_hessian", jax.vmap(hessian_second), a[:num_h], h[:num_h], count=num_h)
    add("jax_hessian_k0", jax.vmap(jax.hessian(lambda x: jnp.linalg.svdvals(x)[0])), a[:num_h], count=num_h)
    if hasattr(jaxsvd, "hessian"):
        add("jaxsvd_hessian", jax.vmap(lambda x: jaxsvd.hessian(x, 0)), a[:num_h], count=num_h)
        results["jaxsvd_hessian"] = "measured"
    else:
        results["jaxsvd_hessian"] = "skipped: jaxsvd.hessian is not in this tree"
        print("  jaxsvd_hessian   skipped: jaxsvd.hessian is not in this tree", flush=True)
    # the driver itself: chunks of 1024, matrices generated on device, host transfer included
    drv = lambda: mc.sensitivity(key, (m, n), num, order=2, progress=False).derivatives  # noqa: E731
    cases["sensitivity_2"], counts["sensitivity_2"] = (drv, ()), num
    compile_s["sensitivity_2"] = compile_time(drv)
    for name, r in interleaved(cases, reps).items():
        r.update(num=counts[name], compile_s=compile_s[name], per_s=counts[name] / r["median_s"])
        rows[name] = r
    print(f"\n  {'route':<16} {'matrices/s':>12}   {'median':>12}   {'compile':>9}")
    for name, r in rows.items():
        print(f"  {name:<16} {r['per_s']:>12,.0f}   {r['median_s'] * 1e3:9.2f} ms   {r['compile_s']:7.2f} s"
              f"   (n={r['num']})")
    base = rows["svd_uv"]["per_s"]
    ratios = {}
    for k in orders:
        tk = rows[f"taylor_{k}"]["per_s"]
        ratios[f"taylor_{k}_vs_svd_uv_slowdown"] = base / tk
        if f"nested_jvp_{k}" in rows:
            ratios[f"taylor_{k}_vs_nested_jvp_speedup"] = tk / rows[f"nested_jvp_{k}"]["per_s"]
    ratios["jax_hessian_vs_svd_uv_slowdown"] = base / rows["jax_hessian"]["per_s"]
    ratios["jax_hessian_k0_vs_svd_uv_slowdown"] = base / rows["jax_hessian_k0"]["per_s"]
    if "jaxsvd_hessian" in rows:
        ratios["jaxsvd_hessian_vs_svd_uv_slowdown"] = base / rows["jaxsvd_hessian"]["per_s"]
    results["ratios"] = ratios
    targets = {
        "taylor_2 within 2x of svd_uv": ratios["taylor_2_vs_svd_uv_slowdown"] <= 2,
        "taylor_2 at least as fast as nested_jvp_2": ratios["taylor_2_vs_nested_jvp_speedup"] >= 1,
        "taylor_4 >= 3x nested_jvp_4": ratios["taylor_4_vs_nested_jvp_speedup"] >= 3,
    }
    if "taylor_8_vs_nested_jvp_speedup" in ratios:
        targets["taylor_8 >= 10x nested_jvp_8"] = ratios["taylor_8_vs_nested_jvp_speedup"] >= 10
    if "jaxsvd_hessian_vs_svd_uv_slowdown" in ratios:
        targets["jaxsvd_hessian within 30x of svd_uv"] = ratios["jaxsvd_hessian_vs_svd_uv_slowdown"] <= 30
    results["targets"] = targets
    print("\nratios:")
    for k, v in ratios.items():
        print(f"  {k:<40} {v:8.2f}")
    print("targets:")
    for k, v in targets.items():
        print(f"  {k:<40} {'met' if v else 'MISSED'}")

    return _finish(results, args.json)


def _finish(results, path) -> int:
    if path:
        with open(path, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
