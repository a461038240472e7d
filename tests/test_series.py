"""Taylor coefficients of the SVD against independent references.

References: nested float64 jax.jvp through jnp.linalg.svd (orders <= 5), the
mpmath Rayleigh-Schroedinger series of the block operator (orders <= 10, also
on quadratic paths), the 2x2 closed form evaluated in mpmath, diagonal
matrices, and gauge-invariant identities for the vectors.
"""

import math

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest
from _ref_mpmath import sigma_series
from helpers import (
    SHAPES,
    assert_fd_close,
    gaussian,
    max_rel_err,
    nested_jvp_derivatives,
    richardson,
    with_singular_values,
)
from jax.experimental import jet

import jaxsvd

# matrices with relative gaps >= 0.05 (issue 2's accuracy floor applies there)
SPECTRA = {(5, 3): [3.0, 2.0, 1.0], (3, 5): [2.5, 1.5, 0.5], (4, 4): [4.0, 3.0, 2.0, 1.0],
           (6, 10): [5.0, 4.0, 3.2, 2.5, 1.6, 1.0]}


@pytest.mark.parametrize("shape", SHAPES)
def test_derivatives_vs_nested_jvp(shape):
    a, h = gaussian(shape, 10), gaussian(shape, 11)
    ref = nested_jvp_derivatives(jnp.linalg.svdvals, a, [h], 5)
    got = jaxsvd.derivatives(a, h, 5)
    for j in range(6):
        assert max_rel_err(got[j], ref[j]) < 1e-9, j


@pytest.mark.parametrize("shape", list(SPECTRA))
def test_derivatives_vs_mpmath_order_10(shape):
    m, n = shape
    a = with_singular_values(m, n, SPECTRA[shape], seed=3)
    h = gaussian(shape, 4)
    got = np.asarray(jaxsvd.derivatives(a, h, 10))
    r = min(m, n)
    for k in range(r):
        lam = sigma_series(np.asarray(a), [np.asarray(h)], k, 10, dps=40)
        ref = np.array([math.factorial(j) * x for j, x in enumerate(lam)])
        scale = np.abs(ref) + 1e-300
        err = np.abs(got[:, k] - ref) / np.maximum(scale, np.abs(ref).max() * 1e-12)
        assert err[:5].max() <= 1e-9, (k, err)
        assert err.max() <= 1e-6, (k, err)


@pytest.mark.parametrize("shape", [(5, 3), (3, 5), (4, 4)])
def test_jet_quadratic_path_vs_mpmath(shape):
    """Two nonzero jet terms: A(t) = A + t H1 + t^2/2 H2."""
    m, n = shape
    a = with_singular_values(m, n, SPECTRA[shape], seed=5)
    h1, h2 = gaussian(shape, 6), gaussian(shape, 7)
    K = 8
    s0, terms = jet.jet(jaxsvd.svdvals, (a,), ([h1, h2] + [jnp.zeros_like(a)] * (K - 2),))
    got = np.stack([np.asarray(s0)] + [np.asarray(t) for t in terms])
    for k in range(min(m, n)):
        lam = sigma_series(np.asarray(a), [np.asarray(h1), np.asarray(h2) / 2], k, K, dps=40)
        ref = np.array([math.factorial(j) * x for j, x in enumerate(lam)])
        assert max_rel_err(got[:5, k], ref[:5]) < 1e-9
        assert max_rel_err(got[:, k], ref) < 1e-6


def test_2x2_closed_form_in_mpmath():
    """sigma_{1,2} = (sqrt((a+d)^2 + (b-c)^2) +- sqrt((a-d)^2 + (b+c)^2)) / 2."""
    a = np.array([[1.3, -0.4], [0.7, 0.2]])
    h = np.array([[0.3, 0.9], [-0.5, 0.4]])
    got = np.asarray(jaxsvd.derivatives(jnp.asarray(a), jnp.asarray(h), 7))
    with mp.workdps(40):
        def sig(t, sign):
            p, q = a[0, 0] + t * h[0, 0], a[0, 1] + t * h[0, 1]
            r_, s_ = a[1, 0] + t * h[1, 0], a[1, 1] + t * h[1, 1]
            return (mp.sqrt((p + s_) ** 2 + (q - r_) ** 2) + sign * mp.sqrt((p - s_) ** 2 + (q + r_) ** 2)) / 2
        for k, sign in ((0, 1), (1, -1)):
            ref = [float(c) * math.factorial(j) for j, c in enumerate(mp.taylor(lambda t: sig(t, sign), 0, 7))]
            assert max_rel_err(got[:, k], ref) < 1e-9


def test_diagonal_matrix_closed_form():
    """diag(d) + t diag(e): sigma_i(t) = |d_i + t e_i| (sorted), all higher derivatives 0;
    an off-diagonal direction E_01 on diag(d0, d1): sigma(t)^2 solve a 2x2 problem,
    sigma_1(t) = sqrt((d0^2 + d1^2 + t^2 + sqrt((d0^2+d1^2+t^2)^2 - 4 d0^2 d1^2)) / 2)."""
    d = jnp.array([3.0, 2.0, 0.5])
    e = jnp.array([0.4, -0.3, 0.2])
    got = jaxsvd.derivatives(jnp.diag(d), jnp.diag(e), 5)
    np.testing.assert_allclose(got[0], d, rtol=1e-15)
    np.testing.assert_allclose(got[1], e, rtol=1e-14)
    np.testing.assert_allclose(got[2:], 0.0, atol=1e-13)
    a = jnp.diag(jnp.array([2.0, 1.0]))
    h = jnp.array([[0.0, 1.0], [0.0, 0.0]])
    got = jaxsvd.derivatives(a, h, 6)
    with mp.workdps(40):
        def s1(t):
            q = 4 + 1 + t ** 2
            return mp.sqrt((q + mp.sqrt(q ** 2 - 16)) / 2)
        ref = [float(c) * math.factorial(j) for j, c in enumerate(mp.taylor(s1, 0, 6))]
    assert max_rel_err(got[:, 0], ref) < 1e-12


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("full", [False, True])
def test_vector_series_is_an_orthogonal_decomposition(shape, full):
    """Gauge-invariant checks of jet through jaxsvd.svd: the series of U(t), V(t)
    stay orthonormal, reproduce A(t) = U(t) Sigma(t) V(t)^T order by order, and
    keep the documented gauge (zero diagonal of U^T U_n's skew part)."""
    m, n = shape
    a = with_singular_values(m, n, SPECTRA[shape], seed=8)
    h1, h2 = gaussian(shape, 9), gaussian(shape, 12)
    K = 4
    (U, S, Vt), (us, ss, vts) = jet.jet(lambda x: tuple(jaxsvd.svd(x, full_matrices=full)), (a,),
                                        ([h1, h2, jnp.zeros_like(a), jnp.zeros_like(a)],))
    # unscaled coefficients
    f = [1.0 / math.factorial(j) for j in range(K + 1)]
    Us = [U] + [u * f[j + 1] for j, u in enumerate(us)]
    Ss = [S] + [s * f[j + 1] for j, s in enumerate(ss)]
    Vs = [Vt] + [v * f[j + 1] for j, v in enumerate(vts)]
    As = [a, h1, h2 / 2] + [jnp.zeros_like(a)] * (K - 2)
    r = min(m, n)

    def smat(s):
        out = jnp.zeros((Us[0].shape[-1], Vs[0].shape[-2]))
        return out.at[jnp.arange(r), jnp.arange(r)].set(s)

    for order in range(1, K + 1):
        orth_u = sum(Us[i].T @ Us[order - i] for i in range(order + 1))
        orth_v = sum(Vs[i] @ Vs[order - i].T for i in range(order + 1))
        recon = sum(Us[i] @ smat(Ss[j]) @ Vs[order - i - j]
                    for i in range(order + 1) for j in range(order + 1 - i))
        assert float(jnp.abs(orth_u).max()) < 1e-11
        assert float(jnp.abs(orth_v).max()) < 1e-11
        assert float(jnp.abs(recon - As[order]).max()) < 1e-11
        gauge_u = Us[0].T @ Us[order]
        assert float(jnp.abs(jnp.diagonal(gauge_u - gauge_u.T)).max()) < 1e-12
        if full and m > n:  # no rotation inside the null space
            g = gauge_u[r:, r:]
            assert float(jnp.abs(g - g.T).max()) < 1e-11


def test_thin_vectors_vs_nested_jvp_through_jnp():
    a, h = gaussian((5, 3), 20), gaussian((5, 3), 21)
    for idx in (0, 2):  # U, Vh
        ref = nested_jvp_derivatives(lambda x: jnp.linalg.svd(x, full_matrices=False)[idx], a, [h], 3)
        got = nested_jvp_derivatives(lambda x: jaxsvd.svd(x, full_matrices=False)[idx], a, [h], 3)
        jt = jet.jet(lambda x: jaxsvd.svd(x, full_matrices=False)[idx], (a,), ([h, 0 * h, 0 * h],))
        assert max_rel_err(got, ref) < 1e-10
        for j in range(3):
            assert max_rel_err(jt[1][j], ref[j + 1]) < 1e-10


@pytest.mark.parametrize("scale", [1e-20, 1e20])
def test_scale_invariance(scale):
    """sigma(c A) = c sigma(A): D^j sigma(cA)[cH] = c D^j sigma(A)[H], also in float32."""
    a, h = gaussian((5, 3), 30), gaussian((5, 3), 31)
    base = jaxsvd.derivatives(a, h, 6)
    scaled = jaxsvd.derivatives(a * scale, h * scale, 6) / scale
    assert max_rel_err(scaled, base) < 1e-12
    a32, h32 = a.astype(jnp.float32), h.astype(jnp.float32)
    s32 = jnp.float32(scale)
    base32 = jaxsvd.derivatives(a32, h32, 3)
    got32 = jaxsvd.derivatives(a32 * s32, h32 * s32, 3) / s32
    assert bool(jnp.isfinite(got32).all())
    assert max_rel_err(got32, base32) < 1e-5
    hess = jax.hessian(lambda x: jnp.sum(jaxsvd.svdvals(x)))(a32 * s32)
    assert bool(jnp.isfinite(hess).all())  # jnp.linalg.svd: NaN here (jax #40185)


def test_float32_accuracy():
    a, h = gaussian((6, 10), 40, jnp.float32), gaussian((6, 10), 41, jnp.float32)
    got = jaxsvd.derivatives(a, h, 4)
    assert got.dtype == jnp.float32
    ref = nested_jvp_derivatives(jnp.linalg.svdvals, a.astype(jnp.float64), [h.astype(jnp.float64)], 4)
    assert max_rel_err(got, ref) < 1e-4


def test_order_loop_compiles_once_per_shape():
    """Orders >= 3 run as one loop body (jaxsvd/_series.py, _scan_orders): the
    lowered program holds the same matrix products at order 6 and at order 12,
    for the values (derivatives) and for the vectors (jet of svd)."""
    a, h = gaussian((3, 4), 1), gaussian((3, 4), 2)

    def dots(f):
        return jax.jit(f).lower(a, h).as_text().count("dot_general")

    def jet_svd(K):
        return lambda x, y: jet.jet(lambda z: jaxsvd.svd(z, full_matrices=False), (x,), ([y] * K,))[1]

    assert dots(lambda x, y: jaxsvd.derivatives(x, y, 6)) == dots(lambda x, y: jaxsvd.derivatives(x, y, 12))
    assert dots(jet_svd(4)) == dots(jet_svd(9))


def test_grad_through_the_order_loop():
    """Reverse mode through the loop (order 6: vectors to order 3 in the loop,
    then the Rayleigh values) against central finite differences."""
    a = with_singular_values(4, 6, [4.0, 3.0, 2.0, 1.0], seed=5)
    h, d = 0.3 * gaussian((4, 6), 6), gaussian((4, 6), 7)
    w = jnp.array([1.0, -0.5, 0.25, 2.0])

    def f(x):
        return jnp.sum(jaxsvd.derivatives(x, h, 6)[6] * w)

    g = jax.jit(jax.grad(f))(a)
    # Richardson-extrapolated central differences (a plain one at eps = 1e-5 had a
    # truncation error ~2e-7, within 10x of the tolerance)
    jf = jax.jit(f)
    fd = richardson(lambda e: jf(a + e * d), 1e-3)
    assert_fd_close(jnp.vdot(g, d), fd, 2e-6, floor=1.0)
