"""Shared test helpers: matrix builders with known spectra, tolerances, and
independent references (nested autodiff through jnp.linalg.svd, mpmath).

Nothing here calls jaxsvd: these are the oracles.
"""

from __future__ import annotations

import math
import os

import jax
import jax.numpy as jnp
import numpy as np

SHAPES = [(5, 3), (3, 5), (4, 4)]  # tall, wide, square

# A guard against a hung subprocess, never a measurement: generous enough for a
# 2-core machine at load 6 (CI's budget is 90 minutes; these take 10-60 s quiet).
SUBPROCESS_TIMEOUT = 1800


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


_FD_LAST: list = []


def richardson(fn, step: float, order: int = 1):
    """A decisive finite-difference reference: d^order/dt^order fn(t) at t = 0.

    ``fn`` maps a Python float t to an array (numpy or JAX).  Central differences
    D(s) (first or second order, truncation error c2 s^2 + c4 s^4 + ...) at the steps
    s = step, step/2, step/4 are Richardson-extrapolated, R(s) = (4 D(s/2) - D(s)) / 3
    (error O(s^4)); the value returned is R(step/2) and the error estimate is
    |R(step) - R(step/2)| (R(step)'s truncation error is 16x R(step/2)'s) plus the
    rounding bound 10 eps max|fn| / (step/4)^order (x 4 for the second difference),
    elementwise.  Returns ``(value, err)`` as float64 numpy arrays; a test asserts
    its tolerance is >= 10 x err before it compares (so a coarse reference fails as
    such, not as a wrong library).
    """
    def d(s):
        fp, fm = np.asarray(fn(s), np.float64), np.asarray(fn(-s), np.float64)
        if order == 1:
            return (fp - fm) / (2 * s), max(np.max(np.abs(fp)), np.max(np.abs(fm)))
        f0 = np.asarray(fn(0.0), np.float64)
        return (fp - 2 * f0 + fm) / s ** 2, max(np.max(np.abs(fp)), np.max(np.abs(f0)))

    (d1, m1), (d2, m2), (d4, m4) = d(step), d(step / 2), d(step / 4)
    r1, r2 = (4 * d2 - d1) / 3, (4 * d4 - d2) / 3
    eps = np.finfo(np.float64).eps
    rounding = 10 * eps * max(m1, m2, m4) / (step / 4) ** order * (1 if order == 1 else 4)
    # the plain central difference's own error, for the audit (JAXSVD_FD_AUDIT=1)
    _FD_LAST[:] = [float(np.max(np.abs(d1 - r2))), float(np.max(np.abs(r2))), step, order]
    return r2, np.abs(r1 - r2) + rounding


def assert_fd_close(got, fd, tol: float, *, rel: bool = True, floor: float = 0.0):
    """|got - value| <= tol (x max|value| if rel, at least ``floor``), after checking
    that the reference ``fd = (value, err)`` from :func:`richardson` is decisive:
    10 x its error estimate below the tolerance."""
    value, err = fd
    got = np.asarray(got, np.float64)
    scale = max(float(np.max(np.abs(value))), floor) if rel else 1.0
    bound = tol * scale
    assert 10 * float(np.max(err)) <= bound, f"reference too coarse: err {np.max(err):.2e} vs bound {bound:.2e}"
    diff = float(np.max(np.abs(got - value)))
    if os.environ.get("JAXSVD_FD_AUDIT"):
        plain, ref, step, order = _FD_LAST
        print(f"\nFD-AUDIT step={step:g} order={order} plain-diff-err={plain:.2e} |ref|={ref:.2e} "
              f"richardson-err={np.max(err):.2e} bound={bound:.2e} |got-ref|={diff:.2e}")
    assert diff <= bound, f"|got - ref| = {diff:.3e} > {bound:.3e} (ref err {np.max(err):.1e})"
