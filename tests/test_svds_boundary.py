"""jaxsvd.svds at the boundary k -> min(m, n), and sparse products as matrix products.

References, independent of jaxsvd: numpy's LAPACK SVD in float64 (values;
residuals |A v - s u|, |A^T u - s v| of the returned vectors), and the jaxpr of
the gradient (no (c, m, n)-sized intermediate: JAX's batched sampled sparse
product densifies, issue 26).

The contract checked: every triplet is right to the dtype's tolerance, or NaN
with ``converged=False`` -- never a finite wrong value flagged converged (6 x 10
float32, k = 5 once gave S = [4.73, 3.80, 3.29, 0.0, nan] with the 0.0
"converged").  A batch of three matrices per call (vmap): three draws per
compilation.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import rng
from jax.experimental import sparse

import jaxsvd

lx = pytest.importorskip("lineax")

TOL = {jnp.dtype(jnp.float32): 1e-5, jnp.dtype(jnp.float64): 1e-11}  # relative to s_1


def _check(a, res, info, k):
    """Right or NaN-and-unconverged, per matrix and triplet; returns the count of
    converged triplets."""
    a64 = np.asarray(a, np.float64)
    U, S, Vh = (np.asarray(x, np.float64) for x in res)
    conv = np.asarray(info.converged)
    tol = TOL[jnp.dtype(a.dtype)]
    for i in range(a64.shape[0]):
        s_ref = np.linalg.svd(a64[i], compute_uv=False)[:k]
        s0 = s_ref[0]
        nan = np.isnan(S[i])
        assert np.array_equal(nan, ~conv[i]), (i, S[i], conv[i])
        assert np.all(np.isnan(U[i][:, nan])) and np.all(np.isnan(Vh[i][nan]))
        c = ~nan
        np.testing.assert_allclose(S[i][c], s_ref[c], rtol=0, atol=tol * s0)
        u, v = U[i][:, c], Vh[i][c].T
        r1 = np.linalg.norm(a64[i] @ v - u * S[i][c], axis=0)
        r2 = np.linalg.norm(a64[i].T @ u - v * S[i][c], axis=0)
        assert np.all(r1 <= 10 * tol * s0) and np.all(r2 <= 10 * tol * s0), (r1, r2)
    return int(conv.sum())


def _batch(m, n, dtype, seed):
    return jnp.asarray(rng(seed).standard_normal((3, m, n)), dtype)


def _every(a, ks, **kw):
    """svds_with_info for every k in ``ks``: one compiled program (k is static)."""
    return jax.jit(lambda a: [jaxsvd.svds_with_info(a, k, **kw) for k in ks])(a)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("shape", [(6, 10), (10, 6), (8, 8)])
def test_every_k_up_to_min_mn(shape, dtype):
    m, n = shape
    ks = range(1, min(m, n) + 1)
    a = _batch(m, n, dtype, seed=m + 2 * n)
    for k, (res, info) in zip(ks, _every(a, ks), strict=True):
        # the Krylov space would span the short side: the dense route, all converged
        assert _check(a, res, info, k) == 3 * k, k


@pytest.mark.parametrize("shape,dtype", [((20, 30), jnp.float32), ((30, 20), jnp.float32),
                                         ((20, 30), jnp.float64)])
def test_near_min_mn_medium(shape, dtype):
    m, n = shape
    ks = (1, 10, 19, 20)
    a = _batch(m, n, dtype, seed=1)
    for k, (res, info) in zip(ks, _every(a, ks), strict=True):
        assert _check(a, res, info, k) == 3 * k, k


def test_krylov_route_right_or_nan():
    # the Krylov route (krylov_dim < min(m, n)) with thick restarts, on the wide float32
    # matrices of the defect (tried besides, not kept for time: 30 x 20 float64, and
    # 56 x 64 float32 at the default p = 48, 8 directions of room at a restart)
    (m, n), k, kw, dtype = (20, 30), 5, dict(krylov_dim=12), jnp.float32
    a = _batch(m, n, dtype, seed=2)
    res, info = jaxsvd.svds_with_info(a, k, **kw)
    assert np.all(np.asarray(info.krylov_dim) < min(m, n))  # (a batch: one per matrix)
    _check(a, res, info, k)


def test_dense_route_ties_and_rank_deficiency():
    # every tied copy and the exact zeros of a rank-deficient wide matrix, with derivatives
    q1 = np.linalg.qr(rng(3).standard_normal((6, 6)))[0]
    q2 = np.linalg.qr(rng(4).standard_normal((10, 6)))[0]
    s = np.array([3.0, 2.0, 2.0, 1.0, 0.0, 0.0])
    a = jnp.asarray((q1 * s) @ q2.T, jnp.float32)
    (U, S, Vh), info = jax.jit(lambda a: jaxsvd.svds_with_info(a, 4))(a)
    np.testing.assert_allclose(S, s[:4], atol=1e-5 * 3)
    assert bool(np.all(np.asarray(info.converged)))
    g = jax.jit(jax.grad(lambda x: jnp.sum(jaxsvd.svds(x, 4).S)))(a)
    g_ref = jax.jit(jax.grad(lambda x: jnp.sum(jnp.linalg.svd(x, compute_uv=False)[:4])))(a)
    np.testing.assert_allclose(g, g_ref, atol=1e-4)


# ---------------------------------------------------------------------------
# BCOO products: matrix-matrix products in every face (no dense (c, m, n))
# ---------------------------------------------------------------------------


def _bcoo(m, n, seed):
    d = rng(seed).standard_normal((m, n)) * (rng(seed + 1).random((m, n)) < 0.25)
    return sparse.BCOO.fromdense(jnp.asarray(d))


@pytest.mark.parametrize("kind", ["bcoo", "lineax"])
def test_sparse_products_never_densify(kind):
    m, n, k = 60, 45, 3  # krylov_dim < min(m, n): the Krylov route and its products
    A = _bcoo(m, n, 5)
    x, y = jnp.asarray(rng(6).standard_normal(m)), jnp.asarray(rng(7).standard_normal(n))

    def invariant(U, S, Vh):  # sign-invariant, and no m x n array of its own
        return jnp.sum(S) + jnp.sum((x @ U) ** 2) + (Vh[0] @ y) ** 2

    def loss(data):
        B = sparse.BCOO((data, A.indices), shape=A.shape)
        if kind == "lineax":
            B = lx.FunctionLinearOperator(lambda x: B @ x, jax.ShapeDtypeStruct((n,), data.dtype))
        return invariant(*jaxsvd.svds(B, k, krylov_dim=20))

    def loss_ref(data):
        a = jnp.zeros(A.shape, data.dtype).at[A.indices[:, 0], A.indices[:, 1]].add(data)
        U, S, Vh = jnp.linalg.svd(a, full_matrices=False)
        return invariant(U[:, :k], S[:k], Vh[:k])

    # the gradient's program (the values, the JVP and its transpose) before XLA's fusion:
    # what eager mode runs, one primitive at a time (JAX's batched sampled product hides
    # its dense (c, m, n) inside its lowering, not in the jaxpr)
    lowered = jax.jit(jax.grad(loss)).lower(A.data)
    dims = [[int(d) for d in s.split("x")]
            for s in re.findall(r"tensor<([0-9x]+)x[a-z]+[0-9]*>", lowered.as_text())]
    big = ["x".join(map(str, d)) for d in dims if m in d and n in d]  # a dense copy of A, batched or not
    assert not big, sorted(set(big))
    if kind == "bcoo":  # (the lineax operator runs the same program)
        g_ref = jax.jit(jax.grad(loss_ref))(A.data)
        np.testing.assert_allclose(lowered.compile()(A.data), g_ref, rtol=1e-7, atol=1e-9)


def test_default_block_size_rule():
    # the measured rule (benchmarks/bench_svds.py --sparse-blocks): a BCOO on the CPU takes
    # single vectors up to k = 5; dense operators keep blocks of 4
    from jaxsvd._krylov import default_block_size

    assert [default_block_size(k, 1000, "cpu", sparse=True) for k in (1, 2, 5, 6, 10)] == [1, 1, 1, 4, 4]
    assert [default_block_size(k, 1000, "cpu") for k in (1, 2, 5, 10)] == [1, 4, 4, 4]
    assert default_block_size(3, 1000, "gpu", sparse=True) == 6
