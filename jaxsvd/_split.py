"""The truncated split of tensor-network algorithms, ``(L, R)`` with ``L R = truncate(a, k)``,
exact to any order through ties inside the kept space: one primitive with its
rules beside it, and the bond-gauge check of its reverse mode.

    L = U_k diag(s_k^p)  (..., m, k),     R = diag(s_k^(1-p)) V_k^H  (..., k, n).

At a cluster of tied kept values L and R are unique only up to the *bond gauge*
L -> L Q, R -> Q^H R, Q unitary and block diagonal over the clusters.  The
series engine in its cluster gauge (jaxsvd/_series.py, ``mask=False``; the
clusters of ``truncate``'s power spec: near ties merged, split at the cut) has
smooth U(x), V(x) with orthonormal columns and a block-diagonal Hermitian
S(x) = U(x)^H A(x) V(x), so

    L(x) = U_k(x) g_p(S_k(x)),   R(x) = g_(1-p)(S_k(x)) V_k(x)^H,   g_q(s) = s^q,

(g applied to each Hermitian block: the Taylor series of s^q about the
cluster's mean, jaxsvd/_ties.py ``_g_series``) is a smooth curve with L R =
truncate(A(x), k) and, for each x, L(x) = L_true(x) Q(x), R(x) = Q(x)^H
R_true(x) where Q(x) diagonalises the blocks (S_c = Q diag(s_c) Q^H): the bond
gauge inside each cluster.  So a loss invariant under that gauge composed with
this curve is the loss of the true split: its derivatives are exact, whatever
the ties inside the kept space.  One engine run gives both factors (the
coefficients of U_k, V_k and the blocks).

The primitive, for the rules (D^q L = the q-th derivative of the packed factor
P = [L; R^H] (..., m + n, k) about the point, in the radial gauge the engine's
series along each line a + x h defines):

    split_p(a, s, U, Vt, h_1, ..., h_q; face="forward")   = D^q P[h_1, ..., h_q]
    split_p(a, s, U, Vt, c, h_1, ..., h_q; face="adjoint") = grad_h Re <c, D^(q+1) P[h, h_1, ..., h_q]>

(``(s, U, Vt)`` a cache of the factorisation at the point, its tangents
ignored; ``<x, y> = sum(x * y)``, JAX's pairing of a cotangent with a tangent).
D^(q+1) P is symmetric in its directions, so:

  * JVP (both faces): along ``da`` one more direction; along ``dh_i`` (and
    ``dc``) the same face with that operand replaced;
  * transpose: forward in ``h_i`` -> adjoint with ``c = ct`` and the other
    directions; adjoint in ``c`` -> forward with ``w`` as one more direction;
    adjoint in ``h_j`` -> adjoint with ``h_j`` replaced by ``w``;
  * Taylor: forward through ``_ties._directional_series`` with this series;
    adjoint as the vjp (in the constant direction h) of that.

The adjoint face is computed by ``jax.vjp`` of the forward face's jnp code in
its first direction, and NaN-masked afterwards (a mask inside would be
transposed into zeros).

NaN where the split is not q times differentiable: a tie at the cut
sigma_k = sigma_(k+1) and sigma_k = 0 (within ``_spectrum.degeneracy_tol``),
as for ``truncate``'s power spec (``_ties._exists``).

The reverse-mode check (``bond_check_p``): a loss that does not change under
L -> L Q, R -> Q^H R with Q = I + W, W anti-Hermitian and block diagonal over
the clusters, has a cotangent (L_bar, R_bar) with

    cluster blocks of the anti-Hermitian part of Y = L_bar^T L - R R_bar^T  = 0

(the loss changes by Re tr(Y W); the bond version of condition R1 of
jaxsvd/_gauge.py), to ``gauge_check_rtol`` relative to ||L_bar|| ||L|| +
||R_bar|| ||R||.  A cotangent that fails it becomes NaN: the loss depends on
the gauge, and no gauge is the right one.
"""

from __future__ import annotations

import functools
import math
import numbers

import jax
import jax.numpy as jnp
from jax import lax

from . import _compat
from ._gauge import gauge_check_rtol
from ._nanmask import nan_unless
from ._series import like, mH, mm, svd_series
from ._svd import real_dtype
from ._ties import (
    _checked,
    _directional_series,
    _exists,
    _factor,
    _g_series,
    _grad_of_jet_marker,
    _multilinear,
    _nan_unless_ok,
    _Spec,
    _static_k,
    _structure,
    tangent_sum,
)

# ---------------------------------------------------------------------------
# the series of P = [L; R^H] along A(x) = a + sum_j terms[j-1] x^j
# ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _spec(k: int, p: float):
    """g = s**p on the top k (``_Spec`` kind "power"): the clusters, the existence
    checks and the block function of L; R's is ``_spec(k, 1 - p)``."""
    return _Spec("power", f"power_{k}_{p!r}", k=k, p=p)


def _sqrt_series(sk, blocks, K: int):
    """[Y_1..Y_K] of Y(x) = S(x)^(1/2), S(x) = diag(sk) + sum_b blocks[b-1] x^b (Hermitian,
    block diagonal, sk > 0): from Y(x)^2 = S(x), order by order the Sylvester equation
    Y_0 Y_n + Y_n Y_0 = S_n - sum_{a=1}^{n-1} Y_a Y_(n-a) with Y_0 = diag(sqrt(sk)), solved
    entrywise by 1/(y_i + y_j) -- exact whatever the spread inside a merged cluster, and
    never a small divisor (cheaper than the general block function of ``_g_series``)."""
    y0 = jnp.sqrt(jnp.where(sk > 0, sk, 1.0))
    inv = like(1.0 / (y0[..., :, None] + y0[..., None, :]), blocks[0])
    ys = []
    for nn in range(1, K + 1):
        rhs = blocks[nn - 1]
        for a in range(1, nn):
            rhs = rhs - mm(ys[a - 1], ys[nn - a - 1])
        ys.append(rhs * inv)
    return ys


def _split_series(s, u, v, terms, spec, K: int):
    """Unscaled coefficients P_1..P_K of P = [U_k g_p(S_k); V_k g_(1-p)(S_k)^H] (unmasked)."""
    m, n = u.shape[-2], v.shape[-2]
    r, k = s.shape[-1], spec.k
    ids, _ = _structure(s, spec, m, n)
    cols = tuple(range(k))
    ser = svd_series(s, u, v, terms, mask=False, ids=ids, num_orders=K, cols=None if k == r else cols)
    sk, idk = s[..., :k], ids[..., :k]
    blocks = [x[..., :k, :k] for x in ser.blocks]  # (k, k): the kept clusters' blocks
    us = [u[..., :, :k]] + [x[..., :, :k] for x in ser.u]
    vs = [v[..., :, :k]] + [x[..., :, :k] for x in ser.v]
    if spec.p == 0.5:  # the symmetric split: one square-root series serves both sides
        root = _sqrt_series(sk, blocks, K)
        gseries = {True: root, False: root}
    sides = []
    for q, basis, left in ((spec.p, us, True), (1.0 - spec.p, vs, False)):
        gq = _spec(k, q)
        g0 = like(gq.values(sk), u)
        gs = gseries[left] if spec.p == 0.5 else _g_series(sk, blocks, idk, gq, K)
        side = []
        for nn in range(1, K + 1):  # sum_{a+b=n} X_a G_b, G_0 = diag(g0); R^H = V g(S)^H
            acc = basis[nn] * g0[..., None, :]
            for b in range(1, nn + 1):
                acc = acc + mm(basis[nn - b], gs[b - 1] if left else mH(gs[b - 1]))
            side.append(acc)
        sides.append(side)
    out = [jnp.concatenate([x, y], axis=-2) for x, y in zip(*sides, strict=True)]
    return out


def _value(s, u, vt, spec):
    k = spec.k
    sk = s[..., :k]
    # s**q itself (0**0 = 1: a padded bond's U_k stays an isometry at p = 0; 0**-q = inf);
    # the derivatives are NaN at sigma_k = 0 (_exists)
    lv = u[..., :, :k] * like(sk ** spec.p, u)[..., None, :]
    rh = mH(vt[..., :k, :]) * like(sk ** (1.0 - spec.p), u)[..., None, :]
    return jnp.concatenate([lv, rh], axis=-2)


def _forward(s, u, vt, hs, spec, mask=True):
    if not hs:
        return _value(s, u, vt, spec)
    return _multilinear(s, u, vt, hs, spec, series=_split_series, mask=mask)


def _adjoint(a, s, u, vt, c, hs, spec):
    """grad_h Re <c, D^(q+1) P[h, h_1, ..., h_q]> (the vjp of the forward face's jnp code)."""
    m, n = a.shape[-2:]
    # h0 varies along every manual mesh axis that a and c do: vjp with respect to an
    # invariant input would sum the cotangent over those axes (inside shard_map)
    h0 = _compat.match_varying(jnp.zeros(c.shape[:-2] + (m, n), a.dtype), a, c)[0]
    _, pull = jax.vjp(lambda h: _forward(s, u, vt, (h,) + tuple(hs), spec, mask=False), h0)
    return _nan_unless_ok(pull(c)[0], _exists(s, spec, m, n, len(hs) + 1))


# ---------------------------------------------------------------------------
# the primitive and its rules
# ---------------------------------------------------------------------------

split_p = _compat.new_primitive("jaxsvd_split")


def _impl(a, s, u, vt, *rest, spec, face):
    if face == "forward":
        return _forward(s, u, vt, rest, spec)
    return _adjoint(a, s, u, vt, rest[0], rest[1:], spec)


def _abstract(a, s, u, vt, *rest, spec, face):
    if face == "forward":
        return _compat.ShapedArray(a.shape[:-2] + (a.shape[-2] + a.shape[-1], spec.k), a.dtype)
    return _compat.ShapedArray(a.shape, a.dtype)


def _jvp(primals, tangents, *, spec, face):
    a, s, u, vt, *rest = primals
    da, _, _, _, *drest = tangents  # (s, U, Vt) is a cache of svd(a): no tangent of its own
    y = split_p.bind(*primals, spec=spec, face=face)
    outs = []
    if type(da) is not _compat.Zero:
        outs.append(split_p.bind(a, s, u, vt, *rest, da, spec=spec, face=face))
    for i, d in enumerate(drest):
        if type(d) is not _compat.Zero:
            # a direction, or the adjoint's c: linear, replaced
            outs.append(split_p.bind(a, s, u, vt, *rest[:i], d, *rest[i + 1:], spec=spec, face=face))
    return y, tangent_sum(y, outs)


def _transpose(ct, a, s, u, vt, *rest, spec, face):
    undef = _compat.is_undefined_primal
    lin = [i for i, x in enumerate(rest) if undef(x)]
    if undef(a) or len(lin) != 1:
        raise NotImplementedError("split_p is linear in one operand at a time")
    i = lin[0]
    shape = rest[i].aval.shape if undef(rest[i]) else rest[i].shape
    dtype = rest[i].aval.dtype
    if type(ct) is _compat.Zero:
        res = jnp.zeros(shape, dtype)
    elif face == "forward":  # in h_i: the adjoint with c = ct and the other directions
        res = split_p.bind(a, s, u, vt, ct, *rest[:i], *rest[i + 1:], spec=spec, face="adjoint")
    elif i == 0:  # adjoint, in c: the forward face with ct as one more direction
        res = split_p.bind(a, s, u, vt, ct, *rest[1:], spec=spec, face="forward")
    else:  # adjoint, in h_j: the same with h_j replaced by ct
        res = split_p.bind(a, s, u, vt, *rest[:i], ct, *rest[i + 1:], spec=spec, face="adjoint")
    return [None] * 4 + [res if j == i else None for j in range(len(rest))]


def _series_of(x, n: int, like_x):
    return [jnp.broadcast_to(jnp.asarray(t, like_x.dtype), like_x.shape) for t in x][:n]


def _taylor(primals_in, series_in, *, spec, face):
    a, s, u, vt, *rest = primals_in
    sa, _, _, _, *srest = series_in
    terms = _series_of(sa, len(sa), a)
    K = len(terms)
    m, n = a.shape[-2:]
    v = mH(vt)
    y0 = split_p.bind(*primals_in, spec=spec, face=face)
    marker = _grad_of_jet_marker(a)[..., None, None]
    if face == "forward":
        hser = [[h] + _series_of(sh, K, h) for h, sh in zip(rest, srest, strict=True)]
        fs = _directional_series(s, u, v, terms, hser, spec, K, series=_split_series)
        q = len(rest)
        return y0, [_nan_unless_ok(f, _exists(s, spec, m, n, j + q)) * marker for j, f in enumerate(fs, start=1)]
    # adjoint: coefficient j of grad_h Re <c(x), D^(q+1) P(A(x))[h, h_i(x)..]> (h constant)
    # = grad_h Re sum_{i<=j} <c_i, F_(j-i)(h)>, F_t the coefficients of the forward face
    c, hs = rest[0], rest[1:]
    cser = [c] + _series_of(srest[0], K, c)
    hser = [[h] + _series_of(sh, K, h) for h, sh in zip(hs, srest[1:], strict=True)]
    q = len(hs) + 1

    def coefs(h):
        f0 = _forward(s, u, vt, (h,) + tuple(hs), spec, mask=False)
        return [f0] + _directional_series(s, u, v, terms, [[h]] + hser, spec, K, series=_split_series)

    h0 = _compat.match_varying(jnp.zeros(a.shape, a.dtype), a, c)[0]  # as in _adjoint
    _, pull = jax.vjp(coefs, h0)
    out = []
    for j in range(1, K + 1):
        cts = [cser[j - t] if t <= j else jnp.zeros_like(c) for t in range(K + 1)]
        out.append(_nan_unless_ok(pull(cts)[0], _exists(s, spec, m, n, j + q)) * marker)
    return y0, out


_compat.def_rules(split_p, impl=_impl, abstract=_abstract, static_argnames=("spec", "face"), jvp=_jvp,
                  transpose=_transpose, taylor=_taylor)


# ---------------------------------------------------------------------------
# bond_check_p(tL, tR, L, R, same; face): identity on (tL, tR) in forward and
# Taylor mode; its transpose (face "reverse") checks the cotangent (module doc).
# ``same`` (..., k, k) real: 1 where two kept values share a cluster.
# ---------------------------------------------------------------------------

bond_check_p = _compat.new_primitive("jaxsvd_bond_check", multiple_results=True)


def _bond_keep(tlf, tr, lf, r, same):
    """(...,) bool: the cotangent (tlf, tr) passes the bond-gauge check at (lf, r)."""
    lf, r, same = lax.stop_gradient(lf), lax.stop_gradient(r), lax.stop_gradient(same)
    y = mm(jnp.swapaxes(tlf, -1, -2), lf) - mm(r, jnp.swapaxes(tr, -1, -2))
    dev = jnp.sqrt(jnp.sum(jnp.abs(like(same, y) * (y - mH(y))) ** 2, axis=(-2, -1)))
    nrm = lambda x: jnp.sqrt(jnp.sum(jnp.abs(x) ** 2, axis=(-2, -1)))  # noqa: E731
    m, n = lf.shape[-2], r.shape[-1]
    tol = gauge_check_rtol(real_dtype(lf.dtype), m, n) * (nrm(tlf) * nrm(lf) + nrm(tr) * nrm(r))
    return dev <= tol


def _bond_impl(tlf, tr, lf, r, same, *, face):
    if face == "forward":
        return [tlf, tr]
    keep = _bond_keep(tlf, tr, lf, r, same)[..., None, None]
    nan = jnp.asarray(jnp.nan, tlf.dtype)
    return [jnp.where(keep, tlf, nan), jnp.where(keep, tr, nan)]


def _bond_jvp(primals, tangents, *, face):
    tlf, tr, lf, r, same = primals
    y = bond_check_p.bind(*primals, face=face)
    ts = [_compat.instantiate(t) for t in tangents[:2]]
    if face == "forward":
        return y, bond_check_p.bind(*ts, lf, r, same, face="forward")
    # the mask is decided by the primal cotangent (piecewise constant): apply it linearly
    keep = _bond_keep(tlf, tr, lf, r, same)[..., None, None]
    return y, [nan_unless(t, keep) for t in ts]


def _bond_transpose(cts, tlf, tr, lf, r, same, *, face):
    cts = [jnp.zeros(x.aval.shape, x.aval.dtype) if type(c) is _compat.Zero else c
           for c, x in zip(cts, (tlf, tr), strict=True)]
    other = "reverse" if face == "forward" else "forward"
    return [*bond_check_p.bind(*cts, lf, r, same, face=other), None, None, None]


def _bond_taylor(primals_in, series_in, *, face):
    tlf, tr, lf, r, same = primals_in
    y = bond_check_p.bind(*primals_in, face=face)
    sl, sr = [[jnp.broadcast_to(jnp.asarray(x, p.dtype), p.shape) for x in s]
              for s, p in zip(series_in[:2], (tlf, tr), strict=True)]
    if face == "forward":
        return y, [sl, sr]
    keep = _bond_keep(tlf, tr, lf, r, same)[..., None, None]
    return y, [[nan_unless(x, keep) for x in sl], [nan_unless(x, keep) for x in sr]]


_compat.def_rules(
    bond_check_p, impl=_bond_impl, static_argnames=("face",), jvp=_bond_jvp, transpose=_bond_transpose,
    taylor=_bond_taylor, multiple_results=True, out_dims=[0, 0],
    abstract=lambda tlf, tr, lf, r, same, *, face: [_compat.ShapedArray(x.shape, x.dtype) for x in (tlf, tr)])


# ---------------------------------------------------------------------------
# public function
# ---------------------------------------------------------------------------


def _static_power(power) -> float:
    if isinstance(power, (bool, complex)) or not isinstance(power, numbers.Real):
        try:
            concrete = isinstance(power, jax.Array) and not isinstance(power, _compat.Tracer)
        except Exception:  # noqa: BLE001
            concrete = False
        if not (concrete and power.ndim == 0 and jnp.issubdtype(power.dtype, jnp.floating)):
            raise TypeError(f"power must be a static real scalar (a Python float), got {power!r}")
    p = float(power)
    if not math.isfinite(p):
        raise ValueError(f"power must be finite, got {p}")
    return p


def truncated_split(a, k: int, power=0.5):
    r"""The truncated split of tensor-network algorithms: ``(L, R)`` with ``L @ R = truncate(a, k)``.

    .. math::

        L = U_k \,\mathrm{diag}(s_k^{p}) \;(\dots, m, k),\qquad
        R = \mathrm{diag}(s_k^{1-p})\, V_k^H \;(\dots, k, n)

    (``p = power``; ``p = 1/2`` is the symmetric split of TRG, CTMRG, PEPS).
    The values are LAPACK's ``U_k diag(s_k^p)``, ``diag(s_k^(1-p)) Vh_k``.
    At a cluster of tied kept singular values ``L`` and ``R`` are unique only up
    to the *bond gauge* ``L -> L Q, R -> Q^H R`` with ``Q`` orthogonal (unitary
    for complex input) and block diagonal over the clusters; every
    tensor-network contraction (``<T, L R>``, ``tr(L R L R)``, ``L L^H``,
    ``R^H R``, a TRG step), and any loss that also uses the singular values
    per cluster, is invariant under it.

    Derivatives (``jvp``, ``grad``, ``hessian``, ``jet``, any order) are those
    of one smooth gauge: the series engine's cluster gauge about the returned
    basis, ``L(x) = U_k(x) S_k(x)^p``, ``R(x) = S_k(x)^(1-p) V_k(x)^H`` with
    ``S_k(x)`` block diagonal and Hermitian (module doc of jaxsvd/_split.py;
    docs/tensor_networks.md).  So every loss invariant under the bond gauge
    gets its exact derivatives, at generic points, exact ties inside the kept
    space and near ties alike.  "Cluster" is the engine's: values within the
    merge tolerance ``_spectrum.tie_merge_rtol`` (``eps**(1/9)`` relative:
    1.8e-2 in float64, 0.17 in float32) are one cluster, so the loss should be
    invariant under rotations between those too (contractions are, whatever
    the clusters).  A loss that depends on the gauge gets the derivative in
    this gauge in forward mode, and NaN in reverse mode wherever its
    cotangent visibly fails the necessary check (the cluster blocks of the
    anti-Hermitian part of ``L_bar^T L - R R_bar^T`` vanish, to
    ``_gauge.gauge_check_rtol``).

    NaN derivatives where the split is not differentiable: a tie at the cut
    ``sigma_k = sigma_(k+1)``, and ``sigma_k = 0`` (within the degeneracy
    tolerance of ``_spectrum.py``; keep k at the numerical rank).  NaN input
    gives NaN output.

    Args:
      a: real or complex array ``(..., m, n)`` (float32/64, complex64/128).
      k: static int, ``1 <= k <= min(m, n)``.
      power: static real scalar ``p`` (default 0.5).

    Returns:
      ``(L, R)``: ``(..., m, k)`` and ``(..., k, n)``, dtype of ``a``.

    Raises:
      ValueError: k out of range, non-finite power, ``a`` not a non-empty matrix.
      TypeError: k or power not static.

    Example:
      >>> import jax, jax.numpy as jnp, jaxsvd
      >>> c, s = jnp.cos(0.3), jnp.sin(0.3)
      >>> a = jnp.array([[3 * c, -3 * s, 0.0], [3 * s, 3 * c, 0.0], [0.0, 0.0, 1.0]])  # sigma = 3, 3, 1
      >>> t = jnp.arange(9.0).reshape(3, 3)
      >>> loss = lambda a: jnp.sum(t * (lambda lf, r: lf @ r)(*jaxsvd.truncated_split(a, 2)))
      >>> g = jax.grad(loss)(a)   # exact: the loss is <T, truncate(a, 2)>
      >>> bool(jnp.allclose(g, jax.grad(lambda a: jnp.sum(t * jaxsvd.truncate(a, 2)))(a), atol=1e-5))
      True
    """
    a = _checked(a)
    m, n = a.shape[-2:]
    k = _static_k(k, min(m, n))
    spec = _spec(k, _static_power(power))
    s, u, vt = _factor(a)
    packed = split_p.bind(a, s, u, vt, spec=spec, face="forward")
    lv, rv = packed[..., :m, :], mH(packed[..., m:, :])
    ids, _ = _structure(s, spec, m, n)
    same = (ids[..., :k, None] == ids[..., None, :k]).astype(real_dtype(a.dtype))
    l0, r0 = lax.stop_gradient(lv), lax.stop_gradient(rv)
    out = bond_check_p.bind(lv, rv, l0, r0, same, face="forward")
    return out[0], out[1]
