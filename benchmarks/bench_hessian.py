"""Hessian of one singular value: closed form vs autodiff, side by side.

For m x n float64 matrices (16x32, 32x64, 64x128) and sigma_k with k = 1:

  * ``jaxsvd.hessian(a, k)``                     -- the closed form, one pass over its output
  * ``jax.hessian`` through ``jaxsvd.singular_triplet``
  * ``jax.hessian`` through ``jnp.linalg.svd``   -- JAX's own rule
  * ``torch.func.hessian`` through ``torch.linalg.svdvals`` (when torch is importable)
  * writing an (mn) x (mn) float64 array         -- the floor: the size of the output

Each is warmed up (compile time reported separately), then timed as the median
of several runs with ``block_until_ready``.  Ratios are to the write time.
Prints a table and writes JSON (``--json PATH``, default bench_hessian.json).

    python benchmarks/bench_hessian.py --quick    # fewer repeats; skips the jnp route at 64x128
    python benchmarks/bench_hessian.py            # everything
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
from _timing import compile_and_time, median_seconds  # noqa: E402

import jaxsvd  # noqa: E402

SIZES = [(16, 32), (32, 64), (64, 128)]
K = 1


def _time(fn, repeats):
    return median_seconds(fn, repeats)


def _jax_case(f, a, repeats):
    compile_s, run_s, _ = compile_and_time(f, (a,), repeats)
    return compile_s, run_s


def _write_case(mn, repeats):
    def write():
        x = np.empty((mn, mn), np.float64)
        x.fill(1.0)
        return x

    write()
    return _time(write, repeats)


def _torch_case(a_np, repeats):
    try:
        import torch
        from torch.func import hessian
    except ImportError:
        return None
    torch.set_num_threads(max(1, torch.get_num_threads()))
    a = torch.from_numpy(a_np)
    f = lambda x: torch.linalg.svdvals(x)[K]  # noqa: E731
    t = time.perf_counter()
    hessian(f)(a)
    first = time.perf_counter() - t
    return first, _time(lambda: hessian(f)(a), repeats), torch.__version__


def run(quick: bool):
    repeats = 3 if quick else 7
    results = []
    for m, n in SIZES:
        rng = np.random.default_rng(0)
        a_np = rng.standard_normal((m, n))
        a = jnp.asarray(a_np)
        mn = m * n
        row = {"m": m, "n": n, "entries": mn * mn}
        row["write_s"] = _write_case(mn, repeats)
        # XLA's own floor: a jitted fill of a fresh (mn) x (mn) array
        row["xla_write_s"] = _jax_case(jax.jit(lambda x, mn=mn: jnp.full((mn, mn), x)), jnp.float64(1.0), repeats)[1]
        row["jaxsvd.hessian"] = dict(
            zip(("compile_s", "run_s"), _jax_case(lambda x: jaxsvd.hessian(x, K), a, repeats), strict=True)
        )
        row["jax.hessian(singular_triplet)"] = dict(
            zip(
                ("compile_s", "run_s"),
                _jax_case(jax.hessian(lambda x: jaxsvd.singular_triplet(x, K)[0]), a, repeats),
                strict=True,
            )
        )
        if quick and (m, n) == SIZES[-1]:
            row["jax.hessian(jnp.linalg.svd)"] = None  # ~6 s a call + a long compile: full run only
        else:
            row["jax.hessian(jnp.linalg.svd)"] = dict(
                zip(
                    ("compile_s", "run_s"),
                    _jax_case(jax.hessian(lambda x: jnp.linalg.svdvals(x)[K]), a, max(1, repeats // 2)),
                    strict=True,
                )
            )
        tc = None if quick and (m, n) == SIZES[-1] else _torch_case(a_np, max(1, repeats // 2))
        row["torch.func.hessian(svdvals)"] = None if tc is None else {"first_call_s": tc[0], "run_s": tc[1]}
        # sanity: the closed form agrees with the triplet route
        h1 = jaxsvd.hessian(a, K)
        h2 = jax.jit(jax.hessian(lambda x: jaxsvd.singular_triplet(x, K)[0]))(a)
        row["max_abs_diff_closed_vs_triplet"] = float(jnp.max(jnp.abs(h1 - h2)))
        del h1, h2
        results.append(row)
        print(f"  done {m}x{n}", flush=True)
    return results


METHODS = [
    "jaxsvd.hessian",
    "jax.hessian(singular_triplet)",
    "jax.hessian(jnp.linalg.svd)",
    "torch.func.hessian(svdvals)",
]


def table(results):
    lines = []
    head = (f"{'size':>8} {'write (mn)^2':>13} {'XLA fill':>11} | "
            + " | ".join(f"{m:>30}" for m in METHODS))
    lines.append(head)
    lines.append("-" * len(head))
    for r in results:
        cells = []
        for meth in METHODS:
            v = r[meth]
            if v is None:
                cells.append(f"{'skipped':>30}")
                continue
            ratio = v["run_s"] / r["write_s"]
            comp = v.get("compile_s", v.get("first_call_s"))
            cells.append(f"{v['run_s'] * 1e3:9.2f} ms {ratio:6.1f}x c{comp:6.2f}s".rjust(30))
        lines.append(f"{r['m']:>3}x{r['n']:<4} {r['write_s'] * 1e3:10.2f} ms {r['xla_write_s'] * 1e3:8.2f} ms | "
                     + " | ".join(cells))
    lines.append(
        "cells: median run time, ratio to writing the (mn)x(mn) float64 array with numpy (np.empty + fill), "
        "compile time (torch: first call)"
    )
    lines.append("XLA fill: jax.jit(jnp.full) of the same array -- the floor for any jitted route")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="3 repeats; skip the jnp and torch routes at 64x128")
    p.add_argument("--json", default="bench_hessian.json", help="where to write the JSON results")
    args = p.parse_args()
    print(
        f"jax {jax.__version__}, jaxsvd {jaxsvd.__version__}, {platform.machine()}, "
        f"{jax.devices()[0].platform}, float64, k = {K}",
        flush=True,
    )
    results = run(args.quick)
    print(table(results))
    meta = {"jax": jax.__version__, "device": str(jax.devices()[0]), "quick": args.quick, "k": K}
    with open(args.json, "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=2)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
