"""Gauge-invariant functions of the SVD, exact through ties: the polar factor,
generalized matrix functions ``U diag(g(s)) V^T``, the best rank-k approximation
and the singular-subspace projectors.

One primitive with its rules beside it (primal, JVP, transpose, Taylor,
registration):

    tie_p(a, s, U, Vt, h_1, ..., h_p; spec) = D^p F(a)[h_1, ..., h_p]

for ``F(a) = U diag(g(s)) Vt`` (thin), where ``(s, U, Vt)`` is the SVD of ``a``
(a cache of the factorisation: its tangents are ignored).  Every such F is a
gradient, ``F = grad Phi`` with ``Phi(A) = sum_i G(sigma_i)``, ``G' = g``, so
``D^p F`` is a symmetric (p+1)-linear form in the directions:

  * JVP:       along ``da`` it is ``D^(p+1) F[h_1, ..., h_p, da]``, plus
               ``D^p F[.., dh_i, ..]`` (linear in each h_i);
  * transpose: in h_i, ``ct -> D^p F[h_1, .., ct, .., h_p]`` (symmetry of D^(p+1) Phi);
  * Taylor:    the series of F along ``a + sum_j A_j x^j`` (p = 0).

So jvp, grad, jacfwd, jacrev, hessian and jvp of jvp all re-enter one rule: the
Taylor coefficients of F from the series engine in its cluster gauge
(jaxsvd/_series.py with ``mask=False``).  There U(x), V(x) have orthonormal
columns and ``U(x)^T A(x) V(x) = S(x)`` is block diagonal and symmetric, one
block per cluster, so

    F(A(x)) = U(x) g(S(x)) V(x)^T,     g applied to each symmetric block.

The engine's cluster equations hold for any s_i, s_j inside a block (they
divide by s_i + s_j only; the blocks absorb the differences), so the clusters
are ours to choose -- the point of this module:

  * polar (g = 1): one cluster.  ``F_n = sum_{a+c=n} U_a V_c^T``: no
    1/(s_i - s_j) anywhere, the skew parts through 1/(s_i + s_j), the null
    spaces through 1/s_j (docs/ties.md, "How: one engine, a chosen gauge");
  * truncate (g = s on the top k) and the projectors (g = 1/s on the top k;
    ``P_U = G A^T``, ``P_V = A^T G``): two clusters split at the cut, where
    ``g(S)`` is ``S_top`` or the inverse series of ``S_top`` -- exact;
  * a general g: near ties merged (relative gap <= ``_spectrum.tie_merge_rtol``,
    eps**(1/9)); inside a cluster ``g(S(x)) = sum_j g^(j)(c)/j! (S(x) - c)^j``
    about the cluster's mean c, NEAR_EXTRA terms beyond the order (the
    divided differences (g_i - g_j)/(s_i - s_j) through their Taylor
    expansion, error ~ (gap/2)**(NEAR_EXTRA + 1)); different clusters meet through
    the engine's 1/(s_i - s_j), >= the merge gap.  Where g is not smooth between
    two near values -- its expansion does not reproduce g(s_i) - g(s_j) to
    rounding -- the cluster is split there (direct quotient).

Zero singular values: the engine's non-zero columns are exact, and the rest
of A is ``Z(x) = A(x) - U_nz(x) S_nz(x) V_nz(x)^T = O(x)``, on which F acts as
the odd extension of g: ``sum_k c_(2k+1) Z (Z^T Z)^k`` (c_j the Taylor
coefficients of g at 0).  The n-th derivative exists iff c_0 = c_2 = ... =
c_(2k) = 0 for 2k <= n (g(s)/s -> g'(0) on the null spaces at first order).

``D^p F`` from the order-p coefficient ``c_p(H)`` along ``a + x H``, a
homogeneous polynomial of degree p (``c_p(H) = D^p F[H, ..., H] / p!``):
``D^p F[h_1, ..., h_p] = D^(p-1) c_p(h_1)[h_2, ..., h_p]`` by p - 1 nested jvps
of the engine in its terms (the factorisation is fixed: nothing differentiates
the basis, so no gauge enters).

NaN where F is not p times differentiable (order p of the rule):
  * polar: a zero singular value (rank-deficient a);
  * truncate / projectors: sigma_k = sigma_(k+1) (within the degeneracy
    tolerance of _spectrum.py); projectors with k = min(m, n): sigma_k = 0;
  * general g: g not C^p at some non-zero sigma_i (its Taylor coefficients at
    sigma_i (1 - 4 eps), carried over the step to sigma_i (1 + 4 eps), disagree
    with those there beyond sqrt(eps) or rounding), the zero rule above,
    non-finite values.  So a kink of g (a threshold tau) makes NaN only within
    ~4 eps sigma_i of sigma_i (float32: ~5e-7 relative), the SVD's own accuracy.

User functions and parameters (jaxsvd/_userfn.py): ``g(s, *params)``; g's
Taylor coefficients in s come from ``_compat.jet_user``, which follows
``custom_jvp`` rules (jax.nn.relu, softplus, logaddexp); the parameters are
operands after ``vt`` and their derivative is the same primitive with the
derived ``g'(s, *p, *e) = D_p g(s, *p)[e]`` (``_Spec.d_params``), transposed in
e through one primitive per unit direction.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
from jax import lax

from . import _compat
from ._nanmask import nan_unless
from ._series import like, mH, mm, svd_series
from ._spectrum import degeneracy_tol, near_cluster_ids, tie_merge_rtol
from ._svd import as_matrix, lapack_svd, real_dtype, static_int
from ._userfn import as_param, check, moving_params, nan_where, over_batch, param_derivative, user_jet

#: Taylor terms of g beyond the order inside a merged near-tie cluster
NEAR_EXTRA = 8
#: one-sided probes for kinks of g at s (1 -+ _SIDE_ULPS eps)
_SIDE_ULPS = 4

# ---------------------------------------------------------------------------
# the function g: values and Taylor coefficients (all (..., r))
# ---------------------------------------------------------------------------


class _Spec:
    """Static parameter of ``tie_p``: which F (hashed by identity).

    kind: "polar" (g = 1), "truncate" (g = s on the top k), "pinv" (g = 1/s on
    the top k), "power" (g = s**p on the top k, the factors of ``truncated_split``),
    "general" (an elementwise user g, called ``g(s, *params)`` with
    ``nparams`` parameters, operands of ``tie_p`` after ``vt``).  The last
    ``nlinear`` parameters of a derivative spec (:meth:`d_params`) are
    directions, in which g is linear.
    """

    def __init__(self, kind: str, name: str, k=None, g=None, nparams: int = 0, nlinear: int = 0, p=None):
        self.kind, self.name, self.k, self.g, self.p = kind, name, k, g, p
        self.nparams, self.nlinear, self._d = nparams, nlinear, None
        self.params = ()  # bound parameter values (see ``bound``)

    def bound(self, params):
        """This spec with its parameter values (traced arrays), for the rules' helpers."""
        if not params:
            return self
        b = _Spec(self.kind, self.name, self.k, self.g, self.nparams, self.nlinear, self.p)
        b.params = tuple(params)
        return b

    def d_params(self):
        """The spec of the derivative in the parameters: ``g'(s, *p, *e) = D_p g(s, *p)[e]``
        (elementwise in s, linear in the directions e).  One object per spec."""
        if self._d is None:
            q = self.nparams
            self._d = _Spec("general", f"d_{self.name}", g=param_derivative(self.g, q), nparams=2 * q, nlinear=q)
        return self._d

    def __repr__(self):
        return f"tie<{self.name}>"

    def _top(self, x):
        r = x.shape[-1]
        return jnp.broadcast_to(jnp.arange(r) < (r if self.k is None else self.k), x.shape)

    def values(self, x):
        """g(x), (..., r)."""
        if self.kind == "polar":
            return jnp.ones_like(x)
        top = self._top(x)
        if self.kind == "truncate":
            return jnp.where(top, x, 0.0)
        if self.kind == "pinv":
            return jnp.where(top, 1.0 / jnp.where(top, x, 1.0), 0.0)
        if self.kind == "power":
            return self.taylor(x, 0)[0]
        return over_batch(self.g, x, self.params).astype(x.dtype)

    def taylor(self, x, J: int):
        """[d_0, ..., d_J] with d_j = g^(j)(x) / j!."""
        zeros = [jnp.zeros_like(x)] * J
        if self.kind == "polar":
            return [jnp.ones_like(x)] + zeros
        top = self._top(x)
        if self.kind == "truncate":
            return [jnp.where(top, x, 0.0), top.astype(x.dtype)] + zeros[1:]
        if self.kind == "pinv":
            inv = jnp.where(top, 1.0 / jnp.where(top, x, 1.0), 0.0)
            return [inv * (-inv) ** j for j in range(J + 1)]
        if self.kind == "power":
            # g^(j)(x) / j! = binom(p, j) x^(p - j) on the top k (x > 0; 0 elsewhere)
            ok = top & (x > 0)
            xs = jnp.where(ok, x, 1.0)
            out, c = [], 1.0
            for j in range(J + 1):
                out.append(jnp.where(ok, c * xs ** (self.p - j), 0.0))
                c = c * (self.p - j) / (j + 1)
            return out

        if J == 0:
            return [self.values(x)]

        def one(x1, *p):
            # Taylor coefficients of g(x1 + t) in t, following custom_jvp rules
            # (jax.nn.relu, softplus, logaddexp: jet alone fails on them, jax#30352)
            series = [jnp.ones_like(x1)] + [jnp.zeros_like(x1)] * (J - 1)
            y0, ys = user_jet(self.g, f"g = {self.name}", (x1, *p), (series,) + ((),) * len(p))
            return [jnp.asarray(y0, x1.dtype)] + [jnp.broadcast_to(jnp.asarray(y, x1.dtype), x1.shape)
                                                  for y in ys]

        return [d.astype(x.dtype) for d in over_batch(one, x, self.params)]


# ---------------------------------------------------------------------------
# clusters and existence (stop-gradient data)
# ---------------------------------------------------------------------------


def _kinked_between(s, spec):
    """(..., r-1): g is not smooth between s_i and s_(i+1): its Taylor series
    about their midpoint, or about either of them, does not reproduce
    g(s_i) - g(s_(i+1)) to rounding (a midpoint on a kink alone would: its
    one-sided average slope)."""
    eps = float(jnp.finfo(s.dtype).eps)
    mid = 0.5 * (s[..., :-1] + s[..., 1:])
    dm = spec.taylor(jnp.concatenate([mid, s[..., -1:]], axis=-1), NEAR_EXTRA)
    ds = spec.taylor(s, NEAR_EXTRA)
    lo, hi = s[..., :-1] - mid, s[..., 1:] - mid
    step = s[..., 1:] - s[..., :-1]
    js = range(1, NEAR_EXTRA + 1)
    gv = spec.values(s)
    gmax = jnp.max(jnp.abs(gv), axis=-1, keepdims=True)
    direct = gv[..., :-1] - gv[..., 1:]
    # to rounding: the expansion is what the derivatives use inside a cluster
    tol = 64 * eps * (jnp.abs(gv[..., :-1]) + jnp.abs(gv[..., 1:]) + gmax / 64)
    about_mid = sum(dm[j][..., :-1] * (lo ** j - hi ** j) for j in js)
    from_left = -sum(ds[j][..., :-1] * step ** j for j in js)
    from_right = sum(ds[j][..., 1:] * (-step) ** j for j in js)
    ok = [jnp.abs(direct - x) <= tol for x in (about_mid, from_left, from_right)]
    return ~(ok[0] & ok[1] & ok[2])


def _structure(s, spec, m: int, n: int):
    """(ids, nz): the engine's clusters for this F and the non-zero mask."""
    s = lax.stop_gradient(s)
    r = s.shape[-1]
    nz = s > degeneracy_tol(s, m, n)
    if r == 1:
        return jnp.zeros(s.shape, jnp.int32), nz
    split = nz[..., :-1] != nz[..., 1:]
    if spec.k is not None and spec.k < r:
        split = split | jnp.broadcast_to(jnp.arange(r - 1) == spec.k - 1, split.shape)
    rtol = float("inf")
    if spec.kind == "general":
        split = split | _kinked_between(s, spec)
    if spec.kind in ("general", "power"):  # g(S) about each cluster's mean: near ties only
        rtol = tie_merge_rtol(s.dtype)
    return near_cluster_ids(s, m, n, rtol, split), nz


def _exists(s, spec, m: int, n: int, order: int):
    """(...,) bool: F is ``order`` times differentiable at a (see module doc)."""
    s = lax.stop_gradient(s)
    r = s.shape[-1]
    eps = float(jnp.finfo(s.dtype).eps)
    tau = math.sqrt(eps)
    tol = degeneracy_tol(s, m, n)[..., 0]
    nz = s > tol[..., None]
    if spec.kind == "polar":
        return jnp.all(nz, axis=-1)
    ok = jnp.ones(s.shape[:-1], bool)
    k = spec.k
    if spec.kind in ("truncate", "pinv", "power") and k < r:
        ok = ok & (s[..., k - 1] - s[..., k] > tol)
    if spec.kind in ("pinv", "power"):
        ok = ok & (s[..., k - 1] > tol)
    if spec.kind in ("truncate", "pinv", "power"):
        return ok
    # general g: smooth at every non-zero sigma_i, to order ``order``
    gv = spec.values(s)
    smax = s[..., :1]
    d = spec.taylor(s, order)
    gscale = jnp.max(jnp.abs(gv) + jnp.abs(d[1] * s), axis=-1)
    # one-sided Taylor coefficients at s (1 -+ delta): the left ones carried over the
    # step to the right point (sum_i C(i, j) d_i step^(i-j)) must agree with the right
    # ones, to sqrt(eps) relative or rounding (64 eps of g's scale).  Comparing the raw
    # coefficients would call the slope times the step a kink wherever g is small (a
    # threshold: s within 16 sqrt(eps) of tau, 0.5 % in float32).  Kinks within
    # delta = _SIDE_ULPS eps of s (relative) are the only ones that cannot be told apart.
    xp, xm = s * (1 + _SIDE_ULPS * eps), s * (1 - _SIDE_ULPS * eps)
    dp, dm = spec.taylor(xp, order + 1), spec.taylor(xm, order + 1)
    step = xp - xm
    for j in range(order + 1):
        pw = s ** j
        carried = sum(math.comb(i, j) * dm[i] * step ** (i - j) for i in range(j, order + 2))
        agree = (jnp.abs(dp[j] - carried) * pw
                 <= tau * (jnp.abs(dp[j]) + jnp.abs(dm[j])) * pw + 64 * eps * gscale[..., None])
        ok = ok & jnp.all(~nz | (agree & jnp.isfinite(d[j])), axis=-1)
    # zero singular values: the odd extension of g must be C^order at 0
    c = [x[..., -1] for x in spec.taylor(jnp.zeros_like(s), order)]
    zero_ok = jnp.isfinite(c[0]) & (jnp.abs(c[0]) <= tau * gscale)
    for j in range(1, order + 1):
        zero_ok = zero_ok & jnp.isfinite(c[j])
        if j % 2 == 0:
            zero_ok = zero_ok & (jnp.abs(c[j]) * smax[..., 0] ** j <= tau * gscale)
    ok = ok & (jnp.all(nz, axis=-1) | zero_ok)
    return ok & jnp.all(jnp.isfinite(gv), axis=-1)


# ---------------------------------------------------------------------------
# the series of F along A(x) = a + sum_j terms[j-1] x^j
# ---------------------------------------------------------------------------


def _g_series(s, sig, ids, spec, K: int):
    """[G_1, ..., G_K] (r x r) of g(S(x)), S(x) = diag(s) + sum_b sig[b-1] x^b
    block diagonal (G_0 = diag(g(s)) is used separately).  None = zero."""
    if spec.kind == "polar":
        return [None] * K
    if spec.kind == "truncate":
        top = spec._top(s).astype(s.dtype)
        mask = top[..., :, None] * top[..., None, :]
        return [x * like(mask, x) for x in sig]
    if spec.kind == "pinv":
        # inverse series of the top block: N_0 = diag(1/s), N_b = -N_0 sum_j S_j N_(b-j)
        n0 = like(spec.values(s), sig[0])
        ns = [None]
        for b in range(1, K + 1):
            acc = sig[b - 1] * n0[..., None, :]
            for j in range(1, b):
                acc = acc + mm(sig[j - 1], ns[b - j])
            ns.append(-n0[..., :, None] * acc)
        return ns[1:]
    # general g: Taylor series about each cluster's mean c (constant on blocks,
    # so diag(g^(j)(c)) commutes with the block-diagonal S(x) - c)
    same = ids[..., :, None] == ids[..., None, :]
    c = jnp.sum(jnp.where(same, s[..., None, :], 0.0), axis=-1) / jnp.sum(same, axis=-1).astype(s.dtype)
    e0 = like(s - c, sig[0])
    J = K + NEAR_EXTRA
    d = [like(x, sig[0]) for x in spec.taylor(c, J)]
    gs = [jnp.zeros_like(sig[0]) for _ in range(K)]
    # power j of E(x) = diag(e0) + sum_b sig_b x^b: order 0 a vector (diagonal)
    p0, pw = e0, list(sig)  # E^1
    for j in range(1, J + 1):
        for b in range(K):
            gs[b] = gs[b] + d[j][..., :, None] * pw[b]
        if j == J:
            break
        new = []
        for b in range(1, K + 1):  # order b of E^(j+1) = sum_t E_t P_(b-t)
            acc = e0[..., :, None] * pw[b - 1] + sig[b - 1] * p0[..., None, :]
            for t in range(1, b):
                acc = acc + mm(sig[t - 1], pw[b - t - 1])
            new.append(acc)
        p0, pw = p0 * e0, new
    return gs


def _triple(us, g0, gs, vs, K: int):
    """[F_1..F_K], F_n = sum_{a+b+c=n} U_a G_b V_c^H, G_0 = diag(g0)."""
    ys = []
    g0 = like(g0, vs[0])
    for j in range(K + 1):  # Y_j = sum_{b+c=j} G_b V_c^H
        y = g0[..., :, None] * mH(vs[j])
        for b in range(1, j + 1):
            if gs[b - 1] is not None:
                y = y + mm(gs[b - 1], mH(vs[j - b]))
        ys.append(y)
    return [sum(mm(us[a], ys[nn - a]) for a in range(nn + 1)) for nn in range(1, K + 1)]


def _odd_series(zs, c, K: int):
    """Orders 1..K of sum_k c_(2k+1) Z (Z^H Z)^k for Z(x) = sum_{n>=1} zs[n-1] x^n."""
    z = [None] + list(zs)
    c = [like(x, zs[0]) for x in c]
    out = [c[1][..., None, None] * x for x in zs]
    if K < 3:
        return out
    w = [None, None] + [sum(mm(mH(z[a]), z[nn - a]) for a in range(1, nn)) for nn in range(2, K + 1)]
    q = z
    for k in range(1, (K - 1) // 2 + 1):
        q = [None] * (2 * k + 1) + [sum(mm(q[a], w[nn - a]) for a in range(2 * k - 1, nn - 1))
                                    for nn in range(2 * k + 1, K + 1)]
        for nn in range(2 * k + 1, K + 1):
            out[nn - 1] = out[nn - 1] + c[2 * k + 1][..., None, None] * q[nn]
    return out


def _f_series(s, u, v, terms, spec, K: int):
    """Unscaled Taylor coefficients F_1..F_K (unmasked)."""
    m, n = u.shape[-2], v.shape[-2]
    ids, nz = _structure(s, spec, m, n)
    ser = svd_series(s, u, v, terms, mask=False, ids=ids, num_orders=K)
    us, vs = [u] + ser.u, [v] + ser.v
    w = nz.astype(s.dtype)
    wm = like(w[..., :, None] * w[..., None, :], u)
    gs = [None if x is None else x * wm for x in _g_series(s, ser.blocks, ids, spec, K)]
    out = _triple(us, spec.values(s) * w, gs, vs, K)
    if spec.kind in ("polar", "power") or (spec.k is not None and spec.k < s.shape[-1]):
        return out  # no zero singular value can matter (NaN, or below the cut where g = 0)
    # zero singular values: F acts on Z = A - U_nz S_nz V_nz^T as g's odd extension
    recon = _triple(us, s * w, [x * wm for x in ser.blocks], vs, K)
    zs = [(terms[j] if j < len(terms) else 0.0) - recon[j] for j in range(K)]
    c = [x[..., -1] for x in spec.taylor(jnp.zeros_like(s), K)]
    odd = _odd_series(zs, c, K)
    anyzero = jnp.any(~nz, axis=-1)[..., None, None]
    return [f + jnp.where(anyzero, o, 0.0) for f, o in zip(out, odd, strict=True)]


def _nan_unless_ok(x, ok):
    return jnp.where(ok[..., None, None], x, jnp.asarray(jnp.nan, x.dtype))


def _multilinear(s, u, vt, hs, spec, series=None, mask=True):
    """D^p F[h_1, ..., h_p] = D^(p-1) c_p(h_1)[h_2, ..., h_p] (module doc), for the
    series ``series(s, u, v, terms, spec, K)`` (default ``_f_series``; the truncated
    split passes its own, jaxsvd/_split.py).  ``mask=False``: without the NaN of
    ``_exists`` (a caller that differentiates this masks afterwards)."""
    series = _f_series if series is None else series
    p = len(hs)
    v = mH(vt)
    m, n = u.shape[-2], v.shape[-2]

    def coef(h):
        return series(s, u, v, [h], spec, p)[p - 1]

    fn = coef
    for h in hs[1:]:
        fn = (lambda f, d: (lambda x: jax.jvp(f, (x,), (d,))[1]))(fn, h)
    out = fn(hs[0])
    return _nan_unless_ok(out, _exists(s, spec, m, n, p)) if mask else out


def _directional_series(s, u, v, terms, hser, spec, K: int, series=None):
    """Orders 1..K of x -> D^p F(A(x))[h_1(x), ..., h_p(x)], A(x) = a + sum_j
    terms[j-1] x^j, h_i(x) = sum_j hser[i][j] x^j (unmasked): the coefficient of
    l_1 .. l_p in F(A(x) + sum_i l_i h_i(x)); with l_i = x mu_i that is a single
    path with terms B_k = A_k + sum_i mu_i h_(i,k-1), and order n of the
    derivative is the mu_1 .. mu_p-multilinear part of order n + p."""
    series = _f_series if series is None else series
    p = len(hser)
    if p == 0:
        return series(s, u, v, terms, spec, K)
    L = K + p
    zero = jnp.zeros_like(hser[0][0])

    def coefs(mu):
        path = []
        for k in range(1, L + 1):
            b = terms[k - 1] if k <= len(terms) else zero
            for i in range(p):
                if k - 1 < len(hser[i]):
                    b = b + like(mu[i], b) * hser[i][k - 1]
            path.append(b)
        return series(s, u, v, path, spec, L)[p:]

    fn = coefs
    for i in range(p):
        # real mu: F is not holomorphic in a, so its multilinear parts are
        # taken along real coefficients
        e = jnp.zeros((p,), s.dtype).at[i].set(1.0)
        fn = (lambda f, d: (lambda x: jax.jvp(f, (x,), (d,))[1]))(fn, e)
    return fn(jnp.zeros((p,), s.dtype))


def _grad_of_jet_marker(a):
    """1 with a NaN derivative in ``a``.  Taylor coefficients written as jnp code on
    the cached factorisation, whose tangents are not tracked, would give a silently
    wrong derivative with respect to ``a`` (grad of jet: the basis's motion is
    missed); multiplied by this they get NaN instead (the derivative in the terms
    A_1.. stays exact)."""
    x = a - lax.stop_gradient(a)
    return 1 + jnp.sum(nan_unless(x, jnp.zeros(x.shape, bool), face="reverse") - x, axis=(-2, -1))


# ---------------------------------------------------------------------------
# primal
# ---------------------------------------------------------------------------

tie_p = _compat.new_primitive("jaxsvd_tie")


def _split(rest, spec):
    """(params, hs) of the operands after vt: g's parameters, then the directions."""
    return tuple(rest[:spec.nparams]), tuple(rest[spec.nparams:])


def _impl(a, s, u, vt, *rest, spec):
    params, hs = _split(rest, spec)
    spec = spec.bound(params)
    if not hs:
        return mm(u * like(spec.values(s), u)[..., None, :], vt)
    return _multilinear(s, u, vt, hs, spec)


def _abstract(a, s, u, vt, *rest, spec):
    return _compat.ShapedArray(a.shape, a.dtype)


# ---------------------------------------------------------------------------
# first order (and every order by re-entry): D^p F -> D^(p+1) F
# ---------------------------------------------------------------------------


def _jvp(primals, tangents, *, spec):
    a, s, u, vt, *rest = primals
    da, _, _, _, *drest = tangents  # (s, U, Vt) is a cache of svd(a): no tangent of its own
    (params, hs), (dps, dhs) = _split(rest, spec), _split(drest, spec)
    y = tie_p.bind(*primals, spec=spec)
    outs = []
    if type(da) is not _compat.Zero:
        outs.append(tie_p.bind(a, s, u, vt, *params, *hs, da, spec=spec))
    for i, dh in enumerate(dhs):
        if type(dh) is not _compat.Zero:
            outs.append(tie_p.bind(a, s, u, vt, *params, *hs[:i], dh, *hs[i + 1:], spec=spec))
    if any(type(d) is not _compat.Zero for d in dps):
        # in the parameters: D^p F for g' = D_params g[dparams], elementwise in s too
        dps = [_compat.instantiate(d) for d in dps]
        outs.append(tie_p.bind(a, s, u, vt, *params, *dps, *hs, spec=spec.d_params()))
    return y, tangent_sum(y, outs)


def tangent_sum(y, outs):
    """The sum of a JVP rule's tangent terms (zeros like ``y`` when there are none)."""
    if not outs:
        return jnp.zeros_like(y)
    out = outs[0]
    for t in outs[1:]:
        out = out + t
    return out


def _transpose(ct, a, s, u, vt, *rest, spec):
    # D^p F is symmetric in all p + 1 directions (F is a gradient).  For complex a
    # it is self-adjoint for Re tr(X^H Y), and JAX pairs a cotangent with a
    # tangent by Re sum(ct * y): the transpose is conj(D^p F[.., conj(ct), ..])
    params, hs = _split(rest, spec)
    undef = _compat.is_undefined_primal
    lin = [i for i, h in enumerate(hs) if undef(h)]
    plin = [i for i, x in enumerate(params) if undef(x)]
    first = spec.nparams - spec.nlinear  # the directions of a parameter derivative
    if undef(a) or len(lin) + bool(plin) != 1 or any(i < first for i in plin):
        raise NotImplementedError("tie_p is linear in one direction at a time")
    if plin:
        return [None] * 4 + _transpose_params(ct, a, s, u, vt, params, hs, plin, spec) + [None] * len(hs)
    i = lin[0]
    if type(ct) is _compat.Zero:
        res = ct
    else:
        args = list(hs)
        args[i] = jnp.conj(ct)
        res = jnp.conj(tie_p.bind(a, s, u, vt, *params, *args, spec=spec))
    return [None] * 4 + [None] * len(params) + [res if j == i else None for j in range(len(hs))]


def _transpose_params(ct, a, s, u, vt, params, hs, plin, spec):
    # the output is linear in the parameter directions e (g' = D_p g[e] is): its
    # transpose is e_k -> Re sum(ct * Y_k), Y_k = the output for the k-th unit
    # direction -- one tie_p per entry of the parameters, batched by vmap
    if type(ct) is _compat.Zero:
        return [None] * len(params)
    batch = a.shape[:-2]
    shapes = [params[i].aval.shape[len(batch):] for i in plin]
    sizes = [math.prod(sh) for sh in shapes]
    rdt = real_dtype(a.dtype)

    def one(row):
        args, at = list(params), 0
        for i, sh, k in zip(plin, shapes, sizes, strict=True):
            args[i] = jnp.broadcast_to(row[at:at + k].reshape(sh), batch + sh)
            at += k
        return tie_p.bind(a, s, u, vt, *args, *hs, spec=spec)

    ys = jax.vmap(one)(jnp.eye(sum(sizes), dtype=rdt))  # (Q, ..., m, n)
    c = jnp.moveaxis(jnp.real(jnp.sum(ct[None] * ys, axis=(-2, -1))), 0, -1).astype(rdt)  # (..., Q)
    out, at = [None] * len(params), 0
    for i, sh, k in zip(plin, shapes, sizes, strict=True):
        out[i] = c[..., at:at + k].reshape(batch + sh)
        at += k
    return out


# ---------------------------------------------------------------------------
# Taylor mode: the series of F itself (unscaled coefficients in and out)
# ---------------------------------------------------------------------------


def _taylor(primals_in, series_in, *, spec):
    # p = 0: the series of F itself.  p >= 1: the series of x -> D^p F(A(x))[h_1(x), ..]
    # = the coefficient of l_1 .. l_p in F(A(x) + sum_i l_i h_i(x)); with l_i = x mu_i
    # that is a single path with terms B_k = A_k + sum_i mu_i h_(i,k-1), and order n
    # of the derivative is the mu_1 .. mu_p-multilinear part of order n + p.
    a, s, u, vt, *rest = primals_in
    sa, _, _, _, *srest = series_in
    (params, hs), (sps, shs) = _split(rest, spec), _split(srest, spec)
    moved = moving_params(sps, "generalized_matrix_function")
    terms = [jnp.broadcast_to(jnp.asarray(x, a.dtype), a.shape) for x in sa]
    K, p = len(terms), len(hs)
    m, n = a.shape[-2:]
    v = mH(vt)
    y0 = tie_p.bind(a, s, u, vt, *params, *hs, spec=spec)
    spec = spec.bound(params)
    hser = [[h] + [jnp.broadcast_to(jnp.asarray(x, a.dtype), a.shape) for x in sh]
            for h, sh in zip(hs, shs, strict=True)]
    fs = _directional_series(s, u, v, terms, hser, spec, K)
    marker = _grad_of_jet_marker(a)
    return y0, nan_where(moved, [_nan_unless_ok(f, _exists(s, spec, m, n, j + p)) * marker[..., None, None]
                                 for j, f in enumerate(fs, start=1)])


# ---------------------------------------------------------------------------
# registration
# ---------------------------------------------------------------------------

_compat.def_rules(tie_p, impl=_impl, abstract=_abstract, static_argnames=("spec",), jvp=_jvp,
                  transpose=_transpose, taylor=_taylor)


# ---------------------------------------------------------------------------
# public functions
# ---------------------------------------------------------------------------


def _checked(a):
    a = as_matrix(a)
    if 0 in a.shape[-2:]:
        raise ValueError(f"a must be a non-empty matrix; got shape {a.shape}")
    return a


def _factor(a):
    u, s, vt = lapack_svd(lax.stop_gradient(a), full_matrices=False)
    return s, u, vt


def _apply(a, spec, factors=None, params=()):
    s, u, vt = _factor(a) if factors is None else factors
    return tie_p.bind(a, s, u, vt, *params, spec=spec)


def _static_k(k, r: int):
    return static_int(k, "k", low=1, high=r, high_name="min(m, n)")


_POLAR = _Spec("polar", "polar")


@functools.lru_cache(maxsize=None)
def _spec_truncate(k: int):
    return _Spec("truncate", f"truncate_{k}", k=k)


@functools.lru_cache(maxsize=None)
def _spec_pinv(k: int):
    return _Spec("pinv", f"pinv_{k}", k=k)


def _sym(x):
    return 0.5 * (x + mH(x))


def polar(a, side: str = "right"):
    r"""Polar decomposition, differentiable through repeated singular values.

    ``side="right"``: ``a = u p`` with ``p = (a^T a)^{1/2}`` (n x n);
    ``side="left"``: ``a = p u`` with ``p = (a a^T)^{1/2}`` (m x m).  Like
    :func:`jax.scipy.linalg.polar`; ``u = U V^T`` (m x n) has orthonormal columns
    (rows when m < n) and is the orthogonal (Procrustes) factor.

    Derivatives from the series engine with all singular values in one cluster:
    the first order is ``du = U [(F - F^T) / (s_i + s_j)] V^T`` plus the null-space
    parts through ``1/s_j`` (``F = U^T da V``) -- never ``1/(s_i - s_j)`` -- so
    ``jvp``, ``grad``, ``hessian`` and ``jet`` are exact at rotations, the identity
    and near ties alike.

    At a rank-deficient ``a`` the factor ``u`` is not unique: the value returned
    is ``U V^T`` of the SVD, and its derivatives are NaN (they do not exist).

    Args:
      a: real or complex array ``(..., m, n)`` (docs/complex.md).
      side: ``"right"`` or ``"left"``.

    Returns:
      ``(u, p)``: ``u`` ``(..., m, n)``; ``p`` ``(..., n, n)`` (right) or ``(..., m, m)`` (left).

    Example:
      >>> import jax, jax.numpy as jnp, jaxsvd
      >>> rot = jnp.array([[0.0, -1.0], [1.0, 0.0]])   # sigma_1 = sigma_2 = 1
      >>> g = jax.grad(lambda a: jaxsvd.polar(a)[0][0, 1])(rot)
      >>> bool(jnp.all(jnp.isfinite(g)))
      True
    """
    if side not in ("right", "left"):
        raise ValueError(f"side must be 'right' or 'left', got {side!r}")
    a = _checked(a)
    u = _apply(a, _POLAR)
    p = mm(mH(u), a) if side == "right" else mm(a, mH(u))
    return u, _sym(p)


def truncate(a, k: int):
    r"""Best rank-k approximation ``U_k diag(s_k) V_k^T`` (Eckart--Young), ``(..., m, n)``.

    Differentiable iff ``sigma_k > sigma_(k+1)``, whatever ties lie inside the
    top k or below them: the series engine runs with two clusters split at the
    cut, and no ``1/(s_i - s_j)`` is formed inside either.  NaN derivatives at
    ``sigma_k = sigma_(k+1)``.

    Args:
      a: real or complex array ``(..., m, n)`` (docs/complex.md).
      k: static int, ``1 <= k <= min(m, n)``.

    Example:
      >>> import jax.numpy as jnp, jaxsvd
      >>> jaxsvd.truncate(jnp.diag(jnp.array([3.0, 2.0, 1.0])), 2)[2, 2]
      Array(0., dtype=float32)
    """
    a = _checked(a)
    k = _static_k(k, min(a.shape[-2:]))
    return _apply(a, _spec_truncate(k))


def projectors(a, k: int):
    r"""Projectors onto the top-k singular subspaces, ``(U_k U_k^T, V_k V_k^T)``.

    Shapes ``(..., m, m)`` and ``(..., n, n)``.  Differentiable iff
    ``sigma_k > sigma_(k+1)`` (for ``k = min(m, n)`` and m != n: iff
    ``sigma_k > 0``; for a square ``a`` and k = n both are the identity).
    Written as ``P_U = G a^T`` and ``P_V = a^T G`` with
    ``G = U_k diag(1/s_k) V_k^T`` (a generalized matrix function, exact through
    ties inside the top k and below it); NaN derivatives at ``sigma_k = sigma_(k+1)``.

    Example:
      >>> import jax.numpy as jnp, jaxsvd
      >>> pu, pv = jaxsvd.projectors(jnp.diag(jnp.array([3.0, 2.0, 1.0])), 1)
      >>> pu[0, 0], pv[1, 1]
      (Array(1., dtype=float32), Array(0., dtype=float32))
    """
    a = _checked(a)
    m, n = a.shape[-2:]
    k = _static_k(k, min(m, n))
    factors = _factor(a)
    g = _apply(a, _spec_pinv(k), factors)
    return left_projector(a, k, factors, g), left_projector(mH(a), k, (factors[0], mH(factors[2]), mH(factors[1])),
                                                            mH(g))


def left_projector(a, k: int, factors, g=None):
    """``U_k U_k^H`` (..., m, m) for the SVD ``factors = (s, U, Vt)`` of ``a``, as
    ``G a^H`` with ``G = U_k diag(1/s_k) V_k^H`` (``g``, computed when None): exact
    derivatives through ties on either side of the cut, NaN at sigma_k = sigma_(k+1)."""
    m, n = a.shape[-2:]
    u = factors[1]
    if k == min(m, n) and m <= n:
        nan_guard = 0.0 * jnp.sum(lax.stop_gradient(a), axis=(-2, -1))[..., None, None]  # NaN in, NaN out
        return jnp.broadcast_to(jnp.eye(m, dtype=a.dtype), a.shape[:-2] + (m, m)) + nan_guard
    if g is None:
        g = _apply(a, _spec_pinv(k), factors)
    prod = mm(g, mH(a))
    val = mm(u[..., :, :k], mH(u[..., :, :k]))  # value from the basis (accurate), derivative from the product
    return _sym(prod) - lax.stop_gradient(_sym(prod)) + val


def generalized_matrix_function(g):
    r"""Turn an elementwise function of the singular values into ``F(a, *params) = U diag(g(s, *params)) V^T``.

    ``F(a)`` has the shape of ``a`` (thin factors); e.g. ``g = lambda s, tau:
    jax.nn.relu(s - tau)`` is singular value thresholding (the proximal
    operator of ``tau * nuclear_norm``), called as ``F(a, tau)``.  First
    derivative (docs/ties.md, docs/spectral.md):

    .. math::

        DF[H] = U\big[\tfrac{g_i - g_j}{s_i - s_j}\,\mathrm{sym}(\hat H)_{ij}
              + \tfrac{g_i + g_j}{s_i + s_j}\,\mathrm{skew}(\hat H)_{ij}\big] V^T
              + \text{null-space parts with } g(s_j)/s_j,

    with ``g'(s_i)`` on the diagonal; in the parameters
    ``D_p F[dp] = U diag(D_p g(s, p)[dp]) V^T``.  Computed from the series
    engine with near ties (relative gap <= ``eps**(1/9)``) in one cluster,
    where the divided differences become a Taylor expansion of g -- so
    ``jvp``, ``grad``, ``hessian`` and ``jet`` are exact at exact and near
    ties, in ``a`` and in the parameters (mixed derivatives included).

    Args:
      g: elementwise function ``g(s, *params)``, ``(r,) -> (r,)`` real floats,
        smooth where it is to be differentiated.  Any JAX function, including
        ``jax.custom_jvp`` ones (``jax.nn.relu``, ``softplus``, ``gelu``,
        ``jnp.logaddexp``): g's derivatives in s are its Taylor coefficients,
        computed following the custom rules.  A ``jax.custom_vjp`` function has
        no forward-mode derivatives: ``F``'s value works, every derivative
        raises ``TypeError`` naming g.  g must not close over traced values:
        pass them as parameters.

    Returns:
      ``F(a, *params)``: ``a`` real or complex ``(..., m, n)`` (docs/complex.md)
      to ``(..., m, n)``.  Each parameter is a real array or number, cast to the
      real dtype of ``a``, the same for every matrix of a batch (``vmap`` over
      parameters for one per matrix); parameters may be traced (a jit argument:
      no recompilation when it changes) and are differentiable by ``jvp``,
      ``grad``, ``hessian`` (``jet`` along a path that moves them raises
      ``NotImplementedError``).  A reverse-mode derivative in a parameter costs
      one evaluation per parameter entry.

    Raises:
      ValueError: g does not map ``(r,)`` (with the parameters' shapes) to real
        floats of shape ``(r,)``, or fails on them -- the message names g and
        the shapes.
      TypeError: a parameter is not a real number/array; g closes over a traced
        value; derivatives of a g that uses ``custom_vjp``.

    Where derivatives do not exist (NaN): g not p times differentiable at some
    non-zero ``sigma_i`` (a kink, e.g. thresholding with ``tau`` equal to a
    singular value), and at a zero singular value unless g's odd extension is
    p times differentiable there (``g(0) = 0``, and ``g''(0) = 0`` for p >= 2).
    A kink counts as "at sigma_i" within ~4 eps relative (float32 ~5e-7,
    float64 ~1e-15: the probes of the test, docs/ties.md); farther away the
    derivatives are those of the smooth piece.

    Example:
      >>> import jax, jax.numpy as jnp, jaxsvd
      >>> F = jaxsvd.generalized_matrix_function(lambda s: s ** 3)   # F(a) = a a^T a
      >>> a = jnp.eye(2)   # sigma_1 = sigma_2: DF[H] = 2 H + H^T
      >>> jax.jvp(F, (a,), (jnp.array([[0.0, 1.0], [0.0, 0.0]]),))[1]
      Array([[0., 2.],
             [1., 0.]], dtype=float32)
      >>> svt = jaxsvd.generalized_matrix_function(lambda s, tau: jax.nn.relu(s - tau))
      >>> a = jnp.diag(jnp.array([3.0, 1.0]))
      >>> jax.grad(lambda tau: jnp.sum(svt(a, tau)))(0.5)   # d/dtau sum(s - tau)+
      Array(-2., dtype=float32, weak_type=True)
    """
    if not callable(g):
        raise TypeError(f"g must be callable, got {g!r}")
    name = getattr(g, "__name__", "g")
    specs = {}  # one spec (one compilation) per number of parameters

    def F(a, *params):
        return apply_general(g, name, specs, _checked(a), params)

    F.__name__ = F.__qualname__ = f"generalized_matrix_function({name})"
    return F


def apply_general(g, name: str, specs: dict, a, params, factors=None, batched=()):
    """``U diag(g(s, *batched, *params)) V^H`` for the SVD ``factors`` of ``a``
    (computed when None).  ``params``: the user's (validated and broadcast here);
    ``batched``: arrays that already carry a's batch dimensions (one value per
    matrix, e.g. the shift of jaxsvd/_hermitian.py).  ``specs`` caches one spec
    per number of parameters."""
    rdt = real_dtype(a.dtype)
    params = tuple(as_param(p, i, f"g = {name}", rdt) for i, p in enumerate(params))
    r = min(a.shape[-2:])
    batch = a.shape[:-2]
    probe = tuple(jnp.zeros(b.shape[len(batch):], rdt) for b in batched)
    check(g, f"g = {name}", r, rdt, probe + params, (r,), "the same shape (elementwise)")
    nparams = len(batched) + len(params)
    spec = specs.get(nparams)
    if spec is None:
        spec = specs[nparams] = _Spec("general", name, g=g, nparams=nparams)
    params = tuple(batched) + tuple(jnp.broadcast_to(p, batch + p.shape) for p in params)
    return _apply(a, spec, factors, params=params)
