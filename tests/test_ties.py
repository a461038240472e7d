"""Tie-safe functions (polar, generalized matrix functions, truncation,
projectors): values and derivatives at exact and near ties against independent
references -- Newton's iteration for the polar factor (float64 autodiff and
mpmath), the Sylvester-equation Frechet derivative, 50-digit mpmath central
differences, closed forms at diagonal matrices; every transform; NaN where a
derivative does not exist; bad input."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest
from jax.experimental import jet

import jaxsvd
from tests import _ref_ties as R
from tests.helpers import batched_svd_is_per_matrix, max_rel_err, orthogonal, svd_backward_error, with_singular_values

# ---------------------------------------------------------------------------
# the matrices of the issue (float64 numpy)
# ---------------------------------------------------------------------------


def _rotation(n, seed):
    q = orthogonal(n, seed)
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def _near(d, n=3, seed=21):
    # Q diag(1, 1 + d, 1 - 2 d): the near tie
    s = np.ones(n)
    s[1], s[2] = 1 + d, 1 - 2 * d
    return orthogonal(n, seed) @ np.diag(s)


def _matrices():
    q, p = orthogonal(4, 7), orthogonal(4, 8)
    return {
        "rotation3": _rotation(3, 1),
        "rotation5": _rotation(5, 2),
        "identity4": np.eye(4),
        "Q_1123_P": q @ np.diag([1.0, 1.0, 2.0, 3.0]) @ p.T,
        "rot331_tall": np.asarray(with_singular_values(5, 3, [3.0, 3.0, 1.0], seed=3)),
        "rot331_wide": np.asarray(with_singular_values(3, 5, [3.0, 3.0, 1.0], seed=4)),
        "near_1e-13": _near(1e-13),
        "near_1e-10": _near(1e-10),
        "near_1e-6": _near(1e-6),
        "generic_tall": np.random.default_rng(5).standard_normal((4, 3)),
        # near ties on both sides of a cut at k = 2 (a cut at a near tie is ill-conditioned by nature)
        "near_both_sides": np.asarray(with_singular_values(4, 4, [2.0 + 1e-10, 2.0, 1.0, 1.0 - 1e-13], seed=5)),
    }


MATS = _matrices()
FULL_RANK = list(MATS)
TOL = 1e-12  # the target, relative, float64


def _dir(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def polar_u(a):
    return jaxsvd.polar(a)[0]


# ---------------------------------------------------------------------------
# 1. polar: Newton's iteration (float64 autodiff), Sylvester, mpmath
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", FULL_RANK)
def test_polar_value_jvp_grad_against_newton(name):
    a = jnp.asarray(MATS[name])
    h, w = jnp.asarray(_dir(a.shape, 1)), jnp.asarray(_dir(a.shape, 2))
    u, p = jaxsvd.polar(a)
    assert max_rel_err(u, R.newton_polar(a)) < TOL
    assert max_rel_err(u @ p, a) < TOL
    t = jax.jvp(polar_u, (a,), (h,))[1]
    assert max_rel_err(t, jax.jvp(R.newton_polar, (a,), (h,))[1]) < TOL
    g = jax.grad(lambda x: jnp.sum(polar_u(x) * w))(a)
    assert max_rel_err(g, jax.grad(lambda x: jnp.sum(R.newton_polar(x) * w))(a)) < TOL


@pytest.mark.parametrize("name", ["rotation3", "Q_1123_P", "rot331_tall", "rot331_wide", "near_1e-13", "near_1e-6"])
def test_polar_second_order_against_newton(name):
    # jvp of grad (forward over reverse, what jax.hessian does) and jvp of jvp
    a = jnp.asarray(MATS[name])
    h, w = jnp.asarray(_dir(a.shape, 1)), jnp.asarray(_dir(a.shape, 2))

    def hvp(f):
        return jax.jvp(jax.grad(lambda x: jnp.sum(f(x) * w)), (a,), (h,))[1]

    def jj(f):
        return jax.jvp(lambda x: jax.jvp(f, (x,), (h,))[1], (a,), (h,))[1]

    assert max_rel_err(hvp(polar_u), hvp(R.newton_polar)) < TOL
    assert max_rel_err(jj(polar_u), jj(R.newton_polar)) < TOL


def test_polar_hessian_at_rotation():
    # the first case, full jax.hessian
    a = jnp.asarray(MATS["rotation3"])
    w = jnp.asarray(_dir(a.shape, 2))
    hs = jax.hessian(lambda x: jnp.sum(polar_u(x) * w))(a)
    ref = jax.hessian(lambda x: jnp.sum(R.newton_polar(x, 20) * w))(a)
    assert max_rel_err(hs, ref) < TOL


@pytest.mark.parametrize("name", ["rotation5", "Q_1123_P", "near_1e-10"])
def test_polar_jvp_against_sylvester(name):
    # square a = U P: U^T dU = Omega skew with P Omega + Omega P = U^T H - H^T U
    a = MATS[name]
    n = a.shape[0]
    h = _dir(a.shape, 3)
    u = np.asarray(R.newton_polar(jnp.asarray(a)))
    p = u.T @ a
    p = (p + p.T) / 2
    rhs = u.T @ h - h.T @ u
    lhs = np.kron(np.eye(n), p) + np.kron(p.T, np.eye(n))  # column-major vec of P X + X P
    omega = np.linalg.solve(lhs, rhs.reshape(-1, order="F")).reshape(n, n, order="F")
    t = jax.jvp(polar_u, (jnp.asarray(a),), (jnp.asarray(h),))[1]
    assert max_rel_err(t, u @ omega) < TOL


@pytest.mark.parametrize("name", ["rotation3", "near_1e-13", "rot331_tall"])
def test_polar_against_mpmath(name):
    a = MATS[name]
    h = _dir(a.shape, 4)
    fn = R.mp_newton_polar
    a_, h_ = jnp.asarray(a), jnp.asarray(h)
    assert max_rel_err(polar_u(a_), R.value(fn, a)) < TOL
    assert max_rel_err(jax.jvp(polar_u, (a_,), (h_,))[1], R.directional(fn, a, h, 1)) < TOL
    d2 = jax.jvp(lambda x: jax.jvp(polar_u, (x,), (h_,))[1], (a_,), (h_,))[1]
    assert max_rel_err(d2, R.directional(fn, a, h, 2)) < TOL


def test_polar_left_side_and_p():
    a = jnp.asarray(MATS["rot331_wide"])
    u, p = jaxsvd.polar(a, side="left")
    assert p.shape == (3, 3) and u.shape == (3, 5)
    assert max_rel_err(p @ u, a) < TOL
    assert max_rel_err(p, p.T) == 0.0
    ur, pr = jaxsvd.polar(a)
    assert pr.shape == (5, 5) and max_rel_err(u, ur) == 0.0
    # derivative of p = (a^T a)^(1/2): d(p^2) = da^T a + a^T da
    b = jnp.asarray(MATS["Q_1123_P"])
    h = jnp.asarray(_dir(b.shape, 5))
    p0, dp = jax.jvp(lambda x: jaxsvd.polar(x)[1], (b,), (h,))
    assert max_rel_err(dp @ p0 + p0 @ dp, h.T @ b + b.T @ h) < TOL


# ---------------------------------------------------------------------------
# 2. truncation, projectors, generalized matrix functions: mpmath differences
# ---------------------------------------------------------------------------

GMF = {
    "cube_plus": (jaxsvd.generalized_matrix_function(lambda s: s ** 3 + s), lambda s: s ** 3 + s),
    "exp": (jaxsvd.generalized_matrix_function(jnp.exp), mpmath.exp),
    "inv": (jaxsvd.generalized_matrix_function(lambda s: 1.0 / s), lambda s: 1 / s),
}


def _cases_k():
    # (matrix, k) with sigma_k > sigma_(k+1), ties inside the top k or below
    return [("Q_1123_P", 2), ("Q_1123_P", 1), ("rot331_tall", 2), ("rot331_wide", 2), ("identity4", 4),
            ("near_both_sides", 2), ("generic_tall", 2)]


def _fns(k):
    return {
        "truncate": (lambda x: jaxsvd.truncate(x, k), lambda x: R.mp_gmf(x, None, k, "truncate")),
        "P_U": (lambda x: jaxsvd.projectors(x, k)[0], lambda x: R.mp_gmf(x, None, k, "pu")),
        "P_V": (lambda x: jaxsvd.projectors(x, k)[1], lambda x: R.mp_gmf(x, None, k, "pv")),
    }


def _err(x, ref):
    # relative to max(|ref|, 1): some derivatives are exactly 0 (a projector at k = n)
    x, ref = np.asarray(x, np.float64), np.asarray(ref, np.float64)
    return float(np.max(np.abs(x - ref)) / max(np.max(np.abs(ref)), 1.0))


def _check_against_mp(F, ref, a, seed=6, second=True):
    h = _dir(a.shape, seed)
    a_, h_ = jnp.asarray(a), jnp.asarray(h)
    assert _err(F(a_), R.value(ref, a)) < TOL
    assert _err(jax.jvp(F, (a_,), (h_,))[1], R.directional(ref, a, h, 1)) < TOL
    if second:
        d2 = jax.jvp(lambda x: jax.jvp(F, (x,), (h_,))[1], (a_,), (h_,))[1]
        assert _err(d2, R.directional(ref, a, h, 2)) < TOL


@pytest.mark.parametrize("name,k", _cases_k())
@pytest.mark.parametrize("fn", ["truncate", "P_U", "P_V"])
def test_truncate_projectors_against_mpmath(name, k, fn):
    F, ref = _fns(k)[fn]
    _check_against_mp(F, ref, MATS[name], second=name in ("Q_1123_P", "rot331_tall"))


@pytest.mark.parametrize("name", ["identity4", "Q_1123_P", "rot331_tall", "rot331_wide", "near_1e-13", "near_1e-6"])
@pytest.mark.parametrize("g", list(GMF))
def test_gmf_against_mpmath(name, g):
    F, mp_g = GMF[g]
    _check_against_mp(F, lambda x: R.mp_gmf(x, mp_g), MATS[name], second=g != "inv")


@pytest.mark.parametrize("name", ["Q_1123_P", "rot331_tall", "near_1e-13"])
def test_reverse_mode_against_mpmath(name):
    # <grad <W, F>, H> = <W, DF[H]>: checks the transpose rule
    a = MATS[name]
    a_, w, h = jnp.asarray(a), _dir(a.shape, 7), _dir(a.shape, 8)
    fns = [(polar_u, R.mp_newton_polar), (GMF["exp"][0], lambda x: R.mp_gmf(x, mpmath.exp))]
    if not name.startswith("near"):  # (a cut inside the near tie would be ill-conditioned)
        fns.append((lambda x: jaxsvd.truncate(x, 2), lambda x: R.mp_gmf(x, None, 2, "truncate")))
    for F, ref in fns:
        g = jax.grad(lambda x: jnp.sum(F(x) * w))(a_)
        want = float(np.sum(w * R.directional(ref, a, h, 1)))
        assert abs(float(jnp.sum(g * h)) - want) < TOL * abs(want) * 10


def test_projector_loss_at_rotated_331():
    # the case: top-2 left projector at a rotated diag(3, 3, 1), 5 x 3
    a = MATS["rot331_tall"]
    w, h = _dir((5, 5), 9), _dir(a.shape, 10)
    g = jax.grad(lambda x: jnp.sum(jaxsvd.projectors(x, 2)[0] * w))(jnp.asarray(a))
    want = float(np.sum(w * R.directional(lambda x: R.mp_gmf(x, None, 2, "pu"), a, h, 1)))
    assert abs(float(jnp.sum(g * h)) - want) < 1e-12 * max(abs(want), 1.0)


def test_reconstruction_norm_at_diag_1123():
    # the case: grad of ||U diag(s) Vh||_F at diag(1, 1, 2, 3) is A / ||A||
    a = jnp.diag(jnp.array([1.0, 1.0, 2.0, 3.0]))
    for F in (lambda x: jaxsvd.truncate(x, 4), jaxsvd.generalized_matrix_function(lambda s: s)):
        g = jax.grad(lambda x: jnp.linalg.norm(F(x)))(a)
        assert max_rel_err(g, a / jnp.linalg.norm(a)) < TOL


def test_closed_form_at_diagonal():
    # a = diag(3, 3, 1), truncate to k = 2:  DF[H]_ij = H_ij (i, j <= 2),
    # (i <= 2, j = 3) and (3, i):  (3 - 0)/(3 - 1) sym + (3 + 0)/(3 + 1) skew
    a = jnp.diag(jnp.array([3.0, 3.0, 1.0]))
    h = _dir((3, 3), 11)
    t = np.asarray(jax.jvp(lambda x: jaxsvd.truncate(x, 2), (a,), (jnp.asarray(h),))[1])
    want = np.zeros((3, 3))
    want[:2, :2] = h[:2, :2]
    for i in range(2):
        sym, skw = (h[i, 2] + h[2, i]) / 2, (h[i, 2] - h[2, i]) / 2
        want[i, 2] = 1.5 * sym + 0.75 * skw
        want[2, i] = 1.5 * sym - 0.75 * skw
    assert max_rel_err(t, want) < 1e-14
    # polar at diag(2, 2, 1): dU = skew(H)_ij * 2 / (s_i + s_j)
    b = jnp.diag(jnp.array([2.0, 2.0, 1.0]))
    s = np.array([2.0, 2.0, 1.0])
    t = np.asarray(jax.jvp(polar_u, (b,), (jnp.asarray(h),))[1])
    assert max_rel_err(t, (h - h.T) / (s[:, None] + s[None, :])) < 1e-14


# ---------------------------------------------------------------------------
# 3. Taylor mode: jet of polar and gmf against mpmath Taylor coefficients
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["rotation3", "near_1e-10", "rot331_tall"])
def test_jet_polar_order4(name):
    a = MATS[name]
    h, w = _dir(a.shape, 12), _dir(a.shape, 13)
    order = 4
    _, ys = jet.jet(polar_u, (jnp.asarray(a),), ([jnp.asarray(h)] + [jnp.zeros(a.shape)] * (order - 1),))
    got = [float(jnp.sum(y * w)) for y in ys]  # derivatives d^j/dt^j <W, U(a + t h)>
    with mpmath.workdps(R.DPS):
        a_, h_, w_ = R._mp(a), R._mp(h), R._mp(w)

        def loss(t):
            u = R.mp_newton_polar(a_ + t * h_)
            return sum(w_[i, j] * u[i, j] for i in range(u.rows) for j in range(u.cols))

        want = [float(x) for x in mpmath.diffs(loss, 0, order)][1:]
    for j, (x, y) in enumerate(zip(got, want, strict=True), start=1):
        assert abs(x - y) <= 1e-11 * max(abs(y), 1.0), (j, x, y)


def test_jet_gmf_and_truncate_order3():
    a = MATS["Q_1123_P"]
    h, w = _dir(a.shape, 14), _dir(a.shape, 15)
    for F, mp_f in [(GMF["exp"][0], lambda x: R.mp_gmf(x, mpmath.exp)),
                    (lambda x: jaxsvd.truncate(x, 2), lambda x: R.mp_gmf(x, None, 2, "truncate"))]:
        _, ys = jet.jet(F, (jnp.asarray(a),), ([jnp.asarray(h), jnp.zeros(a.shape), jnp.zeros(a.shape)],))
        got = [float(jnp.sum(y * w)) for y in ys]
        with mpmath.workdps(R.DPS):
            a_, h_, w_ = R._mp(a), R._mp(h), R._mp(w)

            def loss(t):
                f = mp_f(a_ + t * h_)
                return sum(w_[i, j] * f[i, j] for i in range(f.rows) for j in range(f.cols))

            want = [float(x) for x in mpmath.diffs(loss, 0, 3)][1:]
        for x, y in zip(got, want, strict=True):
            assert abs(x - y) <= 1e-11 * max(abs(y), 1.0)


# ---------------------------------------------------------------------------
# 4. transforms: vmap over a batch mixing ties and generic matrices, jit, float32
# ---------------------------------------------------------------------------


def _batch_tol(batch, tight):
    """Tolerance for a batched result against the same function per matrix: ``tight`` where
    this backend's batched SVD is bitwise the per-matrix one (LAPACK, CPU).  Elsewhere
    (cuSOLVER: a batched Jacobi routine, other rounding) each result is exact for a matrix
    within b ||A|| (b = svd_backward_error), and these tie-safe functions change by at most
    ~||A|| / gap times that, gap the smallest separation of singular values they do not merge
    (clusters closer than 1e-4 ||A|| are merged): 4 b ||A|| / gap."""
    if batched_svd_is_per_matrix(batch):
        return tight
    cond = 1.0
    for s in np.linalg.svd(np.asarray(batch, np.float64), compute_uv=False):
        d = -np.diff(s)
        d = d[d > 1e-4 * s[0]]
        cond = max(cond, s[0] / d.min() if d.size else 1.0)
    return max(tight, 4 * svd_backward_error(batch) * cond)


def test_vmap_mixed_batch_and_jit():
    names = ["rotation3", "near_1e-13", "near_1e-6"]
    batch = jnp.stack([jnp.asarray(MATS[n]) for n in names] + [jnp.asarray(_dir((3, 3), 16))])
    hs = jnp.asarray(_dir(batch.shape, 17))
    w = jnp.asarray(_dir((3, 3), 18))

    def loss(x):
        return jnp.sum(polar_u(x) * w) + jnp.sum(GMF["exp"][0](x) * w)

    g = jax.jit(jax.vmap(jax.grad(loss)))(batch)
    t = jax.vmap(lambda x, h: jax.jvp(polar_u, (x,), (h,))[1])(batch, hs)
    tol = _batch_tol(batch, 1e-13)
    for i in range(batch.shape[0]):
        assert max_rel_err(g[i], jax.grad(loss)(batch[i])) < tol
        assert max_rel_err(t[i], jax.jvp(R.newton_polar, (batch[i],), (hs[i],))[1]) < TOL
    # batched input directly (leading dimension)
    assert max_rel_err(polar_u(batch), jax.vmap(polar_u)(batch)) < 1e-15


@pytest.mark.parametrize("name", ["rotation3", "near_1e-6", "rot331_tall"])
def test_float32(name):
    a = MATS[name]
    h = _dir(a.shape, 19)
    t32 = jax.jvp(polar_u, (jnp.asarray(a, jnp.float32),), (jnp.asarray(h, jnp.float32),))[1]
    t64 = jax.jvp(R.newton_polar, (jnp.asarray(a),), (jnp.asarray(h),))[1]
    assert t32.dtype == jnp.float32
    assert max_rel_err(t32, t64) < 1e-5
    w = _dir(a.shape, 22)
    g32 = jax.grad(lambda x: jnp.sum(GMF["exp"][0](x) * w.astype(np.float32)))(jnp.asarray(a, jnp.float32))
    g64 = jax.grad(lambda x: jnp.sum(GMF["exp"][0](x) * w))(jnp.asarray(a))
    assert g32.dtype == jnp.float32
    assert max_rel_err(g32, g64) < 1e-4


# ---------------------------------------------------------------------------
# 5. NaN exactly where a derivative does not exist
# ---------------------------------------------------------------------------


def test_nan_where_not_differentiable():
    h = jnp.asarray(_dir((3, 3), 20))
    # rank-deficient polar: value finite, derivative NaN
    rd = jnp.asarray(with_singular_values(3, 3, [2.0, 1.0, 0.0], seed=6))
    u, t = jax.jvp(polar_u, (rd,), (h,))
    assert bool(jnp.all(jnp.isfinite(u))) and bool(jnp.all(jnp.isnan(t)))
    # sigma_k = sigma_(k+1): truncate / projectors NaN, k elsewhere exact
    a = jnp.asarray(MATS["Q_1123_P"])  # s = 3, 2, 1, 1
    h4 = jnp.asarray(_dir((4, 4), 21))
    assert bool(jnp.all(jnp.isnan(jax.jvp(lambda x: jaxsvd.truncate(x, 3), (a,), (h4,))[1])))
    assert bool(jnp.all(jnp.isnan(jax.grad(lambda x: jnp.sum(jaxsvd.projectors(x, 3)[0]))(a))))
    assert bool(jnp.all(jnp.isfinite(jax.jvp(lambda x: jaxsvd.truncate(x, 2), (a,), (h4,))[1])))
    # g kinked at a singular value: thresholding at tau = 1 at the identity; tau = 0.5 is smooth there
    svt = jaxsvd.generalized_matrix_function(lambda s: jnp.maximum(s - 1.0, 0.0))
    assert bool(jnp.all(jnp.isnan(jax.jvp(svt, (jnp.eye(3),), (h,))[1])))
    svt_half = jaxsvd.generalized_matrix_function(lambda s: jnp.maximum(s - 0.5, 0.0))
    # (locally F = A - U V^T / 2, and d(U V^T) = (H - H^T)/2 at the identity)
    assert max_rel_err(jax.jvp(svt_half, (jnp.eye(3),), (h,))[1], h - 0.25 * (h - h.T)) < 1e-15
    # zero singular values: g(0) != 0 -> NaN; odd extension smooth -> exact
    ex = jaxsvd.generalized_matrix_function(jnp.exp)
    assert bool(jnp.all(jnp.isnan(jax.jvp(ex, (rd,), (h,))[1])))
    sq = jaxsvd.generalized_matrix_function(lambda s: s ** 2)  # odd extension s|s|: C^1, not C^2
    t1 = jax.jvp(sq, (jnp.zeros((3, 3)),), (h,))[1]
    assert max_rel_err(t1, jnp.zeros((3, 3))) == 0.0
    t2 = jax.jvp(lambda x: jax.jvp(sq, (x,), (h,))[1], (rd,), (h,))[1]
    assert bool(jnp.all(jnp.isnan(t2)))


def test_nan_input_gives_nan():
    a = jnp.full((3, 3), jnp.nan)
    for out in (jaxsvd.polar(a)[0], jaxsvd.truncate(a, 1), *jaxsvd.projectors(a, 3),
                jaxsvd.generalized_matrix_function(jnp.exp)(a)):
        assert bool(jnp.all(jnp.isnan(out)))


def test_bad_input():
    a = jnp.eye(3)
    with pytest.raises(ValueError, match="side"):
        jaxsvd.polar(a, side="up")
    for k in (0, 4):
        with pytest.raises(ValueError, match="k"):
            jaxsvd.truncate(a, k)
        with pytest.raises(ValueError, match="k"):
            jaxsvd.projectors(a, k)
    with pytest.raises(TypeError, match="k"):
        jaxsvd.truncate(a, 1.5)
    with pytest.raises(ValueError, match="dimensions"):
        jaxsvd.polar(jnp.ones(3))
    with pytest.raises(ValueError, match="non-empty"):
        jaxsvd.truncate(jnp.ones((0, 3)), 1)
    with pytest.raises(TypeError, match="callable"):
        jaxsvd.generalized_matrix_function(3.0)
    with pytest.raises(ValueError, match="elementwise"):
        jaxsvd.generalized_matrix_function(jnp.sum)(a)

    @jax.jit
    def traced(x, tau):
        return jaxsvd.generalized_matrix_function(lambda s: jnp.maximum(s - tau, 0.0))(x)

    with pytest.raises(TypeError, match="traced"):
        traced(a, 0.5)


# ---------------------------------------------------------------------------
# 6. more compositions, and the example
# ---------------------------------------------------------------------------


def test_reverse_over_reverse_and_forward_over_forward():
    a = jnp.asarray(MATS["rotation3"])
    w = jnp.asarray(_dir(a.shape, 23))

    def f(x):
        return jnp.sum(polar_u(x) * w) + jnp.sum(jaxsvd.projectors(x + jnp.diag(jnp.array([1.0, 0, 0])), 1)[1] * w)

    h = jax.hessian(f)(a)
    assert bool(jnp.all(jnp.isfinite(h)))
    assert max_rel_err(jax.jacrev(jax.jacrev(f))(a), h) < 1e-13
    assert max_rel_err(jax.jacfwd(jax.jacfwd(f))(a), h) < 1e-13


def test_grad_of_jet_is_nan_not_wrong():
    # jet's coefficients are not differentiable in the matrix (documented): NaN, never a wrong number;
    # in the direction they are (exactly: a polynomial in h)
    a = jnp.asarray(MATS["generic_tall"])
    h = jnp.asarray(_dir(a.shape, 24))

    def coef2(x, hh):
        return jnp.sum(jet.jet(polar_u, (x,), ([hh, jnp.zeros_like(hh)],))[1][1])

    assert bool(jnp.all(jnp.isnan(jax.grad(coef2)(a, h))))
    gh = jax.grad(coef2, argnums=1)(a, h)
    ref = jax.grad(lambda hh: jnp.sum(jax.jvp(lambda x: jax.jvp(R.newton_polar, (x,), (hh,))[1], (a,), (hh,))[1]))(h)
    assert max_rel_err(gh, ref) < 1e-12


def test_procrustes_example_runs():
    import importlib.util
    import os

    path = os.path.join(os.path.dirname(__file__), "..", "examples", "procrustes.py")
    spec = importlib.util.spec_from_file_location("procrustes_example", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--steps", "60"]) == 0


@pytest.mark.parametrize("name", ["rotation3", "near_1e-10"])
def test_jet_of_grad_and_vmap_of_jet(name):
    from tests.helpers import nested_jvp_derivatives

    a = jnp.asarray(MATS[name])
    h, w = jnp.asarray(_dir(a.shape, 25)), jnp.asarray(_dir(a.shape, 26))
    g = jax.grad(lambda x: jnp.sum(polar_u(x) * w))
    y0, ys = jet.jet(g, (a,), ([h, jnp.zeros_like(h), jnp.zeros_like(h)],))
    ref = nested_jvp_derivatives(jax.grad(lambda x: jnp.sum(R.newton_polar(x, 25) * w)), a, [h], 3)
    for y, r in zip([y0] + list(ys), ref, strict=True):
        assert max_rel_err(y, r) < 1e-11
    # vmap of jet over a batch (tie and generic)
    batch = jnp.stack([a, jnp.asarray(_dir(a.shape, 27))])
    hb = jnp.stack([h, h])

    def jet2(x, d):
        return jet.jet(polar_u, (x,), ([d, jnp.zeros_like(d)],))[1][1]

    out = jax.vmap(jet2)(batch, hb)
    tol = _batch_tol(batch, 1e-14)
    for i in range(2):
        assert max_rel_err(out[i], jet2(batch[i], hb[i])) < tol


@pytest.mark.parametrize("gap", [3e-2, 2e-2, 1.5e-2, 1e-3])
def test_gmf_around_the_merge_gap(gap):
    # just above eps**(1/9) the divided differences are direct, below it the expansion
    a = np.asarray(with_singular_values(3, 3, [2.0, 1.0 + gap, 1.0], seed=9))
    F, mp_g = GMF["exp"]
    _check_against_mp(F, lambda x: R.mp_gmf(x, mp_g), a)


def test_gmf_threshold_between_near_values():
    # thresholding at tau inside a near pair: g is not smooth between them, so the
    # pair is not merged (the expansion would be wrong); g is smooth at each sigma
    a = np.asarray(with_singular_values(3, 3, [2.0, 1.0 + 1e-3, 1.0 - 1e-3], seed=10))
    F = jaxsvd.generalized_matrix_function(lambda s: jnp.maximum(s - 1.0, 0.0))
    _check_against_mp(F, lambda x: R.mp_gmf(x, lambda s: max(s - 1, 0)), a, second=False)


def test_batched_every_function():
    # leading batch dimensions and vmap, for every function (mixed ties and generic)
    batch = jnp.stack([jnp.asarray(MATS["Q_1123_P"]), jnp.asarray(_dir((4, 4), 28)), jnp.eye(4)])
    h = jnp.asarray(_dir(batch.shape, 29))
    fns = [polar_u, lambda x: jaxsvd.polar(x, side="left")[1], lambda x: jaxsvd.truncate(x, 2),
           lambda x: jaxsvd.projectors(x, 4)[0], lambda x: jaxsvd.projectors(x, 1)[1], GMF["exp"][0]]
    tol, ttol = _batch_tol(batch, 1e-14), _batch_tol(batch, 1e-12)
    for f in fns:
        y, t = jax.jvp(f, (batch,), (h,))
        for i in range(batch.shape[0]):
            yi, ti = jax.jvp(f, (batch[i],), (h[i],))
            assert max_rel_err(y[i], yi) < tol
            np.testing.assert_allclose(np.asarray(t[i]), np.asarray(ti), rtol=ttol, atol=ttol)
