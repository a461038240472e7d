"""Higher directional derivatives of the singular values (Taylor mode)."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

from ._series import svd_series
from ._svd import as_matrix, basis, static_int, svdvals


def derivatives(a, h, order: int):
    r"""Directional derivatives of the singular values up to ``order``.

    Row j is ``D^j S(a)[h, ..., h]``, the j-th derivative of
    ``t -> svdvals(a + t h)`` at t = 0 (row 0 is ``svdvals(a)``).  Computed in
    one pass of the Taylor-mode rule (the series engine that ``jet`` of
    :func:`svdvals` runs, on the line a + t h), so the cost grows like order**2,
    not 2**order as with nested ``jax.jvp``.  Differentiable (``grad`` of a
    derivative works) and batched over leading dimensions.
    Rows j >= 2 are NaN for singular values that are zero or coincide with
    another (they do not exist; see :func:`jaxsvd.gaps`).

    Args:
      a: real or complex array ``(..., m, n)`` (float32/64, complex64/128; the
        derivatives are real, along a real x).
      h: direction, same shape as ``a`` (a complex ``h`` with a real ``a``
        promotes both, like numpy).
      order: static int >= 0.

    Returns:
      array of shape ``(order + 1, ..., min(m, n))``.

    Example:
      >>> import jax.numpy as jnp, jaxsvd
      >>> a = jnp.diag(jnp.array([2.0, 1.0]))
      >>> h = jnp.array([[0.0, 1.0], [0.0, 0.0]])
      >>> jaxsvd.derivatives(a, h, 2)[:, 0]   # sigma_1(t) = 2 + t^2/3 + ...
      Array([2.       , 0.       , 0.6666667], dtype=float32)
    """
    a = as_matrix(a)
    h = as_matrix(h, "h")
    if h.shape != a.shape:
        raise ValueError(f"direction h must have the shape of a {a.shape}; got {h.shape}")
    order = static_int(order, "order", low=0)
    if a.dtype != h.dtype:  # promote like jnp: real a with complex h is a complex line
        dtype = np.promote_types(a.dtype, h.dtype)  # numpy: no strict-mode error
        a, h = a.astype(dtype), h.astype(dtype)
    if order == 0 or 0 in a.shape[-2:]:
        s = svdvals(a)
        return jnp.broadcast_to(s, (order + 1,) + s.shape) * jnp.ones((order + 1,) + (1,) * s.ndim, s.dtype)
    # the Taylor-mode rule of svdvals on the line a + t h (one nonzero term, so
    # the engine skips the products with the zero higher terms); row 0 comes
    # from the same SVD call as the vectors (one LAPACK call, not two)
    s, u, v, _, _ = basis(a)
    ser = svd_series(s, u, v, [h], num_orders=order, vectors=False)
    scale = np.array([math.factorial(j) for j in range(order + 1)], dtype=s.dtype)
    return jnp.stack([s] + list(ser.s)) * scale.reshape((order + 1,) + (1,) * s.ndim)
