"""jaxsvd.eigh / eigvalsh and jaxsvd.hermitian against independent references:
nested float64 autodiff through jnp.linalg.eigh at well-separated spectra,
Frechet derivatives from scipy.linalg.expm / sqrtm / logm / signm of block
upper-triangular matrices (exact at ties: f([[A, E], [0, A]]) holds DF(A)[E] in
its corner), mpmath eigendecompositions with 60-digit finite differences at
near ties, and closed forms (f(cI + tE) = sum_k f^(k)(c) t^k E^k / k!, the
resolvent formula of a projector's derivative).  Only gauge-invariant
quantities are compared (values, projectors, matrix functions).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest
import scipy.linalg as sl
from helpers import orthogonal, rng
from jax.experimental import jet

import jaxsvd
from jaxsvd import hermitian as H

TIE = np.array([1.0, 1.0, 2.0, 3.0])  # a rotated exact tie (in exact arithmetic)
SEP = np.array([-1.3, 0.4, 1.1, 2.5])  # well separated


def spd(w, seed=0, cplx=False):
    q = orthogonal(len(w), seed)
    if cplx:
        z = rng(seed + 7).standard_normal((len(w),) * 2) + 1j * rng(seed + 8).standard_normal((len(w),) * 2)
        q, _ = np.linalg.qr(z)
    a = (q * np.asarray(w)) @ q.conj().T
    return jnp.asarray(0.5 * (a + a.conj().T))


def sym(n, seed, cplx=False):
    x = rng(seed).standard_normal((n, n))
    if cplx:
        x = x + 1j * rng(seed + 1).standard_normal((n, n))
    return jnp.asarray(0.5 * (x + x.conj().T))


def frechet(f, a, es):
    """Corner block of f on the block bidiagonal [[A, E_1, 0..], [0, A, E_2, ..], ..]:
    sum over orderings gives D^k f(A)[E_1, .., E_k] / k! for equal E_i (Higham &
    Relton 2013).  scipy's matrix functions (Pade / Schur), never an eigh."""
    a = np.asarray(a)
    k, n = len(es), a.shape[0]
    big = np.zeros(((k + 1) * n,) * 2, dtype=np.result_type(a.dtype, *(np.asarray(e).dtype for e in es)))
    for i in range(k + 1):
        big[i * n:(i + 1) * n, i * n:(i + 1) * n] = a
    for i, e in enumerate(es):
        big[i * n:(i + 1) * n, (i + 1) * n:(i + 2) * n] = np.asarray(e)
    return f(big)[:n, k * n:]


def dproj_first(a, h, k):
    """d/dt of the projector onto the k smallest eigenvalues: the resolvent formula
    sum_{i<k<=j} (P_i H P_j + P_j H P_i) / (w_i - w_j), in numpy (independent)."""
    w, q = np.linalg.eigh(np.asarray(a))
    hh = q.conj().T @ np.asarray(h) @ q
    inside = np.arange(len(w)) < k
    d = w[:, None] - w[None, :]
    m = np.where(inside[:, None] & ~inside[None, :], hh / np.where(d == 0, 1, d), 0)
    m = m + m.conj().T
    return q @ m @ q.conj().T


# ---------------------------------------------------------------------------
# eigh / eigvalsh: the drop-in
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64, jnp.complex64, jnp.complex128])
def test_eigh_values_and_signs_are_jnps(dtype):
    cplx = jnp.issubdtype(dtype, jnp.complexfloating)
    a = jnp.stack([sym(4, 1, cplx), sym(4, 2, cplx)]).astype(dtype)
    for kw in ({}, {"UPLO": "U", "symmetrize_input": False}, {"symmetrize_input": False}):
        w, q = jaxsvd.eigh(a, **kw)
        w0, q0 = jnp.linalg.eigh(a, **kw)
        assert w.dtype == w0.dtype and q.dtype == q0.dtype
        np.testing.assert_array_equal(w, w0)
        np.testing.assert_array_equal(q, q0)
    np.testing.assert_array_equal(jaxsvd.eigvalsh(a), jnp.linalg.eigvalsh(a))
    assert isinstance(jaxsvd.eigh(a), type(jnp.linalg.eigh(a)))


def _invariants(wq):
    """(w, the rank-one projectors q_k q_k^H) -- gauge invariant at a simple spectrum."""
    w, q = wq
    return w, jnp.einsum("...ik,...jk->...kij", q, jnp.conj(q))


@pytest.mark.parametrize("cplx", [False, True])
def test_eigh_nested_jvp_matches_jnp_at_a_separated_spectrum(cplx):
    a, h = spd(SEP, 3, cplx), sym(4, 4, cplx)

    def nested(fn, order):
        f = lambda x: _invariants(fn(x))  # noqa: E731
        for _ in range(order):
            f = (lambda g: lambda x: jax.jvp(g, (x,), (h,))[1])(f)
        return f(a)

    for order in (1, 2, 3) if not cplx else (1, 2):
        got, ref = nested(jaxsvd.eigh, order), nested(jnp.linalg.eigh, order)
        for x, y in zip(got, ref, strict=True):
            np.testing.assert_allclose(x, y, atol=1e-11 * 10 ** order)
    # the gauge: diag(Q^H dQ) = 0 (JAX's), the same first-order vectors as jnp
    w, q = jaxsvd.eigh(a)
    dq = jax.jvp(lambda x: jaxsvd.eigh(x)[1], (a,), (h,))[1]
    np.testing.assert_allclose(jnp.diagonal(jnp.conj(q).T @ dq), 0, atol=1e-13)
    np.testing.assert_allclose(dq, jax.jvp(lambda x: jnp.linalg.eigh(x)[1], (a,), (h,))[1], atol=1e-12)


@pytest.mark.parametrize("cplx", [False, True])
def test_eigh_jet_matches_nested_jnp(cplx):
    a, h = spd(SEP, 5, cplx), sym(4, 6, cplx)
    K = 4
    _, (ws, qs) = jet.jet(jaxsvd.eigh, (a,), ([h] + [jnp.zeros_like(h)] * (K - 1),))
    f = jnp.linalg.eigh
    for k in range(K):
        f = (lambda g: lambda x: jax.jvp(g, (x,), (h,))[1])(f)
        w_ref, q_ref = f(a)
        np.testing.assert_allclose(ws[k], w_ref, atol=1e-10 * 10 ** k)
        # projectors' coefficients from the vector series (Leibniz), against nested jnp
    pj = lambda x: _invariants(jaxsvd.eigh(x))[1]  # noqa: E731
    _, (ps,) = jet.jet(lambda x: (pj(x),), (a,), ([h] + [jnp.zeros_like(h)] * (K - 1),))
    f = lambda x: _invariants(jnp.linalg.eigh(x))[1]  # noqa: E731
    for k in range(K):
        f = (lambda g: lambda x: jax.jvp(g, (x,), (h,))[1])(f)
        np.testing.assert_allclose(ps[k], f(a), atol=1e-10 * 10 ** k)
    # eigvalsh: values-only Taylor mode (the 2n+1 rule)
    _, wv = jet.jet(jaxsvd.eigvalsh, (a,), ([h] + [jnp.zeros_like(h)] * (K - 1),))
    np.testing.assert_allclose(wv[K - 1], ws[K - 1], atol=1e-9)


def test_eigh_grad_and_hessian_match_jnp_at_a_separated_spectrum():
    a, g = spd(SEP, 9), sym(4, 10)

    def loss(eigh):
        def f(x):
            w, q = eigh(x)
            return jnp.sum(w ** 3) + jnp.sum(g * (q[:, :2] @ q[:, :2].T)) + jnp.sum(q[:, 3] ** 4)
        return f

    h = sym(4, 14)

    def grad_hvp(eigh):  # the gradient and one Hessian-vector product (forward over reverse)
        return jax.jit(lambda x: jax.jvp(jax.grad(loss(eigh)), (x,), (h,)))(a)

    for x, y in zip(grad_hvp(jaxsvd.eigh), grad_hvp(jnp.linalg.eigh), strict=True):
        np.testing.assert_allclose(x, y, atol=1e-10)


def test_eigh_at_a_rotated_tie_reverse_exact_forward_nan():
    a, g, h = spd(TIE, 11), sym(4, 12), sym(4, 13)
    for a_ in (a, jnp.diag(jnp.asarray(TIE))):  # rotated, and stored exactly
        ref = dproj_first(a_, g, 2)  # grad <G, P_c> = DP[G] (self-adjoint)
        loss = lambda x: jnp.sum(g * (jaxsvd.eigh(x)[1][:, :2] @ jaxsvd.eigh(x)[1][:, :2].T))  # noqa: E731
        gr = jax.grad(loss)(a_)
        np.testing.assert_allclose(0.5 * (gr + gr.T), ref, atol=1e-13)
        # forward mode: the tied vectors' derivatives do not exist; the others' do
        dw, dq = jax.jvp(jaxsvd.eigh, (a_,), (h,))[1]
        assert np.isnan(dq[:, :2]).all() and np.isfinite(dq[:, 2:]).all() and np.isfinite(dw).all()
        qc = np.linalg.eigh(np.asarray(a_))[1][:, :2]
        np.testing.assert_allclose(jnp.sum(dw[:2]), np.trace(qc.T @ np.asarray(h) @ qc), atol=1e-13)
        # a basis-dependent loss: NaN, never finite-and-wrong
        assert np.isnan(jax.grad(lambda x: jaxsvd.eigh(x)[1][0, 0] * jaxsvd.eigh(x)[1][1, 0])(a_)).all()
        # second derivatives of tied eigenvalues: NaN; of the simple ones: exact
        d = H.derivatives(a_, h, 2)
        assert np.isnan(d[2, :2]).all() and np.isfinite(d[2, 2:]).all()


def test_eigh_jnp_route_is_wrong_where_hermitian_is_exact():
    """The motivating case (issue 21): tr(G sqrtm(A)) through an eigh square root at
    a rotated tie -- jnp finite and wrong, jaxsvd.eigh NaN (its cotangent check
    rejects the loss), hermitian.sqrtm exact (scipy Frechet reference)."""
    a, g = spd(TIE, 1), sym(4, 2)
    ref = frechet(sl.sqrtm, a, [g])

    def route(eigh):
        def f(x):
            w, q = eigh(x)
            return jnp.sum(g * ((q * jnp.sqrt(w)[None, :]) @ q.T))
        return f

    assert np.isnan(jax.grad(route(jaxsvd.eigh))(a)).all()
    gr = jax.grad(lambda x: jnp.sum(g * H.sqrtm(x)))(a)
    np.testing.assert_allclose(0.5 * (gr + gr.T), ref.real, atol=1e-12)


# ---------------------------------------------------------------------------
# matrix functions
# ---------------------------------------------------------------------------

FUNCS = [(H.expm, sl.expm, jnp.exp), (H.sqrtm, sl.sqrtm, jnp.sqrt), (H.logm, sl.logm, jnp.log)]


@pytest.mark.parametrize("fns,cplx", [(FUNCS[0], False), (FUNCS[1], False), (FUNCS[2], False), (FUNCS[0], True)],
                         ids=["expm", "sqrtm", "logm", "expm-complex"])
def test_matrix_functions_values_and_frechet_at_ties(fns, cplx):
    F, ref, _ = fns
    h = sym(4, 21, cplx)
    series = jax.jit(lambda a: jet.jet(F, (a,), ([h, jnp.zeros_like(h), jnp.zeros_like(h)],)))
    for a in (spd(TIE, 20, cplx), jnp.asarray(2.0 * np.eye(4, dtype=h.dtype)), spd(SEP + 2, 22, cplx)):
        y0, ys = series(a)
        np.testing.assert_allclose(y0, ref(np.asarray(a)), atol=1e-11)
        # jet orders 1..3 against the corners of the block bidiagonal matrices
        for k in (1, 2, 3):
            np.testing.assert_allclose(ys[k - 1], math.factorial(k) * frechet(ref, a, [h] * k), atol=1e-8)
    np.testing.assert_allclose(jax.jvp(F, (a,), (h,))[1], frechet(ref, a, [h]), atol=1e-10)


@pytest.mark.slow
def test_matrix_function_closed_form_at_cI():
    # f(cI + tE) = sum_k f^(k)(c) t^k E^k / k!
    c, e = 1.7, sym(3, 30)
    K = 4
    _, ys = jax.jit(lambda x: jet.jet(H.sqrtm, (x,), ([e] + [jnp.zeros_like(e)] * (K - 1),)))(c * jnp.eye(3))
    coef = 1.0
    for k in range(1, K + 1):
        coef *= 0.5 - k + 1
        np.testing.assert_allclose(ys[k - 1], coef * c ** (0.5 - k) * np.linalg.matrix_power(np.asarray(e), k),
                                   atol=1e-12 * 10 ** k)
    # Hessian of sum sqrt(w) at 2I (jax #21896: NaN through jnp)
    hv = jax.jit(lambda x: jax.jvp(jax.grad(lambda x: jnp.trace(H.sqrtm(x))), (x,), (e,))[1])(2.0 * jnp.eye(3))
    np.testing.assert_allclose(0.5 * (hv + hv.T), -0.25 * 2.0 ** -1.5 * np.asarray(e), atol=1e-13)


def _mp_sqrtm_grad_fd(a, g, h, dps=60, step="1e-25"):
    """60-digit central difference of <G, D sqrtm(A)[H]> (mpmath eigsy, exact input)."""
    with mpmath.workdps(dps):
        A = mpmath.matrix(np.asarray(a).tolist())
        Hm = mpmath.matrix(np.asarray(h).tolist())
        t = mpmath.mpf(step)

        def val(x):
            w, q = mpmath.eigsy(x)
            s = q * mpmath.diag([mpmath.sqrt(v) for v in w]) * q.T
            return sum(g[i, j] * s[i, j] for i in range(a.shape[0]) for j in range(a.shape[0]))

        return float((val(A + t * Hm) - val(A - t * Hm)) / (2 * t))


@pytest.mark.parametrize("delta", [1e-6, 1e-9, 1e-13])
def test_sqrtm_gradient_at_near_ties_against_mpmath(delta):
    a = spd(np.array([1.0, 1.0 + delta, 2.0, 3.0]), 40)
    g, h = sym(4, 41), sym(4, 42)
    gr = jax.grad(lambda x: jnp.sum(g * H.sqrtm(x)))(a)
    got = float(jnp.sum(gr * h))
    ref = _mp_sqrtm_grad_fd(a, np.asarray(g), h)
    assert abs(got - ref) <= 1e-13 * max(1.0, abs(ref))


def test_matrix_function_nan_policy():
    # sqrt / log at a zero eigenvalue: value fine, derivatives NaN; negative eigenvalue: NaN value
    a0 = spd(np.array([0.0, 1.0, 2.0]), 50)
    h = sym(3, 51)
    assert np.isfinite(H.sqrtm(a0)).all()
    assert np.isnan(jax.jvp(H.sqrtm, (a0,), (h,))[1]).all()
    assert np.isnan(H.sqrtm(spd(np.array([-1.0, 1.0, 2.0]), 52))).all()
    assert np.isnan(H.logm(spd(np.array([-1.0, 1.0, 2.0]), 52))).all()
    # NaN / inf input: NaN out
    bad = jnp.asarray(np.array([[1.0, np.inf], [np.inf, 1.0]]))
    assert np.isnan(H.expm(bad)).all() and np.isnan(jaxsvd.eigvalsh(bad)).all()
    assert np.isnan(jaxsvd.eigh(bad.at[0, 0].set(np.nan))[0]).all()


def test_user_function_params_custom_jvp_and_powm():
    F = H.matrix_function(lambda w, beta: jax.nn.softplus(beta * w) / beta)
    a, h = spd(TIE - 2.0, 60), sym(4, 61)
    beta = 1.3
    d1 = jax.jvp(lambda x: F(x, beta), (a,), (h,))[1]
    # Daleckii--Krein in numpy at the exact tie (the rotated matrix's eigenbasis)
    w, q = np.linalg.eigh(np.asarray(a))
    w = np.round(w, 12)
    f = lambda x: np.log1p(np.exp(beta * x)) / beta  # noqa: E731
    fp = lambda x: 1 / (1 + np.exp(-beta * x))  # noqa: E731
    dd = np.where(np.abs(w[:, None] - w[None, :]) < 1e-9, fp(w)[:, None] + 0 * w,
                  (f(w)[:, None] - f(w)[None, :]) / np.where(w[:, None] == w[None, :], 1, w[:, None] - w[None, :]))
    np.testing.assert_allclose(d1, q @ (dd * (q.T @ np.asarray(h) @ q)) @ q.T, atol=1e-12)
    # derivative in the parameter p of powm: d/dp A^p = A^p log A
    a2 = spd(TIE, 62)
    dp = jax.jvp(lambda p: H.powm(a2, p), (1.5,), (1.0,))[1]
    np.testing.assert_allclose(dp, sl.fractional_matrix_power(np.asarray(a2), 1.5) @ sl.logm(np.asarray(a2)),
                               atol=1e-12)


def test_logdet_and_spectral_function_at_ties():
    a, h = spd(TIE, 70), sym(4, 71)
    np.testing.assert_allclose(H.logdet(a), np.sum(np.log(TIE)), atol=1e-13)
    np.testing.assert_allclose(jax.grad(H.logdet)(a), np.linalg.inv(np.asarray(a)), atol=1e-12)
    # D^2 log det [H, H] = -tr(A^-1 H A^-1 H), and at 2I the closed form Hessian of tr(A^3)
    ai = np.linalg.inv(np.asarray(a))
    hv = jax.jvp(jax.grad(H.logdet), (a,), (h,))[1]
    np.testing.assert_allclose(jnp.sum(hv * h), -np.trace(ai @ h @ ai @ h), atol=1e-12)
    F = H.spectral_function(lambda w: jnp.sum(w ** 3))
    for x in (a, 2.0 * jnp.eye(4)):
        hv = jax.jvp(jax.grad(F), (x,), (h,))[1]
        np.testing.assert_allclose(jnp.sum(hv * h), 6 * np.trace(np.asarray(x) @ h @ h), atol=1e-11)
    np.testing.assert_allclose(F(a), np.sum(TIE ** 3), atol=1e-12)


# ---------------------------------------------------------------------------
# projectors
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["SA", "LA"])
def test_projector_exact_through_ties_nan_at_the_cut(which):
    a, h = spd(TIE, 80), sym(4, 81)
    k = 2 if which == "SA" else 2  # SA: the tied pair; LA: {2, 3}, the tie below the cut
    p = H.projector(a, k, which)
    w, q = np.linalg.eigh(np.asarray(a))
    cols = slice(0, 2) if which == "SA" else slice(2, 4)
    np.testing.assert_allclose(p, q[:, cols] @ q[:, cols].T, atol=1e-14)
    ref1 = dproj_first(a, h, 2) * (1 if which == "SA" else -1)
    np.testing.assert_allclose(jax.jvp(lambda x: H.projector(x, k, which), (a,), (h,))[1], ref1, atol=1e-13)
    # orders 2, 3: P = (I - sign(A - mu I)) / 2 with mu = 1.5 in the gap, on block matrices (scipy signm)
    sgn = lambda x: sl.signm(x - 1.5 * np.eye(x.shape[0]))  # noqa: E731
    _, ys = jet.jet(lambda x: H.projector(x, k, which), (a,), ([h, jnp.zeros_like(h), jnp.zeros_like(h)],))
    for kk in (1, 2, 3):
        ref = math.factorial(kk) * frechet(sgn, a, [h] * kk) * (-0.5 if which == "SA" else 0.5)
        np.testing.assert_allclose(ys[kk - 1], ref, atol=1e-9)
    # a tie at the cut: not differentiable
    cut = 1 if which == "SA" else 3
    assert np.isnan(jax.jvp(lambda x: H.projector(x, cut, which), (a,), (h,))[1]).all()
    np.testing.assert_allclose(H.projector(a, 4, which), np.eye(4), atol=1e-15)


# ---------------------------------------------------------------------------
# transforms: jit, vmap over mixed tie / no tie batches, jet of grad, float32
# ---------------------------------------------------------------------------


@pytest.mark.slow
def test_jit_vmap_mixed_batch_and_jet_of_grad():
    batch = jnp.stack([spd(TIE, 90), spd(SEP + 2, 91), jnp.diag(jnp.asarray(TIE))])
    g, h = sym(4, 92), sym(4, 93)
    loss = lambda x: jnp.sum(g * H.sqrtm(x))  # noqa: E731
    grads = jax.jit(jax.vmap(jax.grad(loss)))(batch)
    for i in range(3):
        ref = frechet(sl.sqrtm, batch[i], [g]).real
        np.testing.assert_allclose(0.5 * (grads[i] + grads[i].T), ref, atol=1e-11)
    np.testing.assert_allclose(jax.jit(H.sqrtm)(batch), jax.vmap(H.sqrtm)(batch), atol=1e-15)
    # jet of grad: the series of grad L along a + t h is D^(k+1) sqrtm[G, h, .., h]
    _, ys = jax.jit(lambda x: jet.jet(jax.grad(loss), (x,), ([h, jnp.zeros_like(h)],)))(batch[0])
    for k, y in enumerate(ys, start=1):
        # corners with G in each position, summed (symmetric multilinear form)
        es = [[h] * j + [g] + [h] * (k - j) for j in range(k + 1)]
        ref = sum(frechet(sl.sqrtm, batch[0], e) for e in es).real * math.factorial(k)
        np.testing.assert_allclose(0.5 * (y + y.T), ref, atol=1e-9)
    # eigh under jit and vmap: the same as eager, per matrix; the cotangent check per matrix
    w, q = jax.jit(jax.vmap(jaxsvd.eigh))(batch)
    np.testing.assert_array_equal(w, jnp.linalg.eigh(batch)[0])
    ploss = lambda x: jnp.sum(g * (jaxsvd.eigh(x)[1][:, :2] @ jaxsvd.eigh(x)[1][:, :2].T))  # noqa: E731
    pg = jax.jit(jax.vmap(jax.grad(ploss)))(batch)
    for i in range(3):
        np.testing.assert_allclose(0.5 * (pg[i] + pg[i].T), dproj_first(batch[i], g, 2), atol=1e-12)


def test_float32():
    a = spd(TIE, 100).astype(jnp.float32)
    h = sym(4, 101).astype(jnp.float32)
    d = jax.jvp(H.expm, (a,), (h,))[1]
    assert d.dtype == jnp.float32
    np.testing.assert_allclose(d, frechet(sl.expm, np.asarray(a, np.float64), [np.asarray(h, np.float64)]),
                               rtol=2e-4, atol=2e-4)
    w = jaxsvd.eigvalsh(a)
    assert w.dtype == jnp.float32
    gw = jax.grad(lambda x: jnp.sum(jaxsvd.eigvalsh(x) ** 2))(a)
    np.testing.assert_allclose(gw, 2 * np.asarray(a), atol=1e-4)


# ---------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------


def test_bad_input():
    a = spd(SEP, 110)
    with pytest.raises(ValueError, match="square"):
        jaxsvd.eigh(jnp.ones((3, 4)))
    with pytest.raises(ValueError, match="at least 2"):
        H.sqrtm(jnp.ones(3))
    with pytest.raises(ValueError, match="UPLO"):
        jaxsvd.eigh(a, UPLO="X")
    with pytest.raises(ValueError, match="k=0"):
        H.projector(a, 0)
    with pytest.raises(ValueError, match="k=5"):
        H.projector(a, 5)
    with pytest.raises(TypeError, match="k"):
        H.projector(a, 1.5)
    with pytest.raises(ValueError, match="which"):
        H.projector(a, 1, "SM")
    with pytest.raises(ValueError, match="same shape"):
        H.matrix_function(lambda w: jnp.sum(w))(a)
    with pytest.raises(ValueError, match="shape of a"):
        H.derivatives(a, jnp.ones((3, 3)), 2)
    # order goes through the shared integer check, as in jaxsvd.derivatives
    with pytest.raises(TypeError, match="order"):
        H.derivatives(a, a, 2.0)
    with pytest.raises(ValueError, match="order"):
        H.derivatives(a, a, -1)
    np.testing.assert_array_equal(H.derivatives(a, a, np.int64(2)), H.derivatives(a, a, 2))
    # a non-Hermitian direction is symmetrised
    n = jnp.asarray(rng(111).standard_normal((4, 4)))
    np.testing.assert_allclose(jax.jvp(H.expm, (a,), (n,))[1], jax.jvp(H.expm, (a,), (0.5 * (n + n.T),))[1],
                               atol=1e-14)


# ---------------------------------------------------------------------------
# fidelity, the generalized problem
# ---------------------------------------------------------------------------


def test_fidelity_at_the_maximally_mixed_state_and_eigh_generalized():
    def dm(seed):
        x = rng(seed).standard_normal((4, 4))
        x = x @ x.T + 0.1 * np.eye(4)
        return x / np.trace(x)

    def f_ref(r, s):  # scipy square roots (Schur), never an eigh
        q = sl.sqrtm(r)
        return np.trace(sl.sqrtm(q @ s @ q)).real ** 2

    rho, sig, e = np.eye(4) / 4, dm(120), np.asarray(sym(4, 121))
    np.testing.assert_allclose(H.fidelity(jnp.asarray(rho), jnp.asarray(sig)), f_ref(rho, sig), atol=1e-14)
    g = jax.grad(H.fidelity)(jnp.asarray(rho), jnp.asarray(sig))
    t = 1e-5
    fd = (f_ref(rho + t * e, sig) - f_ref(rho - t * e, sig)) / (2 * t)
    np.testing.assert_allclose(jnp.sum(g * e), fd, atol=1e-8)
    # a x = w b x: values as scipy's; d w_k = x_k^T da x_k (b fixed)
    a, b = jnp.asarray(dm(122)), jnp.asarray(4 * dm(123))
    w, x = H.eigh_generalized(a, b)
    w0, x0 = sl.eigh(np.asarray(a), np.asarray(b))
    np.testing.assert_allclose(w, w0, atol=1e-13)
    np.testing.assert_allclose(x.T @ b @ x, np.eye(4), atol=1e-13)
    dw = jax.jvp(lambda y: H.eigh_generalized(y, b)[0], (a,), (jnp.asarray(e),))[1]
    np.testing.assert_allclose(dw, np.einsum("ik,ij,jk->k", x0, e, x0), atol=1e-12)
    assert np.isnan(H.eigh_generalized(a, -b)[0]).all()


def test_branches_through_an_exact_tie_against_mpmath():
    a, h = np.diag(TIE), np.asarray(sym(4, 130))
    got = H.branches(jnp.asarray(a), jnp.asarray(h), 3)
    with mpmath.workdps(50):
        am, hm = mpmath.matrix(a.tolist()), mpmath.matrix(h.tolist())

        def ev(x, k):  # the sorted eigenvalues for x > 0 are the analytic branches
            return sorted(mpmath.eigsy(am + x * hm)[0])[k]

        ref = np.array([[float(mpmath.diff(lambda x, k=k: ev(x, k), 0, j, direction=1, h=mpmath.mpf("1e-12")))
                         for k in range(4)] for j in range(4)])
    np.testing.assert_allclose(got, ref, atol=1e-10)
    np.testing.assert_allclose(got[:, 2:], H.derivatives(jnp.asarray(a), jnp.asarray(h), 3)[:, 2:], atol=1e-12)


@pytest.mark.parametrize("cplx", [False, True])
@pytest.mark.parametrize("uplo", ["L", "U"])
def test_eigh_unsymmetrized_input_derivative_is_the_triangles(cplx, uplo):
    """symmetrize_input=False: LAPACK reads one triangle, so a tangent in the other
    triangle changes nothing, and the derivative is that of the Hermitian matrix the
    read triangle stands for.  Reference: central differences of numpy's eigh of
    that matrix built by hand, and the resolvent formula (dproj_first)."""
    x = rng(31).standard_normal((4, 4)) + (1j * rng(32).standard_normal((4, 4)) if cplx else 0)
    d = rng(33).standard_normal((4, 4)) + (1j * rng(34).standard_normal((4, 4)) if cplx else 0)
    a, h = jnp.asarray(x + 4 * np.diag(np.arange(4.0))), jnp.asarray(d)  # not Hermitian

    def built(m):  # the Hermitian matrix of the read triangle, in numpy
        m = np.asarray(m)
        t = np.tril(m, -1) if uplo == "L" else np.triu(m, 1)
        return t + t.conj().T + np.diag(np.real(np.diag(m)))

    f = lambda m: jaxsvd.eigh(m, UPLO=uplo, symmetrize_input=False)
    (w, q), (dw, dq) = jax.jvp(f, (a,), (h,))
    np.testing.assert_array_equal(w, jnp.linalg.eigh(a, UPLO=uplo, symmetrize_input=False)[0])
    np.testing.assert_allclose(w, np.linalg.eigvalsh(built(a)), rtol=1e-13)
    eps = 1e-6
    fd = (np.linalg.eigvalsh(built(a + eps * h)) - np.linalg.eigvalsh(built(a - eps * h))) / (2 * eps)
    np.testing.assert_allclose(dw, fd, atol=1e-8)
    dp = dq[:, :2] @ jnp.conj(q[:, :2]).T
    dp = dp + jnp.conj(dp).T
    np.testing.assert_allclose(dp, dproj_first(built(a), built(h), 2), atol=1e-12)
    other = jnp.asarray(np.triu(d, 1) if uplo == "L" else np.tril(d, -1))  # the ignored triangle
    np.testing.assert_array_equal(jax.jvp(lambda m: jaxsvd.eigvalsh(m, uplo, symmetrize_input=False), (a,), (other,))[1], 0)


def test_fidelity_mixed_precision_is_computed_in_the_common_dtype():
    """float32 rho with float64 sigma: the result is float64, and so is the work
    (it was sqrt(rho) in float32, an error ~1e-8).  Reference: the commuting
    closed form (sum_i sqrt(p_i q_i))**2 in numpy float64."""
    p = jnp.asarray([0.2, 0.3, 0.5], jnp.float32)
    q = jnp.asarray([0.6, 0.3, 0.1], jnp.float64)
    f = H.fidelity(jnp.diag(p), jnp.diag(q))
    assert f.dtype == jnp.float64
    ref = np.sum(np.sqrt(np.asarray(p, np.float64) * np.asarray(q))) ** 2
    np.testing.assert_allclose(f, ref, rtol=1e-14)
    np.testing.assert_allclose(H.fidelity(jnp.diag(q), jnp.diag(p)), ref, rtol=1e-14)


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
def test_half_precision_error_names_the_eigensolver(dtype):
    """The TypeError for float16 / bfloat16 names eigh (it said "no SVD ... as
    jnp.linalg.svd requires" for eigh and every hermitian function)."""
    a = jnp.eye(2, dtype=dtype)
    for fn in (jaxsvd.eigh, jaxsvd.eigvalsh, H.sqrtm, lambda x: H.projector(x, 1)):
        with pytest.raises(TypeError, match="Hermitian eigensolver.*jnp.linalg.eigh"):
            fn(a)


def test_branches_promotes_the_direction():
    """A complex direction with a real a raises (branches is real-only), instead of
    silently dropping h's imaginary part (it returned slope 0 at I along
    [[0, i], [-i, 0]], whose eigenvalues are 1 -+ t); a float64 h with a float32 a
    gives float64 (closed form 1 -+ sqrt(5) t / 3)."""
    with pytest.raises(NotImplementedError, match="real"):
        H.branches(jnp.eye(2), jnp.array([[0.0, 1j], [-1j, 0.0]]), 1)
    h = jnp.array([[1.0, 2.0], [2.0, -1.0]], jnp.float64) / 3
    b = H.branches(jnp.eye(2, dtype=jnp.float32), h, 1)
    assert b.dtype == jnp.float64
    np.testing.assert_allclose(b[1], [-np.sqrt(5) / 3, np.sqrt(5) / 3], rtol=1e-14)


def test_eigh_reverse_mode_at_a_tie_what_the_docs_promise():
    """docs/hermitian.md and eigh's docstring: ||Q diag(w) Q^T||_F^2 (= ||A||_F^2,
    gradient 2A) is exact at a rotated tie; the linear read-out
    sum(T * Q diag(w) Q^T) is NaN there (the docs listed it as exact), and
    hermitian.matrix_function gives its gradient, sym(T)."""
    a = spd(TIE, 120)
    t = jnp.asarray(rng(121).standard_normal((4, 4)))

    def norm2(x):
        w, q = jaxsvd.eigh(x)
        return jnp.sum(((q * w[None, :]) @ q.T) ** 2)

    def readout(x):
        w, q = jaxsvd.eigh(x)
        return jnp.sum(t * ((q * w[None, :]) @ q.T))

    np.testing.assert_allclose(jax.grad(norm2)(a), 2 * a, atol=1e-13)
    assert np.all(np.isnan(jax.grad(readout)(a)))
    ident = H.matrix_function(lambda w: w)
    np.testing.assert_allclose(jax.grad(lambda x: jnp.sum(t * ident(x)))(a), 0.5 * (t + t.T), atol=1e-13)
