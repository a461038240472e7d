"""Every public function with leading batch dimensions, under the strict settings
of conftest.py (``jax_numpy_rank_promotion="raise"``, strict dtype promotion):
its JVP, transpose, batching and Taylor rules.  Batched results are compared with
the same function applied to each matrix (under ``jax.vmap`` or one by one), and
the issue's input with the result computed with rank promotion allowed.
Matrices are small (<= 4 x 4) and orders low: compile time dominates."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import gaussian, max_rel_err
from jax.experimental import jet

import jaxsvd
import jaxsvd.montecarlo as mc

TOL = 1e-10  # float64 throughout, except the issue's float32 input


def per_matrix(f, *args):
    """f applied to each matrix of a (b, m, n) batch, one call each, stacked."""
    f = jax.jit(f)
    outs = [f(*(x[i] for x in args)) for i in range(args[0].shape[0])]
    return jax.tree.map(lambda *xs: jnp.stack(xs), *outs)


def gauge_free(u, s, vt):
    """The values and each pair's projectors u_k u_k^T, v_k v_k^T: a batched SVD and per-matrix
    SVDs may choose other signs (cuSOLVER's batched and single-matrix routines do), so the
    vectors themselves are not compared, only what every sign choice agrees on."""
    return s, u[..., :, None, :] * u[..., None, :, :], vt[..., :, :, None] * vt[..., :, None, :]


def close(x, ref, tol=TOL):
    for a, b in zip(jax.tree.leaves(x), jax.tree.leaves(ref), strict=True):
        assert a.shape == b.shape
        assert max_rel_err(a, b) < tol


def test_issue_9_input():
    # jvp of the thin SVD of a (3, 2, 2) float32 batch
    a = np.random.default_rng(0).standard_normal((3, 2, 2)).astype(np.float32)

    def f(x):
        return jax.jvp(lambda x: tuple(jaxsvd.svd(x, full_matrices=False)), (x,), (x,))

    got = f(a)
    with jax.numpy_rank_promotion("allow"):
        ref = f(a)
    for x, y in zip(jax.tree.leaves(got), jax.tree.leaves(ref), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-6)
    # and gauge-free quantities against jnp.linalg.svd's rule: d sigma, d(U S Vh)
    (u, s, vt), (du, ds, dvt) = got
    _, (_, ds_ref, _) = jax.jvp(lambda x: tuple(jnp.linalg.svd(x, full_matrices=False)), (a,), (a,))
    np.testing.assert_allclose(ds, ds_ref, rtol=1e-5, atol=1e-5)
    drec = du * s[..., None, :] @ vt + u * ds[..., None, :] @ vt + u * s[..., None, :] @ dvt
    np.testing.assert_allclose(drec, a, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("shape,full", [((2, 3, 2), True), ((2, 2, 3), False)])
def test_svd_jvp_grad_jet_batched(shape, full):
    a, h = gaussian(shape, 1), gaussian(shape, 2)

    def svd(x):  # the transforms act on the SVD, the comparison on sign-free quantities
        return gauge_free(*jaxsvd.svd(x, full_matrices=full))

    def loss(x):  # gauge-invariant: projectors and values
        u, s, vt = jaxsvd.svd(x, full_matrices=False)
        return jnp.sum(u[..., :, :1] * u[..., :, :1] * s[..., None, :1]) + jnp.sum(vt[..., :1, :] ** 2) + jnp.sum(s)

    def jvp(x, y):
        return jax.jvp(svd, (x,), (y,))

    def jt(x, y):
        return jet.jet(svd, (x,), ((y, y),))

    close(jax.jit(jvp)(a, h), per_matrix(jvp, a, h))
    if full:
        close(jax.jit(jt)(a, h), per_matrix(jt, a, h))
    else:
        close(jax.jit(jax.grad(loss))(a), per_matrix(jax.grad(loss), a))
        hb = jax.jit(jax.hessian(loss))(a)  # second order through the batched rules
        close(jnp.stack([hb[i, :, :, i] for i in range(2)]), per_matrix(jax.hessian(loss), a))


def test_svdvals_gaps_derivatives_batched():
    a, h = gaussian((2, 3, 3), 3), gaussian((2, 3, 3), 4)

    def cube(x):
        return jnp.sum(jaxsvd.svdvals(x) ** 3)

    def jt(x, y):  # values only at order 3: the Rayleigh-quotient branch of the engine
        return jet.jet(jaxsvd.svdvals, (x,), ((y, y, y),))

    close(jax.jit(jaxsvd.gaps)(a), per_matrix(jaxsvd.gaps, a))
    close(jax.jit(jax.grad(cube))(a), per_matrix(jax.grad(cube), a))
    close(jax.jit(jt)(a, h), per_matrix(jt, a, h))
    close(jax.jit(lambda x, y: jnp.moveaxis(jaxsvd.derivatives(x, y, 3), 0, 1))(a, h),
          per_matrix(lambda x, y: jaxsvd.derivatives(x, y, 3), a, h))


def test_singular_triplet_batched():
    a, h = gaussian((2, 4, 3), 5), gaussian((2, 4, 3), 6)

    def trip(x):
        s, u, v = jaxsvd.singular_triplet(x, 1)
        return s, u[..., :, None] * u[..., None, :], v[..., :, None] * v[..., None, :]  # sign-free

    def jvp(x, y):
        return jax.jvp(trip, (x,), (y,))

    def jt(x, y):
        z = jnp.zeros_like(y)
        return jet.jet(trip, (x,), ((y, z, z),))

    close(jax.jit(jvp)(a, h), per_matrix(jvp, a, h))
    close(jax.jit(jt)(a, h), per_matrix(jt, a, h))
    hb = jax.jit(jax.hessian(lambda x: jnp.sum(trip(x)[0])))(a)
    close(jnp.stack([hb[i, :, :, i] for i in range(2)]), per_matrix(jax.hessian(lambda x: trip(x)[0]), a))


@pytest.mark.parametrize("name", ["nuclear", "cubes"])
def test_spectral_batched(name):
    a, h = gaussian((2, 3, 2), 7), gaussian((2, 3, 2), 8)
    fn = jaxsvd.nuclear_norm if name == "nuclear" else jaxsvd.spectral_function(lambda s: jnp.sum(s ** 3))

    def jt(x, y):
        z = jnp.zeros_like(y)
        return jet.jet(fn, (x,), ((y, z, z),))

    ref = per_matrix(jax.hessian(fn), a)
    close(jax.jit(jax.vmap(jax.hessian(fn)))(a), ref)
    hb = jax.jit(jax.hessian(lambda x: jnp.sum(fn(x))))(a)  # the batched rules directly
    close(jnp.stack([hb[i, :, :, i] for i in range(2)]), ref)
    close(jax.jit(jt)(a, h), per_matrix(jt, a, h))
    if name == "cubes":  # batched through a tie: the analytic-branch route of the jet
        e = jnp.broadcast_to(jnp.eye(3)[:, :2], a.shape)  # s = (1, 1)
        close(jax.jit(jt)(e, h), per_matrix(jt, e, h))


def test_closed_forms_under_vmap():
    a, h = gaussian((2, 3, 4), 10), gaussian((2, 3, 4), 11)

    def hess(x):
        return jaxsvd.hessian(x, 1)

    def hvp(x, y):
        return jaxsvd.hvp(x, 2, y)

    close(jax.jit(jax.vmap(jaxsvd.jacobian))(a), per_matrix(jaxsvd.jacobian, a))
    close(jax.jit(jax.vmap(hess))(a), per_matrix(hess, a))
    close(jax.jit(jax.vmap(hvp))(a, h), per_matrix(hvp, a, h))
    # the closed forms themselves (unbatched) against the nested rules
    close(per_matrix(hess, a), per_matrix(jax.hessian(lambda x: jaxsvd.svdvals(x)[1]), a))


@pytest.mark.parametrize("ensemble", ["gaussian", "orthogonal"])
def test_montecarlo_small(ensemble):
    res = mc.sensitivity(jax.random.key(0), (3, 2), 4, ensemble=ensemble, order=1, batch_size=2,
                         progress=False)
    assert res.derivatives.shape == (4, 2, 2)
    a, hd = jnp.asarray(res.matrices), jnp.asarray(res.directions)
    ref = per_matrix(lambda x, y: jaxsvd.derivatives(x, y, 1), a, hd)
    if ensemble == "orthogonal":
        # all singular values tie at 1: the first-order row holds the eigenvalues of the cluster's
        # block in the order of the basis the SVD returned (a GPU's batched and single-matrix SVDs
        # return other bases), so compare each row as a set
        close(jnp.sort(res.derivatives, axis=-1), jnp.sort(ref, axis=-1))
    else:
        close(res.derivatives, ref)
