"""Spectral functions: gradients and Hessians at coincident singular values
against exact polynomial invariants, mpmath high-precision differences and
nested autodiff through jnp.linalg.svd; every transform; NaN where a derivative
does not exist; bad input."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental import jet

import jaxsvd
from tests import _ref_spectral as R
from tests.helpers import gaussian, max_rel_err, orthogonal, rtol, svd_backward_error, with_singular_values

# ---------------------------------------------------------------------------
# the matrices of the issue (float64 numpy), and the functions under test
# ---------------------------------------------------------------------------


def _rotated(s, m, n, seed=3):
    return np.asarray(with_singular_values(m, n, s, seed=seed))


def _matrices():
    q = orthogonal(4, seed=7)
    g = np.random.default_rng(11).standard_normal((4, 4))
    return {
        "identity": np.eye(4),
        "orthogonal": q,
        "2orthogonal": 2 * q,
        "near_tie": q + 1e-12 * g,  # gaps ~1e-12: divided differences must not cancel
        "tall_orthonormal": orthogonal(5, seed=8)[:, :3],
        "wide_orthonormal": orthogonal(5, seed=9)[:3, :],
        "rot_3311": _rotated([3.0, 3.0, 1.0, 1.0], 4, 4),
        "gaps_around_switch": _rotated([2.0, 2.0 - 2e-7, 1.0, 1.0 - 1e-4], 4, 4),  # both sides of eps^(1/3)
    }


MATS = _matrices()

SPECTRAL = {
    "sum_s2": jaxsvd.spectral_function(lambda s: jnp.sum(s ** 2)),
    "sum_s3": jaxsvd.spectral_function(lambda s: jnp.sum(s ** 3)),
    "sum_s4": jaxsvd.spectral_function(lambda s: jnp.sum(s ** 4)),
    "nuclear": jaxsvd.nuclear_norm,
    "ky_fan_2": functools.partial(jaxsvd.ky_fan_norm, k=2),
    "spectral": jaxsvd.spectral_norm,
    "schatten_3": functools.partial(jaxsvd.schatten_norm, p=3),
}


@functools.lru_cache(maxsize=None)  # one jitted function per F: compiled once per shape, shared by the cases
def jhess(F):
    return jax.jit(jax.hessian(F))


@functools.lru_cache(maxsize=None)
def jgrad(F):
    return jax.jit(jax.grad(F))


def _dirs(shape, seed=0):
    r = np.random.default_rng(seed)
    return r.standard_normal(shape), r.standard_normal(shape)


def _hess_bilinear(hess, h1, h2):
    return float(jnp.einsum("ij,ijkl,kl->", h1, hess, h2))


# ---------------------------------------------------------------------------
# 1. exact polynomial invariants: full gradient and Hessian, no SVD in the reference
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("mat", list(MATS))
@pytest.mark.parametrize("name", ["sum_s2", "sum_s4"])
def test_polynomial_invariants(mat, name):
    a = jnp.asarray(MATS[mat])
    F, P = SPECTRAL[name], R.POLY[name]
    np.testing.assert_allclose(F(a), P(a), rtol=1e-13)
    g, gref = jgrad(F)(a), jgrad(P)(a)
    h, href = jhess(F)(a), jhess(P)(a)
    assert bool(jnp.all(jnp.isfinite(h)))
    assert max_rel_err(g, gref) <= 1e-12
    assert max_rel_err(h, href) <= 1e-10, max_rel_err(h, href)


@pytest.mark.parametrize("mat", ["identity", "orthogonal", "near_tie", "wide_orthonormal", "rot_3311"])
def test_polynomial_invariants_float32(mat):
    a = jnp.asarray(MATS[mat], jnp.float32)
    h = jhess(SPECTRAL["sum_s4"])(a)
    assert h.dtype == jnp.float32
    assert max_rel_err(h, jhess(R.POLY["sum_s4"])(jnp.asarray(MATS[mat]))) <= rtol(jnp.float32)


@pytest.mark.parametrize("name", ["sum_s2", "sum_s4"])
def test_polynomial_invariants_rank_deficient(name):
    # sum s^2, sum s^4 are polynomials: twice differentiable at zero singular values too
    for a in (_rotated([2.0, 1.0, 0.0], 5, 3), _rotated([2.0, 0.0, 0.0], 3, 4), np.zeros((3, 3))):
        a = jnp.asarray(a)
        h, href = jhess(SPECTRAL[name])(a), jhess(R.POLY[name])(a)
        assert max_rel_err(h, href) <= 1e-10


# ---------------------------------------------------------------------------
# 2. mpmath high-precision derivatives, functions that are not polynomials
# ---------------------------------------------------------------------------

MP_CASES = [(mat, name) for mat in MATS for name in ("nuclear", "sum_s3")] + [
    ("ky_fan_3311", "ky_fan_2"),
    ("rot_3311", "schatten_3"),
    ("gaussian", "spectral"),
    ("near_gap_3e-7", "spectral"),  # a kinked f at a near tie: the direct quotient, not the expansion
    ("near_gap_3e-7", "ky_fan_2"),
    ("tall_orthonormal", "schatten_3"),
]
EXTRA = {
    "ky_fan_3311": _rotated([3.0, 3.0, 1.0, 0.5], 4, 4, seed=5),
    "gaussian": np.asarray(gaussian((4, 3), seed=4)),
    "near_gap_3e-7": _rotated([3.0, 3.0 - 3e-7, 3.0 - 6e-7, 0.5], 4, 4, seed=6),
}


# Singular vectors at a gap of 3e-7 are only known to ~b ||A|| / gap, b the SVD's backward
# error (Wedin's sin-theta theorem; any method, any backend): the computed U, V are exact for
# some A + E with ||E|| <= b ||A||.  The gradient and Hessian of these functions depend on the
# u and the v side of the split, hence the tolerance 2 b ||A|| / gap with b measured on this
# matrix with this backend's SVD (tests.helpers.svd_backward_error).  On CPU (LAPACK) b = 2.2e-15
# here, tol = 4.3e-8, measured errors 2.7e-9 (spectral) and 5.1e-9 (ky_fan_2); on an H200
# (cuSOLVER) the spectral Hessian was off by 1.5e-8.
COND_GAP = {"near_gap_3e-7": 3e-7}


def _cond_tol(mat, a, default):
    if mat not in COND_GAP:
        return default
    return 2 * svd_backward_error(a) * float(np.linalg.norm(np.asarray(a), 2)) / COND_GAP[mat]


@pytest.mark.parametrize("mat,name", MP_CASES)
def test_against_mpmath(mat, name):
    a_np = MATS.get(mat, EXTRA.get(mat))
    a = jnp.asarray(a_np)
    F = SPECTRAL[name]
    h1, h2 = _dirs(a.shape, seed=1)
    np.testing.assert_allclose(float(F(a)), float(R.mp_value(name, a_np)), rtol=1e-13)
    g = jgrad(F)(a)
    hess = jhess(F)(a)
    assert bool(jnp.all(jnp.isfinite(hess)))
    d1 = R.mp_directional(name, a_np, h1, 1)
    tol = _cond_tol(mat, a_np, 1e-10)
    np.testing.assert_allclose(float(jnp.sum(g * h1)), d1, rtol=_cond_tol(mat, a_np, 1e-12), atol=1e-13)
    scale = max(abs(R.mp_directional(name, a_np, h1, 2)), abs(R.mp_directional(name, a_np, h2, 2)), 1e-3)
    for x, y in ((h1, h1), (h1, h2), (h2, h2)):
        ref = R.mp_bilinear(name, a_np, x, y)
        got = _hess_bilinear(hess, x, y)
        assert abs(got - ref) <= tol * scale, (got, ref)


def test_near_tie_does_not_cancel():
    # at Q + 1e-12 G the direct quotient (f_k - f_i)/(s_k - s_i) would be off by ~1e-4
    a_np = MATS["near_tie"]
    a = jnp.asarray(a_np)
    h1, _ = _dirs(a.shape, seed=2)
    for name in ("nuclear", "sum_s3"):
        F = SPECTRAL[name]
        hv = jax.jit(lambda x, d, F=F: jax.jvp(jax.grad(F), (x,), (d,))[1])(a, jnp.asarray(h1))
        got = float(jnp.sum(hv * h1))
        ref = R.mp_directional(name, a_np, h1, 2)
        assert abs(got - ref) <= 1e-10 * abs(ref)


# ---------------------------------------------------------------------------
# 3. random matrices: nested autodiff through jnp.linalg.svd
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(5, 3), (3, 5), (4, 4)])
@pytest.mark.parametrize("name", ["nuclear", "sum_s3", "ky_fan_2", "spectral", "schatten_3"])
def test_random_against_jnp_route(shape, name):
    a = gaussian(shape, seed=sum(shape))
    F, ref = SPECTRAL[name], R.jnp_route(name)
    np.testing.assert_allclose(F(a), ref(a), rtol=1e-13)
    assert max_rel_err(jgrad(F)(a), jgrad(ref)(a)) <= 1e-11
    assert max_rel_err(jhess(F)(a), jhess(ref)(a)) <= 1e-10


def test_values_equal_jnp_norm():
    a = gaussian((2, 3, 5, 4), seed=5)
    np.testing.assert_allclose(jaxsvd.nuclear_norm(a), jnp.linalg.norm(a, "nuc", axis=(-2, -1)), rtol=1e-14)
    np.testing.assert_allclose(jaxsvd.spectral_norm(a), jnp.linalg.norm(a, 2, axis=(-2, -1)), rtol=1e-14)
    np.testing.assert_allclose(jaxsvd.schatten_norm(a, 2), jnp.linalg.norm(a, "fro", axis=(-2, -1)),
                               rtol=1e-14)
    np.testing.assert_allclose(jaxsvd.schatten_norm(a, 1), jaxsvd.nuclear_norm(a), rtol=0)
    np.testing.assert_allclose(jaxsvd.schatten_norm(a, np.inf), jaxsvd.spectral_norm(a), rtol=0)
    s = jnp.linalg.svd(a, compute_uv=False)
    np.testing.assert_allclose(jaxsvd.ky_fan_norm(a, 2), s[..., 0] + s[..., 1], rtol=1e-14)
    np.testing.assert_allclose(jaxsvd.schatten_norm(a, 2.5), jnp.sum(s ** 2.5, -1) ** 0.4, rtol=1e-14)
    assert jaxsvd.nuclear_norm(a).shape == (2, 3)


def test_schatten_large_scale_no_overflow():
    a = gaussian((4, 3), seed=6) * 1e200
    assert np.isfinite(float(jaxsvd.schatten_norm(a, 4)))


# ---------------------------------------------------------------------------
# 4. transforms, float32 and float64, with batch dimensions
# ---------------------------------------------------------------------------

F3 = SPECTRAL["sum_s3"]
F3_REF = R.jnp_route("sum_s3")


def _nested_jvp(fn, order):
    """t -> d^order/dt^order fn(t), by nesting jax.jvp (the reference)."""
    for _ in range(order):
        fn = (lambda g: lambda t: jax.jvp(g, (t,), (jnp.ones((), jnp.float64),))[1])(fn)
    return fn


@pytest.mark.parametrize("dtype,shape", [(jnp.float32, (4, 3)), (jnp.float64, (4, 3)), (jnp.float64, (3, 4))])
def test_transforms(dtype, shape):
    a64 = gaussian(shape, seed=21)
    h64 = gaussian(shape, seed=22)
    a, h = a64.astype(dtype), h64.astype(dtype)
    tol = rtol(dtype)
    hess_ref = jhess(F3_REF)(a64)
    grad_ref = jgrad(F3_REF)(a64)
    hv_ref = jnp.einsum("ijkl,kl->ij", hess_ref, h64)
    j = jax.jit
    out = {
        "eager": (F3(a), F3_REF(a64)),
        "jit": (j(F3)(a), F3_REF(a64)),
        "grad_eager": (jax.grad(F3)(a), grad_ref),
        "jacrev": (j(jax.jacrev(F3))(a), grad_ref),
        "jacfwd": (j(jax.jacfwd(F3))(a), grad_ref),
        "hessian": (jhess(F3)(a), hess_ref),
        "jacrev_jacrev": (j(jax.jacrev(jax.jacrev(F3)))(a), hess_ref),
        "jacfwd_jacfwd": (j(jax.jacfwd(jax.jacfwd(F3)))(a), hess_ref),
        "jvp_grad": (j(lambda x, d: jax.jvp(jax.grad(F3), (x,), (d,))[1])(a, h), hv_ref),
        "grad_jvp": (j(jax.grad(lambda x, d: jax.jvp(F3, (x,), (d,))[1]))(a, h), hv_ref),
        "vjp_grad": (j(lambda x, d: jax.vjp(jax.grad(F3), x)[1](d)[0])(a, h), hv_ref),
    }
    for k, (v, ref) in out.items():
        assert v.dtype == dtype, k
        assert max_rel_err(v, ref) <= tol, (k, max_rel_err(v, ref))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_batched_and_vmap(dtype):
    a64 = gaussian((2, 2, 4, 3), seed=23)
    a = a64.astype(dtype)
    tol = rtol(dtype)
    ref_h = jax.jit(jax.vmap(jax.vmap(jax.hessian(F3_REF))))(a64)
    # leading batch dimensions, vmap, vmap of hessian, hessian of a batched sum
    assert F3(a).shape == (2, 2)
    assert max_rel_err(F3(a), jax.vmap(jax.vmap(F3_REF))(a64)) <= tol
    assert max_rel_err(jax.vmap(F3)(a), F3(a)) <= tol
    assert max_rel_err(jax.jit(jax.vmap(jax.vmap(jax.hessian(F3))))(a), ref_h) <= tol
    hb = jhess(lambda x: jnp.sum(F3(x)))(a[0])  # (2,4,3,2,4,3): block diagonal in the batch
    for i in range(2):
        assert max_rel_err(hb[i, :, :, i], ref_h[0, i]) <= tol
    g = jgrad(lambda x: jnp.sum(jaxsvd.nuclear_norm(x)))(a)
    assert max_rel_err(g, jgrad(lambda x: jnp.sum(jax.vmap(jax.vmap(R.jnp_route("nuclear")))(x)))(a64)) <= tol
    # vmap over the direction of an hvp
    hs = gaussian((5, 4, 3), seed=24).astype(dtype)
    hvps = jax.jit(jax.vmap(lambda hh: jax.jvp(jax.grad(F3), (a[0, 0],), (hh,))[1]))(hs)
    assert max_rel_err(hvps, jnp.einsum("ijkl,bkl->bij", ref_h[0, 0], hs.astype(jnp.float64))) <= tol


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_jet(dtype):
    # jet of F and of grad F against nested jvp through jnp.linalg.svd (simple values)
    a64, h64 = gaussian((4, 3), seed=25), gaussian((4, 3), seed=26)
    a, h = a64.astype(dtype), h64.astype(dtype)
    z = jnp.zeros_like(h)
    t0 = jnp.zeros((), jnp.float64)
    order = 3 if dtype == jnp.float64 else 2
    ys = jax.jit(lambda x, d: jet.jet(F3, (x,), ((d,) + (z,) * (order - 1),))[1])(a, h)
    for k in range(order):
        ref = float(jax.jit(_nested_jvp(lambda t: F3_REF(a64 + t * h64), k + 1))(t0))
        assert ys[k].dtype == dtype
        assert abs(float(ys[k]) - ref) <= 5 * rtol(dtype) * abs(ref), k
    gys = jax.jit(lambda x, d: jet.jet(jax.grad(F3), (x,), ((d,) + (z,) * (order - 2),))[1])(a, h)
    for k in range(order - 1):
        ref = jax.jit(_nested_jvp(lambda t: jax.grad(F3_REF)(a64 + t * h64), k + 1))(t0)
        assert max_rel_err(gys[k], ref) <= 5 * rtol(dtype), k
    # jet inside jit and vmap, and grad of jet
    jv = jax.jit(jax.vmap(lambda x, y: jet.jet(F3, (x,), ((y, z),))[1][1]))
    got = jv(jnp.stack([a, 2 * a]), jnp.stack([h, h]))
    ref2 = jax.jit(_nested_jvp(lambda t: F3_REF(a64 + t * h64), 2))(t0)
    assert abs(float(got[0]) - float(ref2)) <= 5 * rtol(dtype) * abs(float(ref2))
    gj = jax.jit(jax.grad(lambda x: jet.jet(F3, (x,), ((h, z),))[1][1]))(a)
    def d2_ref(x):
        return jax.jvp(lambda y: jax.jvp(F3_REF, (y,), (h64,))[1], (x,), (h64,))[1]

    gref = jax.jit(jax.grad(d2_ref))(a64)
    assert max_rel_err(gj, gref) <= 5 * rtol(dtype)


# a symmetric f that is not a sum over the singular values
MIXED = jaxsvd.spectral_function(lambda s: jnp.sum(s ** 2) * jnp.sum(s ** 4))


def _poly_mixed(a):
    return R.poly_sum_s2(a) * R.poly_sum_s4(a)


@functools.lru_cache(maxsize=None)
def _jitted_jet(F):
    return jax.jit(lambda x, series: jet.jet(F, (x,), (series,)))


@pytest.mark.parametrize("mat", ["identity", "2orthogonal", "rot_3311", "wide_orthonormal"])
def test_jet_exact_through_coincident_values_all_orders(mat):
    # jet of F to order 6 on a quadratic path where singular values coincide, against
    # the exact polynomial invariants (sum s^2k = tr (A^T A)^k: no SVD in the reference)
    a = jnp.asarray(MATS[mat])
    h1, h2 = gaussian(a.shape, seed=27), gaussian(a.shape, seed=28)
    K = 6
    series = (h1, h2) + (jnp.zeros_like(h1),) * (K - 2)
    # (sum s^6 alone is covered by MIXED = sum s^2 * sum s^4 at order 6)
    for F, P in ((SPECTRAL["sum_s2"], R.poly_sum_s2), (SPECTRAL["sum_s4"], R.poly_sum_s4),
                 (MIXED, _poly_mixed)):
        y0, ys = _jitted_jet(F)(a, series)  # compiled once per F and shape, shared by the matrices
        r0, ref = _jitted_jet(P)(a, series)
        scale = max(abs(float(r)) for r in ref)
        assert abs(float(y0) - float(r0)) <= 1e-12 * abs(float(r0))
        for k in range(K):
            assert abs(float(ys[k]) - float(ref[k])) <= 1e-10 * scale, (k, float(ys[k]), float(ref[k]))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_jet_through_ties_under_vmap(dtype):
    mats = jnp.stack([jnp.asarray(MATS[k]) for k in ("identity", "orthogonal", "rot_3311")])
    hs = gaussian(mats.shape, seed=34)
    z = jnp.zeros_like(hs)
    F = SPECTRAL["sum_s4"]
    got = jax.jit(jax.vmap(lambda x, d, z: jet.jet(F, (x,), ((d, z, z),))[1][2]))(
        mats.astype(dtype), hs.astype(dtype), z.astype(dtype))
    ref = jax.vmap(lambda x, d, z: jet.jet(R.poly_sum_s4, (x,), ((d, z, z),))[1][2])(mats, hs, z)
    assert got.dtype == dtype
    assert max_rel_err(got, ref) <= rtol(dtype)


def test_jet_nuclear_norm_order_4_at_identity_vs_mpmath():
    # non-polynomial f: the nuclear norm through the tie at the identity
    a, h = jnp.eye(3), gaussian((3, 3), seed=31)
    z = jnp.zeros_like(h)
    _, ys = jax.jit(lambda x: jet.jet(jaxsvd.nuclear_norm, (x,), ((h, z, z, z),)))(a)
    for k in (2, 3, 4):
        ref = R.mp_directional("nuclear", np.eye(3), np.asarray(h), k)
        assert abs(float(ys[k - 1]) - ref) <= 1e-9 * abs(ref), (k, float(ys[k - 1]), ref)


def test_jet_nan_where_higher_derivatives_do_not_exist():
    h = gaussian((4, 4), seed=32)
    z = jnp.zeros_like(h)
    # the spectral norm at sigma_1 = sigma_2 (not twice differentiable): NaN from order 2
    _, ys = jet.jet(jaxsvd.spectral_norm, (jnp.eye(4),), ((h, z, z),))
    assert np.isfinite(float(ys[0])) and np.isnan(float(ys[1])) and np.isnan(float(ys[2]))
    # a zero singular value (nuclear norm of a rank-deficient matrix)
    a = jnp.asarray(with_singular_values(4, 4, [3.0, 2.0, 1.0, 0.0], seed=33))
    _, ys = jet.jet(jaxsvd.nuclear_norm, (a,), ((h, z, z),))
    assert np.isnan(float(ys[2]))
    # a direction that keeps the tie at first order is resolved by the next reduction
    # levels (jaxsvd.branches): exact, sum (1 + x)^4 over 4 values
    _, ys = jet.jet(SPECTRAL["sum_s4"], (jnp.eye(4),), ((jnp.eye(4), z, z),))
    np.testing.assert_allclose([float(y) for y in ys], [16.0, 48.0, 96.0], rtol=1e-12)
    # sum s^3 at a zero singular value: sigma = |c x| there, no third derivative
    _, ys = jet.jet(SPECTRAL["sum_s3"], (a,), ((h, z, z),))
    assert np.isfinite(float(ys[1])) and np.isnan(float(ys[2]))


def test_jet_near_ties_exact_or_nan_never_wrong():
    # near (not exact) ties: a symmetric f cancels the branches' large coefficients;
    # what is returned is accurate (polynomial invariant), the rest is NaN
    h = gaussian((4, 4), seed=5)
    z = jnp.zeros_like(h)
    series = (h,) + (z,) * 5
    for g in (1e-1, 1e-2, 1e-4, 1e-9):
        a = jnp.asarray(with_singular_values(4, 4, [2.0, 2.0 - 2 * g, 1.0, 0.5], seed=3))
        _, ys = jet.jet(SPECTRAL["sum_s4"], (a,), (series,))
        _, ref = jet.jet(R.poly_sum_s4, (a,), (series,))
        scale = max(abs(float(r)) for r in ref)
        finite = [k for k in range(6) if np.isfinite(float(ys[k]))]
        assert finite[:2] == [0, 1]  # orders 1, 2 always (Lewis--Sendov)
        for k in finite:
            assert abs(float(ys[k]) - float(ref[k])) <= 1e-8 * scale, (g, k)
        if g == 1e-1:
            assert len(finite) == 6
    # below the merge tolerance (sqrt(eps)) the near tie is merged: exact to ~ the gap
    a = jnp.asarray(MATS["orthogonal"]) + 1e-12 * h
    _, ys = jet.jet(SPECTRAL["sum_s4"], (a,), ((h, z, z),))
    _, ref = jet.jet(R.poly_sum_s4, (a,), ((h, z, z),))
    scale = max(abs(float(r)) for r in ref)
    for k in range(3):
        assert abs(float(ys[k]) - float(ref[k])) <= 1e-8 * scale, k


def test_jet_of_grad_at_identity():
    # jet of grad: order 1 exact at the identity (= Hessian times h); order 2 NaN (documented)
    a, h = jnp.eye(4), gaussian((4, 4), seed=27)
    z = jnp.zeros_like(h)
    _, gys = jax.jit(lambda x: jet.jet(jax.grad(SPECTRAL["sum_s4"]), (x,), ((h, z),)))(a)
    assert max_rel_err(gys[0], jnp.einsum("ijkl,kl->ij", jhess(R.poly_sum_s4)(a), h)) <= 1e-12
    assert bool(jnp.all(jnp.isnan(gys[1])))


def test_third_derivative():
    # exact where the singular values are simple; NaN where they coincide (documented)
    a = gaussian((4, 3), seed=28)
    t3 = jax.jit(jax.jacfwd(jax.hessian(F3)))(a)
    assert max_rel_err(t3, jax.jit(jax.jacfwd(jax.hessian(F3_REF)))(a)) <= 1e-10
    h = gaussian((4, 4), seed=29)

    d3 = jax.jit(_nested_jvp(lambda t: F3(jnp.eye(4) + t * h), 3))
    assert np.isnan(float(d3(jnp.zeros((), jnp.float64))))


# ---------------------------------------------------------------------------
# 5. where derivatives do not exist: documented NaN (and only there)
# ---------------------------------------------------------------------------


def test_nan_where_hessian_does_not_exist():
    rankdef_sq = jnp.asarray(_rotated([2.0, 1.0, 0.0], 3, 3))
    rankdef_tall = jnp.asarray(_rotated([2.0, 1.0, 0.0], 5, 3))
    tie12 = jnp.asarray(_rotated([2.0, 2.0, 1.0], 3, 3))
    tie23 = jnp.asarray(_rotated([3.0, 2.0, 2.0, 1.0], 4, 4))
    nan_cases = [
        (jaxsvd.nuclear_norm, rankdef_sq),
        (jaxsvd.nuclear_norm, rankdef_tall),
        (jaxsvd.nuclear_norm, jnp.zeros((3, 3))),
        (jaxsvd.spectral_norm, tie12),
        (functools.partial(jaxsvd.ky_fan_norm, k=2), tie23),
        (functools.partial(jaxsvd.schatten_norm, p=1.5), rankdef_tall),
    ]
    for F, a in nan_cases:
        h = jhess(F)(a)
        assert bool(jnp.any(jnp.isnan(h))), F
        assert bool(jnp.all(jnp.isfinite(jgrad(F)(a)))), F  # a subgradient
    # reverse-over-reverse sees it too (nan_unless transposes to itself)
    assert bool(jnp.any(jnp.isnan(jax.jit(jax.jacrev(jax.jacrev(jaxsvd.spectral_norm)))(tie12))))
    # ... and finite where it exists, at the same kind of matrices
    ok_cases = [
        (jaxsvd.nuclear_norm, jnp.asarray(_rotated([2.0, 2.0, 1.0], 3, 3))),
        (jaxsvd.spectral_norm, tie23),
        (functools.partial(jaxsvd.ky_fan_norm, k=1), tie23),
        (functools.partial(jaxsvd.ky_fan_norm, k=3), tie23),
        (functools.partial(jaxsvd.ky_fan_norm, k=2), rankdef_tall),
        (functools.partial(jaxsvd.schatten_norm, p=3), rankdef_tall),
    ]
    for F, a in ok_cases:
        assert bool(jnp.all(jnp.isfinite(jhess(F)(a)))), F


def test_ky_fan_nan_matches_mpmath_where_finite():
    # Ky Fan 1 at s = (3, 2, 2, 1): s_1 simple, Hessian exists (the spectral norm)
    a_np = _rotated([3.0, 2.0, 2.0, 1.0], 4, 4)
    hess = jhess(functools.partial(jaxsvd.ky_fan_norm, k=1))(jnp.asarray(a_np))
    h1, h2 = _dirs((4, 4), seed=3)
    ref = R.mp_bilinear("spectral", a_np, h1, h2)
    assert abs(_hess_bilinear(hess, h1, h2) - ref) <= 1e-10 * max(abs(ref), 1.0)


# ---------------------------------------------------------------------------
# 6. bad input
# ---------------------------------------------------------------------------


def test_bad_input():
    a = jnp.ones((3, 3))
    with pytest.raises(ValueError, match="p >= 1"):
        jaxsvd.schatten_norm(a, 0.5)
    with pytest.raises(ValueError, match="p >= 1"):
        jaxsvd.schatten_norm(a, float("nan"))
    with pytest.raises(TypeError, match="static"):
        jax.jit(jaxsvd.schatten_norm)(a, 3.0)
    with pytest.raises(ValueError, match="1 <= k"):
        jaxsvd.ky_fan_norm(a, 4)
    with pytest.raises(ValueError, match="1 <= k"):
        jaxsvd.ky_fan_norm(a, 0)
    with pytest.raises(TypeError):
        jaxsvd.ky_fan_norm(a, 1.5)
    with pytest.raises(ValueError, match="at least 2"):
        jaxsvd.nuclear_norm(jnp.ones(3))
    with pytest.raises(ValueError, match="non-empty"):
        jaxsvd.nuclear_norm(jnp.ones((0, 3)))
    with pytest.raises(TypeError, match="float16"):
        jaxsvd.spectral_norm(jnp.ones((2, 2), jnp.float16))
    with pytest.raises(TypeError, match="callable"):
        jaxsvd.spectral_function(3)
    with pytest.raises(ValueError, match="scalar"):
        jaxsvd.spectral_function(lambda s: s)(a)
    with pytest.raises(TypeError, match="closes over a traced value"):
        jax.jit(lambda x, p: jaxsvd.spectral_function(lambda s: jnp.sum(s ** p))(x))(a, 2.0)
    # integer input is promoted like jnp.linalg.norm
    ai = jnp.eye(3, dtype=jnp.int32)
    assert jaxsvd.nuclear_norm(ai).dtype == jnp.linalg.norm(ai, "nuc").dtype
    assert float(jaxsvd.ky_fan_norm(np.diag([3.0, 2.0, 1.0]), np.int64(2))) == pytest.approx(5.0, rel=1e-14)


def test_no_retrace():
    F = jaxsvd.spectral_function(lambda s: jnp.sum(s ** 3))
    traces = []

    @jax.jit
    def loss(a):
        traces.append(1)
        return F(a) + jaxsvd.ky_fan_norm(a, 2) + jaxsvd.schatten_norm(a, 3)

    for seed in range(3):
        loss(gaussian((4, 3), seed=seed))
    assert len(traces) == 1
