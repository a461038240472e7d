"""Every JAX internal that jaxsvd touches, in one place.

``jax.extend.core.Primitive``, ``jax.interpreters.{ad, batching, mlir}`` and
``jax.experimental.jet`` carry no stability promise (``jax.core.Primitive`` is
already gone in 0.10).  Nothing else in the package imports them: when JAX moves
them, this is the only file to change.  Supported: JAX 0.10.x and 0.11.x.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
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


class CustomVJPInSeries(TypeError):
    """A function under :func:`jet_user` calls a ``jax.custom_vjp`` function: its
    forward-mode derivatives do not exist in JAX."""


#: call-like primitives whose sub-jaxpr ``jaxpr`` is applied to the inputs as they are
_CALLS = ("jit", "pjit", "closed_call", "core_call", "checkpoint", "remat", "remat2")


def jet_user(fun, primals, series):
    """Unscaled Taylor coefficients of ``fun`` (like :func:`jet`), following ``custom_jvp`` rules.

    ``jet`` ignores custom JVP rules and, in JAX 0.10, fails on any
    ``custom_jvp`` function (``UnexpectedTracerError``, jax issue #30352):
    ``jax.nn.relu``, ``softplus``, ``jnp.logaddexp``.  Here ``fun`` is traced to
    a jaxpr and evaluated equation by equation: plain equations through
    ``jet``, call-like ones (``jit``) by recursion, and a ``custom_jvp`` call
    ``y = f(x)`` through its own rule, as the ODE ``y'(t) = jvp(f)(x(t), x'(t))``:
    ``y_k = z_(k-1) / k`` with ``z`` the series (one order less) of the JVP
    function -- the rule's primal re-enters here, one order lower each time, so
    the cost grows like K^2 in the order K, never 2^K as nested ``jvp`` does.

    Args:
      fun: function of the arrays ``primals`` (positional) to a pytree of arrays.
      primals: tuple of arrays.
      series: tuple (one per primal) of lists of K coefficients (None: zero).

    Returns:
      ``(y0, terms)`` as ``jet(..., factorial_scaled=False)``: ``terms`` has one
      list of K coefficients per output leaf (pytree structure of ``fun``'s output).

    Raises:
      CustomVJPInSeries: ``fun`` calls a ``custom_vjp`` function (forward-mode
      derivatives of it do not exist).
    """
    from jax.extend import core as xcore

    K = max((len(t) for t in series), default=0)
    closed = jax.make_jaxpr(fun)(*primals)
    out_tree = jax.tree.structure(jax.eval_shape(fun, *primals))
    ins = [(x, None if not t or all(c is None for c in t) else
            [jax.numpy.zeros_like(x) if c is None else c for c in t]) for x, t in zip(primals, series)]
    outs = _series_jaxpr(closed.jaxpr, closed.consts, ins, K, xcore)
    y0 = [o[0] for o in outs]
    ys = [o[1] if o[1] is not None else [jax.numpy.zeros_like(o[0])] * K for o in outs]
    return jax.tree.unflatten(out_tree, y0), jax.tree.unflatten(out_tree, ys)


def _series_jaxpr(jaxpr, consts, ins, K, xcore):
    """Evaluate ``jaxpr`` on (primal, terms-or-None) pairs; returns such pairs."""
    env = {}

    def read(v):
        return (v.val, None) if isinstance(v, xcore.Literal) else env[v]

    for v, c in zip(jaxpr.constvars, consts):
        env[v] = (c, None)
    for v, x in zip(jaxpr.invars, ins):
        env[v] = x
    for eqn in jaxpr.eqns:
        args = [read(v) for v in eqn.invars]
        name = eqn.primitive.name
        params = eqn.primitive.get_bind_params(eqn.params)

        def f(*xs, eqn=eqn, params=params):
            out = eqn.primitive.bind(*xs, **params)
            return list(out) if eqn.primitive.multiple_results else [out]

        if all(t is None for _, t in args):
            outs = [(y, None) for y in f(*(x for x, _ in args))]
        elif name == "custom_vjp_call":
            raise CustomVJPInSeries(
                f"{params.get('name', name)!s} is a jax.custom_vjp function: its forward-mode "
                "derivatives (jvp, Taylor coefficients) do not exist in JAX")
        elif name == "custom_jvp_call":
            outs = _series_custom_jvp(f, args, K, xcore)
        elif name in _CALLS and "jaxpr" in eqn.params:
            sub = eqn.params["jaxpr"]
            sub_jaxpr, sub_consts = (sub.jaxpr, sub.consts) if hasattr(sub, "consts") else (sub, ())
            outs = _series_jaxpr(sub_jaxpr, sub_consts, args, K, xcore)
        else:
            prim = [x for x, _ in args]
            ser = [t if t is not None else [jax.numpy.zeros_like(x)] * K for x, t in args]
            y0, ys = _jet.jet(f, tuple(prim), tuple(ser), factorial_scaled=False)
            outs = list(zip(y0, ys))
        for v, o in zip(eqn.outvars, outs):
            if not isinstance(v, xcore.DropVar):
                env[v] = o
    return [read(v) for v in jaxpr.outvars]


def _series_custom_jvp(f, args, K, xcore):
    # y(t) = f(x(t)):  y'(t) = z(t) = jvp(f)(x(t), x'(t)),  y_k = z_(k-1) / k
    np_ = jax.numpy
    x0 = [x for x, _ in args]
    y0 = f(*x0)
    moving = [i for i, (_, t) in enumerate(args) if t is not None]

    def z(*xd):
        xs, ds = list(x0), xd[len(moving):]
        for j, i in enumerate(moving):
            xs[i] = xd[j]
        tang = [np_.zeros_like(x) for x in x0]
        for j, i in enumerate(moving):
            tang[i] = ds[j]
        return jax.jvp(f, tuple(xs), tuple(tang))[1]

    prim = tuple([args[i][0] for i in moving] + [args[i][1][0] for i in moving])
    if K == 1:
        zs = [(zz, None) for zz in z(*prim)]
    else:
        ser = [[c for c in args[i][1][:K - 1]] for i in moving]
        ser += [[(k + 2) * c for k, c in enumerate(args[i][1][1:K])] for i in moving]
        closed = jax.make_jaxpr(z)(*prim)
        zs = _series_jaxpr(closed.jaxpr, closed.consts, list(zip(prim, ser)), K - 1, xcore)
    out = []
    for y, (zz0, zt) in zip(y0, zs):
        zt = zt if zt is not None else [np_.zeros_like(zz0)] * (K - 1)
        terms = [zz0] + list(zt)
        out.append((y, [np_.asarray(c / (k + 1), y.dtype) for k, c in enumerate(terms)]))
    return out



# ---------------------------------------------------------------------------
# jet through control flow (the rules: jaxsvd/_jet_control.py)
# ---------------------------------------------------------------------------
# ``jax.experimental.jet`` (JAX 0.10, 0.11) has no rule for ``scan``, ``while``,
# ``cond`` or ``remat2`` (jax #27699, #26801).  The rules jet the body jaxpr
# once, inside the same loop primitive: what they need of jet's internals is
# here -- a jet that takes (and gives) *unscaled* coefficients and accepts a
# symbolic zero series (``None``) for an input, so integer loop counters never
# get a series.

try:
    from jax.extend.core import ClosedJaxpr, jaxpr_as_fun
    from jax.extend.core.primitives import cond_p, remat_p, scan_p, while_p
except ImportError:  # pragma: no cover - a JAX that moved them: no control-flow rules
    ClosedJaxpr = jaxpr_as_fun = cond_p = remat_p = scan_p = while_p = None

#: jet's symbolic zero series (a rule may return it for an output with no series)
zero_series = _jet.zero_series


def jet_series(fun, order: int, primals, series, debug_info=None):
    """Unscaled Taylor coefficients of ``fun`` (a function of a flat list of
    arrays returning a flat list) at ``primals``.

    ``series`` has one entry per primal: a list of ``order`` coefficients, or
    ``None`` for a zero series (integer and boolean values: a loop counter).
    Returns ``(primals_out, series_out)``, every output with a list of
    ``order`` coefficients (zeros where jet found none).
    """
    from jax._src import api_util
    from jax._src import linear_util as lu

    if debug_info is None:
        debug_info = api_util.debug_info("jet", fun, tuple(primals), {})
    f = lu.wrap_init(lambda *xs: list(fun(*xs)), debug_info=debug_info)
    ser = [_jet.zero_series if s is None else list(s) for s in series]
    out_p, out_s = _jet.jet_fun(_jet.jet_subtrace(f), order).call_wrapped(list(primals), ser)
    return list(out_p), [list(s) for s in out_s]


def jaxpr_debug_info(closed):
    """The debug info of a closed jaxpr with its argument names dropped (for a
    jaxpr re-traced with other arguments), or None."""
    info = getattr(closed.jaxpr, "debug_info", None)
    if info is None:  # pragma: no cover
        return None
    return info.with_unknown_names() if hasattr(info, "with_unknown_names") else info


def jaxpr_source(closed) -> str:
    """Where the function traced to ``closed`` was defined ("body at file.py:12"), or ""."""
    info = getattr(closed.jaxpr, "debug_info", None)
    return str(getattr(info, "func_src_info", "") or "")


def def_taylor_if_absent(prim, rule) -> bool:
    """Register ``rule`` as ``prim``'s jet rule only if JAX has none (never
    replacing one); returns whether it was registered."""
    if prim is None or prim in jet_rules:
        return False
    jet_rules[prim] = _vma_taylor(rule)
    return True


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


# ---------------------------------------------------------------------------
# varying manual axes (jax.shard_map with check_vma=True)
# ---------------------------------------------------------------------------
# Inside ``jax.shard_map`` every value's type records the mesh axes along which
# it varies (``jax.typeof(x).mat.varying`` in JAX 0.10/0.11, ``.vma`` before).
# JAX's own primitives bind operands of equal type (simple ops insert
# ``pcast(..., to="varying")`` for invariant operands, the transpose of which is
# a ``psum``), give results the operands' type, and transposes return
# cotangents of their primal's type.  Every jaxsvd primitive is created by
# ``new_primitive`` below and gets the same three behaviours here, once:
#   bind            operands cast to the union of their varying axes;
#   abstract eval   results typed with that union (the rule gives shape/dtype);
#   transpose       cotangents cast up to their primal's varying axes.
# Constants made inside the rules (zeros, eye, random vectors) then meet the
# varying residuals only through jnp's simple ops, which cast them, or through
# ``match_varying`` where a rule combines them otherwise (dot, cond, loops).


try:  # set by shard_map(check_vma=True) while it traces its body
    from jax._src.config import _check_vma as _CHECK_VMA
except ImportError:  # pragma: no cover - JAX without shard_map typing
    _CHECK_VMA = None


def _check_vma_on() -> bool:
    return _CHECK_VMA is not None and bool(_CHECK_VMA.value)


def varying_axes(x) -> frozenset:
    """The manual mesh axes along which ``x`` (a value or an aval) varies; empty outside shard_map."""
    aval = x if isinstance(x, jax.core.AbstractValue) else jax.typeof(x)
    mat = getattr(aval, "mat", None)
    if mat is not None:
        return frozenset(mat.varying)
    return frozenset(getattr(aval, "vma", ()))  # JAX < 0.10


def pvary(x, axes):
    """``x`` cast from invariant to varying along the manual mesh axes ``axes`` it
    does not vary along yet (identity when there are none)."""
    axes = tuple(a for a in axes if a not in varying_axes(x))
    if not axes:
        return x
    if hasattr(jax.lax, "pcast"):  # JAX >= 0.8.2
        return jax.lax.pcast(x, axes, to="varying")
    return jax.lax.pvary(x, axes)  # pragma: no cover - older JAX


def match_varying(*xs):
    """The arrays ``xs`` cast to the union of their varying manual axes (a list).

    Outside ``shard_map`` (or with ``check_vma=False``) the arrays come back as they are.
    """
    if not _check_vma_on():
        return list(xs)
    vmas = [varying_axes(x) for x in xs]
    union = frozenset().union(*vmas)
    if not union or all(v == union for v in vmas):
        return list(xs)
    order = _mesh_order(union)
    return [x if v == union else pvary(x, order) for x, v in zip(xs, vmas, strict=True)]


def like_varying(x, ref):
    """``x`` (an array or a pytree of arrays) cast to vary along every manual mesh
    axis ``ref`` varies along: for constants made inside a rule (zeros, eye,
    random start vectors) that meet ``ref`` in a dot, a ``cond`` or a loop carry.
    Identity outside ``shard_map``."""
    if not _check_vma_on():
        return x
    want = varying_axes(ref)
    if not want:
        return x

    def one(leaf):
        extra = want - varying_axes(leaf)
        return pvary(leaf, _mesh_order(extra)) if extra else leaf

    return jax.tree.map(one, x)


def _mesh_order(axes) -> tuple:
    # the order of the current mesh (pcast wants a tuple; its order is cosmetic)
    try:
        names = jax.sharding.get_abstract_mesh().axis_names
    except AttributeError:  # pragma: no cover
        names = ()
    return tuple(a for a in names if a in axes) + tuple(sorted((a for a in axes if a not in names), key=str))


def _manual_mesh(avals):
    """The mesh of the inputs when it has manual axes (inside ``shard_map``), else None."""
    for a in avals:
        sharding = getattr(a, "sharding", None)
        mesh = getattr(sharding, "mesh", None)
        if mesh is not None and not mesh.empty:
            types = getattr(mesh, "axis_types", ())
            return mesh if any(t == jax.sharding.AxisType.Manual for t in types) else None
    return None


def _typed_like(out, vma, mesh, ref):
    """The aval ``out`` (from a rule that gives shape and dtype) on the manual
    ``mesh``, varying along ``vma`` (JAX's own primitives type every value inside
    shard_map so: an invariant result on no mesh would be cached by JAX's
    abstract evaluation and leak the manual mesh into later programs)."""
    if hasattr(ref, "mat"):
        from jax.sharding import NamedSharding, PartitionSpec

        sharding = NamedSharding(mesh, PartitionSpec(*(None,) * len(out.shape)))
        return out.update(sharding=sharding, manual_axis_type=type(ref.mat)(varying=vma))
    return out.update(vma=vma)  # pragma: no cover - JAX < 0.10


def _vma_abstract_eval(rule):
    def abstract_eval(*avals, **params):
        out = rule(*avals, **params)
        mesh = _manual_mesh(avals)
        if mesh is None:
            return out
        vma = frozenset().union(*(varying_axes(a) for a in avals))
        ref = next(a for a in avals if hasattr(a, "sharding"))
        if isinstance(out, (list, tuple)):
            return type(out)(_typed_like(o, vma, mesh, ref) for o in out)
        return _typed_like(out, vma, mesh, ref)

    return abstract_eval


def outside_mesh():
    """A context with no abstract mesh: for jaxprs traced once and cached across
    programs (a jaxpr records the mesh it was traced under, and evaluating it
    replays that context, so one first traced inside ``shard_map`` would carry
    the manual mesh into later programs)."""
    return jax.sharding.use_abstract_mesh(jax.sharding.AbstractMesh((), ()))


def current_mesh():
    """The abstract mesh of the current trace (a cache key for traced programs)."""
    return jax.sharding.get_abstract_mesh()


def _register_pvary_taylor() -> None:
    """``jax.experimental.jet`` has no rule for JAX's invariant-to-varying cast
    (``jet`` inside ``shard_map`` raises ``KeyError: pvary``): the cast is linear,
    so every Taylor coefficient is cast like the primal.  Added only where JAX has none."""
    try:
        from jax._src.core import pvary_p
    except ImportError:  # pragma: no cover - JAX without shard_map typing
        return
    if pvary_p in jet_rules:  # pragma: no cover - a JAX that has its own
        return

    def rule(primals_in, series_in, *, axes):
        (x,), (terms,) = primals_in, series_in
        return pvary_p.bind(x, axes=axes), [pvary(t, axes) for t in terms]

    jet_rules[pvary_p] = rule


_register_pvary_taylor()


def _vma_taylor(rule):
    """A Taylor rule whose input coefficients vary along every axis any input
    (value or coefficient) varies along.  ``jet`` instantiates a zero series as
    an invariant ``jnp.zeros`` and its linear rules bind on the coefficients
    directly, so ``jet(lambda x: x - 1.0)`` inside ``shard_map`` raises
    "sub requires varying manual axes to match" (JAX 0.10, 0.11)."""
    if getattr(rule, "_jaxsvd_vma", False):
        return rule

    def taylor(primals_in, series_in, **params):
        if _check_vma_on():
            flat = [*primals_in, *(t for ts in series_in for t in ts)]
            vmas = [varying_axes(x) for x in flat]
            union = frozenset().union(*vmas)
            if union and any(v != union for v in vmas):
                order = _mesh_order(union)
                series_in = [[pvary(t, order) for t in ts] for ts in series_in]
        return rule(primals_in, series_in, **params)

    taylor._jaxsvd_vma = True
    taylor.__wrapped__ = rule  # JAX's own rule, unchanged (tests/test_jet_control_flow.py)
    return taylor


for _prim, _rule in list(jet_rules.items()):
    jet_rules[_prim] = _vma_taylor(_rule)
del _prim, _rule


class _Primitive(Primitive):
    """A ``Primitive`` typed for varying manual axes (see above)."""

    def bind(self, *args, **params):
        return super().bind(*match_varying(*args), **params)

    def def_abstract_eval(self, abstract_eval):
        return super().def_abstract_eval(_vma_abstract_eval(abstract_eval))


def new_primitive(name: str, *, multiple_results: bool = False) -> Primitive:
    """A new primitive; typed for ``shard_map`` (varying manual axes) like JAX's own."""
    p = _Primitive(name)
    p.multiple_results = multiple_results
    return p


def def_lowering_from_fun(prim: Primitive, fun, *, multiple_results: bool) -> None:
    """Lower ``prim`` on every platform by tracing ``fun`` (a jnp/lax function)."""
    mlir.register_lowering(prim, mlir.lower_fun(fun, multiple_results=multiple_results))


def def_batching(prim: Primitive, rule) -> None:
    batching.primitive_batchers[prim] = rule


def def_rules(prim: Primitive, *, impl, abstract, static_argnames, jvp, transpose, taylor,
              multiple_results: bool = False, out_dims=0) -> None:
    """Every rule of a primitive whose impl is jnp code on operands with leading
    batch dimensions: primal (jitted, ``static_argnames`` its params), abstract
    eval, lowering from the impl, batching (:func:`def_batching_leading`), JVP,
    transpose (None: a non-linear primitive), Taylor."""
    prim.def_impl(jax.jit(impl, static_argnames=static_argnames))
    prim.def_abstract_eval(abstract)
    def_lowering_from_fun(prim, impl, multiple_results=multiple_results)
    def_batching_leading(prim, out_dims)
    def_jvp(prim, jvp)
    if transpose is not None:
        def_transpose(prim, transpose)
    def_taylor(prim, taylor)


def def_batching_leading(prim: Primitive, out_dims=0) -> None:
    """The batching rule of a primitive whose impl takes any leading batch
    dimensions (all operands alike): move each batched operand's axis to the
    front, broadcast the others, bind once; the results are batched at ``out_dims``
    (for a multiple-results primitive whose number of results depends on its
    parameters, ``"leading"``: every result at 0)."""

    def rule(args, dims, **params):
        size = next(x.shape[d] for x, d in zip(args, dims, strict=True) if d is not None)
        moved = [jnp.moveaxis(x, d, 0) if d is not None else jnp.broadcast_to(x, (size,) + x.shape)
                 for x, d in zip(args, dims, strict=True)]
        out = prim.bind(*moved, **params)
        return out, ([0] * len(out) if out_dims == "leading" else out_dims)

    batching.primitive_batchers[prim] = rule


def def_jvp(prim: Primitive, rule) -> None:
    ad.primitive_jvps[prim] = rule


def def_transpose(prim: Primitive, rule) -> None:
    """Register a transpose rule; its cotangents are cast up to the varying axes
    of their primal (a cotangent made from invariant residuals alone, or a zero)."""

    def transpose(cts, *args, **params):
        out = rule(cts, *args, **params)
        if not _check_vma_on():
            return out
        return [_ct_like(c, x) for c, x in zip(out, args, strict=True)]

    ad.primitive_transposes[prim] = transpose


def _ct_like(ct, primal):
    if ct is None or type(ct) is Zero or not ad.is_undefined_primal(primal):
        return ct
    return like_varying(ct, primal.aval)


def def_taylor(prim: Primitive, rule) -> None:
    """Register a Taylor-mode rule with ``jax.experimental.jet``.

    The rule receives *unscaled* Taylor coefficients (x(t) = x0 + x1 t + ...)
    and returns ``(primal_out, terms_out)``; for a primitive with several
    results ``terms_out`` holds one list of terms per result.
    """
    jet_rules[prim] = _vma_taylor(rule)


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


try:  # the NamedTuples jnp.linalg.svd / eigh return (not re-exported publicly)
    from jax._src.numpy.linalg import EighResult, SVDResult
except ImportError:  # pragma: no cover - future JAX
    from typing import NamedTuple as _NT

    class SVDResult(_NT):  # type: ignore[no-redef]
        U: jax.Array
        S: jax.Array
        Vh: jax.Array

    class EighResult(_NT):  # type: ignore[no-redef]
        eigenvalues: jax.Array
        eigenvectors: jax.Array


def bcoo_from_scipy(mat):
    """A ``jax.experimental.sparse.BCOO`` matrix holding a 2-D ``scipy.sparse`` matrix or array.

    ``jax.experimental.sparse`` is experimental: imported here, and only when called.
    """
    from jax.experimental import sparse

    return sparse.BCOO.from_scipy_sparse(mat)
