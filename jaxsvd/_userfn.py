"""User functions of the singular values and their parameters, shared by
``generalized_matrix_function`` (jaxsvd/_ties.py) and ``spectral_function``
(jaxsvd/_spectral.py).

A user function is called ``fn(s, *params)`` on one vector ``s`` (r,) of
singular values.  Inside the primitives every parameter carries the matrix
batch dimensions in front of its own shape (``(..., *shape)``), so ``vmap``
over a parameter is a batch like any other.  Derivatives in the parameters
are the same construction with a derived function,

    fn'(s, *params, *e) = D_params fn(s, *params)[e]      (linear in e),

which is again a user function (with twice the parameters): every derivative
in ``a`` and in the parameters, to any order, re-enters the rules of the
primitive.  Taylor coefficients of ``fn`` in ``s`` come from
:func:`jaxsvd._compat.jet_user`, which follows ``custom_jvp`` rules
(``jax.nn.relu``, ``softplus``, ``jnp.logaddexp``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from . import _compat


def over_batch(fn, x, params=()):
    """Apply ``fn(x1, *params1)`` (one vector (r,)) to x (..., r) with vmap; each
    parameter has x's batch dimensions in front of its own shape.  Outputs: an
    array or a list of arrays, each with the batch dimensions in front."""
    batch, r = x.shape[:-1], x.shape[-1]
    flat = [jnp.broadcast_to(q, batch + q.shape[len(batch):]).reshape((-1,) + q.shape[len(batch):])
            for q in params]
    out = jax.vmap(fn)(x.reshape((-1, r)), *flat)
    if isinstance(out, (list, tuple)):
        return [o.reshape(batch + o.shape[1:]) for o in out]
    return out.reshape(batch + out.shape[1:])


def param_derivative(fn, q: int):
    """``fn'(s, *p, *e) = D_p fn(s, *p)[e]`` for ``fn`` with ``q`` parameters."""
    def dfn(x, *pe):
        return jax.jvp(lambda *p: fn(x, *p), pe[:q], pe[q:])[1]
    return dfn


def as_param(p, i: int, name: str, rdt):
    """Parameter i of ``name`` as an array of the real dtype ``rdt`` (real numbers only)."""
    try:
        x = jnp.asarray(p)
    except TypeError:
        raise TypeError(f"parameter {i} of {name} must be an array or a number, got {p!r}") from None
    if not (jnp.issubdtype(x.dtype, jnp.floating) or jnp.issubdtype(x.dtype, jnp.integer)
            or x.dtype == jnp.bool_):
        raise TypeError(f"parameter {i} of {name} must be real (float or integer), got dtype {x.dtype}")
    return x.astype(rdt)


def check(fn, name: str, r: int, rdt, params, out_shape, what: str):
    """``fn(s, *params)`` with s (r,) must return real floats of ``out_shape`` and
    close over no traced value; else a clear error naming ``name``."""
    s = jax.ShapeDtypeStruct((r,), rdt)
    shapes = [tuple(p.shape) for p in params]
    with_params = f" and parameters of shapes {shapes}" if params else ""
    try:
        closed, out = jax.make_jaxpr(fn, return_shape=True)(s, *params)
    except (TypeError, ValueError) as e:
        raise ValueError(
            f"{name} failed on the singular values (shape ({r},), {jnp.dtype(rdt).name}){with_params}: {e}"
        ) from e
    if any(isinstance(c, _compat.Tracer) for c in closed.consts):
        raise TypeError(
            f"{name} closes over a traced value (e.g. a jit argument): pass it as a parameter "
            "instead, F(a, tau) calls it with (s, tau) -- parameters may be traced and differentiated")
    dt = getattr(out, "dtype", None)
    if getattr(out, "shape", None) != out_shape or dt is None or not jnp.issubdtype(dt, jnp.floating):
        raise ValueError(
            f"{name} must map the singular values (r,) = ({r},){with_params} to {what} "
            f"(real floats, shape {out_shape}); it returned {out}")


def user_jet(fn, name: str, primals, series):
    """:func:`jaxsvd._compat.jet_user` of a user function; a ``custom_vjp`` inside it
    is reported by ``name``."""
    try:
        return _compat.jet_user(fn, primals, series)
    except _compat.CustomVJPInSeries as e:
        raise TypeError(
            f"{name} uses a jax.custom_vjp function ({e}). Derivatives of the matrix function "
            f"need the derivatives of {name} in s (forward mode); only its value is available. "
            "Write it with plain JAX functions or jax.custom_jvp ones (jax.nn.relu, softplus, ...).") from None


def moving_params(series_params, what: str):
    """None, or a traced boolean that is True where ``jet`` moves a parameter.

    A concrete non-zero Taylor term of a parameter raises NotImplementedError
    (jet of ``what`` along a path that moves its function's parameters is not
    supported); traced terms (under jit) cannot be inspected: the caller makes
    the coefficients NaN where they are non-zero.
    """
    traced = []
    for sp in series_params:
        for t in sp:
            if isinstance(t, _compat.Tracer):
                traced.append(t)
            elif np.any(np.asarray(t)):
                raise NotImplementedError(
                    f"jet of {what} along a path that moves the function's parameters is not "
                    "supported: keep them fixed (jet in a), or take derivatives in them with jvp / grad")
    if not traced:
        return None
    return jnp.any(jnp.stack([jnp.any(t != 0) for t in traced]))


def nan_where(flag, ys):
    """``ys`` (list of arrays with the batch dimensions in front) NaN where ``flag``."""
    if flag is None:
        return ys
    return [jnp.where(flag, jnp.asarray(jnp.nan, y.dtype), y) for y in ys]
