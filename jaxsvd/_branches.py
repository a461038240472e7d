"""Analytic (Rellich) branches of the singular values along a path A(x),
exact through ties, zero singular values and near ties.

Along an analytic path A(x) = A_0 + A_1 x + ... the eigenvalues of the symmetric
block operator B(x) = [[0, A(x)], [A(x)^T, 0]] are analytic functions of x
(Rellich), but the sorted singular values are not where they coincide or vanish.
``branch_coefficients`` computes the Taylor coefficients of those analytic
branches by degenerate perturbation theory, with as many reduction levels as the
path needs, all on the one series engine (jaxsvd/_series.py).

One level (docs/branches.md, "How: degenerate perturbation theory, level after level").  Let M(x) = M_0 + M_1 x
+ ... (m x n) with M_0 = U diag(s) V^T, and group the singular values into
clusters: the non-zero clusters c (sigma_c repeated r_c times) and one zero group
(the zero singular values together with the null spaces of M_0, p = m - r_nz
left and q = n - r_nz right columns, r_nz the number of non-zero values).

  * Non-zero clusters.  The engine (``svd_series(..., mask=False)``) gives
    orthonormal U(x), V(x) with U(x)^T M(x) V(x) block diagonal, each cluster's
    block sigma_c I + x T_c(x) with T_c(x) = S_1 + S_2 x + ... *symmetric* (the
    engine's gauge).  The branches of the cluster are sigma_c + x mu(x), mu(x)
    the eigenvalues of T_c(x).
  * The zero group.  With U_nz(x), V_nz(x) the engine's columns of the non-zero
    clusters, N(x), P(x) the orthonormal complements of their ranges
    (``_series._complement_series``: N(0) = the zero-singular and null columns
    of U), M(x) maps P(x) into N(x) and Z(x) = N(x)^T M(x) P(x) (p x q) carries
    the rest of the spectrum:  U_nz^T M P = (M^T U_nz)^T P = S^T V_nz^T P = 0 and
    N^T M V_nz = N^T U_nz S = 0.  Z(0) = 0, so Z(x) = x W(x) with
    W(x) = Z_1 + Z_2 x + ...; the eigenvalues of [[0, Z], [Z^T, 0]] near 0 are
    x times those of [[0, W], [W^T, 0]].  The analytic branches through a zero
    singular value are therefore +-x omega(x), omega(x) the (signed) branches
    of the singular values of W(x).  Convention: the branch whose first
    non-zero coefficient is positive (its absolute value is sigma(x); for
    x > 0 small it *is* sigma(x)).  Branches that vanish to every computed
    order are 0.
  * Both reduced families are put into one m x n matrix family of the next
    level: the symmetric blocks T_c(x) + shift_c I on the diagonal of the
    top-left r_nz x r_nz part, W(x) in the bottom-right p x q part.  The
    shifts (3 scale, 6 scale, ... with scale >= |T|_F, |W|_F) make each block
    positive definite -- so its singular values are its eigenvalues and the
    SVD engine is an eigenvalue engine -- keep the blocks apart from each
    other and from W's values in [0, scale], and keep the parents in order.
    The singular values of the next family are the union of the blocks'
    (block diagonal at every order), and each singular vector lives in one
    block, which tells the parent of each new branch.

Each level consumes one order: level l sees the x^l coefficients, so K levels
give the branches to order K.  Where a level has no tie and no zero, the next
levels are 1 x 1 blocks and reproduce the plain series: the branches equal
``derivatives``.

Ordering: a new level sorts descending, with parents kept in their order by the
shifts, so the final order is lexicographic in (c_0, c_1, ..., c_K), descending:
like ``svdvals`` at x = 0, ties by their first-order, then second-order, ...
coefficients.

Near ties (merging).  At every level, values within ``atol`` of their run's
first value are one cluster and replaced by the cluster's mean, values <= atol
are zeros (``atol = merge_rtol * magnitude of the level``, merge_rtol = sqrt(eps),
1.5e-8 in float64, 3.5e-4 in float32).  The series is then exact for a matrix
within ~atol of the given one: nothing divides by a gap below atol.  The
individual branches of a near tie with gap g have radius of convergence
~ g / |A_1| and coefficients ~ 1 / g^(k-1); the merged ones are the branches of
the exactly tied neighbour, and any symmetric function of them (what a spectral
function sees) is within O(atol) of the true one.
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
from jax import lax

from . import _compat
from ._series import _complement_series, mm, mT, svd_series
from ._svd import as_matrix, basis, static_int

_HI = lax.Precision.HIGHEST


def merge_rtol(dtype) -> float:
    """Relative tolerance below which branches merge singular values (sqrt(eps))."""
    return math.sqrt(float(jnp.finfo(dtype).eps))


def _sg(x):
    return lax.stop_gradient(x)


def _runs(s, atol):
    """Cluster ids (..., r) of descending ``s``: sorted runs, each within ``atol``
    of its first value; values <= atol (zeros) never share a run with others."""
    r = s.shape[-1]
    if r <= 1:
        return jnp.zeros(s.shape, jnp.int32)
    zero = s <= atol[..., None]

    def step(carry, x):
        anchor, cid = carry
        si, zi, zprev, tol = x
        new = ((anchor - si) > tol) | (zi != zprev)
        cid = cid + new.astype(jnp.int32)
        return (jnp.where(new, si, anchor), cid), cid

    xs = tuple(jnp.moveaxis(x, -1, 0) for x in (s[..., 1:], zero[..., 1:], zero[..., :-1]))
    tol = jnp.broadcast_to(atol, xs[0].shape)
    init = _compat.like_varying((s[..., 0], jnp.zeros(s.shape[:-1], jnp.int32)), s)
    _, ids = lax.scan(step, init, xs + (tol,))
    first = jnp.zeros(s.shape[:-1] + (1,), jnp.int32)
    return jnp.concatenate([first, jnp.moveaxis(ids, 0, -1)], axis=-1)


def _fro(x):
    return jnp.sqrt(jnp.sum(x * x, axis=(-2, -1)))


def _pad(b, m, n):
    """Embed (..., r, r) in the top-left corner of (..., m, n)."""
    r = b.shape[-1]
    return jnp.pad(b, [(0, 0)] * (b.ndim - 2) + [(0, m - r), (0, n - r)])


def _diag(x):
    """(..., r) -> (..., r, r) diagonal matrix (explicit broadcast)."""
    r = x.shape[-1]
    eye = jnp.broadcast_to(jnp.eye(r, dtype=x.dtype), x.shape + (r,))
    return eye * x[..., None, :]


def _cluster(s, atol, r):
    """ids, zero mask and merged values (cluster means, zeros exactly 0)."""
    s_ = _sg(s)
    ids = _runs(s_, atol)
    zero = s_ <= atol[..., None]
    same = ids[..., :, None] == ids[..., None, :]
    onehot = same.astype(s.dtype)
    s_m = jnp.einsum("...ij,...j->...i", onehot, s, precision=_HI) / jnp.sum(onehot, axis=-1)
    return ids, zero, same, jnp.where(zero, jnp.zeros_like(s_m), s_m)


def _record(u, s, s_m, zero, same, coefs, lead, pshift, ref, level, r, K):
    """Inherit the coefficients of each branch's parent and append this level's.

    Each singular vector of the level lives in one block of the previous one:
    its weights u_pi^2 over the parent rows p < r pick the parent (they sum to 1
    within the parent block, and the parent's cluster shares its coefficients).
    Also the smallest relative gap between distinct clusters of one parent (for
    the zero parent, whose values are the block operator's +-omega, also omega).
    ``lead`` is the order of each branch's first non-zero coefficient (K + 1 for
    a branch that stays zero): inherited from a non-zero parent, this level for
    a non-zero child of the zero group.
    """
    w = u[..., :r, :] * u[..., :r, :]
    par = jnp.einsum("...pi,...p->...i", w, pshift, precision=_HI)
    coefs = jnp.einsum("...pi,k...p->k...i", w, coefs, precision=_HI)
    coefs = coefs.at[level].set(s_m - par)
    s_, par_ = _sg(s), _sg(par)
    half = 0.5 * _sg(ref)[..., None, None]
    one_parent = jnp.abs(par_[..., :, None] - par_[..., None, :]) <= half
    d = jnp.where(one_parent & ~same, jnp.abs(s_[..., :, None] - s_[..., None, :]), jnp.inf)
    g = jnp.min(d, axis=(-2, -1))
    zpar = (par_ <= half[..., 0]) & ~zero
    g = jnp.minimum(g, jnp.min(jnp.where(zpar, s_, jnp.inf), axis=-1))
    ok = _sg(ref) > 0
    inherited = jnp.round(jnp.einsum("...pi,...p->...i", _sg(w), lead, precision=_HI))
    from_zero = par_ <= half[..., 0]
    here = jnp.broadcast_to(jnp.asarray(level).astype(lead.dtype), lead.shape)
    lead = jnp.where(from_zero, jnp.where(zero, float(K + 1), here), inherited)
    return coefs, lead, jnp.where(ok, g / jnp.where(ok, ref, 1), jnp.inf)


@partial(jax.jit, static_argnames=("num_orders", "rtol"))
def branch_coefficients(a, terms, num_orders: int, *, rtol=None):
    """Unscaled Taylor coefficients of the analytic branches of the singular values.

    Args:
      a: (..., m, n) real; terms: A_1..A_L (..., m, n), L <= num_orders (missing
        ones are zero); num_orders: K >= 1 (static).
      rtol: merge tolerance (default :func:`merge_rtol`).

    Returns:
      ``(coefs, gaps, lead)``: coefs (K + 1, ..., r), the unscaled coefficients
      c_0..c_K of each branch, in the lexicographic order of the module
      docstring (c_0 the merged values); gaps (K + 1, ...), the smallest
      relative gap between distinct clusters of one parent at each level (inf
      if none): a symmetric function of the branches loses about
      eps / gaps[l] ** (k - 1 - l) to rounding at order k; lead (..., r) float,
      the order of each branch's first non-zero coefficient (K + 1: none), so
      that sigma_k(x) = (-1) ** lead * b_k(x) for small x < 0.

    The K reduction levels are one ``lax.scan`` (one level compiled once): every
    level carries the family padded to K + 1 terms with zeros.
    """
    m, n = a.shape[-2:]
    r = min(m, n)
    K = int(num_orders)
    dtype = a.dtype
    eps = float(jnp.finfo(dtype).eps)
    rtol = merge_rtol(dtype) if rtol is None else float(rtol)
    batch = a.shape[:-2]
    terms = [jnp.broadcast_to(t, a.shape) for t in terms]
    fam0 = jnp.stack([a] + terms + [jnp.zeros_like(a)] * (K - len(terms)))  # M_0..M_K
    s0 = _sg(basis(a)[0])
    carry0 = (fam0, jnp.zeros((K + 1,) + batch + (r,), dtype), jnp.zeros(batch + (r,), dtype),
              jnp.zeros(batch + (r,), dtype), s0[..., 0], jnp.zeros(batch, dtype), jnp.zeros((), jnp.int32))
    carry0 = _compat.like_varying(carry0, fam0)  # inside shard_map: typed like the body's output

    def level(carry, _):
        fam, coefs, lead, pshift, ref, noise, lvl = carry
        s, u, v, un, vn = basis(fam[0], full_matrices=True)
        atol = rtol * ref + noise
        ids, zero, same, s_m = _cluster(s, atol, r)
        coefs, lead, gap = _record(u, s, s_m, zero, same, coefs, lead, pshift, ref, lvl, r, K)
        # the engine on the merged values: the exact series of a matrix within atol
        smax = jnp.maximum(_sg(s_m[..., :1]), jnp.finfo(dtype).tiny)
        ser = svd_series(s_m, u, v, [fam[j] for j in range(1, K + 1)], mask=False, ids=ids,
                         rtol=_sg(0.5 * atol[..., None] / smax))
        nz = ~zero
        pair = (nz[..., :, None] & nz[..., None, :]).astype(dtype)
        # the zero group: complements N(x), P(x) of the moving non-zero ranges
        nzf, zf = nz.astype(dtype)[..., None, :], zero.astype(dtype)[..., None, :]
        n0u = jnp.concatenate([u * zf, un], axis=-1)
        n0v = jnp.concatenate([v * zf, vn], axis=-1)
        nu = [n0u] + _complement_series([u * nzf] + [x * nzf for x in ser.u], n0u, K)
        nv = [n0v] + _complement_series([v * nzf] + [x * nzf for x in ser.v], n0v, K)
        # Z_j = sum_{a+b+c=j} N_a^T M_b P_c, with M_0 = U diag(s_m) V^T (merged):
        # Y_k = sum_{b=1..k} M_b P_(k-b), then Z_j = sum_a N_a^T Y_(j-a) + M_0 terms
        ys = [None] + [sum((mm(fam[b], nv[k - b]) for b in range(2, k + 1)), mm(fam[1], nv[k - 1]))
                       for k in range(1, K + 1)]
        ntu = [mm(mT(x), u) * s_m[..., None, :] for x in nu]  # N_a^T U diag(s_m)
        vtp = [mm(mT(v), x) for x in nv]  # V^T P_c
        new = []
        for j in range(1, K + 1):
            z = sum((mm(mT(nu[a_]), ys[j - a_]) for a_ in range(1, j)), mm(mT(nu[0]), ys[j]))
            for a_ in range(1, j):
                z = z + mm(ntu[a_], vtp[j - a_])
            new.append(_pad(ser.blocks[j - 1] * pair, m, n) + z)
        # shifts: parents in order, blocks positive definite and apart
        ref_next = _sg(_fro(new[0]) + _fro(fam[1]))
        scale = jnp.where(ref_next > 0, ref_next, jnp.ones_like(ref_next))
        # a family that vanishes to rounding (the branches are polynomials of lower degree,
        # e.g. R(I + x S)) must not sink its shifted parents below the next level's noise
        # floor (8 max(m, n) eps s_max): they would be taken for zero singular values and
        # lose their order and leading order
        scale = jnp.maximum(scale, 64 * max(m, n) * eps * _sg(s[..., 0]))
        nclus = jnp.max(jnp.where(nz, ids + 1, 0), axis=-1)
        shift = _sg(jnp.where(nz, 3 * scale[..., None] * (nclus[..., None] - ids).astype(dtype), 0.0))
        new[0] = new[0] + _pad(_diag(shift), m, n)
        # rounding of the shifted values of this level reaches the next one
        noise = 8 * max(m, n) * eps * (3 * scale * nclus.astype(dtype) + _sg(s[..., 0]))
        fam = jnp.stack(new + [jnp.zeros_like(new[0])])
        return (fam, coefs, lead, shift, ref_next, noise, lvl + 1), gap

    (fam, coefs, lead, pshift, ref, noise, lvl), gaps = lax.scan(level, carry0, None, length=K)
    # the last level: values only
    s, u, _, _, _ = basis(fam[0], full_matrices=True)
    ids, zero, same, s_m = _cluster(s, rtol * ref + noise, r)
    coefs, lead, gap = _record(u, s, s_m, zero, same, coefs, lead, pshift, ref, K, r, K)
    return coefs, jnp.concatenate([gaps, gap[None]]), lead


def branches(a, h, order):
    r"""Analytic (Rellich) branches of the singular values along ``a + x h``.

    Row j is the j-th derivative at x = 0 of each analytic branch b_k(x) of the
    singular values of a + x h (row 0 is ``svdvals(a)``), in the output
    convention of :func:`jaxsvd.derivatives`, which it equals wherever the
    singular values of ``a`` are simple and non-zero.  Where they coincide the
    sorted singular values are not differentiable, but the branches are
    (Rellich): degenerate perturbation theory with as many reduction levels as
    the path needs (a direction that keeps a tie at first order is resolved at
    second order, and so on).  Through a zero singular value the branch is the
    analytic eigenvalue of [[0, A], [A^T, 0]] whose absolute value is sigma
    and whose first non-zero coefficient is positive (so b_k(x) = sigma_k(x)
    for small x > 0).

    Ordering: like ``svdvals`` at x = 0; tied branches by their derivatives,
    descending, first order first (the order of sigma_k(x) for small x > 0).

    Near ties: singular values within ``sqrt(eps)`` (relative, at each
    reduction level) are merged, so nothing divides by a tiny gap; the result
    is then the branches of the neighbouring matrix with those values equal
    (the true branches of a near tie with gap g have coefficients ~ 1/g^(j-1);
    symmetric functions of them agree with the merged ones to ~ g).

    Args:
      a: real array ``(..., m, n)``.
      h: direction, same shape as ``a``.
      order: static int >= 0.

    Returns:
      array ``(order + 1, ..., min(m, n))``.

    Example:
      >>> import jax.numpy as jnp, jaxsvd
      >>> h = jnp.array([[1.0, 2.0], [2.0, -1.0]])
      >>> b = jaxsvd.branches(jnp.eye(2), h, 2)  # eigenvalues of I + x h: 1 +- sqrt(5) x
      >>> [round(float(x), 4) for x in b[1]]
      [2.2361, -2.2361]
    """
    a = as_matrix(a)
    h = jnp.asarray(h)
    if jnp.iscomplexobj(a) or jnp.iscomplexobj(h):
        raise NotImplementedError(
            "jaxsvd.branches is for real matrices; for complex a and h use jaxsvd.derivatives "
            "(exact where the singular values are simple) or a spectral function's jet")
    if h.shape != a.shape:
        raise ValueError(f"direction h must have the shape of a {a.shape}; got {h.shape}")
    order = static_int(order, "order", low=0)
    h = h.astype(a.dtype)
    if 0 in a.shape[-2:]:
        r = min(a.shape[-2:])
        return jnp.zeros((order + 1,) + a.shape[:-2] + (r,), a.dtype)
    return _branches(a, h, order)


def _branches(a, h, order):
    # the padded terms [h, 0, ...] share branch_coefficients' compiled program with
    # the spectral-function jet on the line (the levels pad the family anyway)
    s = basis(a)[0]
    if order == 0:
        return s[None]
    coefs, _, _ = branch_coefficients(a, [h] + [jnp.zeros_like(h)] * (order - 1), order)
    fact = jnp.asarray([float(math.factorial(j)) for j in range(1, order + 1)], a.dtype)
    fact = fact.reshape((order,) + (1,) * (coefs.ndim - 1))
    out = jnp.concatenate([s[None], fact * coefs[1:]])
    bad = jnp.any(jnp.isnan(a) | jnp.isnan(h), axis=(-2, -1))
    return jnp.where(bad[None, ..., None], jnp.asarray(jnp.nan, a.dtype), out)


__all__ = ["branch_coefficients", "branches", "merge_rtol"]
