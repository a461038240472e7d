"""The SVD primitive and its rules: primal, first order (JVP), Taylor mode,
registration -- in that order -- plus the public ``svd``, ``svdvals``, ``gaps``.

``svd_p(a, full_matrices, compute_uv)`` returns ``(s, U, Vt)`` (or ``(s,)``)
like ``lax.linalg.svd``'s primitive.  Its JVP is the series engine at order 1,
its ``jet`` rule the engine at order K (jaxsvd/_series.py); both re-bind
``svd_p`` for the primal, so every derivative is again differentiable.
"""

from __future__ import annotations

import operator

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from . import _compat
from ._gauge import gauge_mask
from ._nanmask import sandwich
from ._series import mH, svd_series
from ._spectrum import degenerate, relative_gaps

# ---------------------------------------------------------------------------
# input checking (shared by every public function)
# ---------------------------------------------------------------------------


def as_matrix(a, name: str = "a", *, batch: bool = True, what: str = "SVD", like: str = "jnp.linalg.svd"):
    """Validate and promote input like ``jnp.linalg.svd`` does.

    Raises ValueError for fewer than 2 dimensions (or more than 2 when
    ``batch`` is False) and TypeError for dtypes jnp.linalg.svd rejects
    (float16/bfloat16 and their complex counterparts are promoted like jnp does).
    """
    if isinstance(a, (jax.ShapeDtypeStruct,)):
        raise TypeError(f"{name} must be an array, got {a!r}")
    a = jnp.asarray(a)
    if a.ndim < 2:
        raise ValueError(
            f"{name} must have at least 2 dimensions (..., m, n); got shape {a.shape}")
    if not batch and a.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D matrix (m, n) here (use jax.vmap for batches); got shape {a.shape}")
    if not jnp.issubdtype(a.dtype, jnp.inexact):
        if not (jnp.issubdtype(a.dtype, jnp.integer) or a.dtype == jnp.bool_):
            raise TypeError(f"{name} must be a real or complex floating array, got dtype {a.dtype}")
        a = a.astype(_inexact(a.dtype))
    elif a.dtype.itemsize < (8 if jnp.issubdtype(a.dtype, jnp.complexfloating) else 4):
        raise TypeError(
            f"{name} has dtype {a.dtype}: LAPACK / cuSOLVER have no {what} in this precision; "
            f"cast to float32 (or complex64) first, as {like} requires")
    return a


def real_dtype(dtype):
    """The real dtype of the singular values (float32 for complex64, ...)."""
    return jnp.finfo(dtype).dtype


# bound at import: a program that installs jaxsvd.svd / svdvals in place of
# jnp.linalg.svd / svdvals must not send these calls back to jaxsvd (recursion)
_JNP_SVDVALS = jnp.linalg.svdvals


def static_int(k, name: str = "k", *, low: int | None = None, high: int | None = None,
               high_name: str | None = None) -> int:
    """The one check of every integer argument of the public API (k, order, index, count).

    Returns ``k`` as a Python int.  ``TypeError`` naming ``name`` for anything that is
    not a static exact integer: bools, floats (``2.0`` too), strings, traced values
    (``k`` selects shapes and compiled code, so it cannot be traced: pass it as a
    static argument).  Python and numpy integers and concrete 0-d integer arrays are
    accepted.  ``ValueError`` when ``k < low`` or ``k > high`` (``high_name`` says what
    the upper bound is, e.g. ``"min(m, n)"``).  There is no Python-style negative
    indexing: a negative index is out of range (``r - 1`` is the smallest singular value).
    """
    if isinstance(k, (bool, np.bool_)) or (hasattr(k, "dtype") and not np.issubdtype(k.dtype, np.integer)):
        raise TypeError(f"{name} must be a static Python int, got {k!r}")
    try:
        k = operator.index(k)  # int, numpy integers, concrete integer arrays; not floats or tracers
    except TypeError:
        hint = (" (a traced value: make it a static argument, e.g. jax.jit(..., static_argnums=...))"
                if isinstance(k, _compat.Tracer) else "")
        raise TypeError(f"{name} must be a static Python int, got {k!r}{hint}") from None
    k = int(k)
    if (low is not None and k < low) or (high is not None and k > high):
        if high is None:
            raise ValueError(f"{name} must be an int >= {low}, got {k}")
        bound = f"{high_name} = {high}" if high_name else f"{high}"
        lo = "" if low is None else f"{low} <= "
        raise ValueError(f"{name}={k} is out of range: need {lo}{name} <= {bound}")
    return k


def _inexact(dtype):
    # the dtype jnp.linalg.svd would promote to (respects jax_enable_x64)
    return jax.eval_shape(_JNP_SVDVALS, jax.ShapeDtypeStruct((1, 1), dtype)).dtype


# ---------------------------------------------------------------------------
# primal
# ---------------------------------------------------------------------------
# Parameter ``masked``: the public primitive (True) returns NaN for derivatives
# that do not exist; the internal one (False) is the smooth basis the rules are
# written in (gauge of _series.py), whose derivatives are finite everywhere.

svd_p = _compat.new_primitive("jaxsvd_svd", multiple_results=True)


def lapack_svd(a, **kwargs):
    """``lax.linalg.svd`` with infinite entries replaced by NaN first: LAPACK's SVD
    (CPU, jaxlib 0.10) never returns on a matrix with an inf entry (``jnp.linalg.svd``
    hangs the same way), and NaN input gives NaN output.  Every jaxsvd SVD of a
    user's matrix goes through here."""
    a = jnp.where(jnp.isinf(a), jnp.asarray(jnp.nan, a.dtype), a)
    return lax.linalg.svd(a, **kwargs)


def _svd_impl(a, *, full_matrices, compute_uv, masked):
    del masked
    if not compute_uv:
        return [lapack_svd(a, full_matrices=False, compute_uv=False)]
    u, s, vt = lapack_svd(a, full_matrices=full_matrices, compute_uv=True)
    return [s, u, vt]


def _svd_abstract_eval(a, *, full_matrices, compute_uv, masked):
    *batch, m, n = a.shape
    r = min(m, n)
    batch = tuple(batch)
    s = _compat.ShapedArray(batch + (r,), real_dtype(a.dtype))
    if not compute_uv:
        return (s,)
    ku, kv = (m, n) if full_matrices else (r, r)
    return (s, _compat.ShapedArray(batch + (m, ku), a.dtype),
            _compat.ShapedArray(batch + (kv, n), a.dtype))


def basis(a, full_matrices: bool = False):
    """The smooth internal basis: (s, U, V, U_null, V_null), V as columns."""
    s, U, Vt = svd_p.bind(a, full_matrices=full_matrices, compute_uv=True, masked=False)
    r = s.shape[-1]
    V = mH(Vt)
    if not full_matrices:
        return s, U, V, None, None
    return s, U[..., :r], V[..., :r], U[..., r:], V[..., r:]


def first_order_values(s, u, v, da):
    """d sigma_k = Re u_k^H dA v_k  (docs/theory.md, "One triplet"), with the derivatives of both
    coefficients u_k and v_k guarded: NaN for a degenerate sigma_k, but only
    where the result depends on them (see _nanmask.sandwich / outer)."""
    m, n = u.shape[-2], v.shape[-2]
    keep = ~degenerate(s, m, n)
    return sandwich(u, da, v, keep)


# ---------------------------------------------------------------------------
# first order: the engine at order 1 (linear in the tangent, so transposable)
# ---------------------------------------------------------------------------


def _svd_jvp(primals, tangents, *, full_matrices, compute_uv, masked):
    (a,), (da,) = primals, tangents
    out = svd_p.bind(a, full_matrices=full_matrices, compute_uv=compute_uv, masked=masked)
    s, u, v, un, vn = basis(a, full_matrices and compute_uv)
    ds = first_order_values(s, u, v, da)
    if not compute_uv:
        return out, (ds,)
    if masked and not jnp.iscomplexobj(a):
        # NaN vectors at ties in forward mode; in reverse mode a gauge-invariant
        # cotangent passes in the rotation-free gauge (jaxsvd/_gauge.py)
        ser = svd_series(s, u, v, [da], u_null=un, v_null=vn, mask=False)
        ds, du, dv = gauge_mask(ds, ser.u[0], ser.v[0], s, _cols(u, un), _cols(v, vn))
        return out, (ds, du, mH(dv))
    ser = svd_series(s, u, v, [da], u_null=un, v_null=vn, mask=masked)
    return out, (ds, ser.u[0], mH(ser.v[0]))


def _cols(x, x_null):
    return x if x_null is None else jnp.concatenate([x, x_null], axis=-1)


# ---------------------------------------------------------------------------
# Taylor mode: the engine at order K (unscaled coefficients in and out)
# ---------------------------------------------------------------------------


def _svd_taylor(primals_in, series_in, *, full_matrices, compute_uv, masked):
    (a,), (terms,) = primals_in, series_in
    terms = [jnp.broadcast_to(jnp.asarray(t, a.dtype), a.shape) for t in terms]
    out = svd_p.bind(a, full_matrices=full_matrices, compute_uv=compute_uv, masked=masked)
    s, u, v, un, vn = basis(a, full_matrices and compute_uv)
    ser = svd_series(s, u, v, terms, vectors=compute_uv, u_null=un, v_null=vn, mask=masked)
    if not compute_uv:
        return out, [ser.s]
    return out, [ser.s, ser.u, [mH(x) for x in ser.v]]


# ---------------------------------------------------------------------------
# registration
# ---------------------------------------------------------------------------

_compat.def_rules(svd_p, impl=_svd_impl, abstract=_svd_abstract_eval,
                  static_argnames=("full_matrices", "compute_uv", "masked"), jvp=_svd_jvp, transpose=None,
                  taylor=_svd_taylor, multiple_results=True, out_dims="leading")


# ---------------------------------------------------------------------------
# public functions
# ---------------------------------------------------------------------------


def svd(a, full_matrices: bool = True, compute_uv: bool = True, hermitian: bool = False,
        subset_by_index=None):
    r"""Singular value decomposition, differentiable to any order.

    Drop-in for :func:`jax.numpy.linalg.svd`: same signature, defaults, values and signs.
    Shapes (``r = min(m, n)``): ``a`` ``(..., m, n)`` -> ``SVDResult(U, S, Vh)`` with
    ``U`` ``(..., m, m)``, ``S`` ``(..., r)`` descending, ``Vh`` ``(..., n, n)``;
    ``full_matrices=False``: ``U`` ``(..., m, r)``, ``Vh`` ``(..., r, n)``;
    ``compute_uv=False``: ``S`` alone.
    NaN policy: derivatives that do not exist are NaN, never finite garbage -- at a
    repeated or zero sigma_k those of u_k, v_k and of sigma_k beyond first order
    (reverse mode of rotation-invariant losses stays exact: below); NaN or inf
    input gives NaN output, never an exception.  Everything else is exact.

    Example:
      >>> import jax, jax.numpy as jnp, jaxsvd
      >>> a = jnp.array([[3.0, 0.0], [0.0, 1.0]])
      >>> jax.jacfwd(lambda a: jaxsvd.svd(a, compute_uv=False))(a)[0]
      Array([[1., 0.],
             [0., 0.]], dtype=float32)

    ``jax.jvp``, ``grad``, ``jacfwd``, ``jacrev``, ``hessian`` and Taylor mode
    (``jet``) compose with it to any order, under ``jit`` and ``vmap``, for
    ``full_matrices=True`` too; the rules come from the perturbation series of
    the block operator ``[[0, A], [A^T, 0]]`` (docs/theory.md).  Values and
    signs are LAPACK's / cuSOLVER's, through ``lax.linalg.svd``.

    Derivative gauge: ``diag(U^T dU) = diag(V^T dV) = 0``; the extra columns of a
    full ``U`` (or ``V``) rotate only as far as orthogonality to the moving range
    forces them (no rotation inside the null space).

    Degeneracy: sigma_k is degenerate where it coincides with another singular
    value (within ``4 * max(m, n) * eps * sigma_max``) or is zero.  Reverse mode
    (``grad``, ``jacrev``) of a loss that is invariant under rotations of the
    vectors inside each cluster (``U @ Vh``, ``U diag(S) Vh``,
    ``U[:, :k] @ U[:, :k].T`` when sigma_k > sigma_k+1) is exact there too: the
    cotangent is checked for that invariance (NaN if it fails).  See
    docs/degeneracy.md.

    Where the loss weights the tied values differently (dL/ds_i differ inside a
    cluster, e.g. the truncation loss ``<T, U[:, :k] diag(S[:k]) Vh[:k]>`` at a tie
    inside the top k, or the split ``U_k diag(sqrt(s_k))``, ``diag(sqrt(s_k)) Vh_k``
    of a tensor network) reverse mode stays NaN: the cotangent alone cannot tell
    such a loss from a non-differentiable one with the same cotangent.  Exact
    routes for these: :func:`jaxsvd.truncate` (``U_k diag(s_k) Vh_k``),
    :func:`jaxsvd.truncated_split` (``(L, R)`` for tensor networks),
    :func:`jaxsvd.generalized_matrix_function` (``U diag(g(s)) Vh``) and
    :func:`jaxsvd.projectors` -- every mode, ties included (docs/ties.md).

    Args:
      a: real or complex array of shape ``(..., m, n)`` (float32/64,
        complex64/128; integers are promoted).  For complex input the
        singular values are real and the phase of each pair follows JAX's
        rule, continued to every order (docs/complex.md).
      full_matrices: return ``U`` (m, m) and ``Vh`` (n, n) instead of the thin factors.
      compute_uv: return ``(U, S, Vh)``; otherwise only ``S``.
      hermitian: must be False (see Raises).
      subset_by_index: must be None or ``(0, min(m, n))``.

    Returns:
      ``SVDResult(U, S, Vh)`` like ``jnp.linalg.svd``, or ``S`` alone.

    Raises:
      ValueError: ``a`` has fewer than two dimensions.
      TypeError: float16/bfloat16 input (no SVD in that precision).
      NotImplementedError: ``hermitian=True`` or a proper subset.
      TypeError: a non-integer entry of ``subset_by_index``.
    """
    a = as_matrix(a)
    if hermitian:
        raise NotImplementedError(
            "jaxsvd.svd(hermitian=True) is not supported: pass hermitian=False (the general "
            "SVD is valid for symmetric input too), or use jnp.linalg.eigh for eigenpairs")
    r = min(a.shape[-2:])
    if subset_by_index is not None:
        subset_by_index = tuple(static_int(i, f"subset_by_index[{j}]") for j, i in enumerate(subset_by_index))
    if subset_by_index is not None and subset_by_index != (0, r):
        raise NotImplementedError(
            f"jaxsvd.svd(subset_by_index={tuple(subset_by_index)}) is not supported: slice the "
            "full result, or use jaxsvd.singular_triplet(a, k) for one triplet")
    full_matrices, compute_uv = bool(full_matrices), bool(compute_uv)
    if 0 in a.shape[-2:]:
        # empty: nothing to differentiate; the call jnp.linalg.svd makes, lax.linalg.svd
        # (not jnp.linalg.svd itself, which a program may have replaced by this function)
        out = lapack_svd(lax.stop_gradient(a), full_matrices=full_matrices, compute_uv=compute_uv)
        if not compute_uv:
            return out
        u, s, vt = out
        return _compat.SVDResult(U=u, S=s, Vh=vt)
    if not compute_uv:
        return svd_p.bind(a, full_matrices=False, compute_uv=False, masked=True)[0]
    s, u, vt = svd_p.bind(a, full_matrices=full_matrices, compute_uv=True, masked=True)
    return _compat.SVDResult(U=u, S=s, Vh=vt)


def svdvals(a):
    r"""Singular values, descending, shape ``(..., min(m, n))``.

    Differentiable to any order like :func:`svd`; the first derivative is
    ``d sigma_k = u_k^T dA v_k``.  Second and higher derivatives of a sigma_k
    that is zero or coincides with another are NaN (they do not exist).

    Example:
      >>> import jax.numpy as jnp, jaxsvd
      >>> jaxsvd.svdvals(jnp.array([[0.0, 2.0], [1.0, 0.0]]))
      Array([2., 1.], dtype=float32)
    """
    return svd(a, compute_uv=False)


def gaps(a):
    r"""Relative spectral gaps of each singular value.

    For sigma_k: the distance to the nearest other eigenvalue of the block
    operator ``[[0, a], [a^T, 0]]`` -- the other sigma_j, the negatives
    -sigma_j (hence 2 sigma_k itself), and 0 when m != n -- divided by
    sigma_max.  The j-th derivative of sigma_k scales like gap^-(j-1); a gap
    of 0 means sigma_k is not differentiable beyond first order.

    Returns:
      array of shape ``(..., min(m, n))`` (NaN for the zero matrix).

    Example:
      >>> import jax.numpy as jnp, jaxsvd
      >>> jaxsvd.gaps(jnp.diag(jnp.array([4.0, 3.0, 1.0])))
      Array([0.25, 0.25, 0.5 ], dtype=float32)
    """
    a = as_matrix(a)
    m, n = a.shape[-2:]
    return relative_gaps(svdvals(a), m, n)
