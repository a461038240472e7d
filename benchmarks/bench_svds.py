"""Largest singular triplets of big matrices and their gradients: jaxsvd.svds vs
the dense routes, side by side in one run.

For n x n Gaussian float32 matrices (``--sizes``, default 1024 2048 4096), value +
gradient of sigma_1 by

  * ``jaxsvd.svds(A, 1)``: ``jit(value_and_grad(lambda A: svds(A, 1).S[0]))``
  * the jnp route: ``jit(value_and_grad(lambda A: jnp.linalg.norm(A, 2)))`` (a dense SVD)
  * PyTorch: ``torch.linalg.matrix_norm(A, ord=2).backward()`` (when torch is importable)
  * scipy: ``scipy.sparse.linalg.svds(A, k=1)`` (ARPACK) + the outer product u v^T
  * matfree: ``eig.svd_partial(decomp.bidiag(K))`` with K matvecs, gradient by
    autodiff through the iteration (when matfree is importable)
  * the floor: 100 power-iteration matrix-vector products with A, and 100 pairs
    (A x, A^T y) (``svds_x_pairs``: the ratio to it)
  * svds with ``block_size=1`` (single vector; the default is a block) and with a
    warm start ``v0`` (the top vector before an adam-like step): passes over A,
    products, ratios to the default

with the relative errors of value and gradient against a float64 dense reference
(numpy LAPACK on the same matrix), the Krylov steps svds used, k = 10 at the
largest size, ``jet`` of order 4 of sigma_1 at 2048^2 (or the largest size below),
and the compiled temporary memory of svds against (m + n) p.  Warm-up,
``block_until_ready``, medians; compile times separately.  Table + JSON.

    python benchmarks/bench_svds.py --sizes 1024 --repeats 3

``--sparse-blocks M N NNZ`` runs only the block-size comparison on a random BCOO
(:func:`sparse_blocks`; the data behind ``_krylov.default_block_size``'s sparse rule,
tabled in docs/svds.md):

    python benchmarks/bench_svds.py --sparse-blocks 20000 5000 100000 --ks 2 5 10 --repeats 3
    OPENBLAS_NUM_THREADS=1 XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" \
        python benchmarks/bench_svds.py --sparse-blocks 20000 5000 100000 --ks 2 5 10 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np
from _timing import median_seconds

import jaxsvd
from jaxsvd._krylov import default_krylov_dim


def _compile(f, *args):
    t = time.perf_counter()
    c = jax.jit(f).lower(*args).compile()
    return c, time.perf_counter() - t


def _timed(c, args, repeats):
    out = jax.block_until_ready(c(*args))
    return median_seconds(lambda: jax.block_until_ready(c(*args)), repeats), out


def _rel(x, ref):
    x, ref = np.asarray(x, np.float64), np.asarray(ref, np.float64)
    return float(np.linalg.norm(x - ref) / np.linalg.norm(ref))


def _reference(a):
    a64 = np.asarray(a, np.float64)
    u, s, vt = np.linalg.svd(a64)
    return s, np.outer(u[:, 0], vt[0])


def _torch(a, repeats):
    try:
        import torch
    except ImportError:
        return None
    ta = torch.from_numpy(np.asarray(a))

    def run():
        x = ta.clone().requires_grad_(True)
        v = torch.linalg.matrix_norm(x, ord=2)
        v.backward()
        return float(v), x.grad.numpy()

    run()
    return median_seconds(run, repeats), run()


def _scipy(a, repeats):
    try:
        from scipy.sparse.linalg import svds as ssvds
    except ImportError:
        return None
    an = np.asarray(a)

    def run():
        u, s, vt = ssvds(an, k=1, random_state=0)
        return float(s[0]), np.outer(u[:, 0], vt[0])

    run()
    return median_seconds(run, repeats), run()


def _matfree(a, repeats, num_matvecs):
    try:
        from matfree import decomp, eig
    except ImportError:
        return None
    n = a.shape[1]
    v0 = jnp.ones((n,), a.dtype) / np.sqrt(n)
    svd = eig.svd_partial(decomp.bidiag(num_matvecs))

    def sigma1(a):
        _, s, _ = svd(lambda v, a: a @ v, v0, a)
        return s[0]

    c, comp = _compile(jax.value_and_grad(sigma1), a)
    t, (v, g) = _timed(c, (a,), repeats)
    return t, comp, (float(v), g)


def run(sizes, repeats, torch_on, k_big, jet_size):
    rows, extra = [], {}
    key = jax.random.key(0)
    for n in sizes:
        a = jax.random.normal(jax.random.fold_in(key, n), (n, n), jnp.float32)
        s_ref, g_ref = _reference(a)
        row = {"n": n, "sigma_1": float(s_ref[0]), "rel_gap": float((s_ref[0] - s_ref[1]) / s_ref[0])}

        @jax.jit
        def power100(a):
            x = jnp.ones(a.shape[1:], a.dtype)

            def body(i, x):
                y = a @ x
                return y / jnp.linalg.norm(y)

            return jax.lax.fori_loop(0, 100, body, x)

        jax.block_until_ready(power100(a))
        row["floor_100mv_s"] = median_seconds(lambda a=a: jax.block_until_ready(power100(a)), repeats)

        @jax.jit
        def pairs100(a):
            hi = jax.lax.Precision.HIGHEST

            def body(i, x):
                z = jnp.matmul(jnp.matmul(a, x, precision=hi), a, precision=hi)
                return z / jnp.linalg.norm(z)

            return jax.lax.fori_loop(0, 100, body, jnp.ones(a.shape[1:], a.dtype))

        jax.block_until_ready(pairs100(a))
        row["floor_100pairs_s"] = median_seconds(lambda a=a: jax.block_until_ready(pairs100(a)), repeats)

        vg = jax.value_and_grad(lambda a: jaxsvd.svds(a, 1).S[0])
        c, row["svds_compile_s"] = _compile(vg, a)
        row["svds_s"], (v, g) = _timed(c, (a,), repeats)
        row["svds_val_err"], row["svds_grad_err"] = abs(float(v) - s_ref[0]) / s_ref[0], _rel(g, g_ref)
        _, info = jaxsvd.svds_with_info(a, 1)
        row["svds_steps"] = int(info.passes)  # passes over A (block steps)
        row["svds_block_size"] = info.block_size
        row["svds_matvecs"] = int(info.matvecs)
        row["svds_x_pairs"] = row["svds_s"] / row["floor_100pairs_s"]
        # block vs single vector, warm vs cold (v0: the top vector before an adam-like step)
        for tag, kw in (("b1", {"block_size": 1}),
                        ("warm", {"v0": jaxsvd.svds(a + 1e-3 * jnp.sign(jax.random.normal(
                            jax.random.fold_in(key, n + 7), a.shape, a.dtype)), 1).Vh[0]})):
            vgx = jax.value_and_grad(lambda a, kw=kw: jaxsvd.svds(a, 1, **kw).S[0])
            c, row[f"svds_{tag}_compile_s"] = _compile(vgx, a)
            row[f"svds_{tag}_s"], (v, g) = _timed(c, (a,), repeats)
            row[f"svds_{tag}_val_err"] = abs(float(v) - s_ref[0]) / s_ref[0]
            _, info = jaxsvd.svds_with_info(a, 1, **kw)
            row[f"svds_{tag}_passes"], row[f"svds_{tag}_matvecs"] = int(info.passes), int(info.matvecs)
            row[f"svds_{tag}_over_svds"] = row[f"svds_{tag}_s"] / row["svds_s"]
        try:
            mem = c.memory_analysis()
            row["svds_temp_MB"] = float(mem.temp_size_in_bytes) / 2**20
        except Exception:  # noqa: BLE001 - backend without memory analysis
            row["svds_temp_MB"] = None
        row["basis_MB"] = 2 * n * (default_krylov_dim(1, n) + 1) * 4 / 2**20

        jn = jax.value_and_grad(lambda a: jnp.linalg.norm(a, 2))
        c, row["jnp_compile_s"] = _compile(jn, a)
        row["jnp_s"], (v, g) = _timed(c, (a,), max(1, repeats // 2))
        row["jnp_val_err"], row["jnp_grad_err"] = abs(float(v) - s_ref[0]) / s_ref[0], _rel(g, g_ref)

        if torch_on:
            res = _torch(a, max(1, repeats // 2))
            if res is not None:
                row["torch_s"], (v, g) = res
                row["torch_val_err"], row["torch_grad_err"] = abs(v - s_ref[0]) / s_ref[0], _rel(g, g_ref)
        res = _scipy(a, repeats)
        if res is not None:
            row["scipy_s"], (v, g) = res
            row["scipy_val_err"], row["scipy_grad_err"] = abs(v - s_ref[0]) / s_ref[0], _rel(g, g_ref)
        res = _matfree(a, repeats, num_matvecs=min(n, max(2 * row["svds_steps"], 50)))
        if res is not None:
            row["matfree_s"], row["matfree_compile_s"], (v, g) = res
            row["matfree_val_err"], row["matfree_grad_err"] = abs(v - s_ref[0]) / s_ref[0], _rel(g, g_ref)
        for name in ("svds", "jnp", "torch", "scipy", "matfree"):
            if f"{name}_s" in row:
                row[f"{name}_x_floor"] = row[f"{name}_s"] / row["floor_100mv_s"]
        row["jnp_over_svds"] = row["jnp_s"] / row["svds_s"]
        rows.append(row)
        print(json.dumps(row), flush=True)

    # k = 10 at the largest size
    n = max(sizes)
    a = jax.random.normal(jax.random.fold_in(key, n), (n, n), jnp.float32)
    vg10 = jax.value_and_grad(lambda a: jnp.sum(jaxsvd.svds(a, k_big).S))
    c, comp = _compile(vg10, a)
    t10, (v, _) = _timed(c, (a,), repeats)
    s_ref = np.linalg.svd(np.asarray(a, np.float64), compute_uv=False)
    _, info = jaxsvd.svds_with_info(a, k_big)
    extra["k10"] = {"n": n, "k": k_big, "s": t10, "compile_s": comp, "passes": int(info.passes),
                    "block_size": info.block_size, "matvecs": int(info.matvecs),
                    "over_k1": t10 / next(r for r in rows if r["n"] == n)["svds_s"],
                    "val_err": abs(float(v) - s_ref[:k_big].sum()) / s_ref[:k_big].sum()}
    print(json.dumps(extra["k10"]), flush=True)

    # jet of order 4 of sigma_1
    n = max(s for s in sizes if s <= jet_size)
    a = jax.random.normal(jax.random.fold_in(key, n), (n, n), jnp.float32)
    h = jax.random.normal(jax.random.fold_in(key, n + 1), (n, n), jnp.float32)
    z = jnp.zeros_like(h)
    from jax.experimental import jet

    f4 = lambda a, h: jet.jet(lambda a: jaxsvd.svds(a, 1).S, (a,), ([h, z, z, z],))[1]  # noqa: E731
    c, comp = _compile(f4, a, h)
    t4, terms = _timed(c, (a, h), max(1, repeats // 2))
    extra["jet4"] = {"n": n, "s": t4, "compile_s": comp, "d1..d4": [float(t[0]) for t in terms],
                     "over_value_and_grad": t4 / next(r for r in rows if r["n"] == n)["svds_s"]}
    print(json.dumps(extra["jet4"]), flush=True)
    return rows, extra


def _sparse_bcoo(m, n, nnz, seed=0):
    """A random BCOO m x n float32 matrix with about ``nnz`` entries (uniform positions)."""
    from jax.experimental import sparse

    rng = np.random.default_rng(seed)
    idx = np.unique(np.stack([rng.integers(0, m, nnz), rng.integers(0, n, nnz)], 1), axis=0)
    data = rng.standard_normal(len(idx)).astype(np.float32)
    return sparse.BCOO((jnp.asarray(data), jnp.asarray(idx, jnp.int32)), shape=(m, n))


def sparse_blocks(m, n, nnz, ks, blocks, repeats):
    """Block size on a sparse operator (issue 26, item 4): the jitted solve
    ``svds(A, k, block_size=b)`` and its value + grad with respect to the BCOO values,
    for each k and b, medians of ``repeats`` runs interleaved over b (a loaded machine
    slows every variant alike), with scipy's ARPACK (``scipy.sparse.linalg.svds``,
    same tol) in the same process.  Threads: as the environment sets them
    (``OPENBLAS_NUM_THREADS``; XLA's own pool: ``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false
    intra_op_parallelism_threads=1`` for one thread)."""
    import os

    from jax.experimental import sparse

    A = _sparse_bcoo(m, n, nnz)
    rows = []
    for k in ks:
        fns = {}
        for b in blocks:
            def solve(d, b=b, k=k):
                return jaxsvd.svds_with_info(sparse.BCOO((d, A.indices), shape=A.shape), k, block_size=b)

            def vg(d, b=b, k=k):
                return jax.value_and_grad(lambda d: jnp.sum(jaxsvd.svds(
                    sparse.BCOO((d, A.indices), shape=A.shape), k, block_size=b).S))(d)

            cs, tc = _compile(solve, A.data)
            cg, _ = _compile(vg, A.data)
            res, info = jax.block_until_ready(cs(A.data))
            jax.block_until_ready(cg(A.data))
            fns[b] = (cs, cg, int(info.passes), int(info.matvecs), tc, np.asarray(res.S))
        times = {b: ([], []) for b in blocks}
        for _ in range(repeats):
            for b in blocks:
                cs, cg = fns[b][:2]
                t = time.perf_counter()
                jax.block_until_ready(cs(A.data))
                times[b][0].append(time.perf_counter() - t)
                t = time.perf_counter()
                jax.block_until_ready(cg(A.data))
                times[b][1].append(time.perf_counter() - t)
        row = {"m": m, "n": n, "nnz": int(A.nse), "k": k,
               "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
               "XLA_FLAGS": os.environ.get("XLA_FLAGS", "")}
        for b in blocks:
            row[f"b{b}_solve_s"] = float(np.median(times[b][0]))
            row[f"b{b}_vg_s"] = float(np.median(times[b][1]))
            row[f"b{b}_passes"], row[f"b{b}_matvecs"] = fns[b][2], fns[b][3]
            row[f"b{b}_compile_s"] = fns[b][4]
        try:
            import scipy.sparse as sps
            from scipy.sparse.linalg import svds as ssvds

            a_sp = sps.csr_matrix((np.asarray(A.data), (np.asarray(A.indices[:, 0]), np.asarray(A.indices[:, 1]))),
                                  shape=A.shape)
            ts = []
            for _ in range(repeats):
                t = time.perf_counter()
                s_arpack = ssvds(a_sp, k=k, tol=1e-7, random_state=0, return_singular_vectors=False)
                ts.append(time.perf_counter() - t)
            row["arpack_s"] = float(np.median(ts))
            ref = np.sort(s_arpack)[::-1]
            row["max_rel_dS"] = {b: float(np.max(np.abs(fns[b][5] - ref)) / ref[0]) for b in blocks}
        except ImportError:
            pass
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def table(rows, extra):
    cols = ["n", "floor_100mv_s", "floor_100pairs_s", "svds_s", "svds_x_floor", "svds_x_pairs", "svds_steps",
            "svds_matvecs", "svds_b1_s", "svds_b1_passes", "svds_warm_s", "svds_warm_passes", "jnp_s",
            "jnp_over_svds", "torch_s", "scipy_s", "matfree_s", "svds_val_err", "svds_grad_err", "jnp_grad_err", "torch_grad_err",
            "scipy_grad_err", "matfree_grad_err", "svds_temp_MB", "basis_MB"]
    print("\n" + " | ".join(cols))
    for r in rows:
        print(" | ".join(f"{r.get(c):.3g}" if isinstance(r.get(c), float) else str(r.get(c, "-")) for c in cols))
    for name, e in extra.items():
        print(name, json.dumps(e))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048, 4096])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--jet-size", type=int, default=2048)
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--json", default=None, help="write the results here")
    p.add_argument("--sparse-blocks", type=int, nargs=3, metavar=("M", "N", "NNZ"), default=None,
                   help="only the block-size comparison on a random BCOO M x N with NNZ entries")
    p.add_argument("--ks", type=int, nargs="+", default=[2, 5, 10])
    p.add_argument("--blocks", type=int, nargs="+", default=[1, 4])
    args = p.parse_args()
    if args.sparse_blocks:
        rows = sparse_blocks(*args.sparse_blocks, args.ks, args.blocks, args.repeats)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"platform": platform.platform(), "jax": jax.__version__, "rows": rows}, f, indent=1)
        return
    rows, extra = run(args.sizes, args.repeats, not args.no_torch, args.k, args.jet_size)
    table(rows, extra)
    out = {"platform": platform.platform(), "jax": jax.__version__, "device": str(jax.devices()[0]),
           "rows": rows, "extra": extra}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
