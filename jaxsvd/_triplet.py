"""One singular triplet (sigma_k, u_k, v_k) as its own primitive.

Why a primitive of its own: its JVP needs only column k of the series engine
(``cols=(k,)``), which costs O(mn + (m + n) r) per direction once the SVD is
known, and the first-order tangent of sigma_k is written with the triplet's own
outputs (d sigma_k = u_k^T dA v_k).  So ``jax.hessian`` of sigma_k = jacfwd of
(A -> u_k v_k^T) differentiates only this primitive, never the full SVD:
near the cost of writing the Hessian.  Rules in the usual order: primal, JVP,
Taylor mode, registration.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from . import _compat
from ._series import svd_series
from ._svd import as_matrix, basis, lapack_svd, real_dtype, static_int

triplet_p = _compat.new_primitive("jaxsvd_singular_triplet", multiple_results=True)


def _impl(a, *, k):
    # the same LAPACK call as svd_p's thin SVD, so XLA can share it under jit
    u, s, vt = lapack_svd(a, full_matrices=False, compute_uv=True)
    return [s[..., k], u[..., :, k], jnp.conj(vt[..., k, :])]  # v_k = conj(row k of V^H)


def _abstract_eval(a, *, k):
    *batch, m, n = a.shape
    batch = tuple(batch)
    return (_compat.ShapedArray(batch, real_dtype(a.dtype)), _compat.ShapedArray(batch + (m,), a.dtype),
            _compat.ShapedArray(batch + (n,), a.dtype))


def _batch(args, dims, *, k):
    (a,), (d,) = args, dims
    return triplet_p.bind(jnp.moveaxis(a, d, 0), k=k), [0, 0, 0]


def _series(a, terms, k):
    """Engine on column k; order 0 of the column from this primitive itself."""
    sk, uk, vk = triplet_p.bind(a, k=k)
    s, u, v, _, _ = basis(a)
    ser = svd_series(s, u, v, terms, cols=(k,), u0_cols=uk[..., None], v0_cols=vk[..., None])
    return (sk, uk, vk), ([x[..., 0] for x in ser.s], [x[..., 0] for x in ser.u],
                          [x[..., 0] for x in ser.v])


def _jvp(primals, tangents, *, k):
    (a,), (da,) = primals, tangents
    out, (ds, du, dv) = _series(a, [da], k)
    return out, (ds[0], du[0], dv[0])


def _taylor(primals_in, series_in, *, k):
    (a,), (terms,) = primals_in, series_in
    terms = [jnp.broadcast_to(jnp.asarray(t, a.dtype), a.shape) for t in terms]
    out, ser = _series(a, terms, k)
    return out, list(ser)


triplet_p.def_impl(partial(jax.jit, static_argnames=("k",))(_impl))
triplet_p.def_abstract_eval(_abstract_eval)
_compat.def_lowering_from_fun(triplet_p, _impl, multiple_results=True)
_compat.def_batching(triplet_p, _batch)
_compat.def_jvp(triplet_p, _jvp)
_compat.def_taylor(triplet_p, _taylor)


def singular_triplet(a, k: int):
    r"""The k-th singular triplet ``(s_k, u_k, v_k)`` (0-based, descending).

    Same values and signs as column k of ``jnp.linalg.svd(a, full_matrices=False)``.
    Derivatives of every order come from column k of the perturbation series:
    d s_k = u_k^T dA v_k, and d u_k, d v_k cost O(mn + (m + n) r) per direction
    once the SVD is known, so ``jax.hessian(lambda a: singular_triplet(a, k)[0])``
    costs about as much as writing its output.  Where s_k is zero or coincides
    with another singular value, the derivatives of u_k, v_k and the second and
    higher derivatives of s_k are NaN.

    Args:
      a: real or complex array ``(..., m, n)`` (for complex a, ``v_k`` is the
        right singular vector, ``a v_k = s_k u_k``: the conjugate of row k of ``Vh``).
      k: static int index, ``0 <= k < r`` (``r - 1`` is the smallest; a negative k, a
        float such as ``2.0``, a bool or a traced value raise ValueError / TypeError).

    Returns:
      ``(s_k, u_k, v_k)`` of shapes ``(...)``, ``(..., m)``, ``(..., n)``.

    Example:
      >>> import jax.numpy as jnp, jaxsvd
      >>> s, u, v = jaxsvd.singular_triplet(jnp.diag(jnp.array([3.0, 1.0])), 1)
      >>> float(s)
      1.0
    """
    a = as_matrix(a)
    r = min(a.shape[-2:])
    k = static_int(k, "k", low=0, high=r - 1, high_name="min(m, n) - 1")
    return tuple(triplet_p.bind(a, k=k))
