"""Independent references for the tie-safe functions (nothing here calls jaxsvd).

* The polar factor by Newton's iteration X <- (X + X^{-T}) / 2 (X^{+T} =
  X (X^T X)^{-1} for tall X; transpose for wide), in float64 with JAX (its
  derivatives by forward/reverse autodiff through the converged iteration) and
  in mpmath at 50 digits.
* U g(S) V^T, truncation and projectors from mpmath's SVD at 50 digits; their
  derivatives along a direction by central differences with step 1e-12 (error
  ~1e-24): the functions are gauge-invariant and smooth at the tie points, so
  differences of them are exact there even though the singular vectors are not.
"""

from __future__ import annotations

import jax.numpy as jnp
import mpmath
import numpy as np

DPS = 50
STEP = mpmath.mpf("1e-12")


def newton_polar(a, iters: int = 40):
    """Polar factor of a full-rank a (..., m, n) by Newton's iteration (jnp, float64)."""
    m, n = a.shape[-2:]
    x = a if m >= n else jnp.swapaxes(a, -1, -2)
    for _ in range(iters):
        xtx = jnp.swapaxes(x, -1, -2) @ x
        x = 0.5 * (x + jnp.swapaxes(jnp.linalg.solve(xtx, jnp.swapaxes(x, -1, -2)), -1, -2))
    return x if m >= n else jnp.swapaxes(x, -1, -2)


def _mp(a):
    return mpmath.matrix([[mpmath.mpf(float(x)) for x in row] for row in np.asarray(a, np.float64)])


def _dps():
    # never lower the working precision of a caller (mpmath.diffs raises it)
    return max(DPS, mpmath.mp.dps)


def mp_newton_polar(a):
    with mpmath.workdps(_dps()):
        x = a if a.rows >= a.cols else a.T
        for _ in range(200):
            nxt = (x + x * (x.T * x) ** -1) / 2
            done = mpmath.mnorm(nxt - x, 1) < mpmath.mpf(10) ** (-mpmath.mp.dps + 5)
            x = nxt
            if done:
                break
        return x if a.rows >= a.cols else x.T


def mp_gmf(a, g, k=None, kind="gmf"):
    """U diag(g(s)) V^T (kind "gmf"), U_k diag(s_k) V_k^T ("truncate"), U_k U_k^T ("pu"), V_k V_k^T ("pv")."""
    with mpmath.workdps(_dps()):
        tall = a.rows >= a.cols
        x = a if tall else a.T
        u, s, vt = mpmath.svd_r(x, full_matrices=False)
        r = len(s)
        if not tall:
            u, vt = vt.T, u.T
        if kind == "pu":
            return sum((u[:, i] * u[:, i].T for i in range(k)), mpmath.zeros(a.rows, a.rows))
        if kind == "pv":
            return sum((vt[i, :].T * vt[i, :] for i in range(k)), mpmath.zeros(a.cols, a.cols))
        if kind == "truncate":
            vals = [s[i] if i < k else 0 for i in range(r)]
        else:
            vals = [g(s[i]) for i in range(r)]
        return sum((vals[i] * u[:, i] * vt[i, :] for i in range(r)), mpmath.zeros(a.rows, a.cols))


def directional(fn, a, h, order: int = 1):
    """d/dt F(a + t h) (order 1) or d^2/dt^2 (order 2) at t = 0, as float64 numpy."""
    with mpmath.workdps(DPS):
        a, h = _mp(a), _mp(h)
        fp, fm = fn(a + STEP * h), fn(a - STEP * h)
        if order == 1:
            d = (fp - fm) / (2 * STEP)
        else:
            d = (fp - 2 * fn(a) + fm) / STEP ** 2
        return np.array(d.tolist(), dtype=np.float64)


def value(fn, a):
    with mpmath.workdps(DPS):
        return np.array(fn(_mp(a)).tolist(), dtype=np.float64)
