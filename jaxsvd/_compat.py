"""Every JAX internal that jaxsvd touches, in one place.

``jax.extend.core.Primitive``, ``jax.interpreters.{ad, batching, mlir}`` and
``jax.experimental.jet`` carry no stability promise (``jax.core.Primitive`` is
already gone in 0.10).  Nothing else in the package imports them: when JAX moves
them, this is the only file to change.  Supported: JAX 0.10.x and 0.11.x.
"""

from __future__ import annotations

import jax
from jax.experimental import jet as _jet
from jax.extend.core import Primitive
from jax.interpreters import ad, batching, mlir

try:  # public home since 0.4; kept behind a guard in case it moves
    from jax.core import ShapedArray  # noqa: F401
except ImportError:  # pragma: no cover - future JAX
    pass  # type: ignore[no-redef]

JAX_VERSION = tuple(int(p) for p in jax.__version__.split(".")[:3] if p.isdigit())

jet = _jet.jet
Tracer = jax.core.Tracer  # to detect values traced by an enclosing transformation
jet_rules = _jet.jet_rules
Zero = ad.Zero


def jet_unscaled(fun, primals, series):
    """``jet`` with unscaled Taylor coefficients in and out: x(t) = x0 + x1 t + x2 t^2 + ...

    JAX 0.10 takes ``factorial_scaled=False``; older/newer versions without it
    get the scaling done here.
    """
    try:
        return _jet.jet(fun, primals, series, factorial_scaled=False)
    except TypeError as e:  # pragma: no cover - JAX without the keyword
        if "factorial_scaled" not in str(e):
            raise
    import math

    scaled = [[t * math.factorial(j + 1) for j, t in enumerate(ts)] for ts in series]
    out, terms = _jet.jet(fun, primals, scaled)
    return out, jax.tree.map(lambda t: t, [t / math.factorial(j + 1) for j, t in enumerate(terms)])


def eval_jaxpr(jaxpr, consts, *args):
    """Evaluate a (open) jaxpr: ``jax.core.eval_jaxpr``."""
    return jax.core.eval_jaxpr(jaxpr, consts, *args)


def zero_tangent(x):
    """The zero tangent of a primal value (float0 for integer and boolean values)."""
    import numpy as np

    if jax.numpy.issubdtype(x.dtype, jax.numpy.inexact):
        return jax.numpy.zeros_like(x)
    return np.zeros(np.shape(x), dtype=jax.dtypes.float0)


def instantiate(t):
    """Turn a symbolic-zero tangent into an array of zeros."""
    return ad.instantiate_zeros(t)


def is_undefined_primal(x) -> bool:
    return ad.is_undefined_primal(x)


def new_primitive(name: str, *, multiple_results: bool = False) -> Primitive:
    p = Primitive(name)
    p.multiple_results = multiple_results
    return p


def def_lowering_from_fun(prim: Primitive, fun, *, multiple_results: bool) -> None:
    """Lower ``prim`` on every platform by tracing ``fun`` (a jnp/lax function)."""
    mlir.register_lowering(prim, mlir.lower_fun(fun, multiple_results=multiple_results))


def def_batching(prim: Primitive, rule) -> None:
    batching.primitive_batchers[prim] = rule


def def_jvp(prim: Primitive, rule) -> None:
    ad.primitive_jvps[prim] = rule


def def_transpose(prim: Primitive, rule) -> None:
    ad.primitive_transposes[prim] = rule


def def_taylor(prim: Primitive, rule) -> None:
    """Register a Taylor-mode rule with ``jax.experimental.jet``.

    The rule receives *unscaled* Taylor coefficients (x(t) = x0 + x1 t + ...)
    and returns ``(primal_out, terms_out)``; for a primitive with several
    results ``terms_out`` holds one list of terms per result.
    """
    jet_rules[prim] = rule


def def_dce_passthrough(prim: Primitive, passthrough) -> None:
    """Dead-code elimination for a multiple-results primitive whose output i may
    equal its input j unchanged: ``passthrough(params)`` returns ``{i: j}``.  When
    the only used output is such an i, the equation becomes a copy of input j, so
    whatever fed only the other inputs is eliminated too (jaxsvd.svds: the vector
    solves of a loss that uses only the singular values, jaxsvd/_gauge.py)."""
    try:
        from jax._src.core import new_jaxpr_eqn
        from jax._src.interpreters import partial_eval as pe
        from jax._src.lax.lax import copy_p
    except ImportError:  # pragma: no cover - a JAX that moved them: only an optimisation is lost
        return

    def rule(used_outs, eqn):
        if not any(used_outs) and not eqn.effects:
            return [False] * len(eqn.invars), None
        through = passthrough(eqn.params)
        used = [i for i, u in enumerate(used_outs) if u]
        if len(used) == 1 and used[0] in through:
            i, j = used[0], through[used[0]]
            new = new_jaxpr_eqn([eqn.invars[j]], [eqn.outvars[i]], copy_p, {}, eqn.effects,
                                eqn.source_info, eqn.ctx)
            return [k == j for k in range(len(eqn.invars))], new
        return [True] * len(eqn.invars), eqn

    pe.dce_rules[prim] = rule


try:  # the NamedTuple jnp.linalg.svd returns (not re-exported publicly)
    from jax._src.numpy.linalg import SVDResult
except ImportError:  # pragma: no cover - future JAX
    from typing import NamedTuple as _NT

    class SVDResult(_NT):  # type: ignore[no-redef]
        U: jax.Array
        S: jax.Array
        Vh: jax.Array


def bcoo_from_scipy(mat):
    """A ``jax.experimental.sparse.BCOO`` matrix holding a 2-D ``scipy.sparse`` matrix or array.

    ``jax.experimental.sparse`` is experimental: imported here, and only when called.
    """
    from jax.experimental import sparse

    return sparse.BCOO.from_scipy_sparse(mat)
