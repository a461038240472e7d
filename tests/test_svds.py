"""jaxsvd.svds: matrix-free top-k triplets and their implicit derivatives.

References, all independent of jaxsvd: numpy's LAPACK SVD (values, projectors,
residuals), nested float64 autodiff through jnp.linalg.svd (jvp, grad, hessian
of gauge-invariant quantities), the mpmath Rayleigh-Schroedinger series of the
block operator (jet), dense forms of lineax operators and BCOO matrices, and a
2,000,000-dimensional operator whose singular values are known in closed form.
Vectors are compared through projectors u u^T (sign/gauge invariant).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _ref_mpmath import sigma_series
from helpers import gaussian, rng, with_singular_values
from jax.experimental import jet, sparse

import jaxsvd

lx = pytest.importorskip("lineax")

SHAPES = [(9, 7), (7, 9), (8, 8)]


def spaced(r, top=10.0):
    """Singular values with relative gaps >= 0.05 at the top."""
    return np.concatenate([top * 0.9 ** np.arange(min(r, 6)), np.linspace(2.0, 1.0, max(r - 6, 0))])[:r]


def dense_topk(a, k):
    u, s, vt = np.linalg.svd(np.asarray(a, np.float64), full_matrices=False)
    return u[:, :k], s[:k], vt[:k].T


def proj(x):
    return x @ jnp.swapaxes(x, -1, -2)


# ---------------------------------------------------------------------------
# values, projectors, residuals
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("k", [1, 3, 5])
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_values_projectors_residuals(shape, k, dtype):
    m, n = shape
    a = with_singular_values(m, n, spaced(min(m, n)), seed=k, dtype=dtype)
    U, S, Vh = jaxsvd.svds(a, k)
    assert U.shape == (m, k) and S.shape == (k,) and Vh.shape == (k, n)
    assert U.dtype == dtype and S.dtype == dtype
    u, s, v = dense_topk(a, k)
    tol = 1e-12 if dtype == jnp.float64 else 2e-5
    np.testing.assert_allclose(S, s, rtol=tol, atol=tol * s[0])
    np.testing.assert_allclose(proj(U), u @ u.T, atol=10 * tol)
    np.testing.assert_allclose(proj(Vh.T), v @ v.T, atol=10 * tol)
    a64 = np.asarray(a, np.float64)
    res = np.linalg.norm(a64 @ np.asarray(Vh, np.float64).T - np.asarray(U, np.float64) * np.asarray(S), axis=0)
    res_t = np.linalg.norm(a64.T @ np.asarray(U, np.float64) - np.asarray(Vh, np.float64).T * np.asarray(S), axis=0)
    assert np.all(res <= 10 * tol * s[0]) and np.all(res_t <= 10 * tol * s[0])


def test_gaussian_and_info():
    a = gaussian((60, 40), seed=3)
    (U, S, Vh), info = jaxsvd._svds.svds_with_info(a, 4)
    u, s, v = dense_topk(a, 4)
    np.testing.assert_allclose(S, s, rtol=1e-11)
    assert np.all(np.asarray(info.residual) <= 1e-12) and int(info.steps) >= 4
    assert float(info.next_value) <= s[0]


def test_same_key_same_result_and_key_independence():
    a = gaussian((30, 20), seed=1)
    r1 = jaxsvd.svds(a, 3, key=jax.random.key(5))
    r2 = jaxsvd.svds(a, 3, key=jax.random.key(5))
    r3 = jaxsvd.svds(a, 3, key=jax.random.key(6))
    np.testing.assert_array_equal(r1.U, r2.U)
    np.testing.assert_array_equal(r1.S, r2.S)
    np.testing.assert_allclose(r1.S, r3.S, rtol=1e-12)
    np.testing.assert_allclose(proj(r1.U), proj(r3.U), atol=1e-10)


def test_small_and_exhausted():
    # k = min(m, n), rank-deficient, zero matrix, 1 x n, identity (ties)
    a = gaussian((6, 4), seed=2)
    np.testing.assert_allclose(jaxsvd.svds(a, 4).S, np.linalg.svd(a, compute_uv=False), rtol=1e-12)
    low = gaussian((8, 2), seed=3) @ gaussian((2, 6), seed=4)
    s = jaxsvd.svds(low, 3).S
    np.testing.assert_allclose(s[:2], np.linalg.svd(low, compute_uv=False)[:2], rtol=1e-12)
    assert abs(float(s[2])) < 1e-12 * float(s[0])
    np.testing.assert_array_equal(jaxsvd.svds(jnp.zeros((4, 3)), 2).S, [0.0, 0.0])
    row = gaussian((1, 5), seed=5)
    np.testing.assert_allclose(jaxsvd.svds(row, 1).S, [np.linalg.norm(row)], rtol=1e-13)
    np.testing.assert_allclose(jaxsvd.svds(jnp.eye(5), 3).S, [1.0, 1.0, 1.0], rtol=1e-14)


# ---------------------------------------------------------------------------
# derivatives against nested float64 autodiff through jnp.linalg.svd
# ---------------------------------------------------------------------------


def _gauge_free(k):
    def ours(a):
        U, S, Vh = jaxsvd.svds(a, k)
        return S, proj(U), proj(jnp.swapaxes(Vh, -1, -2))

    def ref(a):
        U, S, Vh = jnp.linalg.svd(a, full_matrices=False)
        return S[..., :k], proj(U[..., :k]), proj(jnp.swapaxes(Vh, -1, -2)[..., :k])

    return ours, ref


@pytest.mark.parametrize("shape", SHAPES)
def test_jvp_grad_vs_jnp(shape):
    k = 3
    a = gaussian(shape, seed=11)
    h = gaussian(shape, seed=12)
    ours, ref = _gauge_free(k)
    for x, y in zip(jax.jvp(ours, (a,), (h,))[1], jax.jvp(ref, (a,), (h,))[1], strict=True):
        np.testing.assert_allclose(x, y, atol=1e-9 * max(1.0, float(jnp.max(jnp.abs(y)))))
    w = gaussian((shape[0], shape[0]), seed=13)

    def loss(f):
        return lambda a: jnp.sum(f(a)[1] * w) + jnp.sum(f(a)[0] ** 2)

    np.testing.assert_allclose(jax.grad(loss(ours))(a), jax.grad(loss(ref))(a), atol=1e-9)
    np.testing.assert_allclose(jax.jacrev(lambda a: ours(a)[2])(a), jax.jacfwd(lambda a: ref(a)[2])(a), atol=1e-9)


@pytest.mark.slow
def test_hessian_vs_jnp():
    a = gaussian((6, 5), seed=21)
    ours, ref = _gauge_free(2)
    for j in (1,):  # sigma_2: couples to sigma_1 and to the complement
        h = jax.hessian(lambda a: ours(a)[0][j])(a)
        hr = jax.hessian(lambda a: ref(a)[0][j])(a)
        np.testing.assert_allclose(h, hr, atol=1e-9)
    w = gaussian((6, 6), seed=22)
    f = lambda g: (lambda a: jnp.sum(g(a)[1] * w))  # noqa: E731
    np.testing.assert_allclose(jax.hessian(f(ours))(a), jax.hessian(f(ref))(a), atol=1e-8)


@pytest.mark.parametrize("shape", [(7, 5), (5, 7)])
def test_jet_vs_mpmath(shape):
    a = with_singular_values(*shape, spaced(5), seed=4)
    h = gaussian(shape, seed=5)
    h2 = gaussian(shape, seed=6)
    order = 6
    k = 2
    # straight line (jet's derivative convention) and a quadratic path (unscaled)
    _, terms = jet.jet(lambda a: jaxsvd.svds(a, k).S, (a,), ([h] + [jnp.zeros_like(h)] * (order - 1),))
    for i in range(k):
        ref = sigma_series(np.asarray(a), [np.asarray(h)], i, order)
        for j in range(1, order + 1):
            want = ref[j] * math.factorial(j)
            assert abs(float(terms[j - 1][i]) - want) <= 1e-8 * max(1.0, abs(want)), (i, j)
    _, qterms = jet.jet(lambda a: jaxsvd.svds(a, k).S, (a,),
                        ([h, 2 * h2] + [jnp.zeros_like(h)] * (order - 2),))
    for i in range(k):
        ref = sigma_series(np.asarray(a), [np.asarray(h), np.asarray(h2)], i, order)
        for j in range(1, order + 1):
            want = ref[j] * math.factorial(j)
            assert abs(float(qterms[j - 1][i]) - want) <= 1e-8 * max(1.0, abs(want)), (i, j)


def test_jet_vectors_vs_derivatives_of_projector():
    # order-3 jet of the top-2 projector against nested jvp through jnp
    a = with_singular_values(6, 5, spaced(5), seed=8)
    h = gaussian((6, 5), seed=9)
    z = jnp.zeros_like(h)
    _, terms = jet.jet(lambda a: proj(jaxsvd.svds(a, 2).U), (a,), ([h, z, z],))
    f = lambda t: proj(jnp.linalg.svd(a + t * h, full_matrices=False)[0][:, :2])  # noqa: E731
    d1 = jax.jvp(f, (0.0,), (1.0,))[1]
    d2 = jax.jvp(lambda t: jax.jvp(f, (t,), (1.0,))[1], (0.0,), (1.0,))[1]
    d3 = jax.jvp(lambda t: jax.jvp(lambda t: jax.jvp(f, (t,), (1.0,))[1], (t,), (1.0,))[1], (0.0,), (1.0,))[1]
    for t, d in zip(terms, (d1, d2, d3), strict=True):
        np.testing.assert_allclose(t, d, atol=1e-8 * max(1.0, float(jnp.max(jnp.abs(d)))))


# ---------------------------------------------------------------------------
# operators: lineax, BCOO, a 2,000,000-dimensional closed form
# ---------------------------------------------------------------------------


def test_lineax_matrix_and_function_operators():
    w = gaussian((12, 9), seed=31)
    s_ref = np.linalg.svd(w, compute_uv=False)[:3]
    for op in (lx.MatrixLinearOperator(w),
               lx.FunctionLinearOperator(lambda x: w @ x, jax.ShapeDtypeStruct((9,), w.dtype))):
        np.testing.assert_allclose(jaxsvd.svds(op, 3).S, s_ref, rtol=1e-12)

    def top(w):
        op = lx.FunctionLinearOperator(lambda x: w @ x, jax.ShapeDtypeStruct((9,), w.dtype))
        return jaxsvd.svds(op, 2).S[0]

    g_ref = jax.grad(lambda w: jnp.linalg.svd(w, compute_uv=False)[0])(w)
    np.testing.assert_allclose(jax.grad(top)(w), g_ref, atol=1e-10)
    np.testing.assert_allclose(jax.jit(jax.grad(top))(w), g_ref, atol=1e-10)
    hess = jax.hessian(lambda w: jaxsvd.svds(lx.MatrixLinearOperator(w), 2).S[1])(w)
    np.testing.assert_allclose(hess, jax.hessian(lambda w: jnp.linalg.svd(w, compute_uv=False)[1])(w), atol=1e-9)


def test_lineax_jacobian_operator_network_parameters():
    r = rng(7)
    params = (jnp.asarray(r.standard_normal((7, 5))), jnp.asarray(r.standard_normal((4, 7))))
    x0 = jnp.asarray(r.standard_normal(5))

    def net(params, x):
        w1, w2 = params
        return w2 @ jnp.tanh(w1 @ x)

    def sigma1(params):
        op = lx.JacobianLinearOperator(lambda x, args: net(params, x), x0)
        return jaxsvd.svds(op, 1).S[0]

    def sigma1_dense(params):
        return jnp.linalg.svd(jax.jacfwd(net, argnums=1)(params, x0), compute_uv=False)[0]

    np.testing.assert_allclose(sigma1(params), sigma1_dense(params), rtol=1e-12)
    for g, gr in zip(jax.grad(sigma1)(params), jax.grad(sigma1_dense)(params), strict=True):
        np.testing.assert_allclose(g, gr, atol=1e-10)


def test_bcoo_against_dense():
    r = rng(8)
    dense = np.where(r.random((15, 10)) < 0.3, r.standard_normal((15, 10)), 0.0)
    b = sparse.BCOO.fromdense(jnp.asarray(dense))
    np.testing.assert_allclose(jaxsvd.svds(b, 3).S, np.linalg.svd(dense, compute_uv=False)[:3], rtol=1e-12)
    g = jax.grad(lambda d: jaxsvd.svds(sparse.BCOO((d, b.indices), shape=b.shape), 1).S[0])(b.data)
    u, _, vt = np.linalg.svd(dense)
    np.testing.assert_allclose(g, np.outer(u[:, 0], vt[0])[tuple(np.asarray(b.indices).T)], atol=1e-10)


@pytest.mark.slow
def test_two_million_dimensional_operator_closed_form():
    # A = H1 diag(d) H2 with Householder reflections H = I - 2 w w^T: dense but
    # O(n) to apply; singular values |d| sorted; d sigma_i / d d_j = sign(d_j) [j = argmax]
    n = 2_000_000
    key1, key2, key3 = jax.random.split(jax.random.key(0), 3)
    w1 = jax.random.normal(key1, (n,), jnp.float64)
    w2 = jax.random.normal(key2, (n,), jnp.float64)
    w1, w2 = w1 / jnp.linalg.norm(w1), w2 / jnp.linalg.norm(w2)
    d = jax.random.uniform(key3, (n,), jnp.float64)  # the bulk in [0, 1)
    idx = jnp.array([17, 1_234_567, 1_999_999])
    d = d.at[idx].set(jnp.array([5.0, -4.0, 3.0]))

    def refl(w, x):
        return x - 2 * w * jnp.dot(w, x)

    def sigmas(d):
        op = lx.FunctionLinearOperator(lambda x: refl(w1, d * refl(w2, x)), jax.ShapeDtypeStruct((n,), jnp.float64))
        return jaxsvd.svds(op, 2, krylov_dim=8).S

    s = sigmas(d)
    np.testing.assert_allclose(s, [5.0, 4.0], rtol=1e-10)
    g = jax.grad(lambda d: sigmas(d)[1])(d)
    assert abs(float(g[idx[1]]) - (-1.0)) < 1e-9
    assert float(jnp.max(jnp.abs(g.at[idx[1]].set(0.0)))) < 1e-9


# ---------------------------------------------------------------------------
# transforms: jit, vmap, batches, float32
# ---------------------------------------------------------------------------


def test_batch_vmap_jit():
    a = gaussian((3, 8, 6), seed=41)
    s_ref = np.linalg.svd(np.asarray(a), compute_uv=False)[:, :2]
    np.testing.assert_allclose(jaxsvd.svds(a, 2).S, s_ref, rtol=1e-12)
    np.testing.assert_allclose(jax.jit(lambda a: jaxsvd.svds(a, 2).S)(a), s_ref, rtol=1e-12)
    np.testing.assert_allclose(jax.vmap(lambda a: jaxsvd.svds(a, 2).S)(a), s_ref, rtol=1e-12)
    g = jax.vmap(jax.grad(lambda a: jaxsvd.svds(a, 2).S[1]))(a)
    g_ref = jax.vmap(jax.grad(lambda a: jnp.linalg.svd(a, compute_uv=False)[1]))(a)
    np.testing.assert_allclose(g, g_ref, atol=1e-10)
    # grad of a batched call, jacfwd of vmap
    g2 = jax.grad(lambda a: jnp.sum(jaxsvd.svds(a, 2).S ** 2))(a)
    g2_ref = jax.grad(lambda a: jnp.sum(jnp.linalg.svd(a, compute_uv=False)[:, :2] ** 2))(a)
    np.testing.assert_allclose(g2, g2_ref, atol=1e-10)
    ours, ref = _gauge_free(2)
    h = gaussian((3, 8, 6), seed=42)
    np.testing.assert_allclose(jax.vmap(lambda a, h: jax.jvp(ours, (a,), (h,))[1][1])(a, h),
                               jax.vmap(lambda a, h: jax.jvp(ref, (a,), (h,))[1][1])(a, h), atol=1e-9)


def test_vmap_of_jet():
    a = gaussian((2, 7, 5), seed=43)
    h = gaussian((2, 7, 5), seed=44)
    z = jnp.zeros_like(h)
    out = jax.vmap(lambda a, h: jet.jet(lambda a: jaxsvd.svds(a, 2).S, (a,), ([h, z[0], z[0]],))[1])(a, h)
    for b in range(2):
        ref = jaxsvd.derivatives(a[b], h[b], 3)
        for j in range(3):
            np.testing.assert_allclose(out[j][b], ref[j + 1][:2], rtol=1e-8, atol=1e-8)


def test_float32_gradient():
    a = with_singular_values(20, 15, spaced(15), seed=3, dtype=jnp.float32)
    g = jax.grad(lambda a: jaxsvd.svds(a, 2).S[1])(a)
    a64 = np.asarray(a, np.float64)
    u, _, vt = np.linalg.svd(a64)
    np.testing.assert_allclose(g, np.outer(u[:, 1], vt[1]), atol=2e-5)


# ---------------------------------------------------------------------------
# degeneracy, failure, bad input
# ---------------------------------------------------------------------------


def test_tie_at_cut_and_inside():
    q1, q2 = np.linalg.qr(rng(1).standard_normal((6, 6)))[0], np.linalg.qr(rng(2).standard_normal((5, 5)))[0]
    cut = jnp.asarray(q1[:, :5] @ np.diag([4.0, 2.0, 2.0, 1.0, 0.5]) @ q2.T)
    h = gaussian((6, 5), seed=3)
    (_, ds, dvh) = jax.jvp(lambda a: jaxsvd.svds(a, 2), (cut,), (h,))[1]
    assert np.isfinite(float(ds[0])) and np.all(np.isnan(np.asarray(dvh[1])))
    assert np.all(np.isfinite(np.asarray(dvh[0])))
    g = jax.grad(lambda a: jaxsvd.svds(a, 1).S[0])(cut)
    np.testing.assert_allclose(g, np.outer(q1[:, 0], q2[:, 0]), atol=1e-10)
    inside = jnp.asarray(q1[:, :5] @ np.diag([3.0, 3.0, 1.0, 0.5, 0.2]) @ q2.T)
    # the projector onto the tied pair is differentiable: first-order values exact, vectors NaN
    (_, ds, du) = jax.jvp(lambda a: jaxsvd.svds(a, 2), (inside,), (h,))[1]
    assert np.all(np.isfinite(np.asarray(ds))) and np.all(np.isnan(np.asarray(du)))


def test_nonconvergence_and_nan_input():
    a = gaussian((200, 100), seed=9)
    r = jaxsvd.svds(a, 2, maxiter=3, tol=1e-14)
    assert np.all(np.isnan(np.asarray(r.S))) and np.all(np.isnan(np.asarray(r.U)))
    bad = a.at[3, 4].set(jnp.nan)
    assert np.all(np.isnan(np.asarray(jaxsvd.svds(bad, 2).S)))
    assert np.all(np.isnan(np.asarray(jax.jit(lambda a: jaxsvd.svds(a, 2).S)(bad))))


def test_bad_input():
    a = gaussian((5, 4), seed=0)
    with pytest.raises(ValueError, match="k=0"):
        jaxsvd.svds(a, 0)
    with pytest.raises(ValueError, match="k=5"):
        jaxsvd.svds(a, 5)
    with pytest.raises(TypeError, match="k must be"):
        jaxsvd.svds(a, 1.5)
    with pytest.raises(ValueError, match="shape"):
        jaxsvd.svds(jnp.ones(4), 1)
    with pytest.raises(ValueError, match="shape"):
        jaxsvd.svds(jnp.float32(1.0), 1)
    with pytest.raises(ValueError, match="tol"):
        jaxsvd.svds(a, 1, tol=-1.0)
    with pytest.raises(ValueError, match="maxiter"):
        jaxsvd.svds(a, 1, maxiter=0)
    with pytest.raises(TypeError, match="float16"):
        jaxsvd.svds(a.astype(jnp.float16), 1)
    with pytest.raises(TypeError, match="lineax"):
        jaxsvd.svds(object(), 1)
    op = lx.FunctionLinearOperator(lambda x: jnp.outer(x, x), jax.ShapeDtypeStruct((3,), jnp.float64))
    with pytest.raises(TypeError, match="1-D vector"):
        jaxsvd.svds(op, 1)
    # integers promote like svd
    s = jaxsvd.svds(jnp.arange(12).reshape(4, 3), 1).S
    np.testing.assert_allclose(s, np.linalg.svd(np.arange(12.0).reshape(4, 3), compute_uv=False)[:1], rtol=1e-6)


def test_operator_without_lineax(monkeypatch):
    import builtins

    real = builtins.__import__

    def fake(name, *args, **kw):
        if name == "lineax":
            raise ImportError("no lineax")
        return real(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(ImportError, match=r"jaxsvd\[operators\]"):
        jaxsvd.svds(object(), 1)


# ---------------------------------------------------------------------------
# complex operators (Hermitian block operator, docs/complex.md)
# ---------------------------------------------------------------------------


def test_complex_values_and_derivatives_match_dense_routes():
    g = np.random.default_rng(40)
    m, n, k = 12, 8, 2
    a = jnp.asarray(g.standard_normal((m, n)) + 1j * g.standard_normal((m, n)))
    h = jnp.asarray(g.standard_normal((m, n)) + 1j * g.standard_normal((m, n)))
    u, s, vh = jaxsvd.svds(a, k)
    assert s.dtype == jnp.float64 and u.dtype == jnp.complex128
    np.testing.assert_allclose(s, np.linalg.svd(np.asarray(a), compute_uv=False)[:k], rtol=1e-12)
    np.testing.assert_allclose(a @ jnp.conj(vh.T), u * s.astype(u.dtype)[None, :], atol=1e-12)

    def proj(svd):  # gauge-invariant: the top-k left projector
        def f(a):
            uk = svd(a)[0][:, :k]
            return uk @ jnp.conj(uk.T)
        return f

    ours, ref = (lambda a: jaxsvd.svds(a, k)), (lambda a: jnp.linalg.svd(a, full_matrices=False))
    t1 = jax.jvp(lambda a: (jaxsvd.svds(a, k).S, proj(ours)(a)), (a,), (h,))[1]
    t2 = jax.jvp(lambda a: (jnp.linalg.svd(a, compute_uv=False)[:k], proj(ref)(a)), (a,), (h,))[1]
    np.testing.assert_allclose(t1[0], t2[0], atol=1e-10)
    np.testing.assert_allclose(t1[1], t2[1], atol=1e-10)
    w = h @ jnp.conj(h.T)
    loss = lambda svd: (lambda a: jnp.sum(svd(a)[1][:k] ** 3) + jnp.real(jnp.sum(proj(svd)(a) * w)))  # noqa: E731
    np.testing.assert_allclose(jax.grad(loss(ours))(a), jax.grad(loss(ref))(a), atol=1e-9)
    # second order along h: mpmath on the Hermitian block operator
    _, ser = jet.jet(lambda a: jaxsvd.svds(a, k).S, (a,), ([h, jnp.zeros_like(h)],))
    for i in range(k):
        lam = sigma_series(np.asarray(a), [np.asarray(h)], i, 2, dps=30)
        np.testing.assert_allclose(ser[1][i], 2 * lam[2], rtol=1e-8)
    # BCOO, lineax (A^H y = conj(A^T conj(y))) and its gradient conj(u v^H), complex64
    ref_s = np.linalg.svd(np.asarray(a), compute_uv=False)[:k]
    np.testing.assert_allclose(jaxsvd.svds(sparse.BCOO.fromdense(a), k).S, ref_s, rtol=1e-12)
    np.testing.assert_allclose(jaxsvd.svds(lx.MatrixLinearOperator(a), k).S, ref_s, rtol=1e-12)
    gr = jax.grad(lambda a: jaxsvd.svds(lx.MatrixLinearOperator(a), 1).S[0])(a)
    u1, _, vh1 = np.linalg.svd(np.asarray(a))
    np.testing.assert_allclose(gr, np.conj(np.outer(u1[:, 0], vh1[0])), atol=1e-10)  # vh1[0] = v^H
    s32 = jaxsvd.svds(a.astype(jnp.complex64), k).S
    assert s32.dtype == jnp.float32
    np.testing.assert_allclose(s32, ref_s, rtol=1e-5)
