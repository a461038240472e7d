"""Spectral functions F(A) = f(sigma(A)) with exact gradients and Hessians where
singular values coincide (Lewis--Sendov), and the norms built on them.

Two primitives, each with its rules beside it (primal, JVP, Taylor, registration):

* ``spectral_value_p(a; spec)``  -> F(a) = f(svdvals(a)), shape (...,).
  JVP: dF = <G(a), dA> with G the gradient below -- so every second derivative
  of F is a first derivative of G.
* ``spectral_grad_p(a; spec)``   -> G(a) = U1 diag(grad f(sigma)) V1^T, shape (..., m, n).
  JVP: the second-order Lewis--Sendov rule (docs/spectral.md)

      dG = U1 [ diag(sum_l f_kl Hh_ll) + A o sym(Hh) + B o skew(Hh) ] V1^T
         + (I - U1 U1^T) H V1 diag(q) V1^T + U1 diag(q) U1^T H (I - V1 V1^T)

  with Hh = U1^T H V1, f_k = df/ds_k, f_kl = d2f/ds_k ds_l, q_k = f_k/s_k and

      A_ki = (f_k - f_i)/(s_k - s_i)   -> (f_kk + f_ii)/2 - f_ki  near a tie
      B_ki = (f_k + f_i)/(s_k + s_i)   -> (f_kk + f_ii)/2 + f_ki  when s_k = s_i = 0
      q_k  = f_k / s_k                 -> f_kk                   when s_k = 0.

  The tie expansion is the trapezoid rule for the integral of the Hessian of f
  along the segment from P s to s (P swaps entries k and i; f symmetric), so
  its error is O((s_k - s_i)^2): it is used below the relative gap
  ``_spectrum.near_tie_rtol`` (eps**(1/3)), where the direct quotient would
  cancel.  It is only used when it agrees with f_k - f_i (otherwise f is not
  smooth between the two points, e.g. a Ky Fan norm with s_k ~ s_(k+1), and
  the direct quotient is the right one).

Where the Hessian does not exist -- F is not differentiable -- dG is NaN (via
:func:`jaxsvd._nanmask.nan_unless`):
  * a zero singular value s_k with f_k != 0 (nuclear norm of a rank-deficient
    or wide/tall-degenerate matrix), or an infinite f_kk there (Schatten p < 2);
  * coincident s_k = s_i with f_k != f_i (spectral norm at s_1 = s_2, Ky Fan k
    at s_k = s_(k+1)).
Tolerances: coincident / zero as in jaxsvd/_spectrum.py; "f_k != f_i" means
beyond sqrt(eps) * (|f_k| + |f_i|).

Third and higher derivatives by nesting differentiate the JVP rule of G, which
is written with the core ``svd_p`` (exact where singular values are simple, NaN
from the core rules where they coincide).  Taylor mode (``jet``) of F: orders 1
and 2 from the exact Lewis--Sendov rule; orders >= 3 as f applied to the
analytic branches of the singular values (``_branches.branch_coefficients``),
exact through ties at any reduction depth, zero singular values where f is
smooth there, and near ties (docs/spectral.md).  ``jet``
of G: order 1 exact everywhere, higher orders through the core rule (NaN where
singular values coincide).
"""

from __future__ import annotations

import functools
import math
import numbers
from functools import partial

import jax
import jax.numpy as jnp
from jax import lax

from . import _compat
from ._branches import branch_coefficients
from ._nanmask import nan_unless
from ._series import branch_series, like, mH, mm
from ._spectrum import degeneracy_tol, degenerate, spectral_pairs
from ._svd import as_matrix, lapack_svd, real_dtype, static_int, svd_p
from ._userfn import as_param, check, moving_params, nan_where, over_batch, param_derivative, user_jet

# ---------------------------------------------------------------------------
# the function f and its derivatives, applied over leading batch dimensions
# ---------------------------------------------------------------------------


class _Spec:
    """Static parameter of the primitives: f with its gradient and Hessian in s.

    Hashed by identity, so each ``spectral_function(f)`` compiles once (per number
    of parameters).  ``f(s, *params)``: the ``nparams`` parameters are operands of
    the primitives after ``a`` (jaxsvd/_userfn.py); ``bound`` attaches their values
    for the rules' helpers, ``base`` is the spec to bind with.
    """

    def __init__(self, f, name: str, nparams: int = 0):
        self.f = f
        self.name = name
        self.nparams = nparams
        self._grad = jax.grad(f)
        self._hess = jax.hessian(f)
        self._d = None
        self.params, self.base = (), self

    def __repr__(self):
        return f"spectral<{self.name}>"

    def bound(self, params):
        if not params:
            return self
        b = _Spec(self.f, self.name, self.nparams)
        b.params, b.base = tuple(params), self
        return b

    def d_params(self):
        """f'(s, *p, *e) = D_p f(s, *p)[e]: the spec of the derivative in the parameters."""
        if self._d is None:
            self._d = _Spec(param_derivative(self.f, self.nparams), f"d_{self.name}", 2 * self.nparams)
        return self._d

    def value(self, s):
        return over_batch(self.f, s, self.params).astype(s.dtype)

    def grad(self, s):
        return over_batch(self._grad, s, self.params).astype(s.dtype)

    def hess(self, s):
        return over_batch(self._hess, s, self.params).astype(s.dtype)


def _bind(prim, a, spec):
    """``prim`` at a with the parameters bound to ``spec``."""
    return prim.bind(a, *spec.params, spec=spec.base)


def _param_tangent(prim, a, params, dps, spec):
    # F depends on the parameters through f alone: the tangent is
    # sum_k dp_k prim(a; f' with the unit direction e_k), one primitive per
    # entry (vmap over the unit directions; linear in dp, so JAX transposes it)
    batch = a.shape[:-2]
    dps = [_compat.instantiate(d) for d in dps]
    shapes = [d.shape[len(batch):] for d in dps]
    sizes = [math.prod(sh) for sh in shapes]
    rdt = real_dtype(a.dtype)

    def one(row):
        es, at = [], 0
        for sh, k in zip(shapes, sizes, strict=True):
            es.append(jnp.broadcast_to(row[at:at + k].reshape(sh), batch + sh))
            at += k
        return prim.bind(a, *params, *es, spec=spec.d_params())

    ys = jax.vmap(one)(jnp.eye(sum(sizes), dtype=rdt))  # (Q, ..., out)
    dp = jnp.concatenate([d.reshape(batch + (-1,)) for d in dps], axis=-1)  # (..., Q)
    dp = jnp.moveaxis(dp, -1, 0).reshape(dp.shape[-1:] + batch + (1,) * (ys.ndim - 1 - len(batch)))
    return jnp.sum(like(dp, ys) * ys, axis=0)


def _thin(a):
    """(s, U1, V1^T) from the core primitive (differentiable to any order)."""
    return svd_p.bind(a, full_matrices=False, compute_uv=True, masked=False)


def _svdvals(a):
    return svd_p.bind(a, full_matrices=False, compute_uv=False, masked=False)[0]


def _inner(x, y):
    # <x, y> = Re tr(x^H y), the real inner product of (complex) matrices
    return jnp.real(jnp.sum(jnp.conj(x) * y, axis=(-2, -1)))


def _scale_cols(u, c):
    # u diag(c) with the real c in u's dtype
    return u * like(c, u)[..., None, :]


# ---------------------------------------------------------------------------
# primal
# ---------------------------------------------------------------------------

spectral_value_p = _compat.new_primitive("jaxsvd_spectral_value")
spectral_grad_p = _compat.new_primitive("jaxsvd_spectral_grad")


def _value_impl(a, *params, spec):
    s = lapack_svd(a, full_matrices=False, compute_uv=False)
    return spec.bound(params).value(s)


def _grad_impl(a, *params, spec):
    u, s, vt = lapack_svd(a, full_matrices=False, compute_uv=True)
    return mm(_scale_cols(u, spec.bound(params).grad(s)), vt)


def _value_abstract(a, *params, spec):
    return _compat.ShapedArray(a.shape[:-2], real_dtype(a.dtype))


def _grad_abstract(a, *params, spec):
    return _compat.ShapedArray(a.shape, a.dtype)


def _batch_rule(prim):
    def rule(args, dims, *, spec):
        size = next(x.shape[d] for x, d in zip(args, dims, strict=True) if d is not None)
        moved = [jnp.moveaxis(x, d, 0) if d is not None else jnp.broadcast_to(x, (size,) + x.shape)
                 for x, d in zip(args, dims, strict=True)]
        return prim.bind(*moved, spec=spec), 0
    return rule


# ---------------------------------------------------------------------------
# first order
# ---------------------------------------------------------------------------


def _value_jvp(primals, tangents, *, spec):
    # dF = <G, dA>,  G = U1 diag(f_k) V1^T
    (a, *params), (da, *dps) = primals, tangents
    y = spectral_value_p.bind(a, *params, spec=spec)
    ts = []
    if type(da) is not _compat.Zero:
        ts.append(_inner(spectral_grad_p.bind(a, *params, spec=spec), da))
    if any(type(d) is not _compat.Zero for d in dps):
        ts.append(_param_tangent(spectral_value_p, a, params, dps, spec))
    return y, sum(ts[1:], ts[0]) if ts else jnp.zeros_like(y)


def _divided_differences(s, spec, m: int, n: int):
    """(A, B, q, ok) of the Lewis--Sendov rule; see the module docstring.

    s: (..., r).  ``ok`` (...,) is False where the Hessian of F does not exist.
    Zero singular values (within the degeneracy tolerance) are treated as exactly
    zero: the limits at them use f_k and f_kl at s with those entries set to 0.
    """
    r = s.shape[-1]
    sp = spectral_pairs(s, m, n)
    g, h = spec.grad(s), spec.hess(s)
    s0 = jnp.where(sp.zero, jnp.zeros_like(s), s)
    g0, h0 = spec.grad(s0), spec.hess(s0)
    dh0 = jnp.diagonal(h0, axis1=-2, axis2=-1)
    tau = math.sqrt(float(jnp.finfo(s.dtype).eps))
    eye = jnp.broadcast_to(jnp.eye(r, dtype=bool), s.shape + (r,))
    dh = jnp.diagonal(h, axis1=-2, axis2=-1)
    gk, gi = g[..., :, None], g[..., None, :]
    hk, hi = dh[..., :, None], dh[..., None, :]
    trap = 0.5 * (hk + hi) - h  # limit of (f_k - f_i)/(s_k - s_i), O(gap^2) accurate
    # limit of (f_k + f_i)/(s_k + s_i) at s_k = s_i = 0
    lim_b = 0.5 * (dh0[..., :, None] + dh0[..., None, :]) + h0
    # does the expansion agree with f_k - f_i (is f smooth between s and P s)?
    g_, trap_, s_ = (lax.stop_gradient(x) for x in (g, trap, s))
    d_ = s_[..., :, None] - s_[..., None, :]
    gmax = jnp.max(jnp.abs(g_), axis=-1, keepdims=True)
    # inside a cluster s_k - s_i is rounding noise (possibly ~ s_k itself at a zero
    # cluster), so allow an absolute sqrt(eps) * max|f_k| there as well
    gscale = (jnp.abs(g_[..., :, None]) + jnp.abs(g_[..., None, :])
              + jnp.where(sp.same, gmax[..., None], 0))
    consistent = jnp.abs(g_[..., :, None] - g_[..., None, :] - trap_ * d_) <= tau * gscale
    use_lim = sp.near & consistent
    A = jnp.where(use_lim, trap, (gk - gi) * sp.inv_diff)
    B = jnp.where(sp.both_zero, lim_b, (gk + gi) * sp.inv_sum)
    A = jnp.where(eye, 0.0, A)
    B = jnp.where(eye, 0.0, B)
    q = jnp.where(sp.zero, dh0, g * sp.inv_s)
    # existence of the Hessian
    g0_, dh0_ = lax.stop_gradient(g0), lax.stop_gradient(dh0)
    zero_ok = ~sp.zero | ((jnp.abs(g0_) <= tau * gmax) & jnp.isfinite(dh0_))
    ok = jnp.all(zero_ok, axis=-1) & jnp.all(~sp.same | consistent, axis=(-2, -1))
    return A, B, q, ok


def _grad_tangent(a, da, spec):
    """D G(a)[da]: the second-order Lewis--Sendov rule (docs/spectral.md)."""
    m, n = a.shape[-2:]
    s, u, vt = _thin(a)
    v = mH(vt)
    A, B, q, ok = _divided_differences(s, spec, m, n)
    hh = mm(mH(u), mm(da, v))  # U1^H H V1
    sym, skw = 0.5 * (hh + mH(hh)), 0.5 * (hh - mH(hh))
    dhh = jnp.real(jnp.diagonal(hh, axis1=-2, axis2=-1))
    if jnp.issubdtype(a.dtype, jnp.complexfloating):
        # the phase of each pair: skw_kk = i Im Hh_kk rotates u_k v_k^H by
        # f_k / s_k (Lewis--Sendov for complex A; zero on the diagonal for real A)
        r = s.shape[-1]
        B = B + q[..., :, None] * jnp.broadcast_to(jnp.eye(r, dtype=B.dtype), B.shape)
    core = like(A, hh) * sym + like(B, hh) * skw
    core = core + like(jnp.einsum("...kl,...l,kj->...kj", spec.hess(s), dhh,
                                  jnp.eye(s.shape[-1], dtype=s.dtype), precision=lax.Precision.HIGHEST), hh)
    dg = mm(u, mm(core, vt))
    if m > n:  # (I - U1 U1^H) H V1 diag(q) V1^H
        dg = dg + mm(_scale_cols(mm(da, v) - mm(u, hh), q), vt)
    if n > m:  # U1 diag(q) U1^H H (I - V1 V1^H)
        dg = dg + mm(_scale_cols(u, q), mm(mH(u), da) - mm(hh, vt))
    # F not twice differentiable: NaN (also where dG happens to be 0, e.g. the nuclear
    # norm at a = 0; nan_unless(da) - da is 0 where ok, NaN elsewhere, and linear)
    okm = ok[..., None, None]
    dg = nan_unless(dg, okm) + (nan_unless(da, okm) - da)
    # third and higher derivatives (derivatives of this rule) exist in our rules
    # only where the singular values are simple and nonzero: elsewhere make them
    # NaN.  The factor is 1 in value; its derivative, sum(nan_unless(dA) - dA),
    # is 0 where they are simple and NaN elsewhere.
    simple = ~jnp.any(degenerate(lax.stop_gradient(s), m, n), axis=-1)
    x = a - lax.stop_gradient(a)
    marker = jnp.sum(nan_unless(x, simple[..., None, None], face="reverse") - x, axis=(-2, -1))
    return dg * (1 + marker)[..., None, None]


def _grad_jvp(primals, tangents, *, spec):
    (a, *params), (da, *dps) = primals, tangents
    y = spectral_grad_p.bind(a, *params, spec=spec)
    ts = []
    if type(da) is not _compat.Zero:
        ts.append(_grad_tangent(a, da, spec.bound(params)))
    if any(type(d) is not _compat.Zero for d in dps):
        ts.append(_param_tangent(spectral_grad_p, a, params, dps, spec))
    return y, sum(ts[1:], ts[0]) if ts else jnp.zeros_like(y)


# ---------------------------------------------------------------------------
# Taylor mode (unscaled coefficients)
# ---------------------------------------------------------------------------


def _nan_where_degenerate(y, a):
    # the core coefficients of order >= 2 do not exist for a zero or repeated
    # sigma; mark them here (an exactly-zero core coefficient would pass nan_unless)
    m, n = a.shape[-2:]
    simple = ~jnp.any(degenerate(_svdvals(a), m, n), axis=-1)
    simple = simple.reshape(simple.shape + (1,) * (y.ndim - simple.ndim))
    return jnp.where(simple, y, jnp.asarray(jnp.nan, y.dtype))


def _value_taylor(primals_in, series_in, *, spec):
    # orders >= 3: f applied to the analytic branches of the singular values
    #   (_branches.branch_coefficients: exact through ties, at any reduction depth,
    #   through zero singular values and merged near ties).  Through a zero
    #   singular value sigma(x) = b(x) for x > 0 but (-1)^p b(x) for x < 0 (p the
    #   order of b's first non-zero coefficient): f's two one-sided series must
    #   agree, else the derivative does not exist (NaN; e.g. sum sigma^3, the
    #   nuclear norm).  NaN also where the Hessian of F does not exist, and near
    #   (not merged) ties where rounding would dominate;
    # orders 1, 2: exact everywhere,  F_1 = <G, A_1>,  F_2 = <G, A_2> + <DG[A_1], A_1>/2
    (a, *params), (terms, *sps) = primals_in, series_in
    moved = moving_params(sps, "spectral_function")
    terms = [jnp.broadcast_to(jnp.asarray(t, a.dtype), a.shape) for t in terms]
    m, n = a.shape[-2:]
    K = len(terms)
    y0 = spectral_value_p.bind(a, *params, spec=spec)
    spec = spec.bound(params)
    if jnp.iscomplexobj(a):
        return y0, nan_where(moved, _value_taylor_complex(a, terms, spec))
    s, _, _ = _thin(a)
    coefs, gaps, lead = branch_coefficients(a, terms, K)
    flip = jnp.where(jnp.remainder(lead, 2) == 1, -1.0, 1.0).astype(coefs.dtype)
    _, ys = user_jet(spec.value, f"f = {spec.name}", (coefs[0],), ([coefs[k] for k in range(1, K + 1)],))
    _, ym = user_jet(spec.value, f"f = {spec.name}", (coefs[0],), ([flip * coefs[k] for k in range(1, K + 1)],))
    _, _, _, ok = _divided_differences(s, spec, m, n)
    # rounding: a symmetric f cancels the branches' large coefficients near a tie
    # (gap g at reduction level l) and keeps ~ eps / g**(k-1-l) at order k: NaN beyond sqrt(eps)
    eps = float(jnp.finfo(a.dtype).eps)
    tau = math.sqrt(eps)
    out = []
    for k, (y, z) in enumerate(zip(ys, ym, strict=True), start=1):
        ok = ok & (jnp.abs(y - z) <= tau * (jnp.abs(y) + jnp.abs(z)))
        good = ok
        for lvl in range(k - 1):
            good = good & (eps <= tau * gaps[lvl] ** (k - 1 - lvl))
        out.append(jnp.where(good, y, jnp.asarray(jnp.nan, y.dtype)))
    return y0, nan_where(moved, _exact_low_orders(a, terms, spec, out))


def _exact_low_orders(a, terms, spec, ys):
    # orders 1, 2 from the Lewis--Sendov rule, exact everywhere:
    #   F_1 = <G, A_1>,  F_2 = <G, A_2> + <DG[A_1], A_1>/2
    grad = _bind(spectral_grad_p, a, spec)
    ys = list(ys)
    ys[0] = _inner(grad, terms[0])
    if len(terms) > 1:
        ys[1] = _inner(grad, terms[1]) + 0.5 * _inner(_grad_tangent(a, terms[0], spec), terms[0])
    return ys


def _value_taylor_complex(a, terms, spec):
    # complex a: orders >= 3 from one level of degenerate perturbation theory
    # (_series.branch_series, Hermitian cluster blocks): exact where the
    # singular values are simple and through clusters of non-zero values whose
    # first-order splitting is simple; NaN at a zero singular value, where the
    # Hessian of F does not exist, and at near ties beyond sqrt(eps) rounding.
    # (jaxsvd.branches -- any depth, zeros -- is real-only for now.)
    m, n = a.shape[-2:]
    s, u, vt = _thin(a)
    s_c, branches, g1, g2 = branch_series(s, u, mH(vt), terms, m, n)
    _, ys = user_jet(spec.value, f"f = {spec.name}", (s_c,), (branches,))
    _, _, _, ok = _divided_differences(s, spec, m, n)
    ok = ok & ~jnp.any(lax.stop_gradient(s) <= degeneracy_tol(s, m, n), axis=-1)
    eps = float(jnp.finfo(s.dtype).eps)
    out = []
    for k, y in enumerate(ys, start=1):
        good = ok & (eps <= math.sqrt(eps) * g1 ** (k - 1)) & (eps <= math.sqrt(eps) * g2 ** max(k - 2, 0))
        out.append(jnp.where(good, y, jnp.asarray(jnp.nan, y.dtype)))
    return _exact_low_orders(a, terms, spec, out)


def _grad_taylor(primals_in, series_in, *, spec):
    # orders >= 2 through the core rule (exact where simple); order 1 exact everywhere
    (a, *params), (terms, *sps) = primals_in, series_in
    moved = moving_params(sps, "spectral_function")
    spec = spec.bound(params)
    terms = [jnp.broadcast_to(jnp.asarray(t, a.dtype), a.shape) for t in terms]

    def fun(x):
        s, u, vt = _thin(x)
        return mm(_scale_cols(u, spec.grad(s)), vt)

    y0, ys = user_jet(fun, f"f = {spec.name}", (a,), (terms,))
    ys = [_nan_where_degenerate(y, a) for y in ys]
    ys[0] = _grad_tangent(a, terms[0], spec)
    return y0, nan_where(moved, ys)


# ---------------------------------------------------------------------------
# registration
# ---------------------------------------------------------------------------

spectral_value_p.def_impl(partial(jax.jit, static_argnames=("spec",))(_value_impl))
spectral_value_p.def_abstract_eval(_value_abstract)
_compat.def_lowering_from_fun(spectral_value_p, _value_impl, multiple_results=False)
_compat.def_batching(spectral_value_p, _batch_rule(spectral_value_p))
_compat.def_jvp(spectral_value_p, _value_jvp)
_compat.def_taylor(spectral_value_p, _value_taylor)

spectral_grad_p.def_impl(partial(jax.jit, static_argnames=("spec",))(_grad_impl))
spectral_grad_p.def_abstract_eval(_grad_abstract)
_compat.def_lowering_from_fun(spectral_grad_p, _grad_impl, multiple_results=False)
_compat.def_batching(spectral_grad_p, _batch_rule(spectral_grad_p))
_compat.def_jvp(spectral_grad_p, _grad_jvp)
_compat.def_taylor(spectral_grad_p, _grad_taylor)


# ---------------------------------------------------------------------------
# public functions
# ---------------------------------------------------------------------------


def _checked(a, name="a"):
    a = as_matrix(a, name)
    if 0 in a.shape[-2:]:
        raise ValueError(f"{name} must be a non-empty matrix; got shape {a.shape}")
    return a


def _make(spec: _Spec, specs=None):
    # specs: {number of parameters: spec} for a user f (one compilation per count)
    def F(a, *params):
        a = _checked(a)
        rdt = real_dtype(a.dtype)
        name = f"f = {spec.name}"
        params = tuple(as_param(p, i, name, rdt) for i, p in enumerate(params))
        sp = spec  # the norms: no parameters
        if specs is not None:
            sp = specs.get(len(params))
            if sp is None:
                sp = specs[len(params)] = _Spec(spec.f, spec.name, len(params))
        check(spec.f, name, min(a.shape[-2:]), rdt, params, (), "a scalar")
        batch = a.shape[:-2]
        return spectral_value_p.bind(a, *(jnp.broadcast_to(p, batch + p.shape) for p in params), spec=sp)
    return F


def spectral_function(f):
    r"""Turn a symmetric function of the singular values into a matrix function.

    ``F = spectral_function(f)`` has ``F(a, *params) = f(svdvals(a), *params)``
    (``F(a) = f(svdvals(a))`` without parameters), with derivative rules from
    the Lewis--Sendov theory (docs/spectral.md):

    .. math::

        \nabla F = U_1 \operatorname{diag}(f_k) V_1^T, \qquad
        D^2F[H,H] = \sum_{kl} f_{kl} \hat H_{kk}\hat H_{ll}
          + \sum_{k<i} \tfrac12(\hat H_{ik}+\hat H_{ki})^2 \tfrac{f_k-f_i}{s_k-s_i}
          + \tfrac12(\hat H_{ik}-\hat H_{ki})^2 \tfrac{f_k+f_i}{s_k+s_i}
          + \sum_k \tfrac{f_k}{s_k}\Big(\sum_{i>r}\hat H_{ik}^2+\sum_{j>r}\hat H_{kj}^2\Big)

    with :math:`\hat H = U^T H V`.  The divided differences are replaced by
    their limits where singular values coincide, and by an O(gap^2) expansion
    below the relative gap ``eps**(1/3)`` where they would cancel, so the
    gradient and the Hessian are exact at identity, orthogonal and
    near-orthogonal matrices.  ``F`` composes with ``jit``, ``vmap``, ``grad``,
    ``jacfwd``, ``jacrev``, ``hessian``, ``jvp`` of ``grad`` and ``jet``.

    Args:
      f: ``f(s, *params)`` of one vector ``s`` of shape ``(r,)`` (descending
        singular values) returning a real scalar; symmetric under permutations
        of ``s``, twice differentiable by JAX.  Any JAX function, including
        ``jax.custom_jvp`` ones (``jax.nn.relu``, ``softplus``,
        ``jnp.logaddexp``); a ``jax.custom_vjp`` one gives value, gradient and
        Hessian, and ``jet`` raises ``TypeError`` naming f.  It must not close
        over traced values: pass them as parameters.

    Returns:
      ``F(a, *params)`` for ``a`` of shape ``(..., m, n)``, returning shape
      ``(...)``.  Parameters: real arrays or numbers, cast to the real dtype of
      ``a``, the same for every matrix of a batch (``vmap`` for one per
      matrix); traced under ``jit`` without recompiling, differentiable by
      ``jvp``, ``grad``, ``hessian`` (mixed with ``a`` too), each parameter
      entry costing one evaluation of the derivative rule; ``jet`` along a
      path that moves them raises ``NotImplementedError``.

    Raises:
      ValueError: f does not map ``(r,)`` (with the parameters) to a real
        scalar, or fails on them (the message names f and the shapes).
      TypeError: f is not callable; a parameter is not real; f closes over a
        traced value.

    Where derivatives do not exist:
      * gradient: returned as ``U1 diag(f_k) V1^T`` (for convex f a subgradient);
      * Hessian (and second-order jet coefficient): NaN where F is not
        differentiable -- a zero singular value with f_k != 0, or coincident
        singular values with f_k != f_i -- and where f_kk is infinite at a zero
        singular value;
      * third and higher derivatives: exact where the singular values are simple
        and nonzero, NaN where they coincide (they go through the core SVD rules).

    Example:
      >>> import jax, jax.numpy as jnp, jaxsvd
      >>> F = jaxsvd.spectral_function(lambda s: jnp.sum(s ** 3))
      >>> h = jax.hessian(F)(jnp.eye(2))
      >>> bool(jnp.all(jnp.isfinite(h)))
      True
    """
    if not callable(f):
        raise TypeError(f"f must be callable, got {f!r}")
    spec = _Spec(f, getattr(f, "__name__", "f"))
    F = _make(spec, {0: spec})
    F.__name__ = F.__qualname__ = f"spectral_function({spec.name})"
    return F


# --- the norms ---------------------------------------------------------------


def _static_number(x, name):
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        try:
            x = float(x)  # numpy scalars / concrete 0-d arrays
        except Exception:  # noqa: BLE001
            raise TypeError(f"{name} must be a static Python number, got {x!r}") from None
    return x


def _nuclear_f(s):
    return jnp.sum(s)


def _spectral_f(s):
    # s is sorted (descending) wherever f is evaluated; s[0] (unlike jnp.max, whose
    # derivative averages over ties) exposes a tie s_1 = s_2 as f_1 != f_2.
    return s[0]


@functools.lru_cache(maxsize=None)
def _spec_nuclear():
    return _Spec(_nuclear_f, "nuclear")


@functools.lru_cache(maxsize=None)
def _spec_spectral():
    return _Spec(_spectral_f, "spectral")


@functools.lru_cache(maxsize=None)
def _spec_ky_fan(k):
    # sum of the k largest; s sorted, and s[:k] exposes s_k = s_(k+1) as f_k != f_(k+1)
    return _Spec(lambda s: jnp.sum(s[:k]), f"ky_fan_{k}")


@functools.lru_cache(maxsize=None)
def _spec_schatten(p):
    def f(s):
        # scaled by the largest value (no overflow); the value does not depend on
        # the scale, so neither do its derivatives
        big = lax.stop_gradient(jnp.max(s))
        big = jnp.where(big > 0, big, jnp.ones_like(big))
        t = s / big
        if p == 2:
            return big * jnp.sqrt(jnp.sum(t * t))
        return big * jnp.sum(t ** p) ** (1.0 / p)
    return _Spec(f, f"schatten_{p}")


def nuclear_norm(a):
    r"""Nuclear (trace) norm ``sum_k sigma_k``; equals ``jnp.linalg.norm(a, 'nuc')``.

    Gradient ``U1 V1^T``.  Twice differentiable wherever all singular values
    are nonzero -- also where they coincide (identity, orthogonal matrices):
    the Hessian there is exact.  At a zero singular value (rank-deficient
    matrices) the norm is not differentiable: the gradient is the subgradient
    ``U1 V1^T`` and the Hessian is NaN.

    Args:
      a: real or complex array ``(..., m, n)`` (docs/complex.md).

    Returns:
      array of shape ``(...)``.

    Example:
      >>> import jax.numpy as jnp, jaxsvd
      >>> float(jaxsvd.nuclear_norm(jnp.diag(jnp.array([3.0, 1.0]))))
      4.0
    """
    return _make(_spec_nuclear())(a)


def spectral_norm(a):
    r"""Spectral norm ``sigma_1``; equals ``jnp.linalg.norm(a, 2)``.

    A dense SVD of ``a`` (LAPACK / cuSOLVER, O(m n min(m, n)) work per call),
    like ``jnp.linalg.norm(a, 2)``.  For large matrices, operators and training
    loops (spectral normalisation) use ``jaxsvd.svds(a, 1).S[0]`` instead: a
    few products with ``a`` and ``a^T``, warm-started with ``v0=`` from the
    previous step's ``Vh`` (examples/spectral_normalization.py), with the same
    gradient ``u_1 v_1^T``.

    Gradient ``u_1 v_1^T``; smooth where sigma_1 > sigma_2.  At sigma_1 =
    sigma_2 it is not differentiable: the gradient returned is the subgradient
    ``u_1 v_1^T`` (LAPACK's choice of u_1) and the Hessian is NaN.

    Example:
      >>> import jax.numpy as jnp, jaxsvd
      >>> float(jaxsvd.spectral_norm(jnp.diag(jnp.array([3.0, 1.0]))))
      3.0
    """
    return _make(_spec_spectral())(a)


def ky_fan_norm(a, k: int):
    r"""Ky Fan k-norm ``sigma_1 + ... + sigma_k``.

    Smooth (exact gradient and Hessian) wherever sigma_k > sigma_(k+1) -- even
    when sigma_1 = ... = sigma_k coincide -- and, when k < min(m, n), where
    sigma_k > 0.  At sigma_k = sigma_(k+1) it is not differentiable: the
    gradient is a subgradient and the Hessian is NaN.  ``k = 1`` is the
    spectral norm, ``k = min(m, n)`` the nuclear norm.

    Args:
      a: real or complex array ``(..., m, n)`` (docs/complex.md).
      k: static int, ``1 <= k <= min(m, n)``.

    Example:
      >>> import jax.numpy as jnp, jaxsvd
      >>> float(jaxsvd.ky_fan_norm(jnp.diag(jnp.array([3.0, 2.0, 1.0])), 2))
      5.0
    """
    a = _checked(a)
    k = static_int(k, "k", low=1, high=min(a.shape[-2:]), high_name="min(m, n)")
    return _make(_spec_ky_fan(k))(a)


def schatten_norm(a, p):
    r"""Schatten p-norm ``(sum_k sigma_k^p)^(1/p)`` for a static ``p >= 1``.

    ``p = 1`` is the nuclear norm, ``p = 2`` the Frobenius norm (equal to
    ``jnp.linalg.norm(a, 'fro')``), ``p = inf`` the spectral norm.  For
    1 < p < inf: smooth wherever ``a != 0``, except that for p < 2 the
    Hessian at a zero singular value does not exist (NaN); for p >= 2 it is
    exact also at rank-deficient matrices.  At ``a = 0`` the gradient is NaN
    (as for ``jnp.linalg.norm``).

    Args:
      a: real or complex array ``(..., m, n)`` (docs/complex.md).
      p: static real number ``>= 1`` (or ``inf``).

    Raises:
      ValueError: p < 1 (not a norm) or NaN.
      TypeError: p is not a static number (e.g. a traced value).

    Example:
      >>> import jax.numpy as jnp, jaxsvd
      >>> float(jaxsvd.schatten_norm(jnp.diag(jnp.array([3.0, 4.0])), 2))
      5.0
    """
    p = _static_number(p, "p")
    if math.isnan(p) or p < 1:
        raise ValueError(f"schatten_norm needs p >= 1 (p < 1 is not a norm); got p={p}")
    if p == 1:
        return nuclear_norm(a)
    if math.isinf(p):
        return spectral_norm(a)
    if float(p).is_integer():
        p = int(p)
    return _make(_spec_schatten(p))(a)
