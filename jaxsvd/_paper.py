"""The seed paper's printed n-th order formula, as a reference implementation.

The seed paper (Luo 2025, arXiv:2506.03764, its Theorem 3.1 / 4.2; docs/theory.md) states, for
A(x) = A_0 + x A_1 + x^2 A_2 + ... and the block operators T_j = [[0, A_j], [A_j^T, 0]],

    sigma^(n) = sum_{p=1..n} (-1)^(p-1) sum_{i_1 + ... + i_p = n, i_j >= 1}
                <w, T_{i_1} S T_{i_2} S ... S T_{i_p} w>

with w = (u_k; v_k)/sqrt(2) and S = (T_0 - sigma_k I)^{-1} (I - w w^T) the reduced
resolvent.  Only the "chain" terms appear; the complete Rayleigh-Schroedinger
expansion also has terms with the eigenprojection P = w w^T between factors
(for n = 3: lambda_3 = <w, T_1 S T_1 S T_1 w> - lambda_1 <w, T_1 S^2 T_1 w>).
So the printed formula is right for n = 1, 2 and wrong from n = 3 on.

This module builds T_j and S explicitly with numpy (small matrices only: the
block operator is (m + n) x (m + n)) so that the figures and tests can show the
difference.  Nothing in jaxsvd uses it for computing derivatives.
"""

from __future__ import annotations

import math

import numpy as np


def _block(a):
    m, n = a.shape
    t = np.zeros((m + n, m + n), dtype=np.float64)
    t[:m, m:] = a
    t[m:, :m] = a.T
    return t


def _setup(a, k):
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"a must be a 2-D matrix; got shape {a.shape}")
    r = min(a.shape)
    if not -r <= k < r:
        raise ValueError(f"k={k} is out of range for min(m, n) = {r}")
    u, s, vt = np.linalg.svd(a, full_matrices=False)
    w = np.concatenate([u[:, k], vt[k]]) / math.sqrt(2.0)
    t0 = _block(a)
    lam = s[k]
    p = np.outer(w, w)
    # reduced resolvent: (T0 - lam I + P)^{-1} acts as the identity on range(P)
    # and as (T0 - lam I)^{-1} on its complement, so subtract P.
    sres = np.linalg.inv(t0 - lam * np.eye(t0.shape[0]) + p) - p
    return w, sres, lam


def _terms(terms, shape):
    ts = [np.asarray(t, dtype=np.float64) for t in terms]
    for t in ts:
        if t.shape != shape:
            raise ValueError(f"every term must have shape {shape}; got {t.shape}")
    return [_block(t) for t in ts]


def chain_coefficients(a, k: int, terms, order: int) -> np.ndarray:
    r"""Taylor coefficients sigma_k^(n), n = 0..order, by the paper's printed formula.

    Sums the chain terms over all compositions with the recursion
    g_n = T_n w - sum_{j=1..n-1} T_j S g_{n-j}, sigma^(n) = <w, g_n>
    (which expands to exactly the signed sum over compositions).  Correct for
    n <= 2 only; see the module docstring.

    Args:
      a: (m, n) matrix A_0 with a simple nonzero sigma_k.
      k: 0-based index of the singular value (descending).
      terms: [A_1, A_2, ...] of the path A(x) = A_0 + sum_j x^j A_j (missing = 0).
      order: highest coefficient.

    Returns:
      float64 array of shape (order + 1,): the unscaled coefficients (multiply
      row n by n! for the n-th derivative along a straight line).
    """
    w, sres, lam = _setup(a, k)
    ts = _terms(terms, np.shape(a))
    zero = np.zeros_like(sres)
    tj = lambda j: ts[j - 1] if j - 1 < len(ts) else zero  # noqa: E731
    g = [None]
    out = [lam]
    for n in range(1, order + 1):
        gn = tj(n) @ w
        for j in range(1, n):
            gn = gn - tj(j) @ (sres @ g[n - j])
        g.append(gn)
        out.append(float(w @ gn))
    return np.asarray(out)


def complete_coefficients(a, k: int, terms, order: int) -> np.ndarray:
    r"""Taylor coefficients sigma_k^(n), n = 0..order, by the complete series.

    The Rayleigh-Schroedinger recursion of docs/theory.md on the same
    explicit block operator, normalisation <w_0, w(x)> = 1:

        lambda_n = sum_{j=1..n} <w_0, T_j w_{n-j}>
        w_n = -S ( sum_{j=1..n} T_j w_{n-j} - sum_{j=1..n} lambda_j w_{n-j} )

    Used beside :func:`chain_coefficients` to show where the paper's formula
    departs; numpy, explicit (m + n) x (m + n) matrices.
    """
    w, sres, lam = _setup(a, k)
    ts = _terms(terms, np.shape(a))
    zero = np.zeros_like(sres)
    tj = lambda j: ts[j - 1] if j - 1 < len(ts) else zero  # noqa: E731
    ws = [w]
    lams = [lam]
    for n in range(1, order + 1):
        ln = sum(float(w @ (tj(j) @ ws[n - j])) for j in range(1, n + 1))
        lams.append(ln)
        rhs = sum(tj(j) @ ws[n - j] for j in range(1, n + 1)) - sum(lams[j] * ws[n - j] for j in range(1, n))
        ws.append(-sres @ rhs)
    return np.asarray(lams)
