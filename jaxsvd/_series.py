"""The perturbation-series engine: Taylor coefficients of the SVD of a matrix
polynomial  A(x) = A_0 + A_1 x + ... + A_K x^K,  all orders, all triplets at once.

This one function serves the JVP (order 1), the Taylor-mode ``jet`` rule
(order K), the one-triplet rule (a column subset) and the closed forms.
It is pure ``jnp``: its output is itself differentiable to any order.

Mathematics (docs/theory.md, "All triplets at once: the matrix recursion").  Write U(x) = sum U_a x^a
(m x r, thin), V(x) = sum V_c x^c (n x r) and Sigma(x) = sum Sigma_k x^k (r x r,
block diagonal: one block per cluster of coincident singular values, diagonal
when the spectrum is simple).  Order n of  A V = U Sigma  and  A^T U = V Sigma^T
with U_0 = U, V_0 = V, Sigma_0 = diag(s) reads

    E1_n = sum_{b=1..n} A_b V_{n-b} - sum_{k=1..n-1} U_{n-k} Sigma_k
    E2_n = sum_{b=1..n} A_b^T U_{n-b} - sum_{k=1..n-1} V_{n-k} Sigma_k^T
    F = U^T E1_n,   G = V^T E2_n                                   (r x r)

and with U_n = U alpha + Zu, V_n = V beta + Zv (Zu, Zv orthogonal to U, V):

  * pairs i, j in different clusters solve the 2 x 2 system
        -s_j alpha_ij + s_i beta_ij = -F_ij,   s_i alpha_ij - s_j beta_ij = -G_ij
    i.e.  alpha + beta = -(F+G)_ij/(s_i - s_j),  beta - alpha = (G-F)_ij/(s_i + s_j)
    -- one reciprocal of a difference and one of a sum, never s_i^2 - s_j^2;
  * the diagonal follows from orthogonality and the gauge (zero diagonal of
    U^T dU, V^T dV):  alpha_ii = -C_ii/2,  beta_ii = -D_ii/2,
    C_n = sum_{a=1..n-1} U_a^T U_{n-a}  (D_n likewise with V);
  * pairs inside a cluster of non-zero singular values: the relative rotation
    of U and V is fixed by a symmetric cluster block of Sigma_n,
        beta - alpha = (G-F)_ij/(s_i + s_j),
    and the joint rotation (the gauge freedom of a repeated singular value) is
    set to none,  alpha + beta = -(C+D)_ij/2.  With this gauge, quantities
    invariant under rotations inside the cluster (sum_k u_k v_k^T, projectors)
    have exact derivatives; the individual vectors are not differentiable;
  * pairs inside the cluster of zero singular values: alpha = -C/2, beta = -D/2;
  * Sigma_n (cluster blocks) = F + s beta - alpha s  (= (G + s alpha - beta s)^T);
    the singular-value coefficient is its diagonal, (F_ii + G_ii)/2;
  * the null-space parts act through projections only (no m x m basis):
        Zu = (I - U U^T) E1_n / s     (m > r),   Zv = (I - V V^T) E2_n / s   (n > r).

Order n costs O(n) matrix products, so order K costs O(K^2) products.  From
vector order LOOP_MIN_ORDER on the orders run as one ``lax.scan`` body over
fixed-shape buffers (_scan_orders; docs/theory.md "One loop body"), so the
compiled program does not grow with K; orders 1-2 (the JVP) stay unrolled.
Both call _order_step, the order-n update.  The block
(cluster) form keeps every non-degenerate triplet exact even when other
singular values coincide: a column's recursion touches other columns only
inside its own cluster.  Coefficients that do not exist (vectors of degenerate
or zero singular values at order >= 1, their values at order >= 2) are set to
NaN with :func:`jaxsvd._nanmask.nan_unless` on the way out.

``cols`` restricts the computation to some columns (a union of clusters for
exact results, e.g. one simple triplet): order n then costs O(n (mn + (m+n) r))
per column.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Optional, Sequence

import jax.numpy as jnp
import numpy as np
from jax import lax

from ._nanmask import guarded_mul, nan_unless
from ._spectrum import (
    PairStructure,
    cluster_ids,
    degeneracy_tol,
    pair_structure,
    relative_gaps,
    take_cols,
)

_HIGHEST = lax.Precision.HIGHEST


def mT(x):
    return jnp.swapaxes(x, -1, -2)


def mH(x):
    """Conjugate transpose of the last two axes (a plain transpose for real x: no op added)."""
    return jnp.conj(jnp.swapaxes(x, -1, -2))


def like(x, y):
    """``x`` (real structure: singular values, gap reciprocals) in ``y``'s dtype,
    so that complex arrays meet it without implicit promotion (a no-op for real y)."""
    return x if x.dtype == y.dtype else x.astype(y.dtype)


def cdot(x, y, axis=-2):
    """``sum(conj(x) * y)`` along ``axis`` (column-wise x_k^H y_k)."""
    return jnp.sum(jnp.conj(x) * y, axis=axis)


def mm(a, b):
    """Matrix product at full precision (no TF32 / bf16 passes on accelerators)."""
    return jnp.matmul(a, b, precision=_HIGHEST)


def _sum(xs):
    out = xs[0]
    for x in xs[1:]:
        out = out + x
    return out


class TermProducts:
    """The coefficients A_1..A_K of A(x) through their products only.

    ``mv(b, c, X)`` = A_b X and ``rmv(b, c, Y)`` = A_b^H Y for blocks of
    columns; ``c`` is the order of the vector coefficient X (or Y), so an
    implementation can form all A_b X of one X at once (``jet`` of a matvec).
    """

    order: int

    def mv(self, b, c, x):  # pragma: no cover - interface
        raise NotImplementedError

    def rmv(self, b, c, y):  # pragma: no cover - interface
        raise NotImplementedError


class DenseTerms(TermProducts):
    """A_1..A_K given as arrays (..., m, n)."""

    def __init__(self, terms):
        self.terms = list(terms)
        self.order = len(self.terms)

    def mv(self, b, c, x):
        return mm(self.terms[b - 1], x)

    def rmv(self, b, c, y):
        return mm(mH(self.terms[b - 1]), y)


class SVDSeries(NamedTuple):
    """Unscaled Taylor coefficients of orders 1..K (lists of length K)."""

    s: list  # (..., c)
    u: list  # (..., m, c) or (..., m, m) with the null-space columns
    v: list  # (..., n, c) or (..., n, n)
    blocks: Optional[list] = None  # Sigma_n (..., c, c): the cluster blocks (vectors=True)


def svd_series(
    s,
    u,
    v,
    terms: Sequence,
    *,
    cols: Optional[tuple[int, ...]] = None,
    vectors: bool = True,
    u0_cols=None,
    v0_cols=None,
    u_null=None,
    v_null=None,
    mask: bool = True,
    num_orders: Optional[int] = None,
    complement: Optional[Callable] = None,
    extra_bad=None,
    rtol: Optional[float] = None,
    ids=None,
) -> SVDSeries:
    """Taylor coefficients of the SVD of ``A_0 + sum_j terms[j-1] x^j``.

    Args:
      s, u, v: thin SVD of A_0: s (..., r) descending, u (..., m, r), v (..., n, r)
        (``v`` holds the right vectors as columns).
      terms: A_1, ..., A_K, each (..., m, n).
      cols: the columns to compute (static); default all r.
      vectors: whether to return the vector coefficients (values only is cheaper
        at the last order).
      u0_cols, v0_cols: the order-0 selected columns, if they should come from a
        different (cheaper to differentiate) source than ``u[..., cols]``.
      u_null, v_null: the extra orthonormal columns of a full SVD (..., m, m-r),
        (..., n, n-r); when given, the returned vector coefficients are full.
      num_orders: K, when larger than ``len(terms)`` (the missing A_j are zero, and
        their products are skipped: a straight line A + x H needs one term).
      mask: NaN for coefficients that do not exist (public outputs).  Internal
        callers that need a smooth basis (gauge above) pass False.
      terms: a list of arrays, or a :class:`TermProducts` (products A_b X and
        A_b^T Y only: matrix-free operators, jaxsvd/_svds.py).
      complement: for a *partial* basis (u, v hold only the k largest triplets
        of a larger operator): ``(R1, R2) -> (Zu, Zv)`` solving, column by
        column, the deflated system  s_i zu - A_0 zv = r1,  s_i zv - A_0^T zu = r2
        on the orthogonal complement of (u, v) (Scholz 2023, docs/svds.md), with
        R1 = (I - U U^T) E1_n, R2 = (I - V V^T) E2_n.  Default: the thin SVD
        is complete and  Zu = R1 / s,  Zv = R2 / s  (A_0 vanishes there).
      extra_bad: (..., c) bool, further columns whose derivatives do not exist
        (a tie at the cut of a partial basis).
      rtol: relative tolerance for coincident singular values (default
        :func:`jaxsvd._spectrum.degeneracy_tol`'s).
      ids: cluster ids (..., r) overriding :func:`_spectrum.cluster_ids` (sorted
        runs; equal ids = one cluster).  The cluster equations hold for any
        s_i, s_j, so merging near ties (or, for the polar factor, everything)
        gives a valid block series without 1/(s_i - s_j); see jaxsvd/_ties.py.

    Returns:
      :class:`SVDSeries` with K coefficients each.
    """
    m, r = u.shape[-2:]
    n = v.shape[-2]
    all_cols = tuple(range(r))
    cols = all_cols if cols is None else tuple(cols)
    sel = cols != all_cols
    ops = terms if isinstance(terms, TermProducts) else DenseTerms(terms)
    K = ops.order if num_orders is None else int(num_orders)
    nterms = min(ops.order, K)  # A_j = 0 for j > len(terms): their products are skipped
    ps = pair_structure(s, cols, m, n, rtol=rtol, ids=ids)
    sc = s if not sel else take_cols(s, cols)
    uc0 = u0_cols if u0_cols is not None else (take_cols(u, cols) if sel else u)
    vc0 = v0_cols if v0_cols is not None else (take_cols(v, cols) if sel else v)
    # rows of r x c matrices that belong to the selected columns
    embed = jnp.eye(r, dtype=u.dtype)[:, list(cols)] if sel else None
    fx = _Fixed(u, v, uc0, vc0, sc, like(sc, u), ps, *(like(x, u) for x in (ps.inv_diff, ps.inv_sum, ps.inv_s)),
                embed, jnp.issubdtype(u.dtype, jnp.complexfloating), m > r, n > r, complement)
    keep_val = ~ps.bad if extra_bad is None else ~(ps.bad | extra_bad)
    nan = nan_unless if mask else (lambda x, keep: x)
    # values only, K >= 3: vectors to order ceil((K-1)/2), then the Rayleigh
    # quotient (the 2n+1 rule, see _rayleigh_values).  Only where coefficients
    # that do not exist are masked anyway (mask=True): inside a cluster it is
    # not the cluster block's diagonal that internal callers rely on.
    rayleigh = (not vectors) and mask and K >= 3 and complement is None
    k_vec = K // 2 if rayleigh else K
    looped = k_vec >= LOOP_MIN_ORDER and isinstance(ops, DenseTerms) and complement is None
    if looped:
        # orders 1..k_vec as one loop body (compiles once, whatever K)
        ys = _scan_orders(fx, ops.terms, nterms, k_vec, rayleigh)
        s_st, u_st, v_st, sig_st = ys[:4]  # (k_vec, ...)
        s_st = jnp.concatenate([s_st[:1], nan(s_st[1:], keep_val)])
        us = [uc0] + _unstack(u_st)
        if rayleigh:
            if nterms == 1:  # A_1 V_c: c < k_vec from the loop, and one more
                avs = jnp.concatenate([ys[6], mm(ops.terms[0], v_st[-1])[None]])[None]
            else:
                vs = [vc0] + _unstack(v_st)
                avs = _av_grid(lambda b, c: mm(ops.terms[b - 1], vs[c]), nterms, k_vec + 1, K, jnp.zeros_like(uc0))
            eye0 = jnp.broadcast_to(embed if sel else jnp.eye(r, dtype=u.dtype), s.shape[:-1] + ys[4].shape[-2:])
            s_st = jnp.concatenate([s_st, nan(_rayleigh_values(
                s, _cat0(uc0, u_st), _cat0(vc0, v_st), _cat0(eye0, ys[4]), _cat0(eye0, ys[5]), avs, k_vec, K),
                keep_val)])
        s_out = _unstack(s_st)
        if not vectors:
            return SVDSeries(s_out, [], [])
        keep_vec = keep_val[..., None, :]
        u_out, v_out = _unstack(nan(u_st, keep_vec)), _unstack(nan(v_st, keep_vec))
        sig = [None] + _unstack(sig_st)
        vs = [vc0] + _unstack(v_st)
    else:
        us, vs, sig, alphas, betas, s_out, av = _unrolled_orders(fx, ops, nterms, K, k_vec, vectors, rayleigh,
                                                                 lambda x: nan(x, keep_val))
        if rayleigh:
            eye0 = embed if sel else jnp.eye(r, dtype=u.dtype)  # (r, c), broadcast over the batch
            alphas[0] = betas[0] = jnp.broadcast_to(eye0, s.shape[:-1] + eye0.shape)
            avs = _av_grid(av, nterms, k_vec + 1, K, jnp.zeros_like(uc0))
            s_out += _unstack(nan(_rayleigh_values(s, *(jnp.stack(x) for x in (us, vs, alphas, betas)), avs,
                                                   k_vec, K), keep_val))
        if not vectors:
            return SVDSeries(s_out, [], [])
        keep_vec = keep_val[..., None, :]
        u_out = [nan(x, keep_vec) for x in us[1:]]
        v_out = [nan(x, keep_vec) for x in vs[1:]]
    if u_null is not None or v_null is not None:
        # rank deficiency: the complement is not differentiable
        full_ok = ~jnp.any(lax.stop_gradient(s) <= degeneracy_tol(s, m, n), axis=-1)
        if u_null is not None and m > r:
            nulls = _complement_series(us, u_null, K)
            u_out = [jnp.concatenate([a, nan(b, full_ok[..., None, None])], axis=-1)
                     for a, b in zip(u_out, nulls, strict=True)]
        if v_null is not None and n > r:
            nulls = _complement_series(vs, v_null, K)
            v_out = [jnp.concatenate([a, nan(b, full_ok[..., None, None])], axis=-1)
                     for a, b in zip(v_out, nulls, strict=True)]
    return SVDSeries(s_out, u_out, v_out, sig[1:])


#: Vector orders from which the engine runs its orders as one ``lax.scan`` body
#: (fixed-shape coefficient buffers, convolution sums over the whole buffer);
#: below it they are unrolled: order 1 is the JVP, the hot path of grad and
#: hessian, and orders 1-2 compile about as fast unrolled as looped.
LOOP_MIN_ORDER = 3


class _Fixed(NamedTuple):
    """What every order shares: the order-0 basis, the selected columns and the
    gap reciprocals (see svd_series)."""

    u: jnp.ndarray  # (..., m, r)
    v: jnp.ndarray  # (..., n, r)
    uc0: jnp.ndarray  # (..., m, c)
    vc0: jnp.ndarray  # (..., n, c)
    sc: jnp.ndarray  # (..., c) real
    scx: jnp.ndarray  # sc in the vectors' dtype
    ps: PairStructure
    inv_diff: jnp.ndarray
    inv_sum: jnp.ndarray
    inv_s: jnp.ndarray
    embed: Optional[jnp.ndarray]  # (r, c) when a column subset is selected
    cplx: bool
    tall: bool
    wide: bool
    complement: Optional[Callable]


def _order_step(fx: _Fixed, e1, e2, cmat, dmat, vphase):
    """One order n of the recursion (module docstring) from its sums.

    e1 = E1_n (..., m, c), e2 = E2_n (..., n, c); cmat, dmat = C_n, D_n (..., r, c)
    or None (order 1: zero); vphase = sum_a (n-a) Im diag(V_a^H V_{n-a}) / n
    (complex input, see _phase_gauge) or None.
    Returns (U_n, V_n, Sigma_n, alpha, beta).
    """
    ps = fx.ps
    f = mm(mH(fx.u), e1)
    g = mm(mH(fx.v), e2)
    if cmat is None:
        cmat = dmat = jnp.zeros_like(f)
    p, q = f + g, g - f
    # products with gap reciprocals: their derivative is NaN where it
    # would need the cluster block (see _spectrum.pair_structure)
    pd = guarded_mul(fx.inv_diff, p, ps.keep_pair)
    qs = guarded_mul(fx.inv_sum, q, ps.keep_pair)
    rot_mean = -0.25 * (cmat + dmat)
    alpha = jnp.where(ps.apart, -0.5 * (pd + qs), jnp.where(ps.rot, rot_mean - 0.5 * qs, -0.5 * cmat))
    beta = jnp.where(ps.apart, -0.5 * (pd - qs), jnp.where(ps.rot, rot_mean + 0.5 * qs, -0.5 * dmat))
    if fx.cplx:
        alpha, beta = _phase_gauge(alpha, beta, q, ps.inv_s, vphase, fx.embed)
    # the cluster blocks of Sigma_n
    fc, gc, ac, bc = (x if fx.embed is None else mm(mT(fx.embed), x) for x in (f, g, alpha, beta))
    s_col, s_row = fx.scx[..., :, None], fx.scx[..., None, :]
    sig1 = fc + s_col * bc - ac * s_row
    sig2 = mH(gc + s_col * ac - bc * s_row)
    sig_n = jnp.where(ps.same_cc, 0.5 * (sig1 + sig2), 0.0)
    un = mm(fx.u, alpha)
    vn = mm(fx.v, beta)
    if fx.complement is not None:
        zu, zv = fx.complement(e1 - mm(fx.u, f), e2 - mm(fx.v, g))
        un, vn = un + zu, vn + zv
    else:
        if fx.tall:
            un = un + (e1 - mm(fx.u, f)) * fx.inv_s[..., None, :]
        if fx.wide:
            vn = vn + (e2 - mm(fx.v, g)) * fx.inv_s[..., None, :]
    return un, vn, sig_n, alpha, beta


def _value(fx: _Fixed, e1, cdiag, ddiag):
    """The diagonal of Sigma_n,  Re F_ii + s_i (C_ii - D_ii)/2, written with the
    order-0 columns uc0 (so that a one-triplet rule's value derivative involves
    only that triplet)."""
    return cdot(fx.uc0, e1).real + fx.sc * (cdiag - ddiag) / 2


def _unrolled_orders(fx: _Fixed, ops, nterms, K, k_vec, vectors, rayleigh, nan_val):
    """Orders 1..k_vec unrolled in Python (small orders, matrix-free terms).

    Returns lists (index = order) us, vs, sig, alphas, betas, the value
    coefficients s_1.. (masked from order 2 by ``nan_val``) and ``av(b, c)``.
    """
    us, vs, sig = [fx.uc0], [fx.vc0], [None]
    alphas, betas, s_out = [None], [None], []
    av_cache = {}

    def av(b, c):  # A_b V_c, each product formed once
        if (b, c) not in av_cache:
            av_cache[b, c] = ops.mv(b, c, vs[c])
        return av_cache[b, c]

    for order in range(1, k_vec + 1):
        e1 = _sum([av(b, order - b) for b in range(1, min(order, nterms) + 1)]
                  + [-mm(us[order - k], sig[k]) for k in range(1, order)])
        cdiag = _sum([cdot(us[a], us[order - a]).real for a in range(1, order)]) if order > 1 else 0
        ddiag = _sum([cdot(vs[a], vs[order - a]).real for a in range(1, order)]) if order > 1 else 0
        s_n = _value(fx, e1, cdiag, ddiag)
        s_out.append(s_n if order == 1 else nan_val(s_n))
        if not vectors and order == K and not rayleigh:
            break  # values only at the last order:  s_n = Re F_ii + s_i (C_ii - D_ii)/2
        e2 = _sum([ops.rmv(b, order - b, us[order - b]) for b in range(1, min(order, nterms) + 1)]
                  + [-mm(vs[order - k], mH(sig[k])) for k in range(1, order)])
        cmat = dmat = vphase = None
        if order > 1:
            cmat, dmat = _gram_conv(us, order), _gram_conv(vs, order)
            if fx.embed is not None:
                cmat, dmat = mm(fx.embed, cmat), mm(fx.embed, dmat)
            if fx.cplx:
                vphase = _sum([(order - a) * cdot(vs[a], vs[order - a]).imag for a in range(1, order)]) / order
        un, vn, sig_n, alpha, beta = _order_step(fx, e1, e2, cmat, dmat, vphase)
        us.append(un)
        vs.append(vn)
        sig.append(sig_n)
        alphas.append(alpha)
        betas.append(beta)
    return us, vs, sig, alphas, betas, s_out, av


def _scan_orders(fx: _Fixed, terms, nterms, K, keep_steps):
    """Orders 1..K as one ``lax.scan`` body with fixed shapes.

    Buffers (slot axis -3, before the matrix axes): the history
    X_h[..., j, :, :] = X_{n-1-j} of U and V (zero before X_0), the first
    h = K//2 coefficients X_f[..., a-1, :, :] = X_a (a = 1..h, plus one slot
    that takes the writes of later orders) and S_f[..., k-1, :, :] = Sigma_k.
    Slots not yet computed hold zeros, so every convolution sum of order n is
    one product over the whole buffer:
        sum_{b=1..n}   A_b V_{n-b}     = [A_1 .. A_L] [V_{n-1}; ..; V_{n-L}]       (one matmul)
        sum_{k=1..n-1} U_{n-k} Sigma_k = sum_k U_h[k-1] S_f[k-1]                  (batched)
        sum_{a=1..n-1} U_a^H U_{n-a}   = S + S^H,  S = sum_{a<=h} w_a U_f[a-1]^H U_h[a-1]
    (w_a = 1 for 2a < n, 1/2 for 2a = n, else 0).  Each order pays for the
    whole buffer, about twice the convolution products of the unrolled
    triangle; the per-order products (U^H E1, V^H E2, U alpha, V beta) are
    unchanged.

    Returns stacked (K, ...) arrays (s, U, V, Sigma) and, when ``keep_steps``
    (the Rayleigh values), (alpha, beta, A_1 V_{n-1}).
    """
    uc0, vc0 = fx.uc0, fx.vc0
    L = min(nterms, K)  # A_b with b > K never meets order <= K
    h = K // 2
    rdt = fx.sc.dtype
    t_row = terms[0] if L == 1 else jnp.concatenate(terms[:L], axis=-1)  # (..., m, L n)
    t_col = mH(terms[0]) if L == 1 else jnp.concatenate([mH(t) for t in terms[:L]], axis=-1)  # (..., n, L m)
    slots = jnp.arange(1, h + 2, dtype=jnp.int32)  # a = 1..h+1 (the last slot: a spare)

    def stacked(x):  # (..., K, p, c) -> (..., L p, c): the first L slots stacked vertically
        return x[..., :L, :, :].reshape(x.shape[:-3] + (L * x.shape[-2], x.shape[-1]))

    def push(buf, x):
        return jnp.concatenate([x[..., None, :, :], buf[..., :-1, :, :]], axis=-3)

    def body(carry, n):
        uf, vf, uh, vh, sf = carry
        av = mm(t_row, stacked(vh))
        e1 = av - jnp.sum(mm(uh, sf), axis=-3)
        e2 = mm(t_col, stacked(uh)) - jnp.sum(mm(vh, mH(sf)), axis=-3)
        w = jnp.where(2 * slots < n, 1.0, jnp.where(2 * slots == n, 0.5, 0.0)).astype(rdt)
        gu = mm(mH(uf), uh[..., : h + 1, :, :])  # (..., h+1, c, c): U_a^H U_{n-a}
        gv = mm(mH(vf), vh[..., : h + 1, :, :])
        w = w.reshape((1,) * (gu.ndim - 3) + (h + 1, 1, 1))
        cmat, dmat = (jnp.sum(like(w, g) * g, axis=-3) for g in (gu, gv))
        cmat, dmat = cmat + mH(cmat), dmat + mH(dmat)
        cdiag = jnp.diagonal(cmat, axis1=-2, axis2=-1).real
        ddiag = jnp.diagonal(dmat, axis1=-2, axis2=-1).real
        if fx.embed is not None:
            cmat, dmat = mm(fx.embed, cmat), mm(fx.embed, dmat)
        vphase = None
        if fx.cplx:  # sum_{a=1..n-1} (n-a) x_a = sum_{2a<n} (n-2a) x_a,  x_a = Im (V_a^H V_{n-a})_kk = -x_{n-a}
            w2 = jnp.maximum(n - 2 * slots, 0).astype(rdt).reshape((1,) * (gv.ndim - 3) + (h + 1, 1))
            vphase = jnp.sum(w2 * jnp.diagonal(gv, axis1=-2, axis2=-1).imag, axis=-2) / n.astype(rdt)
        un, vn, sig_n, alpha, beta = _order_step(fx, e1, e2, cmat, dmat, vphase)
        i = n - 1
        j = jnp.minimum(i, h)
        carry = (lax.dynamic_update_index_in_dim(uf, un, j, uf.ndim - 3),
                 lax.dynamic_update_index_in_dim(vf, vn, j, vf.ndim - 3),
                 push(uh, un), push(vh, vn), lax.dynamic_update_index_in_dim(sf, sig_n, i, sf.ndim - 3))
        out = (_value(fx, e1, cdiag, ddiag), un, vn, sig_n)
        return carry, out + ((alpha, beta, av) if keep_steps else ())

    z = _typed_zero(uc0.dtype, uc0, vc0, fx.u, fx.v, fx.sc, *terms[:L])

    def zeros(x, k):
        return jnp.zeros(x.shape[:-2] + (k,) + x.shape[-2:], x.dtype) + z

    def hist0(x):
        return jnp.concatenate([x[..., None, :, :], zeros(x, K - 1)], axis=-3)

    c = uc0.shape[-1]
    sf0 = jnp.zeros(uc0.shape[:-2] + (K, c, c), uc0.dtype) + z
    carry0 = (zeros(uc0, h + 1), zeros(vc0, h + 1), hist0(uc0), hist0(vc0), sf0)
    _, ys = lax.scan(body, carry0, jnp.arange(1, K + 1, dtype=jnp.int32))
    return ys


def _typed_zero(dtype, *refs):
    """A scalar 0 that varies over every manual mesh axis any of ``refs`` varies
    over (``jax.shard_map`` with ``check_vma``): the zeros that start a scan
    carry must have the type the loop body gives it back."""
    z = jnp.zeros((), dtype)
    for r in refs:
        z = z + jnp.zeros_like(r, dtype=dtype, shape=())
    return z


def _cat0(x0, xs):
    """[x0; xs] along a new leading axis (order 0, then the stacked orders)."""
    return jnp.concatenate([x0[None], xs])


def _slot(x, ndim=None):
    """Index that broadcasts a (slots,) vector against x's trailing axes."""
    return (slice(None),) + (None,) * ((x.ndim if ndim is None else ndim) - 1)


def _unstack(x):
    return [x[i] for i in range(x.shape[0])]


def _phase_gauge(alpha, beta, q, inv_s, vphase, embed):
    """Complex input: fix the free phase of each singular pair like JAX's rule.

    For complex A a pair (u_k, v_k) can be multiplied by e^{i theta} jointly;
    the equations above fix only Re diag(alpha), Re diag(beta) and the
    difference Im(alpha_kk - beta_kk) = Im(F - G)_kk / (2 s_k) (the diagonal of
    the order-n equations; zero for real input), which goes into alpha first.
    JAX's first-order rule
    (jax/_src/lax/linalg.py, ``_svd_jvp_rule``) keeps Im diag(V^H dV) = 0 and
    puts the phase into dU.  Its continuation to every order -- the gauge that
    nested ``jvp`` of that rule differentiates -- is parallel transport of V,
    Im diag(V(x)^H V'(x)) = 0 for all x; the x^(n-1) coefficient of that reads

        Im[ n beta_kk + sum_{a=1..n-1} (n-a) (V_a^H V_{n-a})_kk ] = 0,

    ``vphase`` the sum divided by n (None at order 1).
    A joint phase i phi_k added to alpha_kk and beta_kk changes neither Sigma_n
    nor any product u_k v_k^H, so it is added to both.
    """
    eye = jnp.broadcast_to(embed if embed is not None else jnp.eye(alpha.shape[-1], dtype=alpha.dtype),
                           alpha.shape)  # (..., r, c): the entries (k, k)
    def imag_diag(x):  # i x on the diagonal entries (k, k)
        return 1j * x.astype(alpha.dtype)[..., None, :] * eye

    alpha = alpha - imag_diag(0.5 * jnp.sum(q * eye, axis=-2).imag * inv_s)
    bdiag = jnp.sum(beta * eye, axis=-2)
    phi = -bdiag.imag
    if vphase is not None:
        phi = phi - vphase
    shift = imag_diag(phi)
    return alpha + shift, beta + shift


def _rayleigh_values(s, us, vs, alphas, betas, avs, n_vec, K):
    """Value coefficients of orders n_vec+1..K from vectors of orders <= n_vec,
    stacked (K - n_vec, ..., c).

    The 2n+1 rule.  sigma_k(x) is the Rayleigh quotient of the block operator
    B(x) = [[0, A(x)], [A(x)^T, 0]] at its eigenvector w = [u_k; v_k], and the
    quotient is stationary there: with the truncations u^(n), v^(n) of the
    vector series (error O(x^(n+1))),

        R(x) = u^(n)T A(x) v^(n) / ((|u^(n)|^2 + |v^(n)|^2) / 2) = sigma_k(x) + O(x^(2n+2)),

    so vectors to order n = ceil((K-1)/2) give every value coefficient to
    order K.  With u_a = U alpha_a + (null part), A_0 = U S V^T (thin):
        u_a^T A_0 v_c = diag(alpha_a^T S beta_c),   u_a^T A_b v_c from A_b V_c.
    Numerator P_j = sum_{a+b+c=j} u_a^T A_b v_c, denominator
    Q_j = sum_{a+c=j} (u_a^T u_c + v_a^T v_c)/2 (Q_0 = 1), and R = P / Q:
        R_j = P_j - sum_{i<j} R_i Q_{j-i}.
    Valid for a simple sigma_k (the masked callers NaN the others).

    Args (stacked over the order, leading axis): us (n_vec+1, ..., m, c),
    vs, alphas, betas (alphas[0] = betas[0] = the identity columns), and
    avs (B, n_vec+1, ..., m, c) holding A_b V_c (zero where b + c > K).
    Every column inner product at once; the sums over a + c = j and
    a + b + c = j are products with constant 0/1 matrices.
    """
    sd = like(s, us)[None, ..., :, None]
    nv, nb = n_vec + 1, avs.shape[0]
    rdt = s.dtype

    def cols(x, y):  # (a, c, ..., k): Re x_a^H y_c, column by column
        return jnp.sum(jnp.conj(x)[:, None] * y[None], axis=-2).real

    idx = np.arange(nv)
    j = np.arange(K + 1)[:, None, None]
    m2 = (j == idx[:, None] + idx[None, :]).astype(rdt).reshape(K + 1, nv * nv)  # a + c = j
    m3 = (j[..., None] == idx[:, None, None] + np.arange(1, nb + 1)[None, :, None]
          + idx[None, None, :]).astype(rdt).reshape(K + 1, nv * nb * nv)  # a + b + c = j
    g2 = cols(alphas, sd * betas)  # (a, c, ..., k)
    q2 = 0.5 * (cols(us, us) + cols(vs, vs))
    w3 = jnp.sum(jnp.conj(us)[:, None, None] * avs[None], axis=-2).real  # (a, b, c, ..., k)
    batch = s.shape[:-1] + (alphas.shape[-1],)
    p = (jnp.matmul(m2, g2.reshape(nv * nv, -1), precision=_HIGHEST)
         + jnp.matmul(m3, w3.reshape(nv * nb * nv, -1), precision=_HIGHEST)).reshape((K + 1,) + batch)
    q = jnp.matmul(m2, q2.reshape(nv * nv, -1), precision=_HIGHEST).reshape((K + 1,) + batch)
    rs = [p[0]]
    for jj in range(1, K + 1):
        acc = p[jj]
        for i in range(jj):
            acc = acc - rs[i] * q[jj - i]
        rs.append(acc)
    return jnp.stack(rs[n_vec + 1:])


def _av_grid(av, nb, nv, K, zero):
    """(nb, nv, ..., m, c): A_b V_c for b = 1..nb, c = 0..nv-1 (zero where b + c > K)."""
    return jnp.stack([jnp.stack([av(b, c) if b + c <= K else zero for c in range(nv)])
                      for b in range(1, nb + 1)])


def _gram_conv(xs, n):
    """sum_{a=1..n-1} xs[a]^H xs[n-a]  (Hermitian: half the products)."""
    out = []
    for a in range(1, n // 2 + 1):
        p = mm(mH(xs[a]), xs[n - a])
        out.append(p if 2 * a == n else p + mH(p))
    return _sum(out)


def _complement_series(us, n0, K):
    """Coefficients of the orthonormal complement N(x) of the moving range U(x).

    N(x) = U gamma(x) + N_0 delta(x) with U(x)^T N(x) = 0, N(x)^T N(x) = I and
    no rotation within the complement (the skew part of N_0^T N_n is zero):
        gamma_n = -sum_{a=1..n} U_a^T N_{n-a},   delta_n = -1/2 sum_{a=1..n-1} N_a^T N_{n-a}.
    From LOOP_MIN_ORDER on, one ``lax.scan`` body (buffers as in _scan_orders).
    """
    u0 = us[0]
    if K >= LOOP_MIN_ORDER:
        uf = jnp.stack(us[1:K + 1])  # U_1..U_K
        h = K // 2
        rdt = jnp.finfo(n0.dtype).dtype

        def body(carry, n):
            nf, nh = carry  # N_a at nf[a-1];  N_{n-1-j} at nh[j]
            gamma = -jnp.einsum("a...mi,a...mj->...ij", jnp.conj(uf), nh, precision=_HIGHEST)
            a2 = 2 * jnp.arange(1, h + 1, dtype=jnp.int32)
            w = jnp.where(a2 < n, 1.0, jnp.where(a2 == n, 0.5, 0.0)).astype(rdt)
            half = jnp.einsum("a...mi,a...mj->...ij", jnp.conj(nf[:h]) * like(w, nf)[_slot(nf)], nh[:h],
                              precision=_HIGHEST)
            nn = mm(u0, gamma) - 0.5 * mm(n0, half + mH(half))
            nf = lax.dynamic_update_index_in_dim(nf, nn, n - 1, 0)
            return (nf, jnp.concatenate([nn[None], nh[:-1]])), None

        z = _typed_zero(n0.dtype, n0, *us)
        nh0 = jnp.concatenate([n0[None], jnp.zeros((K - 1,) + n0.shape, n0.dtype) + z])
        (nf, _), _ = lax.scan(body, (jnp.zeros((K,) + n0.shape, n0.dtype) + z, nh0),
                              jnp.arange(1, K + 1, dtype=jnp.int32))
        return _unstack(nf)
    ns = [n0]
    for order in range(1, K + 1):
        gamma = -_sum([mm(mH(us[a]), ns[order - a]) for a in range(1, order + 1)])
        nn = mm(u0, gamma)
        if order > 1:
            delta = -0.5 * _gram_conv(ns, order)
            nn = nn + mm(n0, delta)
        ns.append(nn)
    return ns[1:]


def branch_series(s, u, v, terms, m: int, n: int):
    """Analytic branches of the singular values through coincident ones.

    Along an analytic path A(x), the singular values of a cluster sigma_c (a
    repeated non-zero value) split into analytic branches (Rellich), but the
    sorted sigma_k(x) are not differentiable and :func:`svd_series` masks them.
    A symmetric function of the singular values only sees the branches, so its
    Taylor coefficients exist.  Degenerate perturbation theory with the engine
    twice:

      1. the engine's cluster blocks: U(x)^T A(x) V(x) = S(x) = diag(s) + sum_j S_j x^j,
         block diagonal, each cluster block sigma_c I + x T_c(x) with
         T(x) = S_1 + S_2 x + ... symmetric;
      2. the branches are sigma_c + x mu(x), mu(x) the eigenvalues of T(x): the
         engine again, on the symmetric r x r family T(x), shifted per cluster
         (a multiple of I per block, which keeps the blocks apart and positive)
         so that its eigenvalues are its singular values.

    Exact to every order where the first-order splitting T_c(0) = S_1 has simple
    eigenvalues inside each cluster; NaN from the second step where it does not
    (e.g. a direction that leaves the cluster's values tied).  Zero singular
    values are not handled (the caller masks them).

    Args:
      s, u, v: thin SVD of A_0 (unmasked basis); terms: A_1..A_K (unscaled).

    Returns:
      ``(s_c, [b_1, ..., b_K], g1, g2)``: the order-0 value of each branch
      (..., r), the unscaled coefficients of the branches (..., r), in one
      common order (not sorted; use only in symmetric functions), and the two
      levels' smallest relative gaps (...,): g1 between clusters (and to -sigma,
      0), g2 between first-order splittings inside a cluster (inf if none).  A
      symmetric function of the branches cancels their large parts: its order-k
      coefficient loses about eps / g1**(k-1) and eps / g2**(k-2) to rounding.
    """
    K = len(terms)
    blocks = svd_series(s, u, v, terms, mask=False).blocks  # S_1..S_K
    t0 = blocks[0]
    ids = cluster_ids(s, m, n)
    # per-cluster shifts: blocks in descending order, spaced beyond their spread
    scale = jnp.sqrt(jnp.sum(jnp.abs(t0) ** 2, axis=(-2, -1)))[..., None] + s[..., :1]
    shift = scale * (3 * (jnp.max(ids, axis=-1, keepdims=True) - ids) + 2).astype(s.dtype)
    r = s.shape[-1]
    m0 = t0 + like(shift[..., :, None] * jnp.broadcast_to(jnp.eye(r, dtype=s.dtype), t0.shape), t0)
    w, vec = jnp.linalg.eigh(m0, symmetrize_input=True)
    w, vec = w[..., ::-1], vec[..., ::-1]  # descending, as the engine expects
    weight = jnp.abs(vec) ** 2  # each eigenvector lives in one block
    s_c = jnp.sum(weight * s[..., :, None], axis=-2)
    mu0 = w - jnp.sum(weight * shift[..., :, None], axis=-2)
    mus = svd_series(w, vec, vec, blocks[1:], num_orders=K - 1, vectors=False).s if K > 1 else []
    # conditioning of the two levels (see Returns)
    live = lax.stop_gradient(s) > degeneracy_tol(s, m, n)
    g1 = jnp.min(jnp.where(live, relative_gaps(s, m, n, across_clusters=True), jnp.inf), axis=-1)
    mu_, sc_ = lax.stop_gradient(mu0), lax.stop_gradient(s_c)
    offdiag = jnp.broadcast_to(~jnp.eye(r, dtype=bool), t0.shape)
    same = (jnp.abs(sc_[..., :, None] - sc_[..., None, :]) <= degeneracy_tol(s, m, n)[..., None]) & offdiag
    d2 = jnp.where(same, jnp.abs(mu_[..., :, None] - mu_[..., None, :]), jnp.inf)
    g2 = jnp.min(d2, axis=(-2, -1)) / lax.stop_gradient(scale[..., 0])
    return s_c, [mu0] + list(mus), g1, g2
