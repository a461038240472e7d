"""Every transform combination on the public functions, in float32 and float64,
tall / wide / square, thin and full, with batch dimensions.  References are
JAX's own rules through jnp.linalg.svd (correct for these simple spectra).

Higher-order compositions run under jax.jit (the rules traced are the same; eager
op-by-op dispatch compiles every small operation of a nested rule separately and
cost ~7x more here); first-order ones also run eagerly."""

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
    ref_g, ref_f = jax.jit(lambda x: (jax.grad(g_ref)(x), jax.grad(f_ref)(x)))(a)
    assert max_rel_err(jax.grad(g_ours)(a), ref_g) < tol  # eager
    jg, fw, rv = jax.jit(lambda x: (jax.grad(g_ours)(x), jax.jacfwd(g_ours)(x), jax.jacrev(f_ours)(x)))(a)
    assert max_rel_err(jg, ref_g) < tol
    assert max_rel_err(fw, ref_g) < tol
    assert max_rel_err(rv, ref_f) < tol


def _hessians(f, g):
    return lambda a: (jax.hessian(f)(a), jax.hessian(g)(a))


_HESS_OURS, _HESS_REF = jax.jit(_hessians(f_ours, g_ours)), jax.jit(_hessians(f_ref, g_ref))


@pytest.mark.parametrize("shape", SHAPES)
def test_second_order_transforms(shape):
    a = gaussian(shape, 1)
    (hf, hg), (ref_f, ref_h) = _HESS_OURS(a), _HESS_REF(a)
    assert max_rel_err(hf, ref_f) < 1e-10
    assert max_rel_err(hg, ref_h) < 1e-10
    if shape == (4, 4):
        rr, ff = jax.jit(lambda x: (jax.jacrev(jax.jacrev(g_ours))(x), jax.jacfwd(jax.jacfwd(g_ours))(x)))(a)
        assert max_rel_err(rr, ref_h) < 1e-10
        assert max_rel_err(ff, ref_h) < 1e-10


def test_second_order_float32():
    a = gaussian((3, 5), 1, jnp.float32)
    ref = jax.jit(jax.hessian(f_ref))(a.astype(jnp.float64))
    assert max_rel_err(jax.jit(jax.hessian(f_ours))(a), ref) < 1e-3


def test_batched_transforms():
    b = gaussian((3, 5, 4), 2)

    def all_routes(f, g, svdvals):
        def run(b):
            return (jax.vmap(jax.hessian(f))(b),
                    # hessian of a vmapped function, grad inside vmap, jacobian of batched svdvals
                    jax.hessian(lambda x: jnp.sum(jax.vmap(f)(x)))(b),
                    jax.vmap(jax.grad(g))(b), jax.jacfwd(svdvals)(b))
        return jax.jit(run)

    vh, hv, vg, jf = all_routes(f_ours, g_ours, jaxsvd.svdvals)(b)
    rvh, rhv, rvg, rjf = all_routes(f_ref, g_ref, jnp.linalg.svdvals)(b)
    assert max_rel_err(vh, rvh) < 1e-10
    assert max_rel_err(hv, rhv) < 1e-10
    assert max_rel_err(vg, rvg) < 1e-10
    assert max_rel_err(jf, rjf) < 1e-12
    # vmap over a non-leading axis
    bt = jnp.moveaxis(b, 0, 2)
    got = jax.vmap(jaxsvd.svdvals, in_axes=2)(bt)
    np.testing.assert_allclose(got, jnp.linalg.svdvals(b), rtol=1e-13)


@pytest.mark.parametrize("full", [False, True])
def test_jvp_full_and_thin(full):
    a, h = gaussian((5, 3), 3), gaussian((5, 3), 4)
    (U, S, Vt), (dU, dS, dVt) = jax.jvp(lambda x: tuple(jaxsvd.svd(x, full_matrices=full)), (a,), (h,))
    (rU0, _, rVt0), (rU, rS, rVt) = jax.jvp(lambda x: tuple(jnp.linalg.svd(x, full_matrices=False)), (a,), (h,))
    assert max_rel_err(dS, rS) < 1e-12
    # the full and thin routines may choose other signs (GPU): compare the derivatives
    # of the sign-free projectors u_k u_k^T and v_k v_k^T
    dproj = lambda x, dx: dx[:, None, :] * x[None, :, :] + x[:, None, :] * dx[None, :, :]  # noqa: E731
    assert max_rel_err(dproj(U[:, :3], dU[:, :3]), dproj(rU0, rU)) < 1e-12
    assert max_rel_err(dproj(Vt[:3].T, dVt[:3].T), dproj(rVt0.T, rVt.T)) < 1e-12
    if full:  # U(t) stays orthogonal: U^T dU skew, extra columns orthogonal to the range
        w = U.T @ dU
        assert float(jnp.abs(w + w.T).max()) < 1e-12


@pytest.mark.slow
def test_jet_compositions():
    a, t1, t2 = gaussian((5, 4), 5), gaussian((5, 4), 6), gaussian((5, 4), 7)
    b, tb = gaussian((3, 5, 4), 8), gaussian((3, 5, 4), 9)
    hvp = lambda x: jax.jvp(jax.grad(lambda y: jaxsvd.singular_triplet(y, 1)[0]), (x,), (t1,))[1]
    hvp_r = lambda x: jax.jvp(jax.grad(lambda y: jnp.linalg.svdvals(y)[1]), (x,), (t1,))[1]

    @jax.jit
    def ours(a, b, tb):
        return dict(
            jet_of_grad=jet.jet(jax.grad(f_ours), (a,), ([t1, t2],)),
            grad_of_jet=jax.grad(lambda x: jnp.sum(jet.jet(jaxsvd.svdvals, (x,), ([t1, t2],))[1][1]))(a),
            vmap_of_jet=jax.vmap(lambda x, t: jnp.stack(jet.jet(jaxsvd.svdvals, (x,), ([t, t],))[1]))(b, tb),
            jet_of_vmap=jnp.stack(jet.jet(jax.vmap(jaxsvd.svdvals), (b,), ([tb, tb],))[1], axis=1),
            # jet of a hessian-vector product (third order) through singular_triplet
            jet_of_hvp=jet.jet(hvp, (a,), ([t2],))[1][0])

    @jax.jit
    def refs(a, b, tb):
        return dict(
            jet_of_grad=nested_jvp_derivatives(jax.grad(f_ref), a, [t1, t2], 2),
            grad_of_jet=jax.grad(lambda x: jnp.sum(nested_jvp_derivatives(jnp.linalg.svdvals, x, [t1, t2], 2)[2]))(a),
            batch=jax.vmap(lambda x, t: nested_jvp_derivatives(jnp.linalg.svdvals, x, [t, t], 2))(b, tb),
            jet_of_hvp=jax.jvp(hvp_r, (a,), (t2,))[1])

    got, ref = ours(a, b, tb), refs(a, b, tb)
    o, r = got["jet_of_grad"], ref["jet_of_grad"]
    assert max_rel_err(o[0], r[0]) < 1e-12
    assert max_rel_err(o[1][0], r[1]) < 1e-10 and max_rel_err(o[1][1], r[2]) < 1e-10
    assert max_rel_err(got["grad_of_jet"], ref["grad_of_jet"]) < 1e-10
    # vmap of jet, jet of vmap (all inside jit; jet outside jit: test_series.py)
    for x in (got["vmap_of_jet"], got["jet_of_vmap"]):
        assert max_rel_err(x, ref["batch"][:, 1:]) < 1e-10
    assert max_rel_err(got["jet_of_hvp"], ref["jet_of_hvp"]) < 1e-9


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_derivatives_batched_and_jitted(dtype):
    b, hb = gaussian((2, 3, 5), 10, dtype), gaussian((2, 3, 5), 11, dtype)
    got = jax.jit(jaxsvd.derivatives, static_argnums=2)(b, hb, 4)
    assert got.shape == (5, 2, 3) and got.dtype == dtype
    ref = jax.jit(jax.vmap(lambda x, y: nested_jvp_derivatives(jnp.linalg.svdvals, x, [y], 4), out_axes=1))(
        b.astype(jnp.float64), hb.astype(jnp.float64))
    assert max_rel_err(got, ref) < (1e-10 if dtype == jnp.float64 else 1e-4)


@pytest.mark.slow
def test_singular_triplet_transforms():
    a, h = gaussian((4, 6), 12), gaussian((4, 6), 13)
    b = gaussian((3, 4, 6), 14)
    z = jnp.zeros_like(h)

    def routes(trip, svd_u):
        @jax.jit
        def run(a, b):
            out = {"hess0": jax.hessian(lambda x: trip(x, 0)[0])(a), "hess3": jax.hessian(lambda x: trip(x, 3)[0])(a),
                   "nested3": nested_jvp_derivatives(lambda x: trip(x, 3)[0], a, [h], 3),
                   # vectors: the sign-invariant projector u u^T
                   "proj": jax.jacfwd(lambda x: jnp.outer(svd_u(x, 3), svd_u(x, 3)))(a),
                   "vmap_hess": jax.vmap(jax.hessian(lambda x: trip(x, 1)[0]))(b)}
            if trip is jaxsvd.singular_triplet:
                out["jet3"] = jnp.stack(jet.jet(lambda x: trip(x, 3)[0], (a,), ([h, z, z],))[1])
            return out
        return run

    got = routes(jaxsvd.singular_triplet, lambda x, k: jaxsvd.singular_triplet(x, k)[1])(a, b)
    ref = routes(lambda x, k: (jnp.linalg.svdvals(x)[k],),
                 lambda x, k: jnp.linalg.svd(x, full_matrices=False)[0][:, k])(a, b)
    for name in ("hess0", "hess3", "nested3", "proj", "vmap_hess"):
        assert max_rel_err(got[name], ref[name]) < 1e-10, name
    assert max_rel_err(got["jet3"], ref["nested3"][1:]) < 1e-10


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
