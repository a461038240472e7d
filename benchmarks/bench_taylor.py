"""Taylor-mode derivatives of the singular values: jaxsvd vs nested jvp, side by side.

For float64 matrices of 32x64 and 128x256 and orders K = 1..8 (``--orders``):

  * ``jaxsvd.derivatives(a, h, K)``                  -- one Taylor-mode pass (the series engine)
  * nested ``jax.jvp`` K times through ``jnp.linalg.svdvals`` (JAX's own rule; stops once one
    compile + run passes ``--budget`` seconds)
  * nested ``torch.func.jvp`` through ``torch.linalg.svdvals`` (when torch is importable)
  * one thin SVD (``jnp.linalg.svd(full_matrices=False)``), the unit of the ratios

plus ``jax.hessian`` of sum(sigma^3) through ``jaxsvd.svdvals`` vs ``jnp.linalg.svdvals``, and of
sigma_1 through ``jaxsvd.singular_triplet`` vs the jnp route and vs writing the Hessian (64x128),
and of a reconstruction loss through ``svd``.  Warm-up, ``block_until_ready``, medians; compile
times separately, per order (and as a ratio to the first order's: the series engine runs orders
>= 3 as one loop body, so its compile time stops growing with the order).  Table + JSON.

    python benchmarks/bench_taylor.py --quick
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from _timing import compile_and_time, median_seconds, nested_jvp  # noqa: E402

import jaxsvd  # noqa: E402


def _median(fn, repeats):
    return median_seconds(fn, repeats)


def _jit_case(f, args, repeats):
    compile_s, run_s, _ = compile_and_time(f, args, repeats)
    return compile_s, run_s


def _torch_nested(a, h, order, repeats):
    import torch
    from torch.func import jvp

    ta, th = torch.from_numpy(np.asarray(a)), torch.from_numpy(np.asarray(h))
    f = lambda x: torch.linalg.svdvals(x)  # noqa: E731
    g = f
    for _ in range(order):
        g = (lambda gg: lambda x: jvp(gg, (x,), (th,))[1])(g)
    g(ta)
    return _median(lambda: g(ta), repeats)


def run(sizes, orders, repeats, budget, torch_on):
    rows = []
    for m, n in sizes:
        key = jax.random.PRNGKey(0)
        a = jax.random.normal(key, (m, n), jnp.float64)
        h = jax.random.normal(jax.random.PRNGKey(1), (m, n), jnp.float64)
        _, t_svd = _jit_case(lambda x: jnp.linalg.svd(x, full_matrices=False), (a,), repeats)
        jnp_alive, torch_alive = True, torch_on
        c_first = None
        for K in orders:
            c_ours, t_ours = _jit_case(lambda x, y, K=K: jaxsvd.derivatives(x, y, K), (a, h), repeats)
            c_first = c_ours if c_first is None else c_first
            row = dict(shape=f"{m}x{n}", order=K, svd_ms=1e3 * t_svd, jaxsvd_ms=1e3 * t_ours,
                       jaxsvd_compile_s=c_ours, jaxsvd_compile_over_first=c_ours / c_first,
                       jaxsvd_over_svd=t_ours / t_svd)
            if jnp_alive:
                t0 = time.perf_counter()
                c_n, t_n = _jit_case(nested_jvp(jnp.linalg.svdvals, K), (a, h), max(1, repeats // 2))
                row.update(nested_jvp_ms=1e3 * t_n, nested_compile_s=c_n, nested_over_svd=t_n / t_svd,
                           nested_over_jaxsvd=t_n / t_ours, nested_compile_over_jaxsvd=c_n / c_ours)
                jnp_alive = time.perf_counter() - t0 < budget
            if torch_alive:
                t0 = time.perf_counter()
                t_t = _torch_nested(a, h, K, max(1, repeats // 2))
                row.update(torch_nested_ms=1e3 * t_t, torch_over_svd=t_t / t_svd)
                torch_alive = time.perf_counter() - t0 < budget
            rows.append(row)
            print(_fmt(row), flush=True)
    return rows


def hessian_rows(repeats, quick):
    out = []
    m, n = (32, 64) if quick else (64, 128)
    a = jax.random.normal(jax.random.PRNGKey(2), (m, n), jnp.float64)
    f_ours = lambda x: jnp.sum(jaxsvd.svdvals(x) ** 3)  # noqa: E731
    f_jnp = lambda x: jnp.sum(jnp.linalg.svdvals(x) ** 3)  # noqa: E731
    c1, t1 = _jit_case(jax.hessian(f_ours), (a,), repeats)
    c2, t2 = _jit_case(jax.hessian(f_jnp), (a,), repeats)
    out.append(dict(case=f"hessian sum(s^3) {m}x{n}", jaxsvd_ms=1e3 * t1, jaxsvd_compile_s=c1,
                    jnp_ms=1e3 * t2, jnp_compile_s=c2, ratio_jnp_over_jaxsvd=t2 / t1,
                    compile_jaxsvd_over_jnp=c1 / c2))
    c3, t3 = _jit_case(jax.hessian(lambda x: jaxsvd.singular_triplet(x, 1)[0]), (a,), repeats)
    c4, t4 = _jit_case(jax.hessian(lambda x: jnp.linalg.svdvals(x)[1]), (a,), repeats)
    mn = m * n

    def write():
        x = np.empty((mn, mn))
        x.fill(1.0)
    write()
    tw = _median(write, repeats)
    out.append(dict(case=f"hessian sigma_1 via singular_triplet {m}x{n}", jaxsvd_ms=1e3 * t3, jaxsvd_compile_s=c3,
                    jnp_ms=1e3 * t4, jnp_compile_s=c4, write_ms=1e3 * tw, jaxsvd_over_write=t3 / tw,
                    jnp_over_write=t4 / tw, compile_jaxsvd_over_jnp=c3 / c4))
    # a reconstruction loss through svd (vectors: the first-order rule, differentiated twice), 16x24
    def recon(svd):
        return lambda x: jnp.sum(jnp.sin(svd(x, full_matrices=False)[0] @ svd(x, full_matrices=False)[2]))

    a16 = a[:16, :24]
    c5, t5 = _jit_case(jax.hessian(recon(jaxsvd.svd)), (a16,), repeats)
    c6, t6 = _jit_case(jax.hessian(recon(jnp.linalg.svd)), (a16,), repeats)
    out.append(dict(case="hessian sum(sin(U Vh)) 16x24", jaxsvd_ms=1e3 * t5, jaxsvd_compile_s=c5,
                    jnp_ms=1e3 * t6, jnp_compile_s=c6, ratio_jnp_over_jaxsvd=t6 / t5,
                    compile_jaxsvd_over_jnp=c5 / c6))
    for r in out:
        print("  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items()), flush=True)
    return out


def _fmt(r):
    s = (f"{r['shape']:>8} K={r['order']:<2} svd {r['svd_ms']:8.2f} ms | jaxsvd {r['jaxsvd_ms']:9.2f} ms "
         f"({r['jaxsvd_over_svd']:5.1f}x svd, compile {r['jaxsvd_compile_s']:.2f}s = "
         f"{r['jaxsvd_compile_over_first']:4.1f}x first order's)")
    if "nested_jvp_ms" in r:
        s += (f" | nested jvp {r['nested_jvp_ms']:9.2f} ms ({r['nested_over_svd']:6.1f}x svd, "
              f"{r['nested_over_jaxsvd']:5.1f}x jaxsvd, compile {r['nested_compile_s']:.1f}s = "
              f"{r['nested_compile_over_jaxsvd']:4.1f}x jaxsvd's)")
    if "torch_nested_ms" in r:
        s += f" | torch {r['torch_nested_ms']:9.2f} ms ({r['torch_over_svd']:6.1f}x svd)"
    return s


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="32x64 only, orders 1,2,4,8, few repeats")
    p.add_argument("--orders", default=None, help="comma-separated orders (default 1..8; 1,2,4,8 with --quick)")
    p.add_argument("--budget", type=float, default=20.0, help="stop a competitor after a run longer than this (s)")
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--json", default="bench_taylor.json")
    args = p.parse_args(argv)
    sizes = [(32, 64)] if args.quick else [(32, 64), (128, 256)]
    orders = ([int(x) for x in args.orders.split(",")] if args.orders
              else ([1, 2, 4, 8] if args.quick else list(range(1, 9)) + [10, 12]))
    repeats = 3 if args.quick else 7
    torch_on = not args.no_torch
    if torch_on:
        try:
            import torch  # noqa: F401
        except ImportError:
            torch_on = False
    print(f"jax {jax.__version__} on {jax.default_backend()} ({platform.processor() or platform.machine()}), "
          f"torch {'on' if torch_on else 'off'}")
    rows = run(sizes, orders, repeats, args.budget, torch_on)
    hrows = hessian_rows(repeats, args.quick)
    # growth: cost of order K relative to order 1, and polynomial fit exponent
    summary = {}
    for shape in {r["shape"] for r in rows}:
        rs = [r for r in rows if r["shape"] == shape]
        t1 = rs[0]["jaxsvd_ms"]
        summary[shape] = {f"order{r['order']}_over_order1": r["jaxsvd_ms"] / t1 for r in rs}
        summary[shape].update({f"compile_order{r['order']}_over_order1": r["jaxsvd_compile_over_first"]
                               for r in rs})
        ks = np.array([r["order"] for r in rs], float)
        ts = np.array([r["jaxsvd_ms"] for r in rs])
        if len(ks) > 2:
            summary[shape]["loglog_slope"] = float(np.polyfit(np.log(ks), np.log(ts), 1)[0])
    print(json.dumps(summary, indent=1))
    with open(args.json, "w") as f:
        json.dump(dict(jax=jax.__version__, backend=jax.default_backend(), rows=rows, hessian=hrows,
                       growth=summary), f, indent=1)
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
