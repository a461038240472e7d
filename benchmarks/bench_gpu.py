"""svds on an accelerator (runs on the CPU too): value + gradient of sigma_1 of
big float32 matrices against the floor of 200 products with A and A^T, the
jnp route, and PyTorch, with cold and warm starts.

For each n x n Gaussian float32 matrix (``--sizes``; default 4096 16384 on a
GPU, 1024 2048 on the CPU; ``--quick``: the smallest one, fewer repeats):

  * floor: 100 x (A x, A^T y) = 200 products (HIGHEST precision, like svds)
  * ``svds``: ``jit(value_and_grad(lambda A: svds(A, 1).S[0]))``, default block
    size (4 on accelerators, 1 on the CPU), and the other one of 1 and 4
  * ``svds warm``: the same with ``v0`` = the top right vector of A before a
    small (adam-like, 1e-3 * sign) step: the training-loop pattern
  * ``svds k=10``: value + gradient of sigma_1 + ... + sigma_10
  * jnp: ``jit(value_and_grad(lambda A: jnp.linalg.norm(A, 2)))`` (dense SVD;
    n <= 4096 only, and on the CPU n <= 2048)
  * torch (CUDA when present, else CPU at n <= 2048):
    ``torch.svd_lowrank(A, q=k+5, niter=4)`` + backward of S[0], and
    ``torch.linalg.matrix_norm(A, ord=2)`` + backward

Each row: median run time, the ratio to the floor, compile time, passes over A
(block Krylov steps: one A X and one A^H Y each) and products, and the
residuals max(|A v - s u|, |A^T u - s v|) / s_1 of the returned top triplet
(recomputed in float32 with HIGHEST precision).  Warm-up, block_until_ready,
medians; one JSON line per row, a table at the end.  Plain ``PYTHONPATH=.``,
no network; jax 0.10 and 0.11.

    PYTHONPATH=. python benchmarks/bench_gpu.py --quick
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import median_seconds  # noqa: E402

import jaxsvd  # noqa: E402

_H = lax.Precision.HIGHEST


def _compile(f, *args):
    t = time.perf_counter()
    c = jax.jit(f).lower(*args).compile()
    return c, time.perf_counter() - t


def _residual(a, u, s, v):
    """max(|A v - s u|, |A^T u - s v|) / s (float32, HIGHEST)."""
    r1 = jnp.linalg.norm(jnp.matmul(a, v, precision=_H) - s * u)
    r2 = jnp.linalg.norm(jnp.matmul(u, a, precision=_H) - s * v)
    return float(jnp.maximum(r1, r2) / s)


def _floor(a, repeats):
    @jax.jit
    def floor(a):
        def body(i, x):
            y = jnp.matmul(a, x, precision=_H)
            z = jnp.matmul(y, a, precision=_H)
            return z / jnp.linalg.norm(z)

        return lax.fori_loop(0, 100, body, jnp.ones(a.shape[1:], a.dtype))

    jax.block_until_ready(floor(a))
    return median_seconds(lambda: jax.block_until_ready(floor(a)), repeats)


def _svds_row(name, a, repeats, floor_s, k=1, **kw):
    def loss(a):
        return jnp.sum(jaxsvd.svds(a, k, **kw).S)

    c, comp = _compile(jax.value_and_grad(loss), a)
    jax.block_until_ready(c(a))
    t = median_seconds(lambda: jax.block_until_ready(c(a)), repeats)
    (U, S, Vh), info = jaxsvd.svds_with_info(a, k, **kw)
    res = _residual(a, U[:, 0], S[0], Vh[0])
    return {"method": name, "k": k, "s": t, "x_floor": t / floor_s, "compile_s": comp,
            "passes": int(info.passes), "matvecs": int(info.matvecs), "block_size": info.block_size,
            "residual": res, "residual_est": float(jnp.max(info.residual)), "sigma_1": float(S[0])}


def _jnp_row(a, repeats, floor_s):
    c, comp = _compile(jax.value_and_grad(lambda a: jnp.linalg.norm(a, 2)), a)
    jax.block_until_ready(c(a))
    t = median_seconds(lambda: jax.block_until_ready(c(a)), max(1, repeats // 2))
    return {"method": "jnp norm(ord=2)", "k": 1, "s": t, "x_floor": t / floor_s, "compile_s": comp}


def _torch_rows(a, repeats, floor_s, k=1):
    try:
        import torch
    except ImportError:
        return []
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    ta = torch.from_numpy(np.asarray(a)).to(dev)

    def sync():
        if dev == "cuda":
            torch.cuda.synchronize()

    def lowrank():
        x = ta.clone().requires_grad_(True)
        torch.manual_seed(0)
        u, s, v = torch.svd_lowrank(x, q=k + 5, niter=4)
        s[:k].sum().backward()
        sync()
        return u[:, 0].detach(), s[0].detach(), v[:, 0].detach()

    def matrix_norm():
        x = ta.clone().requires_grad_(True)
        val = torch.linalg.matrix_norm(x, ord=2)
        val.backward()
        sync()
        return val.detach()

    rows = []
    for name, fn in ((f"torch svd_lowrank(q={k + 5}, niter=4) [{dev}]", lowrank),
                     (f"torch matrix_norm(ord=2) [{dev}]", matrix_norm)):
        out = fn()
        t = median_seconds(fn, max(1, repeats // 2) if "matrix_norm" in name else repeats)
        row = {"method": name, "k": k, "s": t, "x_floor": t / floor_s}
        if "lowrank" in name:
            u, s, v = (jnp.asarray(x.cpu().numpy()) for x in out)
            row["residual"] = _residual(a, u, s, v)
            row["sigma_1"] = float(s)
        else:
            row["sigma_1"] = float(out.cpu())
        rows.append(row)
    return rows


def run(sizes, repeats, torch_on, k_big):
    gpu = jax.default_backend() != "cpu"
    rows = []
    key = jax.random.key(0)
    for n in sizes:
        a = jax.random.normal(jax.random.fold_in(key, n), (n, n), jnp.float32)
        floor_s = _floor(a, repeats)
        base = {"n": n, "floor_200mv_s": floor_s}

        def emit(row, base=base):
            row = {**base, **row}
            rows.append(row)
            print(json.dumps(row), flush=True)

        emit({"method": "floor: 100 x (A x, A^T y)", "s": floor_s, "x_floor": 1.0})
        emit(_svds_row("svds", a, repeats, floor_s))
        other = 4 if jaxsvd._krylov.default_block_size(1, n) == 1 else 1  # the default is 1 on the CPU
        emit(_svds_row(f"svds block_size={other}", a, repeats, floor_s, block_size=other))
        # warm start: the previous matrix's top right vector, one adam-like step earlier
        a_prev = a + 1e-3 * jnp.sign(jax.random.normal(jax.random.fold_in(key, n + 1), (n, n), jnp.float32))
        v0 = jaxsvd.svds(a_prev, 1).Vh[0]
        emit(_svds_row("svds warm (v0)", a, repeats, floor_s, v0=v0))
        emit(_svds_row(f"svds k={k_big}", a, repeats, floor_s, k=k_big))
        if n <= (4096 if gpu else 2048):
            emit(_jnp_row(a, repeats, floor_s))
        if torch_on and (gpu or n <= 2048):
            for row in _torch_rows(a, repeats, floor_s):
                emit(row)
    return rows


def table(rows):
    cols = ["n", "method", "s", "x_floor", "compile_s", "passes", "matvecs", "block_size", "residual"]
    print("\n" + " | ".join(cols))
    print(" | ".join("---" for _ in cols))
    for r in rows:
        print(" | ".join(f"{r[c]:.3g}" if isinstance(r.get(c), float) else str(r.get(c, "-")) for c in cols))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=None)
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--quick", action="store_true", help="the smallest size, 3 repeats")
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--json", default=None, help="write the results here")
    args = p.parse_args(argv)
    gpu = jax.default_backend() != "cpu"
    sizes = args.sizes or ([4096, 16384] if gpu else [1024, 2048])
    if args.quick:
        sizes = sizes[:1] if args.sizes else ([4096] if gpu else [512])
    repeats = args.repeats or (3 if args.quick else 5)
    t0 = time.perf_counter()
    rows = run(sizes, repeats, not args.no_torch, args.k)
    table(rows)
    out = {"platform": platform.platform(), "jax": jax.__version__, "device": str(jax.devices()[0]),
           "wall_s": time.perf_counter() - t0, "rows": rows}
    print(json.dumps({k: v for k, v in out.items() if k != "rows"}))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
