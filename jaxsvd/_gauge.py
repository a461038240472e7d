"""``gauge_mask``: the first-order vector coefficients of ``jaxsvd.svd`` at
repeated and zero singular values -- NaN in forward mode, and in reverse mode
let through when the cotangent is gauge-invariant.

A linear primitive with two faces, each the transpose of the other (like
``_nanmask.nan_unless``), on the first-order outputs ``(ds, dU, dV)`` of the
engine in its rotation-free cluster gauge (``_series.svd_series(mask=False)``),
with the primal ``(s, U, V)`` as residuals (``V`` holds the right vectors as
columns; ``U``, ``V`` thin or full):

    forward   NaN in the columns of dU, dV of degenerate singular values (zero,
              or sharing a cluster; docs/degeneracy.md) and, when a singular
              value is zero, in the null-space columns of a full U, V;  ds as is.
    reverse   the cotangent (s_bar, U_bar, V_bar) as is, except on the clusters
              whose vectors carry a cotangent that fails the gauge check below:
              there NaN (their columns, their s_bar entries, and the null-space
              columns for the zero cluster).

Why (docs/degeneracy.md, "Reverse mode through `jaxsvd.svd` at ties"; docs/ties.md).  At a
cluster c of equal non-zero singular values the SVD is unique only up to
u_c -> u_c Q, v_c -> v_c Q.  A loss L(U, s, V) that does not change under
these rotations composes with the SVD into a function of A whose gradient is
the engine's in the rotation-free gauge (the joint rotation it sets to zero is
exactly what L does not see).  Infinitesimally, L does not see the rotation
Q = I + W (W skew) iff

    R1   skew(U_c^T U_bar_c + V_c^T V_bar_c) = 0.

The output s holds only the diagonal of the cluster's first-order block
S_1 = sym(U_c^T dA V_c); its off-diagonal, which a loss of the singular values
may need, is lost.  The engine's gradient is exact when the loss's cotangent
for that block is diagonal in LAPACK's basis, i.e. when the cluster's values
enter through their sum.  Observable necessary conditions, and the ambiguity:

    R2   s_bar is constant on the cluster;
    R3   if s_bar_c != 0, the symmetric off-diagonal part of
         U_c^T U_bar_c + V_c^T V_bar_c vanishes.  (The cotangent of
         <U diag(s) V^T, T> and of <U V^T, T> can coincide at a tie while their
         gradients differ; R3 rejects the first wherever s_bar_c != 0.)
    R4   not a cotangent on one side only (V_bar_c = 0) on a cluster whose
         U_c spans all of R^m (or the mirror): every invariant function of U_c
         alone is then constant, so such a cotangent is a constant's or a
         non-invariant loss's at a stationary point (U[0, 0] at the identity,
         where LAPACK returns U = I).

The cluster of zero singular values (with the null-space columns of a full U,
V) rotates on each side separately, and the left vectors of a tall matrix may
also turn into the null space:

    Z1   skew(W_U^T W_U_bar) = 0 with W_U = [U_0, U_null] (and
         (I - U U^T) U_bar_0 = 0 for a thin U), the same on the V side;
    Z2   only one side carries a cotangent: the relative sign of u_0 and v_0
         flips with the direction of approach (sigma = |c t|), which no
         first-order check sees (the polar factor of a singular matrix);
    Z3   s_bar_0 = 0;   Z4  not the zero matrix (see R4).

All conditions hold to the tolerance ``gauge_check_rtol`` relative to the size
of the whole cotangent, kappa = ||(U_bar, V_bar, sigma_max s_bar)||_F.  A
cluster whose vectors' cotangent is below it passes unchecked.

The check is first-order: a loss that is not invariant but is stationary along
the rotations at LAPACK's particular basis passes R1 (U[1, 2] at diag(1, 1, 2, 3),
where the tied pair is (e_1, e_0) and U[1, 2] = 1 is a maximum over its
rotations): it gets the rotation-free gradient (0), not NaN.
docs/degeneracy.md lists what is exact and what is not.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax import lax

from . import _compat
from ._nanmask import nan_unless
from ._spectrum import cluster_ids, degeneracy_tol, degenerate

#: tolerance of the gauge check, in units of eps * max(m, n) (relative to the cotangent)
GAUGE_CHECK_ULPS = 64


def gauge_check_rtol(dtype, m: int, n: int) -> float:
    """Relative tolerance of the reverse-mode gauge check: ``64 * max(m, n) * eps``.

    What an invariant loss leaves over: rounding of U^T U_bar (~ max(m, n) eps),
    and the spread of a cluster's singular values (<= 4 max(m, n) eps sigma_max,
    the degeneracy tolerance), which a loss that weights the vectors by s turns
    into a skew part of the same relative size.  64 leaves a margin of 8 over
    their sum; a non-invariant loss is off by O(1).  Float64, 5 x 5: 7e-14;
    float32: 3.8e-5.
    """
    return GAUGE_CHECK_ULPS * max(m, n, 1) * float(jnp.finfo(dtype).eps)


gauge_mask_p = _compat.new_primitive("jaxsvd_gauge_mask", multiple_results=True)

_OTHER = {"forward": "reverse", "reverse": "forward"}


def gauge_mask(ds, du, dv, s, u, v, *, face: str = "forward", rtol=None, check_rtol=None):
    """First-order SVD outputs masked at degenerate singular values (see module doc).

    Args:
      ds: (..., r) value derivatives; du: (..., m, ku), dv: (..., n, kv) vector
        derivatives (columns), ku in {r, m}, kv in {r, n}.
      s, u, v: the primal SVD (s descending, u (..., m, ku), v (..., n, kv)).
      rtol: coincidence tolerance relative to sigma_max (default
        :func:`jaxsvd._spectrum.degeneracy_tol`'s); ``check_rtol``: the check's
        tolerance (default :func:`gauge_check_rtol`).  Python floats: a partial
        basis from an iterative solver (``jaxsvd.svds``) passes its own.
    """
    rtol = None if rtol is None else float(rtol)
    check_rtol = None if check_rtol is None else float(check_rtol)
    return gauge_mask_p.bind(ds, du, dv, s, u, v, face=face, rtol=rtol, check_rtol=check_rtol)


def _mm(a, b):
    return jnp.matmul(a, b, precision=lax.Precision.HIGHEST)


def _mT(x):
    return jnp.swapaxes(x, -1, -2)


def _sq(x, axis):
    return jnp.sum(x * x, axis=axis)


def _skew(x):
    return 0.5 * (x - _mT(x))


def _keeps(s, m, n, rtol=None):
    """Forward face: keep (..., r) per column, keep (...) for the null-space columns."""
    return ~degenerate(s, m, n, rtol), ~jnp.any(lax.stop_gradient(s) <= degeneracy_tol(s, m, n, rtol), axis=-1)


def _decide(ds, du, dv, s, u, v, rtol=None, check_rtol=None):
    """Reverse face: (keep (..., r) per column, keep (...) for the null-space columns)."""
    s = lax.stop_gradient(s)
    m, ku = u.shape[-2:]
    n, kv = v.shape[-2:]
    r = s.shape[-1]
    dt = du.dtype
    tau2 = (gauge_check_rtol(dt, m, n) if check_rtol is None else check_rtol) ** 2
    ids = cluster_ids(s, m, n, rtol)
    zero = s <= degeneracy_tol(s, m, n, rtol)
    same = ids[..., :, None] == ids[..., None, :]
    samef = same.astype(dt)
    size = jnp.sum(same.astype(jnp.int32), axis=-2)
    mixed = jnp.any(same & (zero[..., :, None] != zero[..., None, :]), axis=-2)
    degen = (size > 1) | zero

    ut, vt, gu, gv = u[..., :r], v[..., :r], du[..., :r], dv[..., :r]
    hu, hv = _mm(_mT(ut), gu), _mm(_mT(vt), gv)  # (r, r)
    cu, cv = _sq(gu, -2), _sq(gv, -2)  # (r,)
    zeros = jnp.zeros(s.shape[:-1], dt)

    def side(w, g, wt, gt, h, k, d):
        """Null-space parts of one side: (||g_null||^2 (...), cross (..., r), null-null (...))."""
        if k > r:  # full: W = [w_0, w_null] rotates as one block
            wn, gn = w[..., r:], g[..., r:]
            cross = _sq(_mT(_mm(_mT(wt), gn)) - _mm(_mT(wn), gt), -2)
            nn = _sq(_skew(_mm(_mT(wn), gn)), (-2, -1))
            return _sq(gn, (-2, -1)), cross, nn
        if d > r:  # thin and tall on this side: u_0 may turn into the complement
            return zeros, _sq(gt - _mm(wt, h), -2), zeros
        return zeros, jnp.zeros_like(s), zeros

    nu_u, cross_u, nn_u = side(u, du, ut, gu, hu, ku, m)
    nu_v, cross_v, nn_v = side(v, dv, vt, gv, hv, kv, n)
    smax2 = s[..., :1] ** 2
    kappa2 = jnp.sum(cu + cv, axis=-1, keepdims=True) + (nu_u + nu_v)[..., None] + smax2 * _sq(ds[..., None, :], -1)
    thr = tau2 * kappa2  # (..., 1)
    # the r x r matrices of the checks; squares summed over each cluster block (one product
    # with the cluster indicator: agg(x)_j = sum of x_i over the cluster of j)
    y = hu + hv
    offdiag = jnp.broadcast_to(~jnp.eye(r, dtype=bool), y.shape)
    mats = jnp.stack([_skew(y), jnp.where(offdiag, 0.5 * (y + _mT(y)), 0.0), _skew(hu), _skew(hv)], axis=-3)
    blocks = jnp.sum(samef[..., None, :, :] * mats * mats, axis=-2)  # (..., 4, r)
    cols = jnp.concatenate([jnp.stack([cu, cv, ds, ds * ds, cross_u + cross_v], axis=-2), blocks], axis=-2)
    agg = _mm(cols, samef)  # (..., 9, r)
    a_cu, a_cv, a_ds, a_ds2, a_cross, r1, b_sym, b_ku, b_kv = (agg[..., i, :] for i in range(9))
    dev = ds - a_ds / size.astype(dt)
    s2 = s * s
    r2 = s2 * _mm(dev[..., None, :] ** 2, samef)[..., 0, :]
    vec = a_cu + a_cv
    # non-zero clusters: R1-R4
    r3 = jnp.minimum(b_sym, s2 * a_ds2)
    r4 = ((size == m) & (a_cv <= thr)) | ((size == n) & (a_cu <= thr))
    bad_nz = (r1 > thr) | (r2 > thr) | (r3 > thr) | r4
    # the zero cluster (with the null-space columns): Z1-Z4
    vec_z = vec + (nu_u + nu_v)[..., None]
    z1 = b_ku + b_kv + a_cross + (nn_u + nn_v)[..., None]
    z2 = jnp.minimum(a_cu + nu_u[..., None], a_cv + nu_v[..., None])
    z3 = smax2 * a_ds2
    z4 = jnp.all(zero, axis=-1, keepdims=True)
    bad_z = (z1 > thr) | (z2 > thr) | (z3 > thr) | z4
    fail = degen & jnp.where(mixed, vec_z > thr,
                             jnp.where(zero, (vec_z > thr) & bad_z, (vec > thr) & bad_nz))
    return ~fail, ~jnp.any(zero & fail, axis=-1)


def _apply(ds, du, dv, keep, keep_null):
    nan = jnp.asarray(jnp.nan, du.dtype)
    r = ds.shape[-1]

    def cols(x):
        out = jnp.where(keep[..., None, :], x[..., :r], nan)
        if x.shape[-1] > r:
            out = jnp.concatenate([out, jnp.where(keep_null[..., None, None], x[..., r:], nan)], axis=-1)
        return out

    return cols(du), cols(dv)


def _impl(ds, du, dv, s, u, v, *, face, rtol, check_rtol):
    m, n = u.shape[-2], v.shape[-2]
    if face == "forward":
        keep, keep_null = _keeps(s, m, n, rtol)
        return [ds, *_apply(ds, du, dv, keep, keep_null)]
    keep, keep_null = _decide(ds, du, dv, s, u, v, rtol, check_rtol)
    return [jnp.where(keep, ds, jnp.asarray(jnp.nan, ds.dtype)), *_apply(ds, du, dv, keep, keep_null)]


def _abstract_eval(ds, du, dv, s, u, v, **params):
    return [_compat.ShapedArray(x.shape, x.dtype) for x in (ds, du, dv)]


@partial(jax.jit, static_argnames=("face", "rtol", "check_rtol"))
def _masks(ds, du, dv, s, u, v, face, rtol, check_rtol):
    """The masks a face applies, as full-shape keep arrays (for its JVP and Taylor rules)."""
    m, n, r = u.shape[-2], v.shape[-2], s.shape[-1]
    keep, keep_null = (_keeps(s, m, n, rtol) if face == "forward"
                       else _decide(ds, du, dv, s, u, v, rtol, check_rtol))

    def full(x):
        k = jnp.broadcast_to(keep[..., None, :], x.shape[:-1] + (r,))
        if x.shape[-1] > r:
            kn = jnp.broadcast_to(keep_null[..., None, None], x.shape[:-1] + (x.shape[-1] - r,))
            k = jnp.concatenate([k, kn], axis=-1)
        return k

    return keep, full(du), full(dv)


def _linear_part(ts, primals, face, params):
    """The face applied to tangents ``ts``: the forward face is linear in (ds, du, dv);
    the reverse face's mask is decided by its primal cotangent and then applied
    linearly (``nan_unless``: its transpose keeps the NaN of a failed check)."""
    ds, du, dv, s, u, v = primals
    ts = [_compat.instantiate(t) if type(t) is _compat.Zero else t for t in ts]
    if face == "forward":
        return gauge_mask_p.bind(*ts, s, u, v, face="forward", **params)
    keeps = _masks(ds, du, dv, s, u, v, face, **params)
    return [nan_unless(t, k) for t, k in zip(ts, keeps, strict=True)]


def _jvp(primals, tangents, *, face, **params):
    y = gauge_mask_p.bind(*primals, face=face, **params)
    ts = tangents[:3]
    if all(type(t) is _compat.Zero for t in ts):
        return y, [_compat.instantiate(t) for t in ts]
    # the masks are piecewise constant in (s, u, v): no tangent through them
    return y, _linear_part(ts, primals, face, params)


def _transpose(cts, ds, du, dv, s, u, v, *, face, **params):
    avals = [x.aval for x in (ds, du, dv)]
    if face == "forward" and all(type(c) is _compat.Zero for c in cts[1:]):
        # the reverse face with no cotangent on the vectors passes everything: keep
        # the zeros symbolic, so a values-only loss never transposes the vector rules
        return [cts[0], *cts[1:], None, None, None]
    cts = [jnp.zeros(a.shape, a.dtype) if type(c) is _compat.Zero else c for c, a in zip(cts, avals, strict=True)]
    out = gauge_mask_p.bind(*cts, s, u, v, face=_OTHER[face], **params)
    return [*out, None, None, None]


def _taylor(primals_in, series_in, *, face, **params):
    y = gauge_mask_p.bind(*primals_in, face=face, **params)
    terms = [[] for _ in range(3)]
    for j in range(len(series_in[0])):
        ts = [series_in[i][j] for i in range(3)]
        for i, t in enumerate(_linear_part(ts, primals_in, face, params)):
            terms[i].append(t)
    return y, terms


_impl_reverse = jax.jit(partial(_impl, face="reverse"), static_argnames=("rtol", "check_rtol"))


def _eager(*args, face, **params):
    # eager calls of the reverse face run one compiled program (the check is ~80
    # small ops); the forward face's few ops share the op-by-op cache
    return _impl(*args, face=face, **params) if face == "forward" else _impl_reverse(*args, **params)


gauge_mask_p.def_impl(_eager)
gauge_mask_p.def_abstract_eval(_abstract_eval)
_compat.def_lowering_from_fun(gauge_mask_p, _impl, multiple_results=True)
_compat.def_jvp(gauge_mask_p, _jvp)
_compat.def_transpose(gauge_mask_p, _transpose)
_compat.def_batching_leading(gauge_mask_p, [0, 0, 0])
_compat.def_taylor(gauge_mask_p, _taylor)
# the forward face passes ds through: a program that uses only ds drops du, dv and
# everything that computes them
_compat.def_dce_passthrough(gauge_mask_p, lambda params: {0: 0} if params["face"] == "forward" else {})
