"""jaxsvd.svds: block Krylov (block_size=), warm start (v0=), svds_with_info.

References, independent of jaxsvd: numpy's LAPACK SVD (values, projectors,
residuals) and nested float64 autodiff through jnp.linalg.svd (jvp of
gauge-invariant quantities).  Warm and cold starts, and block and single-vector
solves, are each compared with those references (never only with each other).
Vectors only through projectors u u^H.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import gaussian, rng, with_singular_values
from jax.experimental import sparse

import jaxsvd

lx = pytest.importorskip("lineax")


def spaced(r, top=10.0):
    return np.concatenate([top * 0.85 ** np.arange(min(r, 6)), np.linspace(2.0, 1.0, max(r - 6, 0))])[:r]


def proj(x):
    return x @ jnp.conj(jnp.swapaxes(x, -1, -2))


def dense_topk(a, k):
    u, s, vt = np.linalg.svd(np.asarray(a, np.complex128 if np.iscomplexobj(a) else np.float64),
                             full_matrices=False)
    return u[:, :k], s[:k], vt[:k].conj().T


def check_against_lapack(a, res, k, tol):
    U, S, Vh = res
    u, s, v = dense_topk(a, k)
    np.testing.assert_allclose(S, s, rtol=tol, atol=tol * s[0])
    np.testing.assert_allclose(proj(U), u @ u.conj().T, atol=10 * tol)
    np.testing.assert_allclose(proj(jnp.conj(Vh).T), v @ v.conj().T, atol=10 * tol)


def gauge_free_ref(k):
    def ref(a):
        U, S, Vh = jnp.linalg.svd(a, full_matrices=False)
        return S[..., :k], proj(U[..., :k]), proj(jnp.swapaxes(Vh, -1, -2)[..., :k])

    return ref


# ---------------------------------------------------------------------------
# block and single-vector solves: the same triplets (each checked against LAPACK)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("shape,k", [((30, 20), 3), ((20, 30), 1), ((24, 24), 10)])
def test_block_sizes_agree_with_lapack(shape, k):
    m, n = shape
    a = with_singular_values(m, n, spaced(min(m, n)), seed=k)
    for b in (1, 2, 5):
        res, info = jaxsvd.svds_with_info(a, k, block_size=b)
        check_against_lapack(a, res, k, 1e-11)
        assert info.block_size == b and info.krylov_dim % b == 0
        assert np.all(np.asarray(info.converged))
        assert int(info.matvecs) == b * int(info.passes)


def test_default_block_float32_gaussian():
    a = gaussian((200, 120), seed=4, dtype=jnp.float32)
    res, info = jaxsvd.svds_with_info(a, 1)
    assert info.block_size == jaxsvd._krylov.default_block_size(1, 120)
    u, s, v = dense_topk(a, 1)
    np.testing.assert_allclose(res.S, s, rtol=2e-5)
    np.testing.assert_allclose(proj(res.U), u @ u.T, atol=2e-3)  # relative gap ~ 1e-2


# ---------------------------------------------------------------------------
# warm start
# ---------------------------------------------------------------------------


def _layer(n, seed):
    # a 'trained layer': top singular values separated (relative gap ~ 0.13)
    s = np.concatenate([[2.0, 1.6, 1.4], np.linspace(1.2, 0.01, n - 3)])
    return with_singular_values(n, n, s, seed=seed, dtype=jnp.float32)


def test_warm_start_after_an_optimizer_step_float32():
    n = 256
    w = _layer(n, 1)
    (u, s, vh), info0 = jaxsvd.svds_with_info(w, 1)
    # one adam-like step: lr * sign of a gradient-like matrix
    g = jnp.asarray(rng(5).standard_normal((n, n)), jnp.float32) + 5 * n * u @ vh
    w2 = w - 1e-3 * jnp.sign(g)
    (U, S, Vh), info = jaxsvd.svds_with_info(w2, 1, v0=vh.T)
    assert info.block_size == 1
    assert int(info.matvecs) <= 10 < int(info0.matvecs)  # <= 10 products with A, as many with A^T
    u_r, s_r, v_r = dense_topk(w2, 1)
    np.testing.assert_allclose(S, s_r, rtol=1e-6)
    # the gradient of sigma_1, u v^T, at the warm-started triplet
    gw = jax.grad(lambda w: jaxsvd.svds(w, 1, v0=vh.T).S[0])(w2)
    np.testing.assert_allclose(gw, np.outer(u_r[:, 0], v_r[:, 0]), atol=2e-5)


def test_warm_start_derivatives_and_transforms():
    # jvp of invariant quantities with a start block equals nested float64 jnp autodiff
    k = 3
    a = with_singular_values(9, 7, spaced(7), seed=2)
    h = gaussian((9, 7), seed=3)
    v0 = jnp.asarray(rng(4).standard_normal((7, 2)))

    def ours(a):
        U, S, Vh = jaxsvd.svds(a, k, v0=v0)
        return S, proj(U), proj(Vh.T)

    out, tan = jax.jit(lambda a, h: jax.jvp(ours, (a,), (h,)))(a, h)
    ref_out, ref_tan = jax.jvp(gauge_free_ref(k), (a,), (h,))
    for x, y in zip(out + tan, ref_out + ref_tan, strict=True):
        np.testing.assert_allclose(x, y, atol=1e-9)
    # vmap over matrices and start vectors (..., n); jit with a traced v0
    ab = jnp.stack([a, a + 0.1 * h])
    v0b = jnp.asarray(rng(6).standard_normal((2, 7)))
    S = jax.jit(lambda a, v: jaxsvd.svds(a, 2, v0=v).S)(ab, v0b)
    np.testing.assert_allclose(S, np.linalg.svd(np.asarray(ab), compute_uv=False)[:, :2], rtol=1e-11)
    Sv = jax.vmap(lambda a, v: jaxsvd.svds(a, 2, v0=v).S)(ab, v0b)
    np.testing.assert_allclose(Sv, S, rtol=1e-11)


def test_warm_start_complex_bcoo_lineax():
    r = rng(7)
    a = jnp.asarray(r.standard_normal((8, 6)) + 1j * r.standard_normal((8, 6)))
    v0 = jnp.asarray(r.standard_normal(6) + 1j * r.standard_normal(6))
    check_against_lapack(a, jaxsvd.svds(a, 2, v0=v0), 2, 1e-11)
    d = with_singular_values(10, 8, spaced(8), seed=8)
    v0r = jnp.asarray(r.standard_normal((8, 2)))
    check_against_lapack(d, jaxsvd.svds(sparse.BCOO.fromdense(d), 2, v0=v0r), 2, 1e-11)
    op = lx.MatrixLinearOperator(d)
    check_against_lapack(d, jaxsvd.svds(op, 2, v0=v0r, block_size=2), 2, 1e-11)
    # zero columns fall back to random ones (documented)
    check_against_lapack(d, jaxsvd.svds(d, 2, v0=jnp.zeros(8)), 2, 1e-11)


# ---------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------


def test_bad_v0_and_block_size():
    a = gaussian((6, 5), seed=1)
    bad_v0 = [
        (jnp.ones(4), "shape"),
        (jnp.ones((5, 2, 1)), "shape"),
        (jnp.ones((5, 0)), "shape"),
        (jnp.ones(5, jnp.int32), "floating"),
        (jnp.ones(5, jnp.complex128), "complex"),
        (jnp.full(5, jnp.nan), "non-finite"),
        (jnp.ones((3, 5)), "shape"),
    ]
    for v0, msg in bad_v0:
        with pytest.raises(ValueError, match=msg):
            jaxsvd.svds(a, 1, v0=v0)
    for bs, msg in [(0, ">= 1"), (-1, ">= 1"), (6, "too large")]:
        with pytest.raises(ValueError, match=msg):
            jaxsvd.svds(a, 1, block_size=bs)
    for bs in (True, 2.0):
        with pytest.raises(TypeError, match="block_size must be a static Python int"):
            jaxsvd.svds(a, 1, block_size=bs)
    with pytest.raises(ValueError, match="more than block_size"):
        jaxsvd.svds(a, 1, v0=jnp.ones((5, 3)), block_size=2)
