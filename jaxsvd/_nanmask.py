"""``nan_unless(x, keep)``: NaN where a derivative does not exist.

A linear primitive with two faces, each the transpose of the other:

    forward   y = x  where keep,               NaN elsewhere
    reverse   y = x  where keep or x == 0,     NaN elsewhere

In forward and Taylor mode a non-existent coefficient is always NaN (even when
the gauge happens to make it 0).  Its transpose lets a zero cotangent through
(the convention 0 * NaN = 0), so reverse mode is NaN exactly when the function
being differentiated depends on a non-existent derivative, and exact otherwise.
``jnp.where(keep, x, nan)`` would instead transpose to ``where(keep, ct, 0)`` and
silently turn a non-existent derivative into 0 in reverse mode.
"""

from __future__ import annotations

import jax.numpy as jnp

from . import _compat

nan_unless_p = _compat.new_primitive("jaxsvd_nan_unless")

_OTHER = {"forward": "reverse", "reverse": "forward"}


def nan_unless(x, keep, *, face: str = "forward"):
    """NaN in ``x`` wherever ``keep`` is False (see module docstring)."""
    keep = jnp.broadcast_to(keep, x.shape)
    return nan_unless_p.bind(x, keep, face=face)


def _impl(x, keep, *, face):
    if face == "reverse":
        keep = keep | (x == 0)
    return jnp.where(keep, x, jnp.asarray(jnp.nan, x.dtype))


nan_unless_p.def_impl(_impl)
nan_unless_p.def_abstract_eval(lambda x, keep, *, face: _compat.ShapedArray(x.shape, x.dtype))
_compat.def_lowering_from_fun(nan_unless_p, _impl, multiple_results=False)


def _jvp(primals, tangents, *, face):
    x, keep = primals
    tx, _ = tangents
    y = nan_unless_p.bind(x, keep, face=face)
    if type(tx) is _compat.Zero:
        return y, tx
    return y, nan_unless_p.bind(tx, keep, face=face)


def _transpose(ct, x, keep, *, face):
    if type(ct) is _compat.Zero:
        return [ct, None]
    return [nan_unless_p.bind(ct, keep, face=_OTHER[face]), None]


def _batch(args, dims, *, face):
    x, keep = args
    dx, dk = dims
    size = x.shape[dx] if dx is not None else keep.shape[dk]
    x = jnp.moveaxis(x, dx, 0) if dx is not None else jnp.broadcast_to(x, (size,) + x.shape)
    keep = jnp.moveaxis(keep, dk, 0) if dk is not None else jnp.broadcast_to(keep, (size,) + keep.shape)
    return nan_unless_p.bind(x, keep, face=face), 0


def _taylor(primals_in, series_in, *, face):
    x, keep = primals_in
    terms, _ = series_in
    return (nan_unless_p.bind(x, keep, face=face),
            [nan_unless_p.bind(t, keep, face=face) for t in terms])


_compat.def_jvp(nan_unless_p, _jvp)
_compat.def_transpose(nan_unless_p, _transpose)
_compat.def_batching(nan_unless_p, _batch)
_compat.def_taylor(nan_unless_p, _taylor)


# ---------------------------------------------------------------------------
# guarded_mul(coef, lin, keep) = coef * lin, whose derivative through ``coef``
# is NaN where ``keep`` is False -- unless that derivative is multiplied by 0.
# ---------------------------------------------------------------------------
#
# Used for d sigma_k = u_k^T dA v_k: the gradient sum_k c_k u_k v_k^T must have
# an exact derivative when c_k = 0 for every degenerate k (e.g. the Hessian of
# sigma_1 while sigma_2 = sigma_3), and a NaN one when some c_k != 0 multiplies
# a singular vector that is not differentiable.  Rules:
#     d(coef * lin) = dcoef * nan_unless(lin, keep, "reverse") + guarded_mul(coef, dlin, keep)
#     transpose in lin:  ct -> guarded_mul(coef, ct, keep)

guarded_mul_p = _compat.new_primitive("jaxsvd_guarded_mul")


def guarded_mul(coef, lin, keep):
    """``coef * lin`` whose derivative through ``coef`` is NaN where not ``keep``."""
    shape = jnp.broadcast_shapes(coef.shape, lin.shape)
    coef, lin = jnp.broadcast_to(coef, shape), jnp.broadcast_to(lin, shape)
    return guarded_mul_p.bind(coef, lin, jnp.broadcast_to(keep, shape))


def _gm_impl(coef, lin, keep):
    return coef * lin


def _gm_jvp(primals, tangents):
    coef, lin, keep = primals
    dcoef, dlin, _ = tangents
    y = guarded_mul_p.bind(coef, lin, keep)
    out = []
    if type(dcoef) is not _compat.Zero:
        out.append(dcoef * nan_unless_p.bind(lin, keep, face="reverse"))
    if type(dlin) is not _compat.Zero:
        out.append(guarded_mul_p.bind(coef, dlin, keep))
    if not out:
        return y, jnp.zeros_like(y)  # unreachable: JAX skips all-zero tangents
    return y, out[0] if len(out) == 1 else out[0] + out[1]


def _gm_transpose(ct, coef, lin, keep):
    if type(ct) is _compat.Zero:
        return [None if not _compat.is_undefined_primal(coef) else ct,
                None if not _compat.is_undefined_primal(lin) else ct, None]
    if _compat.is_undefined_primal(lin) and not _compat.is_undefined_primal(coef):
        return [None, guarded_mul_p.bind(coef, ct, keep), None]
    if _compat.is_undefined_primal(coef) and not _compat.is_undefined_primal(lin):
        return [ct * lin, None, None]
    raise NotImplementedError("guarded_mul is bilinear: transpose in one argument at a time")


def _gm_taylor(primals_in, series_in):
    # Cauchy product; coefficients of coef of order >= 1 meet the guarded lin
    coef, lin, keep = primals_in
    cs, ls, _ = series_in
    cs, ls = [coef] + list(cs), [lin] + list(ls)
    glin = [nan_unless_p.bind(x, keep, face="reverse") for x in ls]
    terms = []
    for n in range(1, len(cs)):
        t = guarded_mul_p.bind(coef, ls[n], keep)
        for i in range(1, n + 1):
            t = t + cs[i] * glin[n - i]
        terms.append(t)
    return guarded_mul_p.bind(coef, lin, keep), terms


guarded_mul_p.def_impl(_gm_impl)
guarded_mul_p.def_abstract_eval(lambda coef, lin, keep: _compat.ShapedArray(coef.shape, coef.dtype))
_compat.def_lowering_from_fun(guarded_mul_p, _gm_impl, multiple_results=False)
_compat.def_jvp(guarded_mul_p, _gm_jvp)
_compat.def_transpose(guarded_mul_p, _gm_transpose)
_compat.def_batching_leading(guarded_mul_p)
_compat.def_taylor(guarded_mul_p, _gm_taylor)


# ---------------------------------------------------------------------------
# sandwich(u, x, v, keep)[k] = Re u_k^H x v_k   and its transpose in x,
# outer(u, c, v, keep)      = sum_k c_k conj(u_k) v_k^T
# (for real input the plain u_k^T x v_k and sum_k c_k u_k v_k^T; for complex
# input JAX pairs a cotangent X with a tangent dx as Re sum(X * dx), so the
# transpose of the real part Re u^H x v is conj(u) c v^T, and jax.grad of
# sigma_k is conj(u_k v_k^H), JAX's convention for complex inputs)
# ---------------------------------------------------------------------------
#
# d sigma_k = u_k^T dA v_k and its gradient sum_k c_k u_k v_k^T, with the
# derivatives through u_k, v_k guarded for a degenerate sigma_k:
#   * sandwich: the du/dv terms of column k are NaN (forward face);
#   * outer: the du/dv terms of column k carry nan_unless(c_k, keep, "reverse"),
#     so they are NaN when c_k != 0 and exactly 0 when c_k = 0 (a loss that
#     does not involve sigma_k keeps an exact Hessian).
# Both are linear in the middle argument and transpose into each other.

sandwich_p = _compat.new_primitive("jaxsvd_sandwich")
outer_p = _compat.new_primitive("jaxsvd_outer")


def _mm(a, b):
    return jnp.matmul(a, b, precision="highest")


def _mT(x):
    return jnp.swapaxes(x, -1, -2)


def _col(u, y):
    # Re sum_i conj(u_ik) y_ik per column (no op added for real input)
    return jnp.real(jnp.sum(jnp.conj(u) * y, axis=-2))


def _diag_right(u, c):
    # conj(u) diag(c), with the real c cast to u's dtype (strict promotion)
    return jnp.conj(u) * c.astype(u.dtype)[..., None, :]


def _sandwich_impl(u, x, v, keep):
    return _col(u, _mm(x, v))


def _outer_impl(u, c, v, keep):
    return _mm(_diag_right(u, c), _mT(v))


def sandwich(u, x, v, keep):
    """``Re u_k^H x v_k`` for every column k (u: (..., m, r), x: (..., m, n), v: (..., n, r))."""
    return sandwich_p.bind(u, x, v, keep)


def outer(u, c, v, keep):
    """``sum_k c_k conj(u_k) v_k^T`` (c: (..., r), real)."""
    return outer_p.bind(u, c, v, keep)


def _sandwich_jvp(primals, tangents):
    u, x, v, keep = primals
    du, dx, dv, _ = tangents
    y = sandwich_p.bind(u, x, v, keep)
    terms = []
    if type(dx) is not _compat.Zero:
        terms.append(sandwich_p.bind(u, dx, v, keep))
    side = []
    if type(du) is not _compat.Zero:
        side.append(_col(du, _mm(x, v)))
    if type(dv) is not _compat.Zero:
        side.append(_col(u, _mm(x, dv)))
    if side:
        t = side[0] if len(side) == 1 else side[0] + side[1]
        terms.append(nan_unless_p.bind(t, keep, face="forward"))
    out = terms[0]
    for t in terms[1:]:
        out = out + t
    return y, out


def _outer_jvp(primals, tangents):
    u, c, v, keep = primals
    du, dc, dv, _ = tangents
    y = outer_p.bind(u, c, v, keep)
    terms = []
    if type(dc) is not _compat.Zero:
        terms.append(outer_p.bind(u, dc, v, keep))
    cg = nan_unless_p.bind(c, keep, face="reverse")
    if type(du) is not _compat.Zero:
        terms.append(_mm(_diag_right(du, cg), _mT(v)))
    if type(dv) is not _compat.Zero:
        terms.append(_mm(_diag_right(u, cg), _mT(dv)))
    out = terms[0]
    for t in terms[1:]:
        out = out + t
    return y, out


def _sandwich_transpose(ct, u, x, v, keep):
    assert _compat.is_undefined_primal(x) and not _compat.is_undefined_primal(u)
    if type(ct) is _compat.Zero:
        return [None, ct, None, None]
    return [None, outer_p.bind(u, ct, v, keep), None, None]


def _outer_transpose(ct, u, c, v, keep):
    assert _compat.is_undefined_primal(c) and not _compat.is_undefined_primal(u)
    if type(ct) is _compat.Zero:
        return [None, ct, None, None]
    return [None, sandwich_p.bind(u, ct, v, keep), None, None]


def _sandwich_taylor(primals_in, series_in):
    # y_n = sum_{a+b+c=n} u_a^T x_b v_c ; terms with a > 0 or c > 0 are guarded
    u, x, v, keep = primals_in
    us, xs, vs, _ = series_in
    us, xs, vs = [u] + list(us), [x] + list(xs), [v] + list(vs)
    out = []
    for n in range(1, len(us)):
        t = sandwich_p.bind(u, xs[n], v, keep)
        side = None
        for a in range(n + 1):
            for b in range(n + 1 - a):
                c = n - a - b
                if a == 0 and c == 0:
                    continue
                term = _col(us[a], _mm(xs[b], vs[c]))
                side = term if side is None else side + term
        out.append(t + nan_unless_p.bind(side, keep, face="forward"))
    return sandwich_p.bind(u, x, v, keep), out


def _outer_taylor(primals_in, series_in):
    u, c, v, keep = primals_in
    us, cs, vs, _ = series_in
    us, cs, vs = [u] + list(us), [c] + list(cs), [v] + list(vs)
    cg = [nan_unless_p.bind(x, keep, face="reverse") for x in cs]
    out = []
    for n in range(1, len(us)):
        t = outer_p.bind(u, cs[n], v, keep)
        for a in range(n + 1):
            for b in range(n + 1 - a):
                cc = n - a - b
                if a == 0 and cc == 0:
                    continue
                t = t + _mm(_diag_right(us[a], cg[b]), _mT(vs[cc]))
        out.append(t)
    return outer_p.bind(u, c, v, keep), out


for _p, _impl_fn, _jvp_fn, _tr, _ty in (
        (sandwich_p, _sandwich_impl, _sandwich_jvp, _sandwich_transpose, _sandwich_taylor),
        (outer_p, _outer_impl, _outer_jvp, _outer_transpose, _outer_taylor)):
    _p.def_impl(_impl_fn)
    _compat.def_lowering_from_fun(_p, _impl_fn, multiple_results=False)
    _compat.def_jvp(_p, _jvp_fn)
    _compat.def_transpose(_p, _tr)
    _compat.def_batching_leading(_p)
    _compat.def_taylor(_p, _ty)

sandwich_p.def_abstract_eval(
    lambda u, x, v, keep: _compat.ShapedArray(u.shape[:-2] + u.shape[-1:], jnp.finfo(u.dtype).dtype))
outer_p.def_abstract_eval(
    lambda u, c, v, keep: _compat.ShapedArray(u.shape[:-1] + v.shape[-2:-1], u.dtype))
