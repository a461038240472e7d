"""Taylor mode (``jax.experimental.jet``) through JAX's control flow.

JAX 0.10/0.11 has jet rules for neither ``lax.scan`` (and ``fori_loop`` with
static bounds), ``lax.while_loop`` (``fori_loop`` with traced bounds),
``lax.cond``/``lax.switch`` nor ``jax.checkpoint`` (jax #27699, #26801): ``jet``
of any program with a loop raised ``KeyError`` -- ``jaxsvd.derivatives``
included, whose orders run as a scan.  The rules below are registered on
import, each only where JAX has none (``_compat.def_taylor_if_absent``).

Each rule runs the *same* control-flow primitive on a new body: the original
body jet-ed once, taking and returning (primals, Taylor coefficients).  The
coefficients of the loop carry travel in the loop state, so the compiled
program does not grow with the trip count.  The identity: a loop body is a
function ``c_{i+1} = F(consts, c_i, x_i)``, and the Taylor polynomial of the
composition is the composition of the Taylor polynomials (truncated at the
order K):  ``[c_{i+1}](t) = [F]([consts](t), [c_i](t), [x_i](t)) mod t^(K+1)``.

Conventions (docs/theory.md, "Taylor mode through loops"):
  * coefficients are exchanged *unscaled* (x(t) = x0 + x1 t + x2 t^2 + ...),
    jet's internal convention; ``jet``'s factorial scaling happens outside.
  * integer and boolean values (loop counters, indices, predicates) have no
    series: their coefficients are zero, and the series a value of them would
    get from jet's linear rules (``convert_element_type`` of a float) is dropped.
  * the trip count of a ``while_loop`` and the branch of a ``cond`` are those of
    the primal program: ``cond_fun`` and the index see primal values only.  The
    series is the one of the program with that trip count (branch), which is the
    Taylor series of the function wherever the trip count (branch) is locally
    constant in t; at a point where it changes, the function is not smooth and
    no series exists (nothing can detect that here).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from . import _compat
from ._compat import ClosedJaxpr, jaxpr_as_fun, zero_series


class JetControlFlowError(NotImplementedError):
    """``jet`` cannot pass a loop (or branch) body: it contains a primitive that
    has no Taylor rule in JAX (e.g. ``argmax``, ``sort``)."""


def _moves(aval) -> bool:
    """Whether a value of this type has a Taylor series (float or complex)."""
    return jnp.issubdtype(aval.dtype, jnp.inexact)


def _typed(terms, aval):
    # coefficients of a carry or branch output: the primal's dtype, never weak,
    # so that the loop state has one type from the first iteration on
    return [lax.convert_element_type(t, aval.dtype) for t in terms]


def _in_series(primals, series):
    """The series handed to a body: None (a zero series) for integer/bool values."""
    return [list(_typed(s, jax.typeof(x))) if _moves(jax.typeof(x)) else None
            for x, s in zip(primals, series, strict=True)]


def _jet_body(closed, order: int, what: str):
    """``(primals, series) -> (primals_out, series_out)`` for the closed jaxpr
    ``closed``: the body jet-ed once.  Outputs without a series (integer, bool)
    get ``None``."""
    fun = jaxpr_as_fun(closed)
    info = _compat.jaxpr_debug_info(closed)
    out_avals = closed.out_avals

    def body(primals, series):
        try:
            out_p, out_s = _compat.jet_series(fun, order, primals, series, info)
        except KeyError as e:
            name = getattr(e.args[0], "name", None) if e.args else None
            if name is None:
                raise
            src = _compat.jaxpr_source(closed)
            raise JetControlFlowError(
                f"jax.experimental.jet through {what}{f' ({src})' if src else ''}: its body "
                f"contains the primitive {name!r}, which has no Taylor (jet) rule in JAX") from e
        out_s = [_typed(s, a) if _moves(a) else None for s, a in zip(out_s, out_avals, strict=True)]
        return out_p, out_s

    return body


def _out_series(series, avals):
    return [s if s is not None and _moves(a) else zero_series for s, a in zip(series, avals, strict=True)]


# ---------------------------------------------------------------------------
# scan (lax.scan, lax.fori_loop with static bounds, lax.map)
# ---------------------------------------------------------------------------
# c_{i+1}, y_i = F(consts, c_i, x_i): the carry's coefficients are carried, the
# xs' coefficients scanned over, the ys' stacked; the consts' closed over.


def _scan_taylor(primals_in, series_in, *, jaxpr, num_consts, num_carry, length, reverse, unroll, **_):
    order = len(series_in[0])
    ser = _in_series(primals_in, series_in)
    nc, nk = num_consts, num_carry
    consts_p, carry_p, xs_p = primals_in[:nc], primals_in[nc:nc + nk], primals_in[nc + nk:]
    consts_s, carry_s, xs_s = ser[:nc], ser[nc:nc + nk], ser[nc + nk:]
    body_jet = _jet_body(jaxpr, order, "lax.scan")

    def body(carry, x):
        (cp, cs), (xp, xs) = carry, x
        out_p, out_s = body_jet([*consts_p, *cp, *xp], [*consts_s, *cs, *xs])
        new_cs = [s if m is not None else None for s, m in zip(out_s[:nk], cs, strict=True)]
        return (out_p[:nk], new_cs), (out_p[nk:], out_s[nk:])

    (cp, cs), (yp, ys) = lax.scan(body, (list(carry_p), carry_s), (list(xs_p), xs_s),
                                  length=length, reverse=reverse, unroll=unroll)
    return [*cp, *yp], _out_series([*cs, *ys], jaxpr.out_avals)


# ---------------------------------------------------------------------------
# while (lax.while_loop, lax.fori_loop with traced bounds)
# ---------------------------------------------------------------------------
# c_{i+1} = F(consts, c_i) while P(c_i): P sees the primal carry only.


def _while_taylor(primals_in, series_in, *, cond_jaxpr, body_jaxpr, cond_nconsts, body_nconsts, **_):
    order = len(series_in[0])
    ser = _in_series(primals_in, series_in)
    cn, bn = cond_nconsts, body_nconsts
    cond_consts = primals_in[:cn]
    body_consts_p, body_consts_s = primals_in[cn:cn + bn], ser[cn:cn + bn]
    init_p, init_s = primals_in[cn + bn:], ser[cn + bn:]
    pred = jaxpr_as_fun(cond_jaxpr)
    body_jet = _jet_body(body_jaxpr, order, "lax.while_loop")

    def cond_fun(carry):
        return pred(*cond_consts, *carry[0])[0]

    def body_fun(carry):
        cp, cs = carry
        out_p, out_s = body_jet([*body_consts_p, *cp], [*body_consts_s, *cs])
        return out_p, [s if m is not None else None for s, m in zip(out_s, cs, strict=True)]

    cp, cs = lax.while_loop(cond_fun, body_fun, (list(init_p), init_s))
    return cp, _out_series(cs, body_jaxpr.out_avals)


# ---------------------------------------------------------------------------
# cond (lax.cond, lax.switch): the index is primal; each branch jet-ed
# ---------------------------------------------------------------------------


def _cond_taylor(primals_in, series_in, *, branches, **_):
    order = len(series_in[0])
    index, ops_p = primals_in[0], list(primals_in[1:])
    ops_s = _in_series(ops_p, series_in[1:])
    fns = [_jet_body(br, order, "lax.cond/lax.switch") for br in branches]
    out_p, out_s = lax.switch(index, fns, ops_p, ops_s)
    return out_p, _out_series(out_s, branches[0].out_avals)


# ---------------------------------------------------------------------------
# remat (jax.checkpoint): the jet-ed body under the same checkpoint policy
# ---------------------------------------------------------------------------


def _remat_taylor(primals_in, series_in, *, jaxpr, prevent_cse, policy, **_):
    order = len(series_in[0])
    closed = ClosedJaxpr(jaxpr, ())
    body_jet = _jet_body(closed, order, "jax.checkpoint")
    out_p, out_s = jax.checkpoint(body_jet, prevent_cse=prevent_cse, policy=policy)(
        list(primals_in), _in_series(primals_in, series_in))
    return out_p, _out_series(out_s, closed.out_avals)


# ---------------------------------------------------------------------------
# registration: only where JAX has no rule
# ---------------------------------------------------------------------------

#: the primitives that got a rule here on import (the others had one in JAX)
REGISTERED = tuple(
    prim for prim, rule in ((_compat.scan_p, _scan_taylor), (_compat.while_p, _while_taylor),
                            (_compat.cond_p, _cond_taylor), (_compat.remat_p, _remat_taylor))
    if _compat.def_taylor_if_absent(prim, rule))
