"""jaxsvd.jacobian / hessian / hvp against nested float64 autodiff through
jnp.linalg.svd (the independent reference), plus layouts, transforms,
degeneracy and errors."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import SHAPES, assert_fd_close, gaussian, max_rel_err, richardson, rtol, with_singular_values

import jaxsvd


def _ref_hessian(a, k):
    return jax.hessian(lambda b: jnp.linalg.svdvals(b)[k])(a)


def _fd_hessian(a, k, step=1e-3):
    """Richardson-extrapolated central differences of the gradient u_k v_k^T (numpy
    LAPACK), for a simple sigma_k: ``(value, err)`` as :func:`helpers.richardson`."""
    a = np.asarray(a, np.float64)

    def grad(b):
        u, _, vt = np.linalg.svd(b)
        return np.outer(u[:, k], vt[k])

    out, err = np.zeros(a.shape + a.shape), np.zeros(a.shape + a.shape)
    for idx in np.ndindex(*a.shape):
        e = np.zeros_like(a)
        e[idx] = 1.0
        out[(...,) + idx], err[(...,) + idx] = richardson(lambda t, e=e: grad(a + t * e), step)
    return out, err


def _ks(shape):
    r = min(shape)
    return [0, r // 2, r - 1]


CASES = [(shape, k) for shape in SHAPES for k in _ks(shape)]


@pytest.mark.parametrize("shape,k", CASES, ids=[f"{s[0]}x{s[1]}-k{k}" for s, k in CASES])
def test_hessian_matches_nested_autodiff(shape, k):
    a = gaussian(shape, seed=3)
    ref = _ref_hessian(a, k)
    got = jaxsvd.hessian(a, k)
    assert got.shape == shape + shape and got.dtype == jnp.float64
    assert max_rel_err(got, ref) <= 1e-10
    # vec layout: column-major vec(A) index p + q*m, built independently from the reference
    m, n = shape
    ref_vec = np.asarray(ref).transpose(1, 0, 3, 2).reshape(m * n, m * n)
    got_vec = jaxsvd.hessian(a, k, layout="vec")
    assert got_vec.shape == (m * n, m * n)
    assert max_rel_err(got_vec, ref_vec) <= 1e-10
    # ... and equals the column-major reshaping of the tensor layout
    np.testing.assert_allclose(
        got_vec,
        np.asarray(got).reshape(m, n, m, n).transpose(1, 0, 3, 2).reshape(m * n, m * n),
        rtol=1e-13,
        atol=1e-14,
    )


def test_vec_layout_matches_column_major_vec_of_hvp():
    # D^2 sigma[H, G] = vec(G)^T Hess_vec vec(H) with column-major vec
    m, n = 4, 6
    a, h, g = gaussian((m, n), 1), gaussian((m, n), 2), gaussian((m, n), 3)
    hv = jaxsvd.hessian(a, 2, layout="vec")
    vec = lambda x: np.asarray(x).reshape(-1, order="F")  # noqa: E731
    ref = jax.jvp(jax.grad(lambda b: jnp.linalg.svdvals(b)[2]), (a,), (h,))[1]
    assert max_rel_err(vec(g) @ np.asarray(hv) @ vec(h), float(jnp.vdot(g, ref))) <= 1e-10


@pytest.mark.parametrize("shape", SHAPES)
def test_hvp_matches_autodiff(shape):
    a, h = gaussian(shape, 5), gaussian(shape, 6)
    for k in _ks(shape):
        ref = jax.jvp(jax.grad(lambda b, k=k: jnp.linalg.svdvals(b)[k]), (a,), (h,))[1]
        got = jaxsvd.hvp(a, k, h)
        assert got.shape == shape
        assert max_rel_err(got, ref) <= 1e-10
        # and equals the Hessian contracted with h
        full = jnp.einsum("pqrs,rs->pq", jaxsvd.hessian(a, k), h)
        assert max_rel_err(got, full) <= 1e-12


@pytest.mark.parametrize("shape", SHAPES + [(6, 10)])
def test_jacobian_matches_autodiff(shape):
    a = gaussian(shape, 7)
    got = jaxsvd.jacobian(a)
    assert got.shape == (min(shape),) + shape
    assert max_rel_err(got, jax.jacfwd(jnp.linalg.svdvals)(a)) <= 1e-12


def test_paper_size_and_negative_k():
    a = gaussian((6, 10), 11)
    assert max_rel_err(jaxsvd.hessian(a, 5), _ref_hessian(a, 5)) <= 1e-10
    with pytest.raises(ValueError, match="k=-1 is out of range"):   # no Python-style negative index
        jaxsvd.hessian(a, -1)


def test_diagonal_closed_form():
    # A = diag(2, 1), sigma_1(A + t E_12) = 2 + t^2/3 + O(t^4): D^2 = 2/3;
    # sigma_1 sigma_2 = det = 2 is constant, so sigma_2 = 1 - t^2/6 + ...: D^2 = -1/3
    a = jnp.diag(jnp.array([2.0, 1.0], jnp.float64))
    h = jnp.zeros((2, 2), jnp.float64).at[0, 1].set(1.0)
    np.testing.assert_allclose(jaxsvd.hessian(a, 0)[0, 1, 0, 1], 2 / 3, rtol=1e-14)
    np.testing.assert_allclose(jnp.vdot(h, jaxsvd.hvp(a, 1, h)), -1 / 3, rtol=1e-14)


@pytest.mark.parametrize("shape", SHAPES)
def test_float32(shape):
    a64 = gaussian(shape, 8)
    a32 = a64.astype(jnp.float32)
    k = min(shape) // 2
    ref = _ref_hessian(a64, k)
    got = jaxsvd.hessian(a32, k)
    assert got.dtype == jnp.float32
    assert max_rel_err(got, ref) <= rtol(jnp.float32)
    h64 = gaussian(shape, 9)  # (not a itself: sigma is 1-homogeneous, so Hess[a] = 0)
    got = jaxsvd.hvp(a32, k, h64.astype(jnp.float32))
    assert got.dtype == jnp.float32
    assert max_rel_err(got, jnp.einsum("pqrs,rs->pq", ref, h64)) <= rtol(jnp.float32)
    assert jaxsvd.jacobian(a32).dtype == jnp.float32


def test_scale_invariance_float32():
    # sigma(cA) = c sigma(A): the Hessian scales like 1/c; no sigma^2 is formed (jax #40185)
    a = with_singular_values(4, 3, [3.0, 2.0, 0.5], seed=2, dtype=jnp.float32)
    base = np.asarray(jaxsvd.hessian(a, 1), np.float64)
    for c in (1e-20, 1e20):
        got = np.asarray(jaxsvd.hessian(a * jnp.float32(c), 1), np.float64) * c
        assert np.all(np.isfinite(got))
        assert max_rel_err(got, base) <= 1e-4


def test_jit_and_vmap():
    batch = jnp.stack([gaussian((3, 4), s) for s in range(3)])
    dirs = jnp.stack([gaussian((3, 4), 10 + s) for s in range(3)])
    got = jax.jit(jax.vmap(lambda a: jaxsvd.hessian(a, 1)))(batch)
    got_vec = jax.vmap(lambda a: jaxsvd.hessian(a, 1, layout="vec"))(batch)
    got_hvp = jax.vmap(lambda a, h: jaxsvd.hvp(a, 1, h))(batch, dirs)
    got_jac = jax.vmap(jaxsvd.jacobian)(batch)
    for i in range(3):
        ref = _ref_hessian(batch[i], 1)
        assert max_rel_err(got[i], ref) <= 1e-10
        assert max_rel_err(got_vec[i], np.asarray(ref).transpose(1, 0, 3, 2).reshape(12, 12)) <= 1e-10
        assert max_rel_err(got_hvp[i], jnp.einsum("pqrs,rs->pq", ref, dirs[i])) <= 1e-10
        assert max_rel_err(got_jac[i], jax.jacfwd(jnp.linalg.svdvals)(batch[i])) <= 1e-12
    assert (
        max_rel_err(
            jax.jit(jaxsvd.hvp, static_argnums=1)(batch[0], 2, dirs[0]),
            got_hvp[0] * 0 + jaxsvd.hvp(batch[0], 2, dirs[0]),
        )
        <= 1e-13
    )


def test_differentiable_third_derivative():
    # d/dA of sum(Hessian) and the jvp of the HVP agree with third-order nested autodiff
    a, h = gaussian((3, 2), 21), gaussian((3, 2), 22)
    k = 1
    ref = jax.grad(lambda b: jnp.sum(_ref_hessian(b, k)))(a)
    assert max_rel_err(jax.grad(lambda b: jnp.sum(jaxsvd.hessian(b, k)))(a), ref) <= 1e-9
    ref3 = jax.jvp(
        lambda b: jax.jvp(jax.grad(lambda c: jnp.linalg.svdvals(c)[k]), (b,), (h,))[1], (a,), (h,)
    )[1]
    got3 = jax.jvp(lambda b: jaxsvd.hvp(b, k, h), (a,), (h,))[1]
    assert max_rel_err(got3, ref3) <= 1e-9


def test_nan_at_degenerate_sigma_k():
    # sigma = (2, 2, 1): sigma_1 = sigma_2 coincide; sigma_3 simple
    a = with_singular_values(4, 3, [2.0, 2.0, 1.0], seed=4)
    h = gaussian((4, 3), 5)
    for k in (0, 1):
        assert bool(jnp.all(jnp.isnan(jaxsvd.hessian(a, k))))
        assert bool(jnp.all(jnp.isnan(jaxsvd.hvp(a, k, h))))
    # the simple one stays exact.  Reference: central differences of its gradient
    # u_3 v_3^T from numpy's LAPACK SVD (jax.hessian through jnp.linalg.svd is NaN
    # here on some builds: its rule divides by sigma_1^2 - sigma_2^2 = 0 for every k)
    assert_fd_close(jaxsvd.hessian(a, 2), _fd_hessian(a, 2), 1e-7)
    # sigma_k = 0 (square, rank deficient): NaN; the nonzero simple ones stay exact
    b = with_singular_values(3, 3, [3.0, 1.0, 0.0], seed=6)
    assert bool(jnp.all(jnp.isnan(jaxsvd.hessian(b, 2, layout="vec"))))
    assert max_rel_err(jaxsvd.hessian(b, 0), _ref_hessian(b, 0)) <= 1e-9
    # identity: every sigma coincides
    assert bool(jnp.all(jnp.isnan(jaxsvd.hessian(jnp.eye(3), 1))))
    # NaN also in reverse mode through the Hessian (never a silent finite value)
    g = jax.grad(lambda x: jnp.sum(jaxsvd.hessian(x, 0)))(a)
    assert bool(jnp.all(jnp.isnan(g)))


def test_errors():
    a = gaussian((3, 4), 0)
    with pytest.raises(ValueError, match="2-D"):
        jaxsvd.hessian(jnp.ones((2, 3, 4)), 0)
    with pytest.raises(ValueError, match="at least 2"):
        jaxsvd.hessian(jnp.ones(4), 0)
    with pytest.raises(ValueError, match="2-D"):
        jaxsvd.jacobian(jnp.ones((2, 3, 4)))
    with pytest.raises(ValueError, match="out of range"):
        jaxsvd.hessian(a, 3)
    with pytest.raises(ValueError, match="out of range"):
        jaxsvd.hvp(a, -4, a)
    with pytest.raises(ValueError, match="layout"):
        jaxsvd.hessian(a, 0, layout="kron")
    with pytest.raises(ValueError, match="shape"):
        jaxsvd.hvp(a, 0, a.T)
    with pytest.raises(TypeError, match="static"):
        jaxsvd.hessian(a, 0.5)
    with pytest.raises(ValueError, match="non-empty"):
        jaxsvd.hessian(jnp.ones((0, 3)), 0)
    with pytest.raises(NotImplementedError, match="real wrapper"):
        jaxsvd.hessian(jnp.ones((2, 2), jnp.complex64), 0)
