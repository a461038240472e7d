"""Closed-form first and second derivatives of one singular value.

The Jacobian of every sigma_k, the Hessian of one sigma_k and its product with a
direction, written out from the order-1 and order-2 terms of the perturbation
series (docs/theory.md, "Closed forms"; Luo 2025, arXiv:2506.03764, Lemma 6.1 -- correct as printed).

With A = U Sigma V^T (full U, V), sigma_i := 0 for i > r = min(m, n), and
H_hat = U^T H V:

    d sigma_k  = u_k^T H v_k                                   (Jacobian u_k v_k^T)
    D^2 sigma_k[H, H] = sum_{i != k} c_i H_hat_ik^2 + sum_{j != k} d_j H_hat_kj^2
                        + 2 sum_{l != k, l <= r} e_l H_hat_lk H_hat_kl
    c_i = sigma_k / (sigma_k^2 - sigma_i^2) = (1/(sigma_k - sigma_i) + 1/(sigma_k + sigma_i)) / 2
    e_l = sigma_l / (sigma_k^2 - sigma_l^2) = (1/(sigma_k - sigma_l) - 1/(sigma_k + sigma_l)) / 2
    (d_j like c_i over the right vectors).

Both are written with the guarded reciprocals of :mod:`jaxsvd._spectrum`
(never sigma_k^2 - sigma_i^2, which over/underflows for badly scaled input).
Collecting the sums into three small matrices

    M_U = U_1 diag(c) U_1^T + (I - U_1 U_1^T) / sigma_k      (m x m; null part only if m > r)
    M_V = V_1 diag(d) V_1^T + (I - V_1 V_1^T) / sigma_k      (n x n; null part only if n > r)
    N   = U_1 diag(e) V_1^T                                  (m x n)

gives every entry of the Hessian as four products of two numbers,

    Hess[p,q,p',q'] = M_U[p,p'] v_k[q] v_k[q'] + u_k[p] u_k[p'] M_V[q,q']
                    + N[p,q'] v_k[q] u_k[p'] + N[p',q] u_k[p] v_k[q'],

one fused pass over the (m n)^2 output (no sum of m + n rank-one terms), and
the Hessian-vector product in O(mn + (m + n) r):

    hvp(H) = (M_U x) v_k^T + u_k (M_V y)^T + (N y) v_k^T + u_k (N^T x)^T,
    x = H v_k,  y = H^T u_k.

Where sigma_k is zero or coincides with another singular value (see
:func:`jaxsvd._spectrum.degenerate`) the second derivative does not exist and
the Hessian / HVP are NaN.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax import lax

from ._series import mm, mT
from ._spectrum import pair_structure
from ._svd import as_matrix, static_int, svd

_LAYOUTS = ("tensor", "vec")
_HIGHEST = lax.Precision.HIGHEST


def _static_index(k, r: int) -> int:
    return static_int(k, "k", low=0, high=r - 1, high_name="min(m, n) - 1")


def _check_2d(a, name="a"):
    a = as_matrix(a, name, batch=False)
    if jnp.issubdtype(a.dtype, jnp.complexfloating):
        raise NotImplementedError(
            "the closed-form jacobian/hessian/hvp are for real matrices; for complex a, "
            "differentiate a real wrapper instead, e.g. jax.hessian(lambda re, im: "
            "jaxsvd.svdvals(jax.lax.complex(re, im))[k], argnums=(0, 1))(a.real, a.imag)")
    if 0 in a.shape:
        raise ValueError(f"{name} must be non-empty; got shape {a.shape}")
    return a


# ---------------------------------------------------------------------------
# the pieces: coefficients and the three small matrices
# ---------------------------------------------------------------------------


def _pieces(a, k: int):
    """(u_k, v_k, M_U, M_V, N, keep) of docs/theory.md ("Closed forms"), thin SVD only."""
    m, n = a.shape
    u, s, vt = svd(a, full_matrices=False)
    v = mT(vt)
    r = s.shape[-1]
    ps = pair_structure(s, (k,), m, n)
    inv_diff = ps.inv_diff[:, 0]  # 1/(s_i - s_k), 0 at i = k and inside k's cluster
    inv_sum = ps.inv_sum[:, 0]  # 1/(s_i + s_k)
    c = 0.5 * (inv_sum - inv_diff)  # sigma_k/(sigma_k^2 - sigma_i^2) without squares
    e = -0.5 * (inv_diff + inv_sum)  # sigma_i/(sigma_k^2 - sigma_i^2)
    uk, vk = u[:, k], v[:, k]
    m_u = mm(u * c[None, :], mT(u))
    m_v = mm(v * c[None, :], mT(v))
    inv_s = ps.inv_s[0]
    if m > r:  # left null space: c_i = 1/sigma_k for sigma_i = 0 beyond r
        m_u = m_u + (jnp.eye(m, dtype=a.dtype) - mm(u, mT(u))) * inv_s
    if n > r:
        m_v = m_v + (jnp.eye(n, dtype=a.dtype) - mm(v, mT(v))) * inv_s
    nmat = mm(u * e[None, :], mT(v))
    keep = ~ps.bad[0]
    return uk, vk, m_u, m_v, nmat, keep


# ---------------------------------------------------------------------------
# public functions
# ---------------------------------------------------------------------------


@jax.jit
def _jacobian(a):
    u, _, vt = svd(a, full_matrices=False)
    return u.T[:, :, None] * vt[:, None, :]


def jacobian(a):
    r"""Jacobian of every singular value: row k is d sigma_k / dA = u_k v_k^T.

    Formula: D sigma_k[H] = u_k^T H v_k (Luo 2025, arXiv:2506.03764, Lemma 5.1).  Equal to
    ``jax.jacfwd(jaxsvd.svdvals)(a)``.

    Args:
      a: real 2-D array ``(m, n)`` (use ``jax.vmap`` for batches).

    Returns:
      array ``(r, m, n)``, ``r = min(m, n)``.

    At repeated singular values the individual sigma_k are not differentiable:
    the rows of a cluster are then one valid choice (from the singular vectors
    LAPACK returns), and only their sum is unique.  At sigma_k = 0 the row is
    one subgradient.

    Example:
      >>> import jax.numpy as jnp, jaxsvd
      >>> jaxsvd.jacobian(jnp.diag(jnp.array([2.0, 1.0])))[1]
      Array([[0., 0.],
             [0., 1.]], dtype=float32)
    """
    a = _check_2d(a)
    return _jacobian(a)


def _assemble(uk, vk, m_u, m_v, nmat, layout):
    """Hess in one fused elementwise pass over the output.

    Grouping the four terms by the factor v_k[q] or u_k[p],

        Hess[p,q,p',q'] = v_k[q] G[p,p',q'] + u_k[p] K[q,p',q']
        G = M_U[p,p'] v_k[q'] + N[p,q'] u_k[p']          (m x m x n, small)
        K = u_k[p'] M_V[q,q'] + N[p',q] v_k[q']          (n x m x n, small)

    leaves two multiplies and one add per output entry, with a contiguous
    inner axis: XLA emits one loop fusion that runs near memory bandwidth.
    G and K are written as batched products with a contracting axis of length
    2 (pairs of factors), so that XLA materialises them once instead of
    recomputing them inside the output loop (about 15% of the time at 64x128).
    """
    m, n = nmat.shape
    two = lambda x, y: jnp.stack([x, y], axis=-1)  # noqa: E731
    lhs_g = two(m_u, jnp.broadcast_to(uk, (m, m)))  # (p, p', 2)
    rhs_g = two(jnp.broadcast_to(vk, (m, n)), nmat)  # (p, q', 2)
    lhs_k = two(jnp.broadcast_to(uk, (n, m)), nmat.T)  # (q, p', 2)
    rhs_k = two(m_v, jnp.broadcast_to(vk, (n, n)))  # (q, q', 2)
    if layout == "tensor":  # axes (p, q, p', q')
        g = jnp.einsum("pac,pbc->pab", lhs_g, rhs_g, precision=_HIGHEST).reshape(m, m * n)
        kk = jnp.einsum("qac,qbc->qab", lhs_k, rhs_k, precision=_HIGHEST).reshape(n, m * n)
        return (vk[None, :, None] * g[:, None] + uk[:, None, None] * kk[None]).reshape(m, n, m, n)
    # column-major vec: index p + q m, so build axes (q, p, q', p') and reshape (free)
    g = jnp.einsum("pac,pbc->pba", lhs_g, rhs_g, precision=_HIGHEST).reshape(m, m * n)  # (p, q', p')
    kk = jnp.einsum("qac,qbc->qba", lhs_k, rhs_k, precision=_HIGHEST).reshape(n, m * n)  # (q, q', p')
    return (vk[:, None, None] * g[None] + uk[None, :, None] * kk[:, None]).reshape(m * n, m * n)


def _nan_flag(keep, dtype):
    # 1 where the second derivative exists, NaN elsewhere; multiplied into the
    # small factors (u_k, v_k), so every output entry -- and every derivative of
    # it, forward or reverse -- is NaN at a degenerate sigma_k.
    return jnp.where(keep, jnp.ones((), dtype), jnp.full((), jnp.nan, dtype))


@partial(jax.jit, static_argnames=("k", "layout"))
def _hessian(a, k, layout):
    uk, vk, m_u, m_v, nmat, keep = _pieces(a, k)
    flag = _nan_flag(keep, a.dtype)
    return _assemble(uk * flag, vk * flag, m_u, m_v, nmat, layout)


def hessian(a, k: int, layout: str = "tensor"):
    r"""Hessian of the k-th singular value, d^2 sigma_k / dA^2, in closed form.

    Formula (derivation: docs/theory.md, "Closed forms, written out"; Luo 2025, arXiv:2506.03764, Lemma 6.1):

        Hess[p,q,p',q'] = M_U[p,p'] v_k[q] v_k[q'] + u_k[p] u_k[p'] M_V[q,q']
                        + N[p,q'] v_k[q] u_k[p'] + N[p',q] u_k[p] v_k[q']

    with M_U = sum_{i != k, i <= m} c_i u_i u_i^T, M_V = sum_{j != k, j <= n}
    d_j v_j v_j^T, N = sum_{l != k, l <= r} e_l u_l v_l^T,
    c_i = sigma_k/(sigma_k^2 - sigma_i^2) (sigma_i = 0 beyond r),
    e_l = sigma_l/(sigma_k^2 - sigma_l^2), evaluated as half-sums of
    1/(sigma_k -+ sigma_i) so that no squares are formed.  One pass over the
    output: O((mn)^2) time and memory, about the cost of writing it.

    Equal to ``jax.hessian(lambda a: jaxsvd.svdvals(a)[k])(a)``.
    Differentiable (it is ``jnp`` code on :func:`jaxsvd.svd`), and works under
    ``jit`` and ``vmap``.

    Args:
      a: real 2-D array ``(m, n)`` (``jax.vmap`` for batches).
      k: static int index of the singular value, 0-based in descending order;
        ``0 <= k < r`` (no negative indexing: ValueError).
      layout: ``"tensor"`` for shape ``(m, n, m, n)``, or ``"vec"`` for the
        ``(m*n, m*n)`` matrix in the column-major vec convention of the seed
        paper: ``hessian(a, k, "vec")[p + q*m, p' + q'*m] = Hess[p, q, p', q']``.

    Returns:
      the Hessian, ``(m, n, m, n)`` or ``(m*n, m*n)``.  All NaN where sigma_k
      is zero or coincides with another singular value (within
      ``4 max(m, n) eps sigma_max``): the second derivative does not exist there.

    Raises:
      ValueError: ``a`` is not 2-D or is empty, ``k`` is out of range, or
        ``layout`` is unknown.

    Example:
      >>> import jax.numpy as jnp, jaxsvd
      >>> a = jnp.diag(jnp.array([2.0, 1.0]))
      >>> h = jaxsvd.hessian(a, 0)     # sigma_1 = 2 + t^2 / 3 + ... along E_12
      >>> round(float(h[0, 1, 0, 1]), 4)
      0.6667
    """
    a = _check_2d(a)
    if layout not in _LAYOUTS:
        raise ValueError(f"layout must be one of {_LAYOUTS}, got {layout!r}")
    k = _static_index(k, min(a.shape))
    return _hessian(a, k, layout)


@partial(jax.jit, static_argnames=("k",))
def _hvp(a, k, h):
    m, n = a.shape
    u, s, vt = svd(a, full_matrices=False)
    v = mT(vt)
    r = s.shape[-1]
    ps = pair_structure(s, (k,), m, n)
    inv_diff, inv_sum = ps.inv_diff[:, 0], ps.inv_sum[:, 0]
    c = 0.5 * (inv_sum - inv_diff)
    e = -0.5 * (inv_diff + inv_sum)
    inv_s = ps.inv_s[0]
    uk, vk = u[:, k], v[:, k]
    x = mm(h, vk)  # H v_k   (m,)
    y = mm(h.T, uk)  # H^T u_k (n,)
    ux, vy = mm(u.T, x), mm(v.T, y)  # U_1^T x, V_1^T y  (r,)
    mux = mm(u, c * ux)
    mvy = mm(v, c * vy)
    if m > r:
        mux = mux + (x - mm(u, ux)) * inv_s
    if n > r:
        mvy = mvy + (y - mm(v, vy)) * inv_s
    ny = mm(u, e * vy)  # N y
    ntx = mm(v, e * ux)  # N^T x
    flag = _nan_flag(~ps.bad[0], a.dtype)
    return (mux + ny)[:, None] * (vk * flag)[None, :] + (uk * flag)[:, None] * (mvy + ntx)[None, :]


def hvp(a, k: int, h):
    r"""Hessian of the k-th singular value applied to a direction ``h``.

    Formula (docs/theory.md, "Closed forms, written out"), with x = h v_k and y = h^T u_k:

        hvp = (M_U x + N y) v_k^T + u_k (M_V y + N^T x)^T

    (M_U, M_V, N as in :func:`hessian`), applied through the thin SVD in
    O(mn + (m + n) r) -- no m x m or n x n matrix is formed.  Equal to
    ``jax.jvp(jax.grad(lambda a: jaxsvd.svdvals(a)[k]), (a,), (h,))[1]``, and
    ``<h, hvp(a, k, h)>`` is the second directional derivative D^2 sigma_k[h, h].

    Args:
      a: real 2-D array ``(m, n)``.
      k: static int index, ``0 <= k < r`` (no negative indexing: ValueError).
      h: direction of shape ``(m, n)``.

    Returns:
      array ``(m, n)``; all NaN where sigma_k is zero or coincides with another
      singular value.

    Example:
      >>> import jax.numpy as jnp, jaxsvd
      >>> a = jnp.diag(jnp.array([2.0, 1.0]))
      >>> h = jnp.array([[0.0, 1.0], [0.0, 0.0]])
      >>> round(float(jnp.vdot(h, jaxsvd.hvp(a, 0, h))), 4)   # 2! * (1/3)
      0.6667
    """
    a = _check_2d(a)
    h = jnp.asarray(h)
    if h.shape != a.shape:
        raise ValueError(f"direction h must have the shape of a {a.shape}; got {h.shape}")
    k = _static_index(k, min(a.shape))
    return _hvp(a, k, h.astype(a.dtype))
