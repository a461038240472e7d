"""Every transform combination on the public functions, in float32 and float64,
tall / wide / square, thin and full, with batch dimensions.  References are
JAX's own rules through jnp.linalg.svd (correct for these simple spectra)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import SHAPES, gaussian, max_rel_err, nested_jvp_derivatives, rtol
from jax.experimental import jet

import jaxsvd


def f_ours(a):
    s = jaxsvd.svdvals(a)
    return jnp.sum(jnp.sin(s) * jnp.arange(1, s.shape[-1] + 1, dtype=s.dtype))


def f_ref(a):
    s = jnp.linalg.svdvals(a)
    return jnp.sum(jnp.sin(s) * jnp.arange(1, s.shape[-1] + 1, dtype=s.dtype))


def g_ours(a):  # gauge-invariant use of the vectors: the projector on u_0 and v_0
    u, s, vt = jaxsvd.svd(a, full_matrices=False)
    return jnp.sum(jnp.outer(u[:, 0], u[:, 0]) * (a @ a.T)) + jnp.sum(vt[0] ** 2 * s[0] ** 2) + s[-1]


def g_ref(a):
    u, s, vt = jnp.linalg.svd(a, full_matrices=False)
    return jnp.sum(jnp.outer(u[:, 0], u[:, 0]) * (a @ a.T)) + jnp.sum(vt[0] ** 2 * s[0] ** 2) + s[-1]


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_first_order_transforms(shape, dtype):
    a = gaussian(shape, 1, dtype)
    tol = rtol(dtype)
    ref_g = jax.grad(g_ref)(a)
    assert max_rel_err(jax.grad(g_ours)(a), ref_g) < tol
    assert max_rel_err(jax.jit(jax.grad(g_ours))(a), ref_g) < tol
    assert max_rel_err(jax.jacfwd(g_ours)(a), ref_g) < tol
    assert max_rel_err(jax.jacrev(f_ours)(a), jax.grad(f_ref)(a)) < tol


@pytest.mark.parametrize("shape", SHAPES)
def test_second_order_transforms(shape):
    a = gaussian(shape, 1)
    assert max_rel_err(jax.hessian(f_ours)(a), jax.hessian(f_ref)(a)) < 1e-10
    ref_h = jax.hessian(g_ref)(a)
    assert max_rel_err(jax.hessian(g_ours)(a), ref_h) < 1e-10
    if shape == (4, 4):
        assert max_rel_err(jax.jacrev(jax.jacrev(g_ours))(a), ref_h) < 1e-10
        assert max_rel_err(jax.jacfwd(jax.jacfwd(g_ours))(a), ref_h) < 1e-10


def test_second_order_float32():
    a = gaussian((3, 5), 1, jnp.float32)
    ref = jax.hessian(f_ref)(a.astype(jnp.float64))
    assert max_rel_err(jax.hessian(f_ours)(a), ref) < 1e-3


def test_batched_transforms():
    b = gaussian((3, 5, 4), 2)
    ref = jax.vmap(jax.hessian(f_ref))(b)
    assert max_rel_err(jax.vmap(jax.hessian(f_ours))(b), ref) < 1e-10
    assert max_rel_err(jax.jit(jax.vmap(jax.hessian(f_ours)))(b), ref) < 1e-10
    # hessian of a vmapped function, grad inside vmap, jacobian of batched svdvals
    hv = jax.hessian(lambda x: jnp.sum(jax.vmap(f_ours)(x)))(b)
    hr = jax.hessian(lambda x: jnp.sum(jax.vmap(f_ref)(x)))(b)
    assert max_rel_err(hv, hr) < 1e-10
    assert max_rel_err(jax.vmap(jax.grad(g_ours))(b), jax.vmap(jax.grad(g_ref))(b)) < 1e-10
    assert max_rel_err(jax.jacfwd(jaxsvd.svdvals)(b), jax.jacfwd(jnp.linalg.svdvals)(b)) < 1e-12
    # vmap over a non-leading axis
    bt = jnp.moveaxis(b, 0, 2)
    got = jax.vmap(jaxsvd.svdvals, in_axes=2)(bt)
    np.testing.assert_allclose(got, jnp.linalg.svdvals(b), rtol=1e-13)


@pytest.mark.parametrize("full", [False, True])
def test_jvp_full_and_thin(full):
    a, h = gaussian((5, 3), 3), gaussian((5, 3), 4)
    (U, S, Vt), (dU, dS, dVt) = jax.jvp(lambda x: tuple(jaxsvd.svd(x, full_matrices=full)), (a,), (h,))
    (_, _, _), (rU, rS, rVt) = jax.jvp(lambda x: tuple(jnp.linalg.svd(x, full_matrices=False)), (a,), (h,))
    assert max_rel_err(dS, rS) < 1e-12
    assert max_rel_err(dU[:, :3], rU) < 1e-12
    assert max_rel_err(dVt[:3], rVt) < 1e-12
    if full:  # U(t) stays orthogonal: U^T dU skew, extra columns orthogonal to the range
        w = U.T @ dU
        assert float(jnp.abs(w + w.T).max()) < 1e-12


@pytest.mark.slow
def test_jet_compositions():
    a, t1, t2 = gaussian((5, 4), 5), gaussian((5, 4), 6), gaussian((5, 4), 7)
    # jet of grad
    o = jet.jet(jax.grad(f_ours), (a,), ([t1, t2],))
    ref = nested_jvp_derivatives(jax.grad(f_ref), a, [t1, t2], 2)
    assert max_rel_err(o[0], ref[0]) < 1e-12
    assert max_rel_err(o[1][0], ref[1]) < 1e-10 and max_rel_err(o[1][1], ref[2]) < 1e-10
    # grad of jet
    gj = jax.grad(lambda x: jnp.sum(jet.jet(jaxsvd.svdvals, (x,), ([t1, t2],))[1][1]))(a)
    gr = jax.grad(lambda x: jnp.sum(nested_jvp_derivatives(jnp.linalg.svdvals, x, [t1, t2], 2)[2]))(a)
    assert max_rel_err(gj, gr) < 1e-10
    # jet inside jit, vmap of jet, jet of vmap
    b, tb = gaussian((3, 5, 4), 8), gaussian((3, 5, 4), 9)
    ref_b = jax.vmap(lambda x, t: nested_jvp_derivatives(jnp.linalg.svdvals, x, [t, t], 2))(b, tb)
    vj = jax.vmap(lambda x, t: jnp.stack(jet.jet(jaxsvd.svdvals, (x,), ([t, t],))[1]))(b, tb)
    jv = jnp.stack(jet.jet(jax.vmap(jaxsvd.svdvals), (b,), ([tb, tb],))[1], axis=1)
    jj = jnp.stack(jax.jit(lambda x, t: jet.jet(jaxsvd.svdvals, (x,), ([t, t],))[1])(b, tb), axis=1)
    for got in (vj, jv, jj):
        assert max_rel_err(got, ref_b[:, 1:]) < 1e-10
    # jet of hessian-vector product (third order) through singular_triplet
    hvp = lambda x: jax.jvp(jax.grad(lambda y: jaxsvd.singular_triplet(y, 1)[0]), (x,), (t1,))[1]
    hvp_r = lambda x: jax.jvp(jax.grad(lambda y: jnp.linalg.svdvals(y)[1]), (x,), (t1,))[1]
    o = jet.jet(hvp, (a,), ([t2],))
    assert max_rel_err(o[1][0], jax.jvp(hvp_r, (a,), (t2,))[1]) < 1e-9


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_derivatives_batched_and_jitted(dtype):
    b, hb = gaussian((2, 3, 5), 10, dtype), gaussian((2, 3, 5), 11, dtype)
    got = jax.jit(jaxsvd.derivatives, static_argnums=2)(b, hb, 4)
    assert got.shape == (5, 2, 3) and got.dtype == dtype
    ref = jnp.stack([nested_jvp_derivatives(jnp.linalg.svdvals, b[i].astype(jnp.float64),
                                            [hb[i].astype(jnp.float64)], 4) for i in range(2)], axis=1)
    assert max_rel_err(got, ref) < (1e-10 if dtype == jnp.float64 else 1e-4)


@pytest.mark.slow
def test_singular_triplet_transforms():
    a, h = gaussian((4, 6), 12), gaussian((4, 6), 13)
    for k in (0, 3):
        ref_h = jax.hessian(lambda x: jnp.linalg.svdvals(x)[k])(a)
        assert max_rel_err(jax.hessian(lambda x: jaxsvd.singular_triplet(x, k)[0])(a), ref_h) < 1e-10
        if k == 0:
            continue
        got = nested_jvp_derivatives(lambda x: jaxsvd.singular_triplet(x, k)[0], a, [h], 3)
        ref = nested_jvp_derivatives(lambda x: jnp.linalg.svdvals(x)[k], a, [h], 3)
        assert max_rel_err(got, ref) < 1e-10
        jt = jet.jet(lambda x: jaxsvd.singular_triplet(x, k)[0], (a,), ([h, 0 * h, 0 * h],))
        assert max_rel_err(jnp.stack(jt[1]), ref[1:]) < 1e-10
        # vectors: sign-invariant projector u u^T
        pu = lambda x: jnp.outer(*(jaxsvd.singular_triplet(x, k)[1],) * 2)
        pr = lambda x: jnp.outer(*(jnp.linalg.svd(x, full_matrices=False)[0][:, k],) * 2)
        assert max_rel_err(jax.jacfwd(pu)(a), jax.jacfwd(pr)(a)) < 1e-10
    b = gaussian((3, 4, 6), 14)
    vh = jax.vmap(jax.hessian(lambda x: jaxsvd.singular_triplet(x, 1)[0]))(b)
    vr = jax.vmap(jax.hessian(lambda x: jnp.linalg.svdvals(x)[1]))(b)
    assert max_rel_err(vh, vr) < 1e-10


def test_static_arguments_do_not_retrace():
    traces = []

    @jax.jit
    def f(a, h):
        traces.append(1)
        return jaxsvd.derivatives(a, h, 3) + jaxsvd.singular_triplet(a, 1)[0]

    a, h = gaussian((4, 3), 15), gaussian((4, 3), 16)
    for i in range(3):
        f(a + i, h).block_until_ready()
    assert len(traces) == 1
