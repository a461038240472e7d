"""High-precision reference: Rayleigh-Schroedinger series of one eigenvalue of
the block operator T(x) = [[0, A(x)], [A(x)^H, 0]] in mpmath (THEORY.md section 2);
real or complex A (Hermitian block operator, mpmath's eighe).

Independent of jaxsvd: a vector recursion on the (m+n) x (m+n) symmetric
operator with the reduced resolvent built from mpmath's own symmetric
eigensolver, instead of jaxsvd's matrix recursion on the SVD factors.
"""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np


def _block(a):
    m, n = a.rows, a.cols
    t = mp.zeros(m + n, m + n)
    for i in range(m):
        for j in range(n):
            t[i, m + j] = a[i, j]
            t[m + j, i] = mp.conj(a[i, j])
    return t


def _mp(x):
    x = np.asarray(x)
    if np.iscomplexobj(x):
        return mp.matrix([[mp.mpc(complex(v)) for v in row] for row in x.astype(complex)])
    return mp.matrix(x.astype(float).tolist())


def sigma_series(a0, coeffs, k: int, order: int, dps: int = 50):
    """Unscaled Taylor coefficients lambda_0..lambda_order of sigma_k(x) for
    A(x) = a0 + sum_j coeffs[j-1] x^j  (numpy float64 arrays, converted exactly).

    sigma_k (0-based, descending) must be a simple, non-zero singular value.
    """
    with mp.workdps(dps):
        cplx = np.iscomplexobj(a0) or any(np.iscomplexobj(c) for c in coeffs)
        A = [_mp(a0)] + [_mp(c) for c in coeffs]
        T = [_block(x) for x in A]
        N = T[0].rows
        evals, evecs = mp.eighe(T[0]) if cplx else mp.eigsy(T[0])
        evals = [evals[i] for i in range(N)]
        order_idx = sorted(range(N), key=lambda i: -evals[i])
        i0 = order_idx[k]  # k-th largest eigenvalue = sigma_k (positive branch)
        lam0 = evals[i0]
        w0 = evecs[:, i0]
        # reduced resolvent S = sum_{mu != lam0} P_mu / (mu - lam0)
        S = mp.zeros(N, N)
        for i in range(N):
            if i == i0:
                continue
            d = evals[i] - lam0
            col = evecs[:, i]
            S += (col * col.H) / d
        Tj = lambda j: T[j] if j < len(T) else None  # noqa: E731
        ws = [w0]
        lams = [lam0]
        for n in range(1, order + 1):
            acc = mp.zeros(N, 1)
            lam = mp.mpf(0)
            for j in range(1, n + 1):
                tj = Tj(j)
                if tj is None:
                    continue
                v = tj * ws[n - j]
                acc += v
                lam += (w0.H * v)[0]
            lams.append(lam)
            for j in range(1, n + 1):
                acc -= lams[j] * ws[n - j]
            ws.append(-(S * acc))
        return [float(mp.re(x)) for x in lams]


def sigma_derivatives(a0, h, k: int, order: int, dps: int = 50):
    """D^j sigma_k(a0)[h, ..., h], j = 0..order (along the line a0 + t h)."""
    lam = sigma_series(a0, [h], k, order, dps)
    return np.array([math.factorial(j) * x for j, x in enumerate(lam)])
