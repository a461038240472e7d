"""Spectral functions: correctness at degenerate matrices, and the cost of
``jax.hessian`` of the nuclear norm -- jaxsvd against jnp.linalg.svd (and
PyTorch when importable) in one run.

Correctness (float64).  At the identity, an orthogonal Q, 2Q, Q + 1e-12 G,
tall/wide matrices with orthonormal columns/rows, a rotated diag(3, 3, 1, 1)
and a rotated diag(3, 3, 1, 0.5) (Ky Fan 2), for sum s^2, sum s^4, sum s^3,
the nuclear norm and the Ky Fan 2-norm: the Hessian from each route, contracted
with three random directions, against mpmath (dps 50) second derivatives of
t -> F(A + tH).  Cell: "NaN" if the Hessian has a NaN, else the max relative
error.  Then the third and fourth derivatives of t -> F(A + tH) at the same
matrices: ``jet`` through jaxsvd against nested ``jax.jvp`` through
jnp.linalg.svd (``jet`` has no rule for it), both against mpmath.

Timing.  ``jax.jit(jax.hessian(nuclear_norm))`` at 16x32 and 32x64 (Gaussian
float64): jaxsvd against ``jnp.linalg.norm(a, 'nuc')`` and
``torch.func.hessian``; compile time separate; medians after warm-up;
ratio jnp / jaxsvd.

    python benchmarks/bench_spectral.py --quick     # 16x32 timing only, 3 repeats
    python benchmarks/bench_spectral.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import jax
from jax.experimental import jet

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import mpmath  # noqa: E402
import numpy as np  # noqa: E402
from _timing import compile_and_time, median_seconds, nested_jvp  # noqa: E402

import jaxsvd  # noqa: E402

SIZES = [(16, 32), (32, 64)]

# f on sorted singular values: jnp (for both JAX routes), mpmath, torch
FUNCS = {
    "sum s^2": (lambda s: jnp.sum(s ** 2), lambda s: sum(x ** 2 for x in s), lambda s: (s ** 2).sum()),
    "sum s^3": (lambda s: jnp.sum(s ** 3), lambda s: sum(x ** 3 for x in s), lambda s: (s ** 3).sum()),
    "sum s^4": (lambda s: jnp.sum(s ** 4), lambda s: sum(x ** 4 for x in s), lambda s: (s ** 4).sum()),
    "nuclear": (jnp.sum, lambda s: sum(s), lambda s: s.sum()),
    "ky_fan_2": (lambda s: s[0] + s[1], lambda s: s[0] + s[1], lambda s: s[0] + s[1]),
}
JAXSVD = {
    "sum s^2": jaxsvd.spectral_function(FUNCS["sum s^2"][0]),
    "sum s^3": jaxsvd.spectral_function(FUNCS["sum s^3"][0]),
    "sum s^4": jaxsvd.spectral_function(FUNCS["sum s^4"][0]),
    "nuclear": jaxsvd.nuclear_norm,
    "ky_fan_2": lambda a: jaxsvd.ky_fan_norm(a, 2),
}


def _orth(n, seed):
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def _rotated(s, seed=3):
    n = len(s)
    return (_orth(n, seed) * np.asarray(s)) @ _orth(n, seed + 1000).T


def matrices():
    q = _orth(4, 7)
    g = np.random.default_rng(11).standard_normal((4, 4))
    return {
        "identity 4x4": (np.eye(4), list(FUNCS)[:4]),
        "orthogonal Q": (q, list(FUNCS)[:4]),
        "2Q": (2 * q, list(FUNCS)[:4]),
        "Q + 1e-12 G": (q + 1e-12 * g, list(FUNCS)[:4]),
        "tall orthonormal 5x3": (_orth(5, 8)[:, :3], list(FUNCS)[:4]),
        "wide orthonormal 3x5": (_orth(5, 9)[:3, :], list(FUNCS)[:4]),
        "rot diag(3,3,1,1)": (_rotated([3.0, 3.0, 1.0, 1.0]), list(FUNCS)[:4]),
        "rot diag(3,3,1,.5)": (_rotated([3.0, 3.0, 1.0, 0.5], seed=5), ["ky_fan_2"]),
    }


def _mp_second(fmp, a, h):
    with mpmath.workdps(50):
        A, H = mpmath.matrix(a.tolist()), mpmath.matrix(h.tolist())

        def F(t):
            s = mpmath.svd_r(A + t * H, compute_uv=False)
            return fmp(sorted((s[i] for i in range(len(s))), reverse=True))

        return float(mpmath.diff(F, 0, 2))


def _mp_directional(fmp, a, h, order):
    with mpmath.workdps(50):
        A, H = mpmath.matrix(a.tolist()), mpmath.matrix(h.tolist())

        def F(t):
            s = mpmath.svd_r(A + t * H, compute_uv=False)
            return fmp(sorted((s[i] for i in range(len(s))), reverse=True))

        return float(mpmath.diff(F, 0, order))


def higher_orders(orders=(3, 4)):
    """d^k/dt^k F(A + t H) at t = 0 through the ties: jet of jaxsvd vs nested jvp
    through jnp.linalg.svd (jet itself fails there: no Taylor rule for svd) vs mpmath."""
    rows = []
    for mname, (a, fnames) in matrices().items():
        h = np.random.default_rng(200).standard_normal(a.shape)
        for fname in fnames:
            if fname == "ky_fan_2":
                continue
            fj, fmp, _ = FUNCS[fname]
            K = max(orders)
            series = (jnp.asarray(h),) + (jnp.zeros(a.shape),) * (K - 1)
            _, ys = jax.jit(lambda x, F=JAXSVD[fname], series=series: jet.jet(F, (x,), (series,)))(jnp.asarray(a))
            refs = {k: _mp_directional(fmp, a, h, k) for k in (2,) + tuple(orders)}
            scale = max(abs(r) for r in refs.values())  # sum s^2: orders >= 3 are exactly 0
            for k in orders:
                ref = refs[k]
                nested = nested_jvp(lambda x, fj=fj: fj(jnp.linalg.svd(x, compute_uv=False)), k)
                jn = float(jax.jit(nested)(jnp.asarray(a), jnp.asarray(h)))
                row = {"matrix": mname, "function": fname, "order": k}
                for route, val in (("jaxsvd jet", float(ys[k - 1])), ("jnp nested jvp", jn)):
                    row[route] = "NaN" if not np.isfinite(val) else abs(val - ref) / max(abs(ref), scale * 1e-3)
                rows.append(row)
    return rows


def _torch_hessian(ftorch, a):
    try:
        import torch
        from torch.func import hessian
    except ImportError:
        return None
    x = torch.from_numpy(np.array(a))
    return hessian(lambda y: ftorch(torch.linalg.svdvals(y)))(x).numpy()


def correctness():
    rows = []
    for mname, (a, fnames) in matrices().items():
        dirs = [np.random.default_rng(100 + i).standard_normal(a.shape) for i in range(3)]
        for fname in fnames:
            fj, fmp, ft = FUNCS[fname]
            refs = [_mp_second(fmp, a, h) for h in dirs]
            hs = {
                "jaxsvd": np.asarray(jax.jit(jax.hessian(JAXSVD[fname]))(jnp.asarray(a))),
                "jnp.linalg.svd": np.asarray(jax.jit(jax.hessian(
                    lambda x, fj=fj: fj(jnp.linalg.svd(x, compute_uv=False))))(jnp.asarray(a))),
                "torch": _torch_hessian(ft, a),
            }
            row = {"matrix": mname, "function": fname}
            for route, hess in hs.items():
                if hess is None:
                    row[route] = None
                elif not np.all(np.isfinite(hess)):
                    row[route] = "NaN"
                else:
                    got = [float(np.einsum("ij,ijkl,kl->", h, hess, h)) for h in dirs]
                    scale = max(max(abs(r) for r in refs), 1e-300)
                    row[route] = max(abs(g - r) for g, r in zip(got, refs, strict=True)) / scale
            rows.append(row)
    return rows


def _time(fn, repeats):
    return median_seconds(fn, repeats)


def _jax_case(f, a, repeats):
    compile_s, run_s, out = compile_and_time(jax.hessian(f), (a,), repeats)
    return {"compile_s": compile_s, "run_s": run_s}, out


def timing(quick):
    repeats = 3 if quick else 7
    rows = []
    for m, n in SIZES[:1] if quick else SIZES:
        a = jnp.asarray(np.random.default_rng(0).standard_normal((m, n)))
        row = {"m": m, "n": n}
        row["jaxsvd"], h1 = _jax_case(jaxsvd.nuclear_norm, a, repeats)
        row["jnp.linalg.svd"], h2 = _jax_case(lambda x: jnp.linalg.norm(x, "nuc"), a, repeats)
        row["max_abs_diff"] = float(jnp.max(jnp.abs(h1 - h2)))
        del h1, h2
        try:
            import torch
            from torch.func import hessian

            x = torch.from_numpy(np.array(a))
            f = lambda y: torch.linalg.svdvals(y).sum()  # noqa: E731
            t = time.perf_counter()
            hessian(f)(x)
            first = time.perf_counter() - t
            run_s = _time(lambda f=f, x=x: hessian(f)(x), max(1, repeats // 2))
            row["torch"] = {"first_call_s": first, "run_s": run_s}
        except ImportError:
            row["torch"] = None
        row["ratio_jnp_over_jaxsvd"] = row["jnp.linalg.svd"]["run_s"] / row["jaxsvd"]["run_s"]
        rows.append(row)
        print(f"  timed {m}x{n}", flush=True)
    return rows


def _fmt(v):
    if v is None:
        return "n/a"
    if isinstance(v, str):
        return v
    return f"{v:.1e}"


def print_tables(corr, times, higher):
    routes = ["jaxsvd", "jnp.linalg.svd", "torch"]
    print("\nHessian at degenerate matrices: max relative error of h^T (Hess) h over 3 directions vs mpmath")
    head = f"{'matrix':<22} {'function':<10} " + " ".join(f"{r:>15}" for r in routes)
    print(head)
    print("-" * len(head))
    for row in corr:
        print(f"{row['matrix']:<22} {row['function']:<10} " + " ".join(f"{_fmt(row[r]):>15}" for r in routes))
    print("\nthird and fourth derivatives along a direction, F(A + tH): relative error vs mpmath")
    print("(relative to max(|ref|, 1e-3 |orders 2..4|): sum s^2 has exact zeros there)")
    head = (f"{'matrix':<22} {'function':<10} {'order':>5} "
            + " ".join(f"{r:>15}" for r in ("jaxsvd jet", "jnp nested jvp")))
    print(head)
    print("-" * len(head))
    for row in higher:
        print(f"{row['matrix']:<22} {row['function']:<10} {row['order']:>5} "
              + " ".join(f"{_fmt(row[r]):>15}" for r in ("jaxsvd jet", "jnp nested jvp")))
    print("\njax.hessian of the nuclear norm (float64, jit; median run, compile separately)")
    head = f"{'size':<8} {'jaxsvd':>22} {'jnp.linalg.svd':>22} {'torch.func':>22} {'jnp/jaxsvd':>11}"
    print(head)
    print("-" * len(head))
    for r in times:
        cells = [f"{r['jaxsvd']['run_s'] * 1e3:8.2f} ms (c {r['jaxsvd']['compile_s']:.2f}s)",
                 f"{r['jnp.linalg.svd']['run_s'] * 1e3:8.2f} ms (c {r['jnp.linalg.svd']['compile_s']:.2f}s)",
                 "n/a" if r["torch"] is None else f"{r['torch']['run_s'] * 1e3:8.2f} ms"]
        print(f"{r['m']}x{r['n']:<5} " + " ".join(f"{c:>22}" for c in cells)
              + f" {r['ratio_jnp_over_jaxsvd']:>10.2f}x")
    print("(max |jaxsvd - jnp| of the timed Hessians: "
          + ", ".join(f"{r['m']}x{r['n']}: {r['max_abs_diff']:.1e}" for r in times) + ")")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="spectral functions: correctness and Hessian timing")
    p.add_argument("--quick", action="store_true", help="timing at 16x32 only, 3 repeats")
    p.add_argument("--json", default="bench_spectral.json", help="where to write the JSON results")
    args = p.parse_args(argv)
    corr = correctness()
    higher = higher_orders()
    times = timing(args.quick)
    print_tables(corr, times, higher)
    meta = {"jax": jax.__version__, "backend": jax.default_backend(), "platform": platform.platform(),
            "quick": args.quick}
    try:
        import torch

        meta["torch"] = torch.__version__
    except ImportError:
        meta["torch"] = None
    with open(args.json, "w") as fh:
        json.dump({"meta": meta, "correctness": corr, "higher_orders": higher, "timing": times}, fh, indent=1)
    print(f"\nJSON written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
