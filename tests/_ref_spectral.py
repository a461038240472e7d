"""Independent references for spectral functions (nothing here calls jaxsvd).

* Exact polynomial invariants: sum s^2 = tr(A^T A), sum s^4 = tr((A^T A)^2)
  are polynomials in A; jax.hessian differentiates them without any SVD.
* mpmath at high precision: F(A + tH) from mpmath's SVD, differentiated in t
  by mpmath.diff (high-precision finite differences), for any spectral f.
* Nested autodiff through jnp.linalg.svd (correct where singular values are
  simple and nonzero).
"""

from __future__ import annotations

import jax.numpy as jnp
import mpmath
import numpy as np

DPS = 50

# f on a vector of singular values, in mpmath (sorted descending) and in jnp
MP_F = {
    "sum_s2": lambda s: sum(x ** 2 for x in s),
    "sum_s3": lambda s: sum(x ** 3 for x in s),
    "sum_s4": lambda s: sum(x ** 4 for x in s),
    "nuclear": lambda s: sum(s),
    "ky_fan_2": lambda s: s[0] + s[1],
    "spectral": lambda s: s[0],
    "schatten_3": lambda s: mpmath.cbrt(sum(x ** 3 for x in s)),
}
JNP_F = {
    "sum_s2": lambda s: jnp.sum(s ** 2),
    "sum_s3": lambda s: jnp.sum(s ** 3),
    "sum_s4": lambda s: jnp.sum(s ** 4),
    "nuclear": jnp.sum,
    "ky_fan_2": lambda s: s[0] + s[1],
    "spectral": lambda s: s[0],
    "schatten_3": lambda s: jnp.sum(s ** 3) ** (1.0 / 3.0),
}


def poly_sum_s2(a):
    return jnp.sum(a * a)


def poly_sum_s4(a):
    g = a.T @ a
    return jnp.sum(g * g)


POLY = {"sum_s2": poly_sum_s2, "sum_s4": poly_sum_s4}


def _mp_matrix(x):
    return mpmath.matrix(np.asarray(x, np.float64).tolist())


def mp_value(name, a):
    with mpmath.workdps(DPS):
        s = mpmath.svd_r(_mp_matrix(a), compute_uv=False)
        s = sorted((s[i] for i in range(len(s))), reverse=True)
        return MP_F[name](s)


def mp_directional(name, a, h, order):
    """d^order/dt^order f(svd(a + t h)) at t = 0 in mpmath (dps 50)."""
    with mpmath.workdps(DPS):
        A, H = _mp_matrix(a), _mp_matrix(h)

        def F(t):
            s = mpmath.svd_r(A + t * H, compute_uv=False)
            s = sorted((s[i] for i in range(len(s))), reverse=True)
            return MP_F[name](s)

        return float(mpmath.diff(F, 0, order))


def mp_bilinear(name, a, h1, h2):
    """D^2 F(a)[h1, h2] by polarisation of two mpmath second derivatives."""
    h1, h2 = np.asarray(h1, np.float64), np.asarray(h2, np.float64)
    return 0.25 * (mp_directional(name, a, h1 + h2, 2) - mp_directional(name, a, h1 - h2, 2))


def jnp_route(name):
    """F through jnp.linalg.svd (JAX's own rule)."""
    f = JNP_F[name]
    return lambda a: f(jnp.linalg.svd(a, compute_uv=False))
