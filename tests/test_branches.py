"""jaxsvd.branches: analytic branches of the singular values through ties, zeros
and near ties, and the spectral-function jet built on them.

References (independent of jaxsvd): tests/_ref_branches.py (mpmath eigenvalues
of the block operator on a circle in the complex plane, Cauchy integral),
closed forms for diagonal paths, exact polynomial invariants; ``derivatives``
only as a cross-check where the spectrum is simple.  Cases are batched by shape
so that each shape compiles once (the file's runtime budget is ~40 s).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental import jet

import jaxsvd
from tests import _ref_branches as RB
from tests.helpers import assert_fd_close, gaussian, orthogonal, richardson

RHO = 0.02  # radius of the Cauchy circle: well inside every case's convergence disc


def _diag_branches(d, hd, order):
    """Closed form: a = diag(d), h = diag(hd) (rectangular diagonal): the branches are
    d_i + x hd_i, signed so that the first non-zero coefficient is positive, sorted
    lexicographically (descending)."""
    cols = []
    for di, hi in zip(d, hd, strict=True):
        c = [di, hi] + [0.0] * (order - 1)
        if di == 0 and hi < 0:
            c = [-x for x in c]
        cols.append(c)
    cols.sort(reverse=True)
    return np.array(cols).T


def _rect_diag(m, n, d):
    a = np.zeros((m, n))
    a[np.arange(len(d)), np.arange(len(d))] = d
    return a


def _square_cases():
    rng = np.random.default_rng(7)
    q = orthogonal(3, seed=3)
    h = rng.standard_normal((3, 3))
    # a direction that keeps the tie of diag(3, 1, 1) at first order (the cluster
    # block of H is I); the coupling to sigma = 3 splits it at second order (level 2)
    h_tie = np.zeros((3, 3))
    h_tie[1, 1] = h_tie[2, 2] = 1.0
    h_tie[0, 1], h_tie[1, 0] = 1.0, 0.5
    # a double zero whose first-order block [[0, 1], [0, 0]] is itself singular:
    # one zero branch leaves at order 1, the other at order 2 (a zero group at level 1)
    h_deep = rng.standard_normal((3, 3))
    h_deep[1:, 1:] = [[0.0, 1.0], [0.0, 0.0]]
    return {
        "identity": (np.eye(3), h),
        "rotation": (q, rng.standard_normal((3, 3))),
        "tie_kept_at_first_order": (np.diag([3.0, 1.0, 1.0]), h_tie),
        "deep_zero": (np.diag([1.0, 0.0, 0.0]), h_deep),
        "diagonal": (np.diag([2.0, 2.0, 0.0]), np.diag([0.5, -1.0, -2.0])),
        "generic": (rng.standard_normal((3, 3)), rng.standard_normal((3, 3))),
        "nan": (np.full((3, 3), np.nan), h),
    }


SQUARE = _square_cases()
ORDER = 3


# jit of vmap over a batch that mixes ties, zeros, a generic matrix and NaN
BATCHED = jax.jit(jax.vmap(lambda x, y: jaxsvd.branches(x, y, ORDER), out_axes=1))


@pytest.fixture(scope="module")
def square():
    a = jnp.asarray(np.stack([v[0] for v in SQUARE.values()]))
    h = jnp.asarray(np.stack([v[1] for v in SQUARE.values()]))
    return a, h, np.asarray(BATCHED(a, h))


@pytest.mark.parametrize("name", [k for k in SQUARE if k not in ("diagonal", "nan")])
def test_square_against_mpmath(square, name):
    _, _, got = square
    i = list(SQUARE).index(name)
    a, h = SQUARE[name]
    ref = RB.sv_branches(a, h, ORDER, RHO)
    np.testing.assert_allclose(got[:, i], ref, rtol=1e-10, atol=1e-10 * np.abs(ref).max())


def test_square_closed_forms_and_cross_checks(square):
    a, h, got = square
    names = list(SQUARE)
    d = got[:, names.index("diagonal")]
    np.testing.assert_allclose(d, _diag_branches([2.0, 2.0, 0.0], [0.5, -1.0, -2.0], ORDER), atol=1e-14)
    # the direction that keeps the tie: equal first derivatives, split at the second
    t = got[:, names.index("tie_kept_at_first_order")]
    assert t[1, 1] == pytest.approx(t[1, 2], abs=1e-13) and t[2, 1] > t[2, 2] + 0.1
    # NaN in, NaN out -- and only there
    assert np.all(np.isnan(got[:, names.index("nan")]))
    assert np.all(np.isfinite(np.delete(got, names.index("nan"), axis=1)))


def test_float32(square):
    a, h, got = square
    g32 = BATCHED(a.astype(jnp.float32), h.astype(jnp.float32))
    assert g32.dtype == jnp.float32
    keep = [i for i, k in enumerate(SQUARE) if k != "nan"]
    scale = np.abs(got[:, keep]).max(axis=1, keepdims=True)
    err = np.abs(np.asarray(g32, np.float64)[:, keep] - got[:, keep]) / scale
    # float32 (no near tie here, so the merge tolerance 3.5e-4 does not enter):
    # measured 8e-6 of each row's scale at orders 1..3
    assert err.max() <= 1e-4, err.max(axis=1)


RECT = {
    "rank1": (np.outer([1.0, 2.0, 2.0], [1.0, -1.0]) / 3, gaussian((3, 2), seed=11)),
    "zero": (_rect_diag(3, 2, [2.0, 0.0]), gaussian((3, 2), seed=12)),
    "diagonal": (_rect_diag(3, 2, [0.0, 0.0]), _rect_diag(3, 2, [1.5, -0.5])),
}


def test_tall_and_wide_zero_singular_values():
    # unbatched 3 x 2, order 3: the program the spectral jet tests below reuse
    for name, (x, y) in RECT.items():
        tall = np.asarray(jaxsvd.branches(x, y, ORDER))
        wide = np.asarray(jaxsvd.branches(x.T, y.T, ORDER))
        np.testing.assert_allclose(wide, tall, rtol=1e-12, atol=1e-12)
        if name == "diagonal":
            ref = _diag_branches([0.0, 0.0], [1.5, -0.5], ORDER)
        else:
            ref = RB.sv_branches(x, np.asarray(y), ORDER, RHO)
        np.testing.assert_allclose(tall, ref, rtol=1e-10, atol=1e-10 * np.abs(ref).max())
        if name == "rank1":  # sigma(x) = |b(x)|: the signed branch through zero, positive first
            assert abs(tall[0, 1]) <= 1e-15 and tall[1, 1] > 0


def test_rotated_ties_and_near_tie():
    # Q diag(3, 2, 1, 1) P^T (a tie resolved at level 1), and a near tie with gap 1e-10:
    # merged, i.e. the branches of the exactly tied neighbour (its symmetric
    # functions are within ~1e-10 of the true ones, test_spectral_jet_near_tie)
    q, p = orthogonal(4, seed=21), orthogonal(4, seed=22)
    a1 = (q * np.array([3.0, 2.0, 1.0, 1.0])) @ p.T
    a2 = (q * np.array([2.0, 1.0 + 1e-10, 1.0, 0.5])) @ p.T
    a2_tied = (q * np.array([2.0, 1.0 + 5e-11, 1.0 + 5e-11, 0.5])) @ p.T
    h = gaussian((2, 4, 4), seed=23)
    got = np.stack([np.asarray(jaxsvd.branches(x, y, 2)) for x, y in zip((a1, a2), h, strict=True)], axis=1)
    ref1 = RB.sv_branches(a1, np.asarray(h[0]), 2, RHO)
    ref2 = RB.sv_branches(a2_tied, np.asarray(h[1]), 2, RHO)
    np.testing.assert_allclose(got[:, 0], ref1, rtol=1e-10, atol=1e-10 * np.abs(ref1).max())
    np.testing.assert_allclose(got[1:, 1], ref2[1:], rtol=1e-8, atol=1e-8 * np.abs(ref2).max())
    np.testing.assert_allclose(got[0, 1], np.linalg.svd(a2, compute_uv=False), rtol=1e-15)


def test_equals_derivatives_and_differentiable_where_simple():
    a, h = gaussian((3, 2), seed=31), gaussian((3, 2), seed=32)
    b = jaxsvd.branches(a, h, ORDER)
    np.testing.assert_allclose(b, jaxsvd.derivatives(a, h, ORDER), rtol=1e-11)
    # forward mode through the reduction levels, against a central difference
    da = gaussian((3, 2), seed=33)
    _, t = jax.jvp(lambda x: jaxsvd.branches(x, h, 1), (a,), (da,))
    br = jax.jit(lambda x: jaxsvd.branches(x, h, 1))
    fd = richardson(lambda e: br(a + e * da), 1e-3)  # Richardson-extrapolated differences
    for i in range(2):  # row by row: rtol 1e-8 of each order's scale
        assert_fd_close(t[i], (fd[0][i], fd[1][i]), 1e-8, floor=0.1)


def test_bad_input():
    with pytest.raises(ValueError, match="2 dimensions"):
        jaxsvd.branches(jnp.ones(3), jnp.ones(3), 1)
    with pytest.raises(ValueError, match="shape"):
        jaxsvd.branches(jnp.eye(3), jnp.eye(2), 1)
    with pytest.raises(TypeError, match="order"):
        jaxsvd.branches(jnp.eye(3), jnp.eye(3), 1.5)
    with pytest.raises(ValueError, match="order"):
        jaxsvd.branches(jnp.eye(3), jnp.eye(3), -1)
    out = jaxsvd.branches(jnp.eye(2), jnp.eye(2), 0)
    assert out.shape == (1, 2)


# --- the spectral-function jet at zero singular values (previously NaN) -------

SUM_S2 = jaxsvd.spectral_function(lambda s: jnp.sum(s ** 2))
SUM_S4 = jaxsvd.spectral_function(lambda s: jnp.sum(s ** 4))
LOGDET = jaxsvd.spectral_function(lambda s: jnp.sum(jnp.log(s ** 2 + 0.1)))


def _poly_s4(a):
    g = a.T @ a
    return jnp.sum(g * g)


def _poly_logdet(a):  # log det(A^T A + 0.1 I), 2 x 2, no SVD
    g = a.T @ a + 0.1 * jnp.eye(2)
    return jnp.log(g[0, 0] * g[1, 1] - g[0, 1] * g[1, 0])


def test_spectral_jet_at_zero_singular_values():
    a, h = (jnp.asarray(RECT["rank1"][0]), RECT["rank1"][1])
    z = jnp.zeros_like(h)
    series = (h, z, z)
    # sum s^2 = |A + x H|_F^2 exactly: 2<A,H>, 2|H|^2 (derivative-scaled), 0
    _, ys = jet.jet(SUM_S2, (a,), (series,))
    np.testing.assert_allclose([float(y) for y in ys],
                               [2 * float(jnp.sum(a * h)), 2 * float(jnp.sum(h * h)), 0.0], atol=1e-13)
    for F, P in ((SUM_S4, _poly_s4), (LOGDET, _poly_logdet)):
        _, ys = jet.jet(F, (a,), (series,))
        _, ref = jet.jet(P, (a,), (series,))
        scale = max(abs(float(r)) for r in ref)
        for k in range(3):
            assert abs(float(ys[k]) - float(ref[k])) <= 1e-12 * scale, (F, k)
    # not smooth there (sum s^3, the nuclear norm): NaN, tests/test_spectral.py


def test_spectral_jet_tie_kept_at_first_order_and_near_tie():
    # tall orthonormal A (a tie at 1) with H = [I; 0] + a coupling to the null row:
    # the tie is kept at first order and split at the second; and a near tie (gap
    # 1e-10, merged); both against the polynomial invariant
    z = jnp.zeros((3, 2))
    a_tie = _rect_diag(3, 2, [1.0, 1.0])
    h_tie = _rect_diag(3, 2, [1.0, 1.0])
    h_tie[2, 0] = 0.7
    q = orthogonal(3, seed=41)
    a_near = (q[:, :2] * np.array([2.0, 2.0 - 1e-10])) @ orthogonal(2, seed=42).T
    for a, h in ((a_tie, h_tie), (a_near, np.asarray(gaussian((3, 2), seed=43)))):
        series = (jnp.asarray(h), z, z)
        _, ys = jet.jet(SUM_S4, (jnp.asarray(a),), (series,))
        _, ref = jet.jet(_poly_s4, (jnp.asarray(a),), (series,))
        scale = max(abs(float(r)) for r in ref)
        for k in range(3):
            assert abs(float(ys[k]) - float(ref[k])) <= 1e-9 * scale, (k, float(ys[k]), float(ref[k]))


def test_rotation_times_linear_path_order():
    """Along R (I + x S) (R a 5 x 5 rotation, S symmetric) the singular values are
    |1 + x lambda_i(S)|: the branches are exactly 1 + x lambda_i, ordered by the
    derivative, descending (DESIGN.md), with every higher coefficient zero.  Once the
    family of a reduction level vanished to rounding and the order was lost."""
    rng = np.random.default_rng(0)
    s_mats = [rng.standard_normal((5, 5)) for _ in range(2)]
    s_mats = [x + x.T for x in s_mats]
    rots = [orthogonal(5, 3), orthogonal(5, 4)]
    a = jnp.asarray(np.stack(rots))
    h = jnp.asarray(np.stack([q @ x for q, x in zip(rots, s_mats, strict=True)]))
    b = jaxsvd.branches(a, h, 4)
    lam = np.stack([np.sort(np.linalg.eigvalsh(x))[::-1] for x in s_mats])
    np.testing.assert_allclose(b[0], 1.0, atol=1e-14)
    np.testing.assert_allclose(b[1], lam, atol=1e-12)
    np.testing.assert_allclose(b[2:], 0.0, atol=1e-10)
