"""Matrix-free singular triplets with implicit derivatives: ``jaxsvd.svds``.

The primal is a Krylov solver (thick-restart Golub--Kahan--Lanczos,
jaxsvd/_krylov.py) that touches the operator only through x -> A x and
y -> A^T y.  The derivative rules never differentiate its iterations: they are
the series engine (jaxsvd/_series.py) on the partial basis of the k computed
triplets (R. Scholz, "Derivative of the first order SVD", note, 2023; docs/svds.md, "Derivatives"):

  * inside the span of the k triplets, the engine's exact small formulas
    (pairs i, j <= k: one reciprocal of sigma_i - sigma_j, one of sigma_i + sigma_j);
  * outside it, the deflated systems
        s_i zu - A zv = r1,   s_i zv - A^T zu = r2     on the complement of (U_k, V_k),
    i.e. (s_i I - T) z = r for the block operator T = [[0, A], [A^T, 0]].  On the
    complement T's eigenvalues are +-sigma_j (j > k) and 0, so s_i I - T is
    positive definite when s_i > sigma_{k+1}: conjugate gradients
    (``jax.scipy.sparse.linalg.cg``, a ``lax.custom_linear_solve``, so the
    solve is itself linear, transposable and differentiable).

The operator enters the primitive as the traced jaxprs of its two products with
every array they close over hoisted into primitive inputs, so derivatives with
respect to those arrays (a dense matrix, a BCOO's values, the weights a
``lineax.FunctionLinearOperator`` closes over, the parameters inside a
``lineax.JacobianLinearOperator``) flow through the products: the tangent of A
along a perturbation of the inputs is the ``jvp`` of the matvec, its Taylor
coefficients the ``jet`` of the matvec.

Rules in the usual order: primal, first order (JVP), Taylor mode, registration.
"""

from __future__ import annotations

import collections
import functools
import math
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from . import _compat
from ._gauge import GAUGE_CHECK_ULPS, gauge_mask
from ._krylov import default_block_size, default_krylov_dim, default_tol, effective_tol, gkl_svds, plan
from ._nanmask import nan_unless
from ._series import TermProducts, like, mH, mm, svd_series
from ._svd import static_int

_HIGHEST = lax.Precision.HIGHEST

# ---------------------------------------------------------------------------
# the operator as data: two jaxprs and the arrays they close over
# ---------------------------------------------------------------------------


class _Operator:
    """x -> A x and y -> A^H y as jaxprs; ``consts`` are primitive inputs.

    Hashed by identity (a primitive parameter).  ``diff`` marks the inputs
    that can carry tangents (inexact dtypes); the others (e.g. sparse indices)
    are held fixed.
    """

    def __init__(self, mv, rmv, m: int, n: int, dtype):
        x0 = jax.ShapeDtypeStruct((n,), dtype)
        y0 = jax.ShapeDtypeStruct((m,), dtype)
        mv_j = jax.make_jaxpr(mv)(x0)
        rmv_j = jax.make_jaxpr(rmv)(y0)
        for j, (shape, what) in ((mv_j, ((m,), "A x")), (rmv_j, ((n,), "A^H y"))):
            outs = j.out_avals
            if len(outs) != 1 or tuple(outs[0].shape) != shape:
                raise TypeError(f"the operator's {what} must be a vector of shape {shape}; got "
                                f"{[tuple(o.shape) for o in outs]}")
        self.mv_jaxpr, self.rmv_jaxpr = mv_j.jaxpr, rmv_j.jaxpr
        self.n_mv = len(mv_j.consts)
        self.consts = [jnp.asarray(c) for c in list(mv_j.consts) + list(rmv_j.consts)]
        self.diff = tuple(jnp.issubdtype(c.dtype, jnp.inexact) for c in self.consts)
        self.m, self.n, self.dtype = m, n, jnp.dtype(dtype)

    def mv(self, consts, x):
        out = _compat.eval_jaxpr(self.mv_jaxpr, list(consts[: self.n_mv]), x)[0]
        return out.astype(self.dtype)

    def rmv(self, consts, y):
        out = _compat.eval_jaxpr(self.rmv_jaxpr, list(consts[self.n_mv:]), y)[0]
        return out.astype(self.dtype)

    # blocks of columns (n, c) -> (m, c): the vector program applied to a block
    # (_eval_block: a sparse product becomes one sparse-dense matrix product)
    def mv_block(self, consts, x):
        return _eval_block(self.mv_jaxpr, list(consts[: self.n_mv]), x).astype(self.dtype)

    def rmv_block(self, consts, y):
        return _eval_block(self.rmv_jaxpr, list(consts[self.n_mv:]), y).astype(self.dtype)

    def merge(self, consts, diff_consts):
        """The full const list with the differentiable ones replaced."""
        it = iter(diff_consts)
        return [next(it) if d else c for c, d in zip(consts, self.diff, strict=True)]

    def split(self, consts):
        return [c for c, d in zip(consts, self.diff, strict=True) if d]


_SPARSE_MATMUL = ("bcoo_dot_general",)


def _eval_block(jaxpr, consts, x):
    """A jaxpr of one vector input and one output, applied to the columns of a
    block ``x`` (..., c): ``vmap`` over the trailing axis, equation by equation,
    except that a sparse product ``bcoo_dot_general(data, indices, v)`` of a fixed
    unbatched BCOO matrix with a column is bound once on the whole block, a
    sparse--dense matrix product.

    Why not ``jax.vmap``: JAX batches that product as a batch of matrix--vector
    products (a BCOO with a batch dimension), and the transpose of *that* with
    respect to the sparse values -- reverse mode in the matrix's entries -- is a
    batched ``bcoo_dot_general_sampled``, which JAX evaluates as a dense
    (c, m, n) product before sampling it: 2.4 GB at 20000 x 5000, k = 3, in eager
    mode (jit fused it away).  The matrix product's transpose is the sampled
    product of two blocks, O(c nnz).  Call-like equations (``jit``) are entered;
    every other equation that touches the block is vmapped alone."""
    from jax.extend import core as xcore

    env = {}

    def read(v):
        return (v.val, False) if isinstance(v, xcore.Literal) else env[v]

    def run(jaxpr, consts, ins):
        for v, c in zip(jaxpr.constvars, consts, strict=True):
            env[v] = (c, False)
        for v, a in zip(jaxpr.invars, ins, strict=True):
            env[v] = a
        for eqn in jaxpr.eqns:
            args = [read(v) for v in eqn.invars]
            vals = [a for a, _ in args]
            flags = [f for _, f in args]
            prim, name = eqn.primitive, eqn.primitive.name
            if name in _compat._CALLS and "jaxpr" in eqn.params and any(flags):
                sub = eqn.params["jaxpr"]
                sj, sc = (sub.jaxpr, sub.consts) if hasattr(sub, "consts") else (sub, ())
                outs = run(sj, sc, args)
            else:
                bp = prim.get_bind_params(eqn.params)  # params (JAX 0.10), (subfuns, params) before
                subfuns, params = bp if isinstance(bp, tuple) else ((), bp)

                def bind(*xs, prim=prim, subfuns=subfuns, params=params):
                    out = prim.bind(*subfuns, *xs, **params)
                    return list(out) if prim.multiple_results else [out]

                if not any(flags):
                    outs = [(o, False) for o in bind(*vals)]
                elif (name in _SPARSE_MATMUL and flags == [False, False, True]
                      and not any(params["dimension_numbers"][1]) and vals[1].ndim == 2):
                    # an unbatched BCOO (n_batch = 0) times a batched dense operand: the
                    # trailing block axis is a free dimension of the product, and stays last
                    outs = [(o, True) for o in bind(*vals)]
                else:
                    axes = [-1 if f else None for f in flags]
                    outs = [(o, True) for o in jax.vmap(bind, in_axes=axes, out_axes=-1)(*vals)]
            for v, o in zip(eqn.outvars, outs, strict=True):
                if not isinstance(v, xcore.DropVar):
                    env[v] = o
        return [read(v) for v in jaxpr.outvars]

    (out, batched), = run(jaxpr, consts, [(x, True)])
    if not batched:  # an output that does not depend on the input (a zero operator)
        out = jnp.broadcast_to(out[..., None], out.shape + (x.shape[-1],))
    return out


# One _Operator per distinct program: eager calls on a BCOO matrix or a lineax
# operator whose arrays change (new values, a rebuilt FunctionLinearOperator with
# the same function body) then reuse the compiled solver, whose jit is keyed on
# the operator's identity (a primitive parameter).  The key is the text of the
# two jaxprs (every array they close over is a const, i.e. an argument, and
# scalar literals print in full) plus the consts' shapes and dtypes.  A function
# that prints differently each time (a custom_vjp or callback, whose params show
# an object's address) gets no reuse, never a wrong one: the cached operator
# keeps those objects alive, so no address is ever shared with a newer one.
_OPERATORS_MAX = 64
_operators: collections.OrderedDict = collections.OrderedDict()


def _operator(mv, rmv, m: int, n: int, dtype):
    """(op, consts): the canonical :class:`_Operator` for this program and the
    arrays to pass it."""
    op = _Operator(mv, rmv, m, n, dtype)
    consts, op.consts = op.consts, None
    text = (str(op.mv_jaxpr), str(op.rmv_jaxpr))
    if any("..." in s for s in text):  # an elided array literal: the text does not pin the program
        return op, consts
    avals = tuple((tuple(c.shape), jnp.dtype(c.dtype), bool(jax.typeof(c).weak_type)) for c in consts)
    key = (text, avals, op.n_mv, m, n, jnp.dtype(dtype), _compat.current_mesh())  # a jaxpr keeps its mesh
    hit = _operators.get(key)
    if hit is not None:
        _operators.move_to_end(key)
        return hit, consts
    _operators[key] = op
    if len(_operators) > _OPERATORS_MAX:
        _operators.popitem(last=False)
    return op, consts


class SvdsInfo(NamedTuple):
    """Diagnostics of a :func:`svds` call (:func:`svds_with_info`).

    Attributes:
      residual: ``(..., k)`` real: the Lanczos estimate of ``|A^H u_i - s_i v_i| / s_1``
        (``A v_i = s_i u_i`` holds to rounding by construction).
      converged: ``(..., k)`` bool: triplet i met ``tol``, or came from the dense route
        (a Krylov dimension reaching min(m, n): one LAPACK SVD, residuals at the rounding
        floor, which in float32 may exceed ``tol``).  False: its S, U, Vh are NaN.
      passes: ``(...)`` int32: passes over A = block Krylov steps, each one product
        ``A X`` and one ``A^H Y`` with blocks of ``block_size`` columns.
      matvecs: ``(...)`` int32: products of A with single vectors, ``passes * block_size``
        (as many with ``A^H``, plus ``block_size`` for the random start block of a
        cold start, ``A^H Y``).
      next_value: ``(...)`` real: the (k+1)-th Ritz value (a lower estimate of sigma_{k+1}).
      block_size: the block size used (a Python int).
      krylov_dim: the Krylov dimension used (a Python int, a multiple of block_size).
    """

    residual: jax.Array
    converged: jax.Array
    passes: jax.Array
    matvecs: jax.Array
    next_value: jax.Array
    block_size: int
    krylov_dim: int

    @property
    def steps(self):
        """Krylov (block) steps: the same as ``passes``."""
        return self.passes


# ---------------------------------------------------------------------------
# primal
# ---------------------------------------------------------------------------
# svds_p(*consts, v0, key_data; op, k, p, tol, maxiter, batch_shape, batched)
#   -> (U (..., m, k), S (..., k), V (..., n, k), residual (..., k), steps (...), next (...))
# ``p``: the solver's static :class:`jaxsvd._krylov.Plan` (Krylov dimension, block size,
# restart and check schedule).  ``v0`` (..., n, j): the start block (j = 0: random start);
# it and the key are the last _N_AUX inputs, never differentiated.
# ``batched[i]``: input i carries the leading ``batch_shape`` (vmap).

svds_p = _compat.new_primitive("jaxsvd_svds", multiple_results=True)
_N_AUX = 2  # trailing non-differentiable inputs: v0, key data


def _solver_products(op, consts):
    """(X -> A X, Y -> A^H Y) on blocks of columns for the solver.

    A dense array on the CPU: A^H Y from a transposed copy made once per solve
    (XLA:CPU contracts a row-major A over its rows ~10x slower than over its
    columns for blocks of vectors -- measured, jax 0.10.2, 4096^2 float32; the
    optimization barrier keeps the copy from being folded back into the dot)."""
    if getattr(op, "dense", False) and jax.default_backend() == "cpu":
        a = consts[0]
        ah = lax.optimization_barrier(jnp.conj(a).T)
        return (partial(op.mv_block, consts), lambda y: jnp.matmul(ah, y, precision=_HIGHEST))
    return partial(op.mv_block, consts), partial(op.rmv_block, consts)


def _solve_one(*args, op, k, p, tol, maxiter):
    consts, v0, kd = args[:-_N_AUX], args[-2], args[-1]
    mv, rmv = _solver_products(op, consts)
    res = gkl_svds(mv, rmv, op.m, op.n, k, dtype=op.dtype,
                   key=jax.random.wrap_key_data(kd), tol=tol, maxiter=maxiter, p=p,
                   v0=v0 if v0.shape[-1] else None, matrix=consts[0] if getattr(op, "dense", False) else None)
    ok = res.converged
    nan = jnp.asarray(jnp.nan, op.dtype)
    rnan = jnp.asarray(jnp.nan, res.s.dtype)
    # a triplet that did not converge is NaN, never finite and wrong
    return [jnp.where(ok[None, :], res.u, nan), jnp.where(ok, res.s, rnan), jnp.where(ok[None, :], res.v, nan),
            res.residual, res.steps, res.next_value]


def _impl(*args, op, k, p, tol, maxiter, batch_shape, batched):
    one = partial(_solve_one, op=op, k=k, p=p, tol=tol, maxiter=maxiter)
    if not batch_shape:
        return one(*args)
    size = math.prod(batch_shape)
    flat = [x.reshape((size,) + x.shape[len(batch_shape):]) if b else x for x, b in zip(args, batched, strict=True)]
    outs = jax.vmap(one, in_axes=[0 if b else None for b in batched])(*flat)
    return [o.reshape(batch_shape + o.shape[1:]) for o in outs]


def _abstract_eval(*args, op, k, p, tol, maxiter, batch_shape, batched):
    S = _compat.ShapedArray
    b, dt = tuple(batch_shape), op.dtype
    rt = jnp.finfo(dt).dtype  # singular values, residuals: real
    return (S(b + (op.m, k), dt), S(b + (k,), rt), S(b + (op.n, k), dt), S(b + (k,), rt),
            S(b, jnp.int32), S(b, rt))


def _batch(args, dims, *, batch_shape, batched, **params):
    size = next(x.shape[d] for x, d in zip(args, dims, strict=True) if d is not None)
    new_args, new_batched = [], []
    for x, d, b in zip(args, dims, batched, strict=True):
        if d is None and not b:
            new_args.append(x)
            new_batched.append(False)
            continue
        if d is None:
            x = jnp.broadcast_to(x, (size,) + x.shape)
        else:
            x = jnp.moveaxis(x, d, 0)
            if not b:  # give it the older batch dimensions too
                x = jnp.broadcast_to(jnp.expand_dims(x, tuple(range(1, 1 + len(batch_shape)))),
                                     (size,) + tuple(batch_shape) + x.shape[1:])
        new_args.append(x)
        new_batched.append(True)
    out = svds_p.bind(*new_args, batch_shape=(size,) + tuple(batch_shape), batched=tuple(new_batched), **params)
    return out, [0] * len(out)


# ---------------------------------------------------------------------------
# derivatives: the engine on the partial basis, products through the operator
# ---------------------------------------------------------------------------


class _JvpTerms(TermProducts):
    """A_1 = the tangent of the operator: A_1 X = jvp of the matvec in its inputs."""

    order = 1

    def __init__(self, op, consts, dconsts):
        self.op, self.consts, self.dconsts = op, consts, dconsts
        self.fc = op.split(consts)

    def _jvp(self, f, x):
        return jax.jvp(lambda fc: f(self.op.merge(self.consts, fc), x), (self.fc,), (self.dconsts,))[1]

    def mv(self, b, c, x):
        return self._jvp(self.op.mv_block, x)

    def rmv(self, b, c, y):
        return self._jvp(self.op.rmv_block, y)


class _JetTerms(TermProducts):
    """A_b X for b = 1..K: the unscaled Taylor coefficients of the matvec along the
    inputs' series, all b of one X from one ``jet`` (cached by the order c of X)."""

    def __init__(self, op, consts, series, order):
        self.op, self.consts, self.series, self.order = op, consts, series, order
        self.fc = op.split(consts)
        self._cache = {}

    def _all(self, f, c, x, tag):
        if (tag, c) not in self._cache:
            def g(*fc):
                return f(self.op.merge(self.consts, list(fc)), x)

            _, terms = _compat.jet_unscaled(g, tuple(self.fc), tuple(self.series))
            self._cache[tag, c] = terms
        return self._cache[tag, c]

    def mv(self, b, c, x):
        return self._all(self.op.mv_block, c, x, "mv")[b - 1]

    def rmv(self, b, c, y):
        return self._all(self.op.rmv_block, c, y, "rmv")[b - 1]


def _deflated_solver(op, consts, s, u, v, tol, maxiter, skip):
    """(R1, R2) -> (Zu, Zv): conjugate gradients on s_i I - P T P for every
    column i at once (a block-diagonal positive definite system), P the
    projector onto the complement of (U_k, V_k).

    Columns in ``skip`` (a tie at the cut, a zero value: s_i I - P T P is
    singular or indefinite there, and their derivatives are NaN anyway) get a
    zero right-hand side and a safe shift, so they cannot spoil the others
    (one CG couples the columns through its inner products)."""
    s = jnp.where(skip, 2 * s[..., :1] + 1, s)
    s_row = like(s, u)[..., None, :]  # explicit ranks (rank promotion "raise")
    # 0/1 weights, not a select: the transpose of a select would drop the NaN cotangent
    # of a skipped column (nan_unless in the JVP), which must reach the gradient
    keep_row = (~skip[..., None, :]).astype(u.dtype)

    def pu(x):
        return x - mm(u, mm(mH(u), x))

    def pv(y):
        return y - mm(v, mm(mH(v), y))

    def kmat(z):
        zu, zv = z
        pzu, pzv = pu(zu), pv(zv)
        return (zu * s_row - pu(op.mv_block(consts, pzv)), zv * s_row - pv(op.rmv_block(consts, pzu)))

    cg = partial(_cg, tol=tol, maxiter=maxiter)

    def solve(r1, r2):
        # symmetric (real) / Hermitian (complex): the transpose solve is the solve,
        # or its conjugate, K^T = conj(K) (grad, jacrev, hessian)
        r1, r2 = r1 * keep_row, r2 * keep_row
        if jnp.issubdtype(u.dtype, jnp.complexfloating):
            conj = partial(jax.tree_util.tree_map, jnp.conj)
            z = lax.custom_linear_solve(kmat, (pu(r1), pv(r2)), cg,
                                        transpose_solve=lambda vecmat, b: conj(cg(kmat, conj(b))))
        else:
            z = lax.custom_linear_solve(kmat, (pu(r1), pv(r2)), cg, symmetric=True)
        return pu(z[0]), pv(z[1])

    return solve


def _cg(matvec, b, *, tol, maxiter):
    """Conjugate gradients for a positive definite ``matvec`` on a pair of
    blocks, stopped at |r| <= tol |b| or ``maxiter`` steps.  (Not
    ``jax.scipy.sparse.linalg.cg``: its ``device_put((b, x0))`` makes the start
    vector depend on b, and ``custom_linear_solve`` then cannot be transposed.)"""

    def dot(x, y):  # Re x^H y: real for the Hermitian positive definite system
        return sum(jnp.real(jnp.sum(jnp.conj(a) * c)) for a, c in zip(x, y, strict=True))

    def axpy(a, x, y):
        return tuple(a.astype(xi.dtype) * xi + yi for xi, yi in zip(x, y, strict=True))

    bb = dot(b, b)
    stop = (tol * tol) * bb

    def cond(state):
        _, _, _, rr, i = state
        return (rr > stop) & (i < maxiter)

    def body(state):
        x, r, p, rr, i = state
        ap = matvec(p)
        alpha = rr / dot(p, ap)
        x = axpy(alpha, p, x)
        r = axpy(-alpha, ap, r)
        rr_new = dot(r, r)
        p = axpy(rr_new / rr, p, r)
        return x, r, p, rr_new, i + 1

    x0 = tuple(jnp.zeros_like(bi) for bi in b)
    x, *_ = lax.while_loop(cond, body, (x0, b, b, bb, jnp.zeros((), jnp.int32)))
    # NaN in, NaN out (the loop would stop at once and return 0): a NaN cotangent
    # from a derivative that does not exist (a tie at the cut) must reach the gradient
    bad = jnp.isnan(bb)
    return tuple(jnp.where(bad, jnp.asarray(jnp.nan, xi.dtype), xi) for xi in x)


def _coincidence_rtol(tol, dtype, k):
    """Relative tolerance below which two computed values count as one cluster:
    the solver's ``tol`` (Ritz values of a tie agree to it), at least 4 k eps."""
    return max(tol, 4 * float(jnp.finfo(dtype).eps) * k)


def _gauge_check_rtol(rtol, dtype, m, n):
    """Tolerance of the reverse-mode cotangent check (jaxsvd/_gauge.py) on a
    partial basis: the spread of a cluster's values (<= ``rtol``), which a loss
    that weights the vectors by s turns into a skew part of that size, and the
    rounding of U_k^T U_bar (~ sqrt(max(m, n)) eps: not ``max(m, n)``, which
    would let anything through for a million-dimensional operator)."""
    return max(2 * rtol, GAUGE_CHECK_ULPS * math.sqrt(max(m, n)) * float(jnp.finfo(dtype).eps))


def _series(args, terms_obj, *, op, k, p, tol, maxiter, vectors=True, mask=True):
    """Engine on the k computed triplets (unbatched); also (rtol, bad): the
    coincidence tolerance and the columns whose vectors never have a
    derivative (a tie at the cut, a zero value)."""
    consts = list(args[:-_N_AUX])
    out = svds_p.bind(*args, op=op, k=k, p=p, tol=tol, maxiter=maxiter, batch_shape=(),
                      batched=(False,) * len(args))
    u, s, v, _, _, nxt = out
    rtol = _coincidence_rtol(effective_tol(tol, op.dtype, p.b), op.dtype, k)
    # a tie at the cut: sigma_i (i <= k) coincides with the next Ritz value
    s_, nxt_ = lax.stop_gradient(s), lax.stop_gradient(nxt)
    cut = jnp.abs(s_ - nxt_) <= rtol * s_[..., :1]
    skip = cut | (s_ <= rtol * s_[..., :1])
    solver = _deflated_solver(op, consts, s, u, v, tol, maxiter, skip)  # s differentiable: hessians
    ser = svd_series(s, u, v, terms_obj, complement=solver, extra_bad=cut, rtol=rtol, vectors=vectors,
                     mask=mask)
    return out, ser, rtol, skip


def _core_jvp(args, dfc, params):
    op = params["op"]
    consts = list(args[:-_N_AUX])
    # real: the rotation-free gauge inside each cluster of the k triplets, NaN in
    # forward mode, and in reverse mode let through for a gauge-invariant
    # cotangent (jaxsvd/_gauge.py, as jaxsvd.svd); complex: NaN at ties.  k = 1 has
    # no cluster inside the top k (its ties are at the cut): no check to compile
    gauge = params["k"] > 1 and not jnp.issubdtype(op.dtype, jnp.complexfloating)
    out, ser, rtol, bad = _series(args, _JvpTerms(op, consts, dfc), mask=not gauge, **params)
    ds, du, dv = ser.s[0], ser.u[0], ser.v[0]
    if gauge:
        u, s, v = out[:3]
        ds, du, dv = gauge_mask(ds, du, dv, s, u, v, rtol=rtol,
                                check_rtol=_gauge_check_rtol(rtol, op.dtype, op.m, op.n))
        # a tie at the cut or a zero value: the cluster reaches beyond the k
        # triplets, no cotangent check can help (NaN unless the cotangent is 0)
        keep = ~bad[..., None, :]
        du, dv = nan_unless(du, keep), nan_unless(dv, keep)
    return out, [du, ds, dv] + [_compat.zero_tangent(x) for x in out[3:]]


def _core_taylor(args, series, params):
    op = params["op"]
    consts = list(args[:-_N_AUX])
    order = len(series[0]) if series else 0
    out, ser, _, _ = _series(args, _JetTerms(op, consts, series, order), **params)
    zeros = [[jnp.zeros_like(x) for _ in range(order)] for x in out[3:]]
    return out, [ser.u, ser.s, ser.v] + zeros


def _over_batch(fn, args, extra, batch_shape, batched):
    """Apply an unbatched rule ``fn(args, extra)`` over the leading batch dims
    (``extra`` holds per-input tangents or series, batched like the inputs)."""
    if not batch_shape:
        return fn(args, extra[0])
    size = math.prod(batch_shape)
    nb = len(batch_shape)

    def flat(x, b):
        return x.reshape((size,) + x.shape[nb:]) if b else x

    fargs = [flat(x, b) for x, b in zip(args, batched, strict=True)]
    fextra = jax.tree.map(lambda t, b: flat(t, b), extra[0], extra[1])
    axes = [0 if b else None for b in batched]
    eaxes = jax.tree.map(lambda t, b: 0 if b else None, extra[0], extra[1])
    out = jax.vmap(lambda a, e: fn(a, e), in_axes=(axes, eaxes))(fargs, fextra)
    return jax.tree.map(lambda o: o.reshape(batch_shape + o.shape[1:]), out)


def _jvp(primals, tangents, *, batch_shape, batched, **params):
    op = params["op"]
    consts = primals[:-_N_AUX]
    dfc, fbat = [], []
    for x, t, d, b in zip(consts, tangents[:-_N_AUX], op.diff, batched[:-_N_AUX], strict=True):
        if d:
            dfc.append(jnp.zeros_like(x) if type(t) is _compat.Zero else t)
            fbat.append(b)

    def rule(args, extra):
        return _core_jvp(list(args), list(extra), params)

    out, tans = _over_batch(rule, list(primals), (dfc, fbat), tuple(batch_shape), batched)
    # the integer ``steps`` output has a float0 tangent whatever the batching
    tans[4] = _compat.zero_tangent(out[4])
    return out, tans


def _taylor(primals_in, series_in, *, batch_shape, batched, **params):
    op = params["op"]
    consts = primals_in[:-_N_AUX]
    order = max((len(s) for s in series_in), default=0)
    ser, sbat = [], []
    for x, s, d, b in zip(consts, series_in[:-_N_AUX], op.diff, batched[:-_N_AUX], strict=True):
        if d:
            terms = [jnp.zeros_like(x) if (t is None or type(t) is _compat.Zero) else jnp.broadcast_to(
                jnp.asarray(t, x.dtype), x.shape) for t in s] if s else [jnp.zeros_like(x)] * order
            ser.append(terms)
            sbat.append([b] * len(terms))

    def rule(args, extra):
        return _core_taylor(list(args), list(extra), params)

    out, terms = _over_batch(rule, list(primals_in), (ser, sbat), tuple(batch_shape), batched)
    return out, terms


# eager calls: one compiled program per (operator program, shapes, options); see _operator
_impl_jit = jax.jit(_impl, static_argnames=("op", "k", "p", "tol", "maxiter", "batch_shape", "batched"))
svds_p.def_impl(_impl_jit)
svds_p.def_abstract_eval(_abstract_eval)
_compat.def_lowering_from_fun(svds_p, _impl, multiple_results=True)
_compat.def_batching(svds_p, _batch)
_compat.def_jvp(svds_p, _jvp)
_compat.def_taylor(svds_p, _taylor)


# ---------------------------------------------------------------------------
# public
# ---------------------------------------------------------------------------


def _is_bcoo(a) -> bool:
    try:
        from jax.experimental import sparse
    except ImportError:  # pragma: no cover
        return False
    return isinstance(a, sparse.BCOO)


def _check_dtype(dtype, what):
    dtype = jnp.dtype(dtype)
    if dtype not in tuple(jnp.dtype(d) for d in (jnp.float32, jnp.float64, jnp.complex64, jnp.complex128)):
        raise TypeError(f"jaxsvd.svds needs a float32, float64, complex64 or complex128 {what}; got {dtype}")
    return dtype


def _adjoint(at_mv, dtype):
    """y -> A^H y from y -> A^T y (a conjugation for complex operators)."""
    if not jnp.issubdtype(dtype, jnp.complexfloating):
        return at_mv
    return lambda y: jnp.conj(at_mv(jnp.conj(y)))


def _as_operator(a):
    """(mv, rmv, m, n, dtype) for an array, a BCOO matrix or a lineax operator."""
    if _is_bcoo(a):
        if a.ndim != 2 or a.n_batch or a.n_dense:
            raise ValueError(f"a BCOO matrix for jaxsvd.svds must be 2-D with no batch or dense dimensions; "
                             f"got shape {a.shape} (n_batch={a.n_batch}, n_dense={a.n_dense})")
        m, n = a.shape
        dtype = a.dtype
        if not jnp.issubdtype(dtype, jnp.inexact):
            a = a.astype(_float_default())
        dtype = _check_dtype(a.dtype, "matrix")
        at = a.T
        return (lambda x: a @ x), _adjoint(lambda y: at @ y, dtype), m, n, dtype
    if isinstance(a, (jax.Array, np.ndarray, np.generic, list, tuple, float, int)):
        raise AssertionError("arrays are handled by svds")  # pragma: no cover
    # anything else must be a lineax operator
    try:
        import lineax as lx
    except ImportError:
        raise ImportError(
            f"jaxsvd.svds got a {type(a).__name__}: matrix-free operators need lineax "
            "(pip install 'jaxsvd[operators]'); arrays and jax.experimental.sparse.BCOO work without it"
        ) from None
    if not isinstance(a, lx.AbstractLinearOperator):
        raise TypeError(f"jaxsvd.svds takes an array, a jax.experimental.sparse.BCOO matrix or a "
                        f"lineax.AbstractLinearOperator; got {type(a).__name__}")
    ins, outs = a.in_structure(), a.out_structure()
    for st, what in ((ins, "input"), (outs, "output")):
        if not isinstance(st, jax.ShapeDtypeStruct) or len(st.shape) != 1:
            raise TypeError(f"jaxsvd.svds needs an operator whose {what} structure is a 1-D vector; "
                            f"got {st}")
    n, m = ins.shape[0], outs.shape[0]
    dtype = _check_dtype(jnp.result_type(ins.dtype, outs.dtype), "operator")
    try:
        at = a.transpose()
    except Exception as e:  # noqa: BLE001 - lineax raises several kinds
        raise TypeError(f"jaxsvd.svds needs the operator's transpose (A^T y); "
                        f"{type(a).__name__}.transpose() failed: {e}") from None
    return a.mv, _adjoint(at.mv, dtype), m, n, dtype


def _float_default():
    return jnp.zeros((), jnp.float_).dtype


def _check_k(k, r):
    return static_int(k, "k", low=1, high=r, high_name="min(m, n)")


def _check_options(tol, maxiter, dtype, k, r, krylov_dim=None, block_size=None, v0_cols=0, sparse=False):
    """(tol, maxiter, plan) from the user's options (ValueError on bad ones)."""
    tol = default_tol(dtype) if tol is None else float(tol)
    if not (tol > 0 and math.isfinite(tol)):
        raise ValueError(f"tol must be a positive number; got {tol!r}")
    if krylov_dim is None:
        p = default_krylov_dim(k, r)
    else:
        p = min(static_int(krylov_dim, "krylov_dim", low=k + 1), r)
    if block_size is None:
        # v0's column count (else from k), smaller where the matrix is too small for it
        # (then v0's leading columns start the basis)
        b = v0_cols if v0_cols else default_block_size(k, r, sparse=sparse)
        while b > 1:
            try:
                plan(k, r, b, p, warm=v0_cols > 0)
                break
            except ValueError:
                b -= 1
    else:
        b = static_int(block_size, "block_size", low=1)
        if v0_cols > b:
            raise ValueError(f"v0 has {v0_cols} columns, more than block_size={b}")
    pl = plan(k, r, b, p, warm=v0_cols > 0)  # ValueError for b < 1 or b > the Krylov dimension
    if maxiter is None:
        maxiter = max(1000, 20 * pl.p)
    return tol, static_int(maxiter, "maxiter", low=1), pl


def _key_data(key):
    if key is None:
        key = jax.random.key(0)
    if isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return jax.random.key_data(key)
    kd = jnp.asarray(key)
    if kd.dtype != jnp.uint32:
        raise TypeError(f"key must be a jax.random key; got {key!r}")
    return kd


def _check_v0(v0, n, dtype, batch_shape):
    """v0 as a start block (*batch_shape, n, j) of ``dtype`` (j = 0: none).

    A vector (..., n) is a block of one column.  ValueError: wrong shape, a
    non-floating dtype, complex v0 for a real operator, or non-finite entries
    (checked when v0 is concrete; traced, such columns start from random ones
    like all-zero columns)."""
    if v0 is None:
        return jnp.zeros(tuple(batch_shape) + (n, 0), dtype)
    if not hasattr(v0, "shape") or not hasattr(v0, "dtype"):
        v0 = np.asarray(v0)
    vdt = jnp.dtype(v0.dtype)
    if not jnp.issubdtype(vdt, jnp.inexact):
        raise ValueError(f"v0 must be a floating array (float32/64, complex64/128); got dtype {vdt}")
    if jnp.issubdtype(vdt, jnp.complexfloating) and not jnp.issubdtype(dtype, jnp.complexfloating):
        raise ValueError(f"v0 is complex ({vdt}) but the operator is real ({dtype})")
    nb = len(batch_shape)
    shape = tuple(v0.shape)
    if len(shape) == nb + 1:
        block = False
    elif len(shape) == nb + 2:
        block = True
    else:
        raise ValueError(f"v0 must have shape {tuple(batch_shape) + (n,)} (a start vector) or "
                         f"{tuple(batch_shape) + (n, 'j')} (a start block); got {shape}")
    vec_shape = shape[nb:]
    if vec_shape[0] != n or (block and vec_shape[1] < 1):
        raise ValueError(f"v0 must have shape {tuple(batch_shape) + (n,)} (a start vector) or "
                         f"{tuple(batch_shape) + (n, 'j')} with j >= 1 (a start block); got {shape}")
    try:
        np.broadcast_shapes(shape[:nb], tuple(batch_shape))
    except ValueError:
        raise ValueError(f"v0's batch dimensions {shape[:nb]} do not match the matrix's {tuple(batch_shape)}") from None
    if not isinstance(v0, _compat.Tracer):
        if not np.all(np.isfinite(np.asarray(v0))):
            raise ValueError("v0 has non-finite entries (NaN or inf)")
    v0 = jnp.asarray(v0).astype(dtype)
    if not block:
        v0 = v0[..., None]
    return jnp.broadcast_to(v0, tuple(batch_shape) + v0.shape[nb:])


def svds_with_info(a, k: int, *, tol=None, maxiter=None, key=None, krylov_dim=None, v0=None, block_size=None):
    """:func:`svds` and its diagnostics: ``(SVDResult, SvdsInfo)``.

    Same arguments and results as :func:`svds`; ``info`` (:class:`SvdsInfo`)
    holds, per matrix of the batch, the residual estimates ``(..., k)``, the
    convergence flags ``(..., k)`` (a triplet that did not converge is NaN in
    the result: this says why), the passes over A (block Krylov steps: one
    ``A X`` and one ``A^H Y`` each), the products with single vectors, the
    (k+1)-th Ritz value, and the block size and Krylov dimension used.  The
    info is not differentiable (its tangents are zero).

    Example:
      >>> import jax.numpy as jnp, jaxsvd
      >>> (U, S, Vh), info = jaxsvd.svds_with_info(jnp.diag(jnp.arange(1.0, 9.0)), 1)
      >>> bool(info.converged[0]), int(info.matvecs) == int(info.passes) * info.block_size
      (True, True)
    """
    kd = _key_data(key)
    if _is_bcoo(a) or not _looks_like_array(a):
        mv, rmv, m, n, dtype = _as_operator(a)
        r = min(m, n)
        k = _check_k(k, r)
        v0b = _check_v0(v0, n, dtype, ())
        tol, maxiter, pl = _check_options(tol, maxiter, dtype, k, r, krylov_dim, block_size, v0b.shape[-1],
                                          sparse=_is_bcoo(a))
        static = _static_part(a)
        if static is not None:
            # eager: one jitted entry, cached on the operator's non-array part and its
            # arrays' shapes (no retracing of the products, no eager transpose)
            res, info = _operator_entry(static.arrays(a), v0b, kd, static=static, k=k, pl=pl, tol=tol,
                                        maxiter=maxiter)
            return res, info._replace(block_size=pl.b, krylov_dim=pl.p)
        op, consts = _operator(mv, rmv, m, n, dtype)
        return _bind(op, consts, v0b, kd, k, pl, tol, maxiter)
    a = jnp.asarray(a)
    if a.ndim < 2:
        raise ValueError(f"a must have at least 2 dimensions (..., m, n); got shape {a.shape}")
    if not jnp.issubdtype(a.dtype, jnp.inexact):
        a = a.astype(_float_default())
    dtype = _check_dtype(a.dtype, "matrix")
    m, n = a.shape[-2:]
    r = min(m, n)
    k = _check_k(k, r)
    v0b = _check_v0(v0, n, dtype, a.shape[:-2])
    tol, maxiter, pl = _check_options(tol, maxiter, dtype, k, r, krylov_dim, block_size, v0b.shape[-1])

    op = _dense_operator(m, n, dtype)

    def one(a2, v2):
        return _bind(op, [a2, a2], v2, kd, k, pl, tol, maxiter)

    f = one
    for _ in range(a.ndim - 2):
        f = jax.vmap(f)
    return f(a, v0b)


class _Static:
    """The non-array part of an operator pytree as a ``jit`` static argument: equal
    when the tree structure and every non-array leaf are equal, jaxprs compared by
    their text (a ``FunctionLinearOperator`` rebuilt around a new closure with the
    same body closure-converts to a new but identical jaxpr; its arrays are leaves)."""

    def __init__(self, treedef, leaves):
        self.treedef = treedef
        self.dynamic = tuple(_is_array_leaf(x) for x in leaves)
        self.leaves = tuple(None if d else x for x, d in zip(leaves, self.dynamic, strict=True))
        self._key = (treedef, self.dynamic, tuple(_leaf_key(x) for x in self.leaves))
        self._hash = hash(self._key)

    def __hash__(self):
        return self._hash

    def __eq__(self, other):
        return isinstance(other, _Static) and self._key == other._key

    def arrays(self, a):
        return [x for x, d in zip(jax.tree_util.tree_leaves(a), self.dynamic, strict=True) if d]

    def rebuild(self, arrays):
        it = iter(arrays)
        leaves = [next(it) if d else x for x, d in zip(self.leaves, self.dynamic, strict=True)]
        return jax.tree_util.tree_unflatten(self.treedef, leaves)


def _is_array_leaf(x) -> bool:
    return isinstance(x, (jax.Array, np.ndarray))


def _leaf_key(x):
    if type(x).__name__ in ("Jaxpr", "ClosedJaxpr"):
        return ("jaxpr", str(x))
    return (type(x), x)


def _static_part(a):
    """:class:`_Static` of an eager (untraced) operator pytree, or None (traced
    arrays: the enclosing transformation caches; unhashable or elided leaves)."""
    leaves, treedef = jax.tree_util.tree_flatten(a)
    if any(isinstance(x, _compat.Tracer) for x in leaves):
        return None
    try:
        static = _Static(treedef, leaves)
    except TypeError:  # an unhashable leaf
        return None
    if any(k[0] == "jaxpr" and "..." in k[1] for k in static._key[2]):
        return None  # an elided array literal: the text does not pin the program
    if any(callable(x) for x in static.leaves if x is not None):
        # a function leaf (a FunctionLinearOperator's closure) compares by identity: a rebuilt
        # operator would miss and compile the whole entry; the plain path reuses the solver
        # (keyed by the text of the traced products, _operator)
        return None
    return static


@partial(jax.jit, static_argnames=("static", "k", "pl", "tol", "maxiter"))
def _operator_entry(arrays, v0b, kd, *, static, k, pl, tol, maxiter):
    mv, rmv, m, n, dtype = _as_operator(static.rebuild(arrays))
    op, consts = _operator(mv, rmv, m, n, dtype)
    res, info = _bind(op, consts, v0b, kd, k, pl, tol, maxiter)
    return res, info._replace(block_size=None, krylov_dim=None)


@functools.lru_cache(maxsize=64)
def _dense_operator(m: int, n: int, dtype) -> _Operator:
    """One operator per (m, n, dtype) for arrays (the matrix is its const input,
    so eager calls reuse the compiled solver instead of retracing it)."""
    z = np.broadcast_to(np.zeros((), dtype), (m, n))  # a placeholder view, no memory
    with _compat.outside_mesh():  # cached across programs: traced under no mesh (also when
        # first called inside shard_map)
        op = _Operator(lambda x: jnp.matmul(z, x, precision=_HIGHEST),
                       _adjoint(lambda y: jnp.matmul(y, z, precision=_HIGHEST), jnp.dtype(dtype)), m, n, dtype)
    assert len(op.consts) == 2 and op.n_mv == 1
    op.consts = None  # the placeholders are not data: callers pass [a, a]
    op.dense = True
    return op


def _looks_like_array(a) -> bool:
    return isinstance(a, (jax.Array, np.ndarray, np.generic, list, tuple, float, int)) or hasattr(a, "__array__")


def _bind(op, consts, v0, kd, k, pl, tol, maxiter):
    args = list(consts) + [v0, kd]
    u, s, v, res, steps, nxt = svds_p.bind(*args, op=op, k=k, p=pl, tol=tol, maxiter=maxiter, batch_shape=(),
                                           batched=(False,) * len(args))
    # the solver's own flags (an unconverged triplet is NaN); the dense route's
    # residuals sit at the rounding floor, which in float32 may exceed tol
    conv = jnp.isfinite(s)
    mvs = steps * pl.b
    return _compat.SVDResult(U=u, S=s, Vh=mH(v)), SvdsInfo(res, conv, steps, mvs, nxt, pl.b, pl.p)


def svds(a, k: int, *, tol=None, maxiter=None, key=None, krylov_dim=None, v0=None, block_size=None):
    r"""The ``k`` largest singular triplets of a matrix or a matrix-free operator.

    The triplets come from thick-restart block Golub--Kahan--Lanczos
    bidiagonalisation with full reorthogonalisation (jaxsvd/_krylov.py): only
    products ``A X`` and ``A^H Y`` with blocks of ``block_size`` columns are
    formed -- never an m x m, n x n or dense m x n copy of an operator; memory
    O((m + n) p) beyond the operator for a Krylov dimension
    ``p ~ min(min(m, n), max(2k + 8, k + 40))`` (a multiple of the block size).

    Derivatives never differentiate the iterations: d sigma_i = u_i^T dA v_i,
    and du, dv come from the series engine on the k triplets (pairs i, j <= k)
    plus conjugate-gradient solves of the deflated system
    ``[[s_i I, -A], [-A^T, s_i I]] z = r`` on the complement of the k triplets
    (Scholz 2023; docs/svds.md), positive definite there when
    s_k > sigma_{k+1}.  ``jvp``, ``grad``, ``jacfwd``, ``jacrev``, ``hessian`` and
    ``jet`` (any order: the Rayleigh--Schroedinger recursion of docs/theory.md with
    the reduced resolvent applied by those solves, the operator's Taylor
    coefficients from ``jet`` of its matvec) work, under ``jit`` and ``vmap``,
    with respect to the array or to the arrays an operator closes over.

    Args:
      a: a real or complex array ``(..., m, n)`` (float32/64, complex64/128;
        batches as with :func:`svd`; integers are promoted), a 2-D ``jax.experimental.sparse.BCOO`` matrix, or a
        ``lineax.AbstractLinearOperator`` with 1-D vector input and output
        structures and a transpose (lineax: ``pip install 'jaxsvd[operators]'``).
        For complex operators ``A^H y`` is formed as ``conj(A^T conj(y))`` and
        the vectors follow the phase gauge of docs/complex.md.
      k: number of triplets, a Python int with ``1 <= k <= min(m, n)``.
      tol: residual tolerance: a triplet is converged when the Lanczos estimate
        of ``|A^T u_i - s_i v_i|`` is ``<= tol * s_1`` (``A v_i = s_i u_i`` holds
        to rounding by construction).  Default 1e-7 (float32), 1e-12 (float64):
        values and first derivatives to about 1e-5 (float32) and 1e-9 (float64)
        relative where the relative gaps are >= 0.01.  The derivative solves use
        the same tolerance (relative residual).  The solver's test uses
        ``max(tol, block_size * eps)``: the residual that block Gram--Schmidt
        attains in the working precision (float32, block_size 4: 4.8e-7).
      maxiter: the most passes over A (block Krylov steps, each one product
        ``A X`` and one ``A^H Y``; may be overshot by less than one convergence
        segment); default ``max(1000, 20 p)``.  Also the conjugate-gradient bound.
      key: ``jax.random`` key for the start block and breakdown vectors
        (default ``key(0)``): same key, same result.
      krylov_dim: Krylov dimension p > k (like scipy's ``ncv``): memory is O((m + n) p); default
        ``min(min(m, n), max(2k + 8, k + 40))``, rounded to a multiple of the
        block size.  When it reaches ``min(m, n)`` (k close to min(m, n) by
        default) the basis would span the short side: the solver then takes
        the dense route -- the operator's matrix on that side from min(m, n)
        products in one block, and one LAPACK SVD (docs/svds.md).
      v0: warm start (scipy's name): a start vector ``(..., n)`` or a start
        block ``(..., n, j)``, e.g. the previous call's ``Vh`` transposed
        (``jnp.swapaxes(Vh, -1, -2)``) in a training loop, where W changes little
        from one step to the next.  Its columns span the first Krylov block
        (random columns fill up to ``block_size``); convergence is then checked
        every ~2 columns, so a start close to the answer stops after a few
        passes.  Leading dimensions broadcast against ``a``'s batch; any
        floating dtype (cast; complex only for complex ``a``).  All-zero
        columns are replaced by random ones (documented fallback: e.g. a
        zero-initialised carry).  ``v0`` never changes the derivatives (they
        are the implicit rules at the returned triplets) and is not
        differentiated.  Default None: a random start ``A^H Y`` from ``key``.
      block_size: vectors per Krylov step (block Golub--Kahan--Lanczos): each
        pass over A serves ``block_size`` vectors, with matrix-matrix
        products and fewer sequential steps.  Default from k on accelerators
        (:func:`jaxsvd._krylov.default_block_size`: 4 for k = 1, k + 3 up to
        k = 5, then 8; at most ``min(m, n) // 4``); on the CPU 1 for k = 1 and
        4 beyond (XLA:CPU's skinny matrix products are slow), but 1 up to k = 5
        for a BCOO matrix (measured: a block only adds work there); with ``v0``, its column
        count (a warm start needs few products: blocks would only add some),
        smaller where the matrix is too small for it (then v0's leading
        columns start the basis).
        ``block_size=1`` is the classical single-vector method.

    Returns:
      ``SVDResult(U, S, Vh)``: ``U`` ``(..., m, k)``, ``S`` ``(..., k)``
      descending (real), ``Vh`` ``(..., k, n)``.  Signs (phases) of the vectors
      are arbitrary (not LAPACK's).  A triplet that did not converge within ``maxiter`` is
      NaN; NaN in the input gives NaN out (no exception, also under ``jit``).

    Degeneracy (as :func:`svd`, with the coincidence tolerance ``max(tol', 4 k eps)``
    relative, tol' = ``max(tol, block_size eps)`` the convergence test's): in forward mode (``jvp``, ``jet``, ``jacfwd``) the derivatives of
    the vectors of a repeated or zero s_i, and of values beyond the first order,
    are NaN.  Reverse mode (``grad``, ``jacrev``) at a tie inside the top k, real
    input: a loss invariant under rotations of the vectors inside each cluster
    of the k triplets (``Vh.T @ Vh``, ``U @ U.T``, ``sum(S)``, ``U @ Vh``) gets its
    exact gradient; one that depends on the basis, or that weights the values of
    a cluster unevenly while also using its vectors (``U * S @ Vh``), gets NaN --
    the cotangent check of jaxsvd/_gauge.py (docs/degeneracy.md), with tolerance
    ``max(2 max(tol', 4 k eps), 64 sqrt(max(m, n)) eps)`` relative.  A loss of the
    values alone gets ``sum_i c_i u_i v_i^T`` (a subgradient at a tie, as
    :func:`svdvals`).  A tie at the cut (s_k equal to the next Ritz value, a
    cluster reaching beyond the k triplets) or a zero value: the vectors of that
    cluster have no derivative, NaN in both modes.  Complex input: NaN at ties
    in both modes.

    Compilation: one compiled solver per (operator program, shapes, dtype,
    options).  Eager calls on a ``BCOO`` matrix or a lineax operator whose arrays
    change -- new values, a new sparsity pattern with the same number of
    entries, a ``FunctionLinearOperator`` rebuilt around a new closure with the
    same body -- reuse it (one jitted entry keyed on the operator's non-array
    part, jaxprs compared by their text; every array is an argument).  A different function
    body, shape, ``k``, ``tol`` or ``block_size`` compiles anew; under ``jit``
    the enclosing function's cache decides.

    Raises:
      TypeError: non-integer ``k``; an unsupported ``a``; an operator without a
        transpose or whose structures are not 1-D vectors; a non-float dtype.
      ValueError: ``k`` out of range; ``a`` with fewer than 2 dimensions; bad
        ``tol``, ``maxiter`` or ``krylov_dim``; ``block_size`` < 1 or larger than
        the Krylov dimension allows (p must hold k vectors and one block), or
        smaller than v0's column count; ``v0`` of the wrong shape or a
        non-floating dtype, complex for a real ``a``, or (when not traced) with
        NaN or inf entries.
      ImportError: an operator argument without lineax installed.

    Example:
      >>> import jax.numpy as jnp, jaxsvd
      >>> a = jnp.diag(jnp.array([5.0, 3.0, 2.0, 1.0]))
      >>> jnp.round(jaxsvd.svds(a, 2).S, 5)
      Array([5., 3.], dtype=float32)
    """
    return svds_with_info(a, k, tol=tol, maxiter=maxiter, key=key, krylov_dim=krylov_dim, v0=v0,
                          block_size=block_size)[0]
