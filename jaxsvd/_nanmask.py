"""``nan_unless(x, keep)``: NaN where a derivative does not exist.

    y = x        where keep or x == 0
    y = NaN      elsewhere

A *linear* primitive (with the convention 0 * NaN = 0), so it transposes to
itself: a cotangent that does not touch a non-existent derivative stays
finite, and one that does becomes NaN -- in forward, reverse and Taylor mode
alike.  ``jnp.where(keep, x, nan)`` would transpose to ``where(keep, ct, 0)``
and silently turn a non-existent derivative into 0 in reverse mode.
"""

from __future__ import annotations

import jax.numpy as jnp

from . import _compat

nan_unless_p = _compat.new_primitive("jaxsvd_nan_unless")


def nan_unless(x, keep):
    """NaN in ``x`` wherever ``keep`` is False and ``x`` is non-zero."""
    keep = jnp.broadcast_to(keep, x.shape)
    return nan_unless_p.bind(x, keep)


def _impl(x, keep):
    return jnp.where(keep | (x == 0), x, jnp.asarray(jnp.nan, x.dtype))


nan_unless_p.def_impl(_impl)
nan_unless_p.def_abstract_eval(lambda x, keep: _compat.ShapedArray(x.shape, x.dtype))
_compat.def_lowering_from_fun(nan_unless_p, _impl, multiple_results=False)


def _jvp(primals, tangents):
    x, keep = primals
    tx, _ = tangents
    y = nan_unless_p.bind(x, keep)
    if type(tx) is _compat.Zero:
        return y, tx
    return y, nan_unless_p.bind(tx, keep)


def _transpose(ct, x, keep):
    if type(ct) is _compat.Zero:
        return [ct, None]
    return [nan_unless_p.bind(ct, keep), None]


def _batch(args, dims):
    x, keep = args
    dx, dk = dims
    size = x.shape[dx] if dx is not None else keep.shape[dk]
    x = jnp.moveaxis(x, dx, 0) if dx is not None else jnp.broadcast_to(x, (size,) + x.shape)
    keep = jnp.moveaxis(keep, dk, 0) if dk is not None else jnp.broadcast_to(keep, (size,) + keep.shape)
    return nan_unless_p.bind(x, keep), 0


def _taylor(primals_in, series_in):
    x, keep = primals_in
    terms, _ = series_in
    return nan_unless_p.bind(x, keep), [nan_unless_p.bind(t, keep) for t in terms]


_compat.def_jvp(nan_unless_p, _jvp)
_compat.def_transpose(nan_unless_p, _transpose)
_compat.def_batching(nan_unless_p, _batch)
_compat.def_taylor(nan_unless_p, _taylor)
