"""Reverse mode through ``jaxsvd.svd`` at repeated and zero singular values
(jaxsvd/_gauge.py, docs/degeneracy.md): gauge-invariant losses get their exact
gradient, losses that depend on the arbitrary basis get NaN, forward mode keeps
the NaN.  References are independent of jaxsvd and of any SVD: the polar
factor's derivative from its Sylvester equation and the eigenprojector
derivative of A A^T (numpy's eigh), A/||A|| for the Frobenius norm."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import gaussian, max_rel_err, orthogonal, with_singular_values

import jaxsvd


def rotation(n, seed):
    q = orthogonal(n, seed)
    return jnp.asarray(q if np.linalg.det(q) > 0 else -q)


def polar_svd(a, full=False):
    u, s, vh = jaxsvd.svd(a, full_matrices=full)
    r = s.shape[-1]
    return u[..., :r] @ vh[..., :r, :]


def recon_svd(a, full=False):
    u, s, vh = jaxsvd.svd(a, full_matrices=full)
    r = s.shape[-1]
    return (u[..., :r] * s[..., None, :]) @ vh[..., :r, :]


@jax.jit
def polar_grad(a, t):
    return jax.grad(lambda x: jnp.sum(polar_svd(x) * t))(a)


def polar_grad_ref(a, t):
    """d <Q, T> / dA for the polar factor Q of a square full-rank A (numpy, float64).
    With A^T A = E diag(p^2) E^T, P = E diag(p) E^T, Q = A P^-1: Q^T dQ = W solves
    W P + P W = Q^T dA - dA^T Q, so the gradient is Q (Y - Y^T) with
    Y = E [(E^T Q^T T E) / (p_i + p_j)] E^T (the Sylvester operator is self-adjoint)."""
    a, t = np.asarray(a, np.float64), np.asarray(t, np.float64)
    lam, e = np.linalg.eigh(a.T @ a)
    p = np.sqrt(lam)
    q = a @ e @ np.diag(1.0 / p) @ e.T
    y = e @ ((e.T @ q.T @ t @ e) / (p[:, None] + p[None, :])) @ e.T
    return q @ (y - y.T)


def polar_jac_ref(a):
    n = a.shape[0]
    return np.stack([np.stack([polar_grad_ref(a, np.eye(n)[:, [i]] @ np.eye(n)[[j]]) for j in range(n)])
                     for i in range(n)])


def proj_grad_ref(a, k, w):
    """d <U_k U_k^T, W> / dA from the eigenprojector of A A^T (numpy eigh, float64):
    dP = X + X^T,  X = R (C / (lam_i - lam_j)) T^T,  C = R^T dM T,  dM = dA A^T + A dA^T,
    T, R the eigenvectors of the top k and of the rest (exact for lam_k > lam_(k+1))."""
    a, w = np.asarray(a, np.float64), np.asarray(w, np.float64)
    lam, e = np.linalg.eigh(a @ a.T)
    lam, e = lam[::-1], e[:, ::-1]
    top, rest = e[:, :k], e[:, k:]
    den = lam[None, :k] - lam[k:, None]
    g = np.zeros_like(a)
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            da = np.zeros_like(a)
            da[i, j] = 1.0
            dm = da @ a.T + a @ da.T
            x = rest @ ((rest.T @ dm @ top) / den) @ top.T
            g[i, j] = np.sum(w * (x + x.T))
    return g


def rotated(m, n, s, seed=3):
    return with_singular_values(m, n, s, seed=seed)


# ---------------------------------------------------------------------------
# invariant losses: exact
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("n", [3, 5])
def test_polar_loss_at_rotations_and_identity(n):
    t = gaussian((n, n), 1)
    for a in (rotation(n, 0), rotation(n, 7), jnp.eye(n)):
        ref = polar_grad_ref(a, t)
        assert max_rel_err(polar_grad(a, t), ref) < 1e-10
    # jacrev of the whole polar factor: every entry is invariant
    q = rotation(n, 0)
    assert max_rel_err(jax.jit(jax.jacrev(polar_svd))(q), polar_jac_ref(q)) < 1e-10


@pytest.mark.parametrize("full", [False, True])
def test_reconstruction_norm_at_repeated_values(full):
    f = jax.jit(jax.grad(lambda x: jnp.linalg.norm(recon_svd(x, full))))
    d = jnp.diag(jnp.array([1.0, 1.0, 2.0, 3.0]))
    for a in (d, jnp.asarray(orthogonal(4, 3)) @ d @ jnp.asarray(orthogonal(4, 4)).T):
        assert max_rel_err(f(a), a / jnp.linalg.norm(a)) < 1e-10
    # tall (full) or wide (thin), with a tie and a zero singular value
    a = rotated(5, 3, [2.0, 2.0, 0.0]) if full else rotated(3, 5, [2.0, 2.0, 0.0])
    assert max_rel_err(f(a), a / jnp.linalg.norm(a)) < 1e-10


def test_top2_projector_tall_thin_and_wide_full():
    a = rotated(5, 3, [3.0, 3.0, 1.0])
    w = gaussian((5, 5), 5)
    ref = proj_grad_ref(a, 2, w)
    g = jax.grad(lambda x: jnp.sum((lambda u: u[:, :2] @ u[:, :2].T)(jaxsvd.svd(x, full_matrices=False)[0]) * w))(a)
    assert max_rel_err(g, ref) < 1e-10
    # wide: the right projector of a^T is the left projector of a
    g = jax.grad(lambda x: jnp.sum((lambda vh: vh[:2].T @ vh[:2])(jaxsvd.svd(x, full_matrices=True)[2]) * w))(a.T)
    assert max_rel_err(g, ref.T) < 1e-10


def test_null_space_projectors_of_a_singular_matrix():
    """The projector onto the zero cluster's left vectors is invariant (and smooth)
    for a square matrix; for a tall one only with the null-space columns (full)."""
    for m, n in ((3, 3), (5, 3)):
        a = rotated(m, n, [2.0, 1.0, 0.0], seed=4)
        w = gaussian((m, m), 5)
        ref = -proj_grad_ref(a, 2, w)  # P_0 = I - P_2
        for full in (False, True):
            g = jax.grad(lambda x: jnp.sum((lambda u: u[:, 2:] @ u[:, 2:].T)(
                jaxsvd.svd(x, full_matrices=full)[0]) * w))(a)
            if m > n and not full:  # u_2 alone is not determined (it may turn into the null space)
                assert bool(jnp.isnan(g).all())
            else:
                assert max_rel_err(g, ref) < 1e-10


def test_vmap_jit_mixed_batch():
    t = gaussian((3, 3), 1)
    batch = jnp.stack([rotation(3, 0), gaussian((3, 3), 2), jnp.eye(3), jnp.diag(jnp.array([2.0, 1.0, 1.0]))])
    got = jax.jit(jax.vmap(jax.grad(lambda x: jnp.sum(polar_svd(x) * t))))(batch)
    for a, g in zip(batch, got, strict=True):
        assert max_rel_err(g, polar_grad_ref(a, t)) < 1e-10
    # batch dimensions through the public function, NaN only where the loss is not invariant
    g = jax.jit(jax.grad(lambda x: jnp.sum(jaxsvd.svd(x)[0][..., 0, 1])))(batch)
    assert bool(jnp.isnan(g[0]).all()) and bool(jnp.isnan(g[2]).all())
    assert bool(jnp.isfinite(g[1]).all())


def test_float32():
    """Relative errors ~1e-7 measured; the tolerance leaves a margin of 100."""
    for n in (3, 5):
        q = rotation(n, 0)
        t = gaussian((n, n), 1)
        g = polar_grad(q.astype(jnp.float32), t.astype(jnp.float32))
        assert g.dtype == jnp.float32
        assert max_rel_err(g, polar_grad_ref(q, t)) < 1e-5


# ---------------------------------------------------------------------------
# losses that depend on the arbitrary basis: NaN; forward mode: NaN
# ---------------------------------------------------------------------------


def test_non_invariant_losses_are_nan():
    q, t = rotation(3, 0), gaussian((3, 3), 1)
    eye = jnp.eye(3)
    losses = [
        (lambda x: jnp.sum(jaxsvd.svd(x)[0] * t), q),  # U alone at a rotation
        (lambda x: jaxsvd.svd(x)[0][0, 0], eye),  # stationary at LAPACK's U = I (R4)
        (lambda x: jaxsvd.svd(x)[0][0, 1], eye),
        (lambda x: jnp.sum(recon_svd(x) * t), q),  # values weighted unevenly (R2)
        (lambda x: jnp.sum(recon_svd(x)), eye),  # value-vector ambiguity (R3)
        (lambda x: jnp.sum(polar_svd(x) * t), rotated(3, 3, [2.0, 1.0, 0.0], 4)),  # sign of u_0 v_0^T (Z2)
        (lambda x: jnp.sum(polar_svd(x) * gaussian((5, 3), 1)), rotated(5, 3, [2.0, 1.0, 0.0], 4)),  # Z1
    ]
    for f, a in losses:
        assert bool(jnp.isnan(jax.grad(f)(a)).all())


def test_forward_mode_and_hessian_stay_nan():
    q, t = rotation(3, 0), gaussian((3, 3), 1)
    f = lambda x: jnp.sum(polar_svd(x) * t)
    assert bool(jnp.isnan(jax.jit(jax.jacfwd(f))(q)).all())
    # second order through the first-order rule would need the cluster's
    # off-diagonal block: NaN (jaxsvd.polar's Hessian is exact)
    hvp = jax.jit(lambda x, h: jax.jvp(jax.grad(f), (x,), (h,))[1])
    assert bool(jnp.isnan(hvp(q, t)).all())


def test_near_tie_is_finite_and_limited_by_the_gap():
    """Gap 1e-10 is not a tie: the 1/(s_i - s_j) terms cost ~ eps / gap."""
    t = gaussian((3, 3), 1)
    q = np.asarray(rotation(3, 7))
    for d, tol in ((1e-4, 1e-10), (1e-10, 1e-4)):
        a = jnp.asarray(q @ np.diag([1.0, 1.0 + d, 1.0 - 2 * d]))
        assert max_rel_err(polar_grad(a, t), polar_grad_ref(a, t)) < tol
