"""The degeneracy policy: derivatives that do not exist are NaN, everything
else stays exact (docs/degeneracy.md).  References: mpmath block-operator
series and finite differences of JAX's first-order rule (exact for simple
singular values) -- jnp.linalg.svd's own Hessian is NaN at these matrices."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _ref_mpmath import sigma_derivatives
from helpers import assert_fd_close, gaussian, max_rel_err, orthogonal, richardson, with_singular_values
from jax.experimental import jet

import jaxsvd

A = with_singular_values(5, 4, [3.0, 2.0, 2.0, 0.5], seed=2)  # sigma_2 = sigma_3
H = gaussian((5, 4), 9)


def fd_hessian_vec(k, a, e, step=1e-3):
    """d/dt grad sigma_k(a + t e) by Richardson-extrapolated central differences of
    jnp's exact gradient u_k v_k^T: ``(value, err)`` as :func:`helpers.richardson`."""
    g = jax.jit(jax.grad(lambda x: jnp.linalg.svdvals(x)[k]))
    return richardson(lambda t: g(a + t * e), step)


def test_simple_values_exact_to_order_6_next_to_a_tie():
    got = np.asarray(jaxsvd.derivatives(A, H, 6))
    for k in (0, 3):
        assert max_rel_err(got[:, k], sigma_derivatives(np.asarray(A), np.asarray(H), k, 6)) < 1e-9
    assert np.isfinite(got[:2]).all()  # orders 0 and 1 of every value exist
    assert np.isnan(got[2:, 1:3]).all()  # higher orders of the tied values do not


@pytest.mark.parametrize("route", ["hessian", "jacrev2", "jacfwd2"])
def test_hessian_of_simple_value_exact_tied_values_nan(route):
    tr = {"hessian": jax.hessian, "jacrev2": lambda f: jax.jacrev(jax.jacrev(f)),
          "jacfwd2": lambda f: jax.jacfwd(jax.jacfwd(f))}[route]
    # one compiled program per route (eager dispatch of the nested rules costs ~7x more)
    h0, h1, h2 = jax.jit(lambda a: [tr(lambda x, k=k: jaxsvd.svdvals(x)[k])(a) for k in range(3)])(A)
    assert_fd_close(jnp.einsum("ijkl,kl->ij", h0, H), fd_hessian_vec(0, A, H), 1e-8)
    for hk in (h1, h2):
        assert bool(jnp.isnan(hk).all())
    if route != "hessian":
        return
    h3 = jax.jit(jax.hessian(lambda a: jaxsvd.singular_triplet(a, 3)[0]))(A)
    assert_fd_close(jnp.einsum("ijkl,kl->ij", h3, H), fd_hessian_vec(3, A, H), 1e-8)


def test_vectors_of_tied_values_are_nan_others_exact():
    (U, S, Vt), (dU, dS, dVt) = jax.jvp(lambda a: tuple(jaxsvd.svd(a, full_matrices=False)), (A,), (H,))
    assert bool(jnp.isnan(dU[:, 1:3]).all()) and bool(jnp.isnan(dVt[1:3]).all())
    assert bool(jnp.isfinite(dU[:, [0, 3]]).all()) and bool(jnp.isfinite(dS).all())
    # reverse mode: a function of u_0 only is exact, one of u_1 is NaN
    f = jax.jit(lambda a: jnp.linalg.svd(a, full_matrices=False)[0][0, 0] ** 2)
    fd = richardson(lambda e: f(A + e * H), 1e-3)
    g = jax.grad(lambda a: jaxsvd.svd(a, full_matrices=False)[0][0, 0] ** 2)(A)
    assert_fd_close(jnp.sum(g * H), fd, 1e-8, rel=False)
    g1 = jax.grad(lambda a: jaxsvd.svd(a, full_matrices=False)[0][0, 1] ** 2)(A)
    assert bool(jnp.isnan(g1).all())
    # jet through the vectors: the tied columns are NaN from order 1 on
    _, (us, _, _) = jet.jet(lambda a: tuple(jaxsvd.svd(a, full_matrices=False)), (A,), ([H, 0 * H],))
    assert bool(jnp.isnan(us[0][:, 1:3]).all()) and bool(jnp.isfinite(us[1][:, [0, 3]]).all())


def test_nested_third_derivative_is_nan_not_wrong_next_to_a_tie():
    """Nested differentiation of a first-order rule cannot see the first-order
    coupling inside a cluster; jaxsvd returns NaN there (jet stays exact)."""
    f = lambda a: jaxsvd.svdvals(a)[0]
    d1 = lambda a: jax.jvp(f, (a,), (H,))[1]
    d2 = lambda a: jax.jvp(d1, (a,), (H,))[1]
    d3 = jax.jvp(d2, (A,), (H,))[1]
    ref = sigma_derivatives(np.asarray(A), np.asarray(H), 0, 3)
    assert abs(float(d2(A)) - ref[2]) < 1e-9 * abs(ref[2])
    assert np.isnan(float(d3))
    assert abs(float(jaxsvd.derivatives(A, H, 3)[3, 0]) - ref[3]) < 1e-9 * abs(ref[3])


def test_identity_and_orthogonal():
    for a in (jnp.eye(4), jnp.asarray(orthogonal(4, 3))):
        d = jaxsvd.derivatives(a, gaussian((4, 4), 1), 3)
        assert bool(jnp.isfinite(d[:2]).all()) and bool(jnp.isnan(d[2:]).all())
        assert bool(jnp.isnan(jax.hessian(lambda x: jaxsvd.svdvals(x)[0])(a)).all())
        # the first derivative exists as a one-sided directional derivative and
        # is returned like JAX's rule does: u_k v_k^T
        g = jax.grad(lambda x: jnp.sum(jaxsvd.svdvals(x)))(a)
        np.testing.assert_allclose(g, jax.grad(lambda x: jnp.sum(jnp.linalg.svdvals(x)))(a), atol=1e-12)


def test_zero_singular_values():
    a = with_singular_values(5, 3, [2.0, 1.0, 0.0], seed=4)  # rank deficient, tall
    h = gaussian((5, 3), 5)
    d = jaxsvd.derivatives(a, h, 4)
    for k in (0, 1):
        assert max_rel_err(d[:, k], sigma_derivatives(np.asarray(a), np.asarray(h), k, 4)) < 1e-9
    assert bool(jnp.isnan(d[2:, 2]).all())
    (_, _, _), (dU, _, _) = jax.jvp(lambda x: tuple(jaxsvd.svd(x)), (a,), (h,))
    assert bool(jnp.isnan(dU[:, 2:]).all())  # u_3 and the null-space columns
    assert bool(jnp.isfinite(dU[:, :2]).all())
    # square with a simple zero: sigma(t) = |c t| is not differentiable twice
    sq = with_singular_values(3, 3, [2.0, 1.0, 0.0], seed=6)
    assert bool(jnp.isnan(jaxsvd.derivatives(sq, gaussian((3, 3), 7), 2)[2, 2]))
    # zero matrix: all NaN from order 2 on, no exception
    z = jaxsvd.derivatives(jnp.zeros((3, 2)), gaussian((3, 2), 8), 2)
    assert bool(jnp.isnan(z[2]).all()) and bool(jnp.isfinite(z[:2]).all())


def test_near_tie_is_exact_not_nan():
    """A gap of 1e-6 relative is not a tie: derivatives are finite and exact."""
    a = with_singular_values(4, 4, [3.0, 2.0 + 2e-6, 2.0, 1.0], seed=7)
    h = gaussian((4, 4), 8)
    d = jaxsvd.derivatives(a, h, 3)
    for k in range(4):
        ref = sigma_derivatives(np.asarray(a), np.asarray(h), k, 3)
        assert max_rel_err(d[:, k], ref) < 1e-6
