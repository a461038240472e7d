"""Analytic (Rellich) branches of the singular values along a path A(x),
exact through ties, zero singular values and near ties.

Along an analytic path A(x) = A_0 + A_1 x + ... the eigenvalues of the symmetric
block operator B(x) = [[0, A(x)], [A(x)^T, 0]] are analytic functions of x
(Rellich), but the sorted singular values are not where they coincide or vanish.
``branch_coefficients`` computes the Taylor coefficients of those analytic
branches by degenerate perturbation theory, with as many reduction levels as the
path needs, all on the one series engine (jaxsvd/_series.py).

One level (THEORY.md section 3 and 7; docs/branches.md).  Let M(x) = M_0 + M_1 x
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

import jax.numpy as jnp
from jax import lax

from ._series import _complement_series, mm, mT, svd_series
from ._svd import as_matrix, basis, static_int


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
    init = (s[..., 0], jnp.zeros(s.shape[:-1], jnp.int32))
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


def branch_coefficients(a, terms, num_orders: int, *, rtol=None):
    """Unscaled Taylor coefficients of the analytic branches of the singular values.

    Args:
      a: (..., m, n) real; terms: A_1..A_L (..., m, n), L <= num_orders (missing
        ones are zero); num_orders: K (static).
      rtol: merge tolerance (default :func:`merge_rtol`).

    Returns:
      ``(coefs, gaps)``: coefs is a list of K + 1 arrays (..., r), the unscaled
      coefficients c_0..c_K of each branch, in the lexicographic order of the
      module docstring (c_0 the merged values); gaps is a list of K + 1 arrays
      (...,), the smallest relative gap between distinct clusters of one parent
      at each level (inf if none): a symmetric function of the branches loses
      about eps / gaps[l] ** (k - 1 - l) to rounding at order k.
    """
    m, n = a.shape[-2:]
    r = min(m, n)
    K = int(num_orders)
    dtype = a.dtype
    eps = float(jnp.finfo(dtype).eps)
    rtol = merge_rtol(dtype) if rtol is None else float(rtol)
    batch = a.shape[:-2]
    fam = [a] + [t for t in terms] + [None] * (K - len(terms))  # M_0, M_1, ..., M_K
    coefs, gaps = [], []
    pshift = jnp.zeros(batch + (r,), dtype)  # shift of each parent row (level 0: none)
    ref = _sg(jnp.zeros(batch, dtype))  # magnitude of the level (set below)
    noise = jnp.zeros(batch, dtype)  # absolute rounding floor of the level
    for level in range(K + 1):
        L = K - level
        s, u, v, un, vn = basis(fam[0], full_matrices=True)
        s_ = _sg(s)
        if level == 0:
            ref = s_[..., 0] if r else jnp.zeros(batch, dtype)
        atol = rtol * ref + noise
        ids = _runs(s_, atol)
        zero = s_ <= atol[..., None]
        same = ids[..., :, None] == ids[..., None, :]
        onehot = same.astype(dtype)
        s_m = jnp.einsum("...ij,...j->...i", onehot, s, precision=lax.Precision.HIGHEST) / jnp.sum(onehot, axis=-1)
        s_m = jnp.where(zero, jnp.zeros_like(s_m), s_m)
        # parents: each singular vector lives in one block of the previous level
        w = u[..., :r, :] * u[..., :r, :]  # (..., r_prev, r)
        par = jnp.einsum("...pi,...p->...i", w, pshift, precision=lax.Precision.HIGHEST)
        coefs = [jnp.einsum("...pi,...p->...i", w, c, precision=lax.Precision.HIGHEST) for c in coefs]
        coefs.append(s_m - par)
        # conditioning: distinct clusters of one parent; for the zero parent (shift 0,
        # the block operator's +-omega) also the distance 2 omega, omega to 0
        par_ = _sg(par)
        one_parent = jnp.abs(par_[..., :, None] - par_[..., None, :]) <= 0.5 * _sg(jnp.maximum(ref, 1e-300))[..., None, None]
        d = jnp.where(one_parent & ~same, jnp.abs(s_[..., :, None] - s_[..., None, :]), jnp.inf)
        g = jnp.min(d, axis=(-2, -1)) if r else jnp.full(batch, jnp.inf, dtype)
        zpar = (par_ <= 0.5 * _sg(ref)[..., None]) & ~zero
        gz = jnp.min(jnp.where(zpar, s_, jnp.inf), axis=-1) if r else g
        g = jnp.minimum(g, gz)
        gaps.append(jnp.where(ref > 0, g / jnp.where(ref > 0, ref, 1), jnp.inf))
        if L == 0:
            break
        # the engine on the merged values: exact series of a matrix within atol
        smax = jnp.maximum(s_m[..., :1], jnp.finfo(dtype).tiny)
        lterms = list(fam[1:L + 1])
        while lterms and lterms[-1] is None:  # trailing zero terms: the engine skips them
            lterms.pop()
        lterms = [t if t is not None else jnp.zeros_like(fam[0]) for t in lterms]
        ser = svd_series(s_m, u, v, lterms, num_orders=L, mask=False, ids=ids,
                         rtol=_sg(0.5 * atol[..., None] / smax))
        nz = ~zero
        pair = (nz[..., :, None] & nz[..., None, :]).astype(dtype)
        blocks = [b * pair for b in ser.blocks]
        # the zero group: complements of the moving non-zero ranges, and Z(x)
        nzf = nz.astype(dtype)[..., None, :]
        zf = zero.astype(dtype)[..., None, :]
        ul = [u * nzf] + [x * nzf for x in ser.u]
        vl = [v * nzf] + [x * nzf for x in ser.v]
        n0u = jnp.concatenate([u * zf, un], axis=-1)
        n0v = jnp.concatenate([v * zf, vn], axis=-1)
        nu = [n0u] + _complement_series(ul, n0u, L)
        nv = [n0v] + _complement_series(vl, n0v, L)
        # A_0 of the merged problem, through its factors
        nts = [mm(mT(x), u) for x in nu]  # N_a^T U  (..., m, r)
        vtn = [mm(mT(v), x) for x in nv]  # V^T P_c  (..., r, n)
        zs = []
        for j in range(1, L + 1):
            acc = [mm(nts[a_] * s_m[..., None, :], vtn[j - a_]) for a_ in range(1, j)]
            for b in range(1, j + 1):
                if fam[b] is None:
                    continue
                for a_ in range(0, j - b + 1):
                    acc.append(mm(mT(nu[a_]), mm(fam[b], nv[j - b - a_])))
            zs.append(sum(acc[1:], acc[0]) if acc else jnp.zeros(batch + (m, n), dtype))
        new = [_pad(blocks[j], m, n) + zs[j] for j in range(L)]
        # shifts: parents in order, blocks positive definite and apart
        ref_next = _sg(_fro(new[0]) + (_fro(fam[1]) if fam[1] is not None else 0.0))
        scale = jnp.where(ref_next > 0, ref_next, jnp.ones_like(ref_next))
        nclus = jnp.max(jnp.where(nz, ids + 1, 0), axis=-1)
        shift = jnp.where(nz, 3 * scale[..., None] * (nclus[..., None] - ids).astype(dtype), 0.0)
        shift = _sg(shift)
        new[0] = new[0] + _pad(_diag(shift), m, n)
        pshift = shift
        # rounding from the shifted values of this level reaches the next one
        noise = 8 * max(m, n) * eps * (3 * scale * nclus.astype(dtype) + _sg(s_[..., 0] if r else 0.0))
        ref = ref_next
        fam = new + [None] * (K + 1 - len(new))
    return coefs, gaps


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
    if h.shape != a.shape:
        raise ValueError(f"direction h must have the shape of a {a.shape}; got {h.shape}")
    order = static_int(order, "order")
    if order < 0:
        raise ValueError(f"order must be >= 0, got {order}")
    h = h.astype(a.dtype)
    if 0 in a.shape[-2:]:
        r = min(a.shape[-2:])
        return jnp.zeros((order + 1,) + a.shape[:-2] + (r,), a.dtype)
    s = basis(a)[0]
    if order == 0:
        return s[None]
    coefs, _ = branch_coefficients(a, [h], order)
    rows = [s] + [float(math.factorial(j)) * c for j, c in enumerate(coefs) if j > 0]
    out = jnp.stack(rows)
    bad = jnp.any(jnp.isnan(a) | jnp.isnan(h), axis=(-2, -1))
    return jnp.where(bad[None, ..., None], jnp.asarray(jnp.nan, a.dtype), out)


__all__ = ["branch_coefficients", "branches", "merge_rtol"]
