"""Numerical hygiene for singular-value gaps: the one place that decides what
counts as coincident and computes the guarded gap reciprocals.

Every rule (JVP, Taylor, closed-form Hessian, spectral functions) calls
:func:`pair_structure` or :func:`cluster_ids`; nothing else divides by a
difference or a sum of singular values.

Policy (documented in docs/degeneracy.md).  With ``tol = rtol * sigma_max`` and
``rtol = DEGENERACY_ULPS * max(m, n) * eps``:

* sigma_i and sigma_j are *coincident* when they belong to one run of sorted
  singular values whose neighbouring gaps are all <= tol (a cluster);
* sigma_j is *zero* when sigma_j <= tol;
* a singular value is *degenerate* when it is zero or shares its cluster.

We never form sigma_i**2 - sigma_j**2 (it overflows / underflows for badly
scaled matrices, jax issue #40185): the rules use 1/(sigma_i - sigma_j) and
1/(sigma_i + sigma_j) separately, which scale like 1/sigma.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
from jax import lax

from . import _compat

#: tolerance in units of eps * max(m, n) * sigma_max
DEGENERACY_ULPS = 4


def degeneracy_tol(s, m: int, n: int, rtol=None):
    """Absolute tolerance below which two singular values count as equal
    (``rtol * sigma_max``; default rtol ``DEGENERACY_ULPS * max(m, n) * eps``)."""
    s = lax.stop_gradient(s)
    eps = jnp.finfo(s.dtype).eps
    smax = s[..., :1] if s.shape[-1] else jnp.zeros(s.shape[:-1] + (1,), s.dtype)
    if rtol is None:
        rtol = DEGENERACY_ULPS * max(m, n, 1) * eps
    return rtol * smax  # shape (..., 1)


def cluster_ids(s, m: int, n: int, rtol=None):
    """Integer id per singular value; equal ids = coincident (sorted runs)."""
    s = lax.stop_gradient(s)
    tol = degeneracy_tol(s, m, n, rtol)
    step = (s[..., :-1] - s[..., 1:]) > tol
    zeros = jnp.zeros(s.shape[:-1] + (1,), jnp.int32)
    return jnp.concatenate([zeros, jnp.cumsum(step.astype(jnp.int32), axis=-1)], axis=-1)


def degenerate(s, m: int, n: int, rtol=None):
    """Boolean (..., r): sigma_k is zero or coincides with another sigma_j."""
    s_ = lax.stop_gradient(s)
    ids = cluster_ids(s_, m, n, rtol)
    shared = jnp.sum(ids[..., :, None] == ids[..., None, :], axis=-1) > 1
    return shared | (s_ <= degeneracy_tol(s_, m, n, rtol))


def _safe_recip(x, keep):
    # double where: no inf/NaN in either branch, so derivatives stay finite
    return jnp.where(keep, 1.0 / jnp.where(keep, x, 1.0), 0.0)


class PairStructure(NamedTuple):
    """Gap data for rows = all r indices, columns = the selected ``cols``."""

    apart: jnp.ndarray  # (..., r, c) bool: different clusters
    rot: jnp.ndarray  # (..., r, c) bool: same non-zero cluster, i != j
    inv_diff: jnp.ndarray  # (..., r, c) 1/(s_i - s_j) where apart, else 0
    inv_sum: jnp.ndarray  # (..., r, c) 1/(s_i + s_j) where s_i + s_j > tol, else 0
    inv_s: jnp.ndarray  # (..., c) 1/s_j where s_j is not zero, else 0
    bad: jnp.ndarray  # (..., c) bool: s_j degenerate (see module doc)
    same_cc: jnp.ndarray  # (..., c, c) bool: same cluster among selected
    keep_pair: jnp.ndarray  # (..., r, c) bool: neither sigma_i nor sigma_j degenerate


def pair_structure(s, cols: tuple[int, ...], m: int, n: int, *, rtol=None, ids=None) -> PairStructure:
    """Gap reciprocals for the engine and the closed forms.

    ``keep_pair`` marks the pairs whose reciprocals may be differentiated:
    near a cluster the true rule couples to the whole cluster block (first-order
    off-diagonal terms that a diagonal sigma cannot carry), so the derivative
    of a reciprocal that involves a degenerate sigma is not the derivative of
    the series.  Rules multiply with :func:`guarded_mul` (the derivative is
    then NaN where it matters and exact elsewhere).  Taylor mode (the engine at
    order K) does not differentiate the rule and stays exact.  ``ids``
    overrides :func:`cluster_ids` (see ``_series.svd_series``).
    """
    ids = cluster_ids(s, m, n, rtol) if ids is None else lax.stop_gradient(ids)
    tol = degeneracy_tol(s, m, n, rtol)
    bad_all = degenerate(s, m, n, rtol)
    sc = take_cols(s, cols)
    idc = take_cols(ids, cols)
    apart = ids[..., :, None] != idc[..., None, :]
    nonzero = lax.stop_gradient(sc) > tol
    # (r, c) pattern, explicitly broadcast over the leading batch dimensions
    offdiag = jnp.broadcast_to(jnp.arange(s.shape[-1])[:, None] != jnp.asarray(cols)[None, :], apart.shape)
    rot = ~apart & offdiag & nonzero[..., None, :]
    inv_diff = _safe_recip(s[..., :, None] - sc[..., None, :], apart)
    ssum = s[..., :, None] + sc[..., None, :]
    inv_sum = _safe_recip(ssum, lax.stop_gradient(ssum) > tol[..., None])
    inv_s = _safe_recip(sc, nonzero)
    bad = take_cols(bad_all, cols)
    same_cc = idc[..., :, None] == idc[..., None, :]
    keep_pair = ~bad_all[..., :, None] & ~bad[..., None, :]
    return PairStructure(apart, rot, inv_diff, inv_sum, inv_s, bad, same_cc, keep_pair)


def take_cols(x, cols: tuple[int, ...]):
    """x[..., cols] along the last axis, as a slice where possible (jet-friendly)."""
    if cols == tuple(range(x.shape[-1])):
        return x
    if len(cols) == 1:
        return x[..., cols[0] : cols[0] + 1]
    return jnp.take(x, jnp.asarray(cols), axis=-1)


def relative_gaps(s, m: int, n: int, *, across_clusters: bool = False):
    """Distance of each sigma_k to the rest of the spectrum of [[0, A], [A^T, 0]].

    The other eigenvalues are sigma_j (j != k), -sigma_j (all j, so 2 sigma_k
    itself) and 0 when m != n.  Divided by sigma_max.  With ``across_clusters``
    the sigma_j coincident with sigma_k (its cluster) are left out.
    """
    r = s.shape[-1]
    same = jnp.broadcast_to(jnp.eye(r, dtype=bool), s.shape + (r,))
    if across_clusters:
        ids = cluster_ids(s, m, n)
        same = ids[..., :, None] == ids[..., None, :]
    diff = jnp.abs(s[..., :, None] - s[..., None, :])
    diff = jnp.where(same, jnp.inf, diff)
    summ = s[..., :, None] + s[..., None, :]
    g = jnp.minimum(jnp.min(diff, axis=-1), jnp.min(summ, axis=-1))
    if m != n:
        g = jnp.minimum(g, s)
    return g / s[..., :1]


# ---------------------------------------------------------------------------
# spectral functions (Lewis--Sendov divided differences), jaxsvd/_spectral.py
# ---------------------------------------------------------------------------


def near_tie_rtol(dtype) -> float:
    """Relative gap below which a divided difference switches to its expansion.

    ``eps ** (1/3)`` (6.1e-6 in float64, 4.9e-3 in float32) balances the two
    errors: the direct quotient (g_k - g_i)/(s_k - s_i) loses ~eps/gap to
    cancellation, the symmetric expansion errs by ~gap**2.  Both stay below
    ~eps**(2/3) (4e-11 in float64).
    """
    return float(jnp.finfo(dtype).eps) ** (1.0 / 3.0)


class SpectralPairs(NamedTuple):
    """Guarded pair data for the divided differences of a spectral function."""

    same: jnp.ndarray  # (..., r, r) bool: same cluster (coincident)
    near: jnp.ndarray  # (..., r, r) bool: same cluster, or |s_i - s_j| <= near_tie_rtol * max(s_i, s_j)
    zero: jnp.ndarray  # (..., r) bool: s_k <= degeneracy_tol
    both_zero: jnp.ndarray  # (..., r, r) bool
    inv_diff: jnp.ndarray  # (..., r, r) 1/(s_i - s_j) where not coincident, else 0
    inv_sum: jnp.ndarray  # (..., r, r) 1/(s_i + s_j) unless both are zero, else 0
    inv_s: jnp.ndarray  # (..., r) 1/s_k where s_k is not zero, else 0


def spectral_pairs(s, m: int, n: int) -> SpectralPairs:
    """Coincidence, near-tie and zero masks plus guarded reciprocals (all pairs).

    Unlike :func:`pair_structure`, 1/(s_i + s_j) is kept for coincident
    non-zero pairs (a spectral function needs it at the identity) and dropped
    only when both values are zero.
    """
    s_ = lax.stop_gradient(s)
    ids = cluster_ids(s_, m, n)
    tol = degeneracy_tol(s_, m, n)
    same = ids[..., :, None] == ids[..., None, :]
    zero = s_ <= tol
    both_zero = zero[..., :, None] & zero[..., None, :]
    big = jnp.maximum(s_[..., :, None], s_[..., None, :])
    near = same | (jnp.abs(s_[..., :, None] - s_[..., None, :]) <= near_tie_rtol(s.dtype) * big)
    inv_diff = _safe_recip(s[..., :, None] - s[..., None, :], ~same)
    inv_sum = _safe_recip(s[..., :, None] + s[..., None, :], ~both_zero)
    inv_s = _safe_recip(s, ~zero)
    return SpectralPairs(same, near, zero, both_zero, inv_diff, inv_sum, inv_s)


# ---------------------------------------------------------------------------
# gauge-invariant functions through ties (polar, U g(S) V^T), jaxsvd/_ties.py
# ---------------------------------------------------------------------------


def tie_merge_rtol(dtype) -> float:
    """Relative gap below which a generalized matrix function merges singular values.

    ``eps ** (1/9)`` (1.8e-2 in float64, 0.17 in float32).  Inside a merged
    cluster g is expanded in a Taylor series about the cluster's mean, with
    enough terms (jaxsvd/_ties.py: 8 beyond the order) that the truncation,
    ~ (gap/2) ** 9, stays below eps; outside, the order-k coefficient's divided
    differences lose ~ eps / gap ** k to cancellation (float64: 1e-14 at k = 1,
    7e-13 at k = 2).  Where g is not analytic that far the cluster is split
    (the expansion must reproduce g(s_i) - g(s_j) to rounding).
    """
    return float(jnp.finfo(dtype).eps) ** (1.0 / 9.0)


def near_cluster_ids(s, m: int, n: int, rtol: float, split=None):
    """Cluster ids (..., r) that merge near ties: sorted runs, each within ``rtol``
    of its first (largest) value, coincident values always together.

    ``split`` (..., r - 1) bool forces a new cluster between s_i and s_(i+1)
    unless they coincide (within :func:`degeneracy_tol`); ``rtol = inf`` merges
    everything not split.  Anchored at each run's first value (not chained), so a
    dense spectrum never merges into one wide cluster.
    """
    s = lax.stop_gradient(s)
    r = s.shape[-1]
    zero = jnp.zeros(s.shape[:-1] + (1,), jnp.int32)
    if r <= 1:
        return jnp.zeros(s.shape, jnp.int32)
    tol = degeneracy_tol(s, m, n)[..., 0]
    if split is None:
        split = jnp.zeros(s.shape[:-1] + (r - 1,), bool)
    far = rtol != float("inf")

    def step(carry, x):
        anchor, cid = carry
        si, prev, sp = x
        new = (prev - si > tol) & (sp | ((si < anchor * (1 - rtol)) if far else False))
        cid = cid + new.astype(jnp.int32)
        return (jnp.where(new, si, anchor), cid), cid

    xs = tuple(jnp.moveaxis(x, -1, 0) for x in (s[..., 1:], s[..., :-1], split))
    _, ids = lax.scan(step, _compat.like_varying((s[..., 0], zero[..., 0]), s), xs)
    return jnp.concatenate([zero, jnp.moveaxis(ids, 0, -1)], axis=-1)
