"""Shared test helpers: matrix builders with known spectra, tolerances, and
independent references (nested autodiff through jnp.linalg.svd, mpmath).

Nothing here calls jaxsvd: these are the oracles.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

SHAPES = [(5, 3), (3, 5), (4, 4)]  # tall, wide, square


def rtol(dtype) -> float:
    return 1e-10 if jnp.dtype(dtype) == jnp.float64 else 2e-4


def svd_backward_error(a) -> float:
    """Measured accuracy of this backend's SVD (jnp.linalg.svd) on ``a`` (any
    leading batch dimensions): the largest of ||A - U S V^T|| / ||A||,
    ||U^T U - I||, ||V V^T - I|| (2-norms), floored at the dtype's eps.

    The computed factors are, to this accuracy, exact for a nearby matrix, so a
    singular subspace separated by ``gap`` is off by an angle up to about
    ``svd_backward_error(a) * ||A|| / gap`` (Wedin's sin-theta theorem): tolerances
    at near ties derive from it rather than from one backend's luck.  Measured
    in float64: ~1e-15..3e-15 with LAPACK (CPU).
    """
    a64 = np.asarray(a, np.float64)
    u, s, vt = (np.asarray(x, np.float64) for x in jnp.linalg.svd(jnp.asarray(a), full_matrices=False))
    norm = lambda x: np.linalg.norm(x, 2, axis=(-2, -1))  # noqa: E731
    eye = lambda k: np.eye(k)  # noqa: E731
    rec = norm(a64 - (u * s[..., None, :]) @ vt) / np.maximum(norm(a64), 1e-300)
    ou = norm(np.swapaxes(u, -1, -2) @ u - eye(u.shape[-1]))
    ov = norm(vt @ np.swapaxes(vt, -1, -2) - eye(vt.shape[-2]))
    return float(max(np.max(rec), np.max(ou), np.max(ov), np.finfo(np.asarray(a).dtype).eps))


def batched_svd_is_per_matrix(a) -> bool:
    """Whether this backend's SVD of the batch ``a`` is bitwise the SVD of each
    matrix (LAPACK on CPU loops over the batch; cuSOLVER's batched and
    single-matrix routines are different algorithms, with other signs and rounding)."""
    batched = jnp.linalg.svd(jnp.asarray(a), full_matrices=False)
    return all(np.array_equal(np.asarray(x[i]), np.asarray(y))
               for i in range(a.shape[0])
               for x, y in zip(batched, jnp.linalg.svd(jnp.asarray(a[i]), full_matrices=False), strict=True))


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def orthogonal(n: int, seed: int = 0) -> np.ndarray:
    """Haar-random orthogonal n x n (numpy, float64)."""
    q, r = np.linalg.qr(rng(seed).standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def with_singular_values(m: int, n: int, s, seed: int = 0, dtype=jnp.float64):
    """U diag(s) V^T with Haar U, V: a matrix whose singular values are known."""
    s = np.asarray(s, dtype=np.float64)
    r = min(m, n)
    assert s.shape == (r,)
    u = orthogonal(m, seed)[:, :r]
    v = orthogonal(n, seed + 1000)[:, :r]
    return jnp.asarray((u * s) @ v.T, dtype=dtype)


def gaussian(shape, seed: int = 0, dtype=jnp.float64):
    return jnp.asarray(rng(seed).standard_normal(shape), dtype=dtype)


def nested_jvp_derivatives(f, a, terms, order: int):
    """Derivatives d^j/dt^j f(a(t)), j = 0..order, of the curve
    a(t) = a + sum_k terms[k-1] t^k / k!   by nesting jax.jvp ``order`` times.

    With ``f = jnp.linalg.svdvals`` this is the independent reference (JAX's own
    SVD rule, correct away from repeated singular values).  Cost ~ 2^order.
    """
    def curve(t):
        return a + sum(tm * t ** (k + 1) / math.factorial(k + 1) for k, tm in enumerate(terms))

    fns = [lambda t: f(curve(t))]
    for _ in range(order):
        fns.append(lambda t, g=fns[-1]: jax.jvp(g, (t,), (jnp.ones((), a.dtype),))[1])
    t0 = jnp.zeros((), a.dtype)
    return jnp.stack([g(t0) for g in fns])


def sign_fix(u, v):
    """Normalise the sign of paired singular vectors (columns) for comparison."""
    idx = jnp.argmax(jnp.abs(u), axis=-2, keepdims=True)
    sgn = jnp.sign(jnp.take_along_axis(u, idx, axis=-2))
    return u * sgn, v * sgn


def max_rel_err(x, ref) -> float:
    x, ref = np.asarray(x, np.float64), np.asarray(ref, np.float64)
    return float(np.max(np.abs(x - ref)) / max(np.max(np.abs(ref)), 1e-300))
