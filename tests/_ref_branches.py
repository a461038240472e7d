"""Independent reference for the analytic branches of the singular values
(nothing here calls jaxsvd): the eigenvalues of the block operator
B(x) = [[0, A + x H], [(A + x H)^T, 0]] in mpmath on a circle |x| = rho in the
complex plane, followed around the circle by analytic continuation (each step
matched to a cubic extrapolation of the branch), and Taylor coefficients by
the Cauchy integral (the discrete Fourier transform on the circle).

B(x)^2 = diag(A A^T, A^T A) (transposes, also for complex x), so the non-trivial
eigenvalues of B are +-sqrt(mu), mu the eigenvalues of the r x r Gram matrix of
the smaller side: mpmath's eigensolver on r x r instead of (m + n) x (m + n).
Following +-sqrt(mu) continuously picks the analytic square root, also through
zero singular values (mu ~ c^2 x^2).

Inside a disc free of branch points each eigenvalue of B is analytic, so the
branches through ties and zeros are single-valued on the circle and the DFT
gives their coefficients with aliasing error ~ (rho / R) ** N.
"""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np


def _assign(pred, cand, tiny):
    """Greedy nearest matching of predictions to candidates; also whether it is
    unambiguous (each match much closer than the next candidate, unless those
    candidates are equal)."""
    N = len(pred)
    pairs = sorted((abs(p - z), i, j) for i, p in enumerate(pred) for j, z in enumerate(cand))
    cur, used_i, used_j = [None] * N, set(), set()
    for _, i, j in pairs:
        if i in used_i or j in used_j:
            continue
        cur[i] = cand[j]
        used_i.add(i)
        used_j.add(j)
    ok = True
    for i, p in enumerate(pred):
        d1 = abs(p - cur[i])
        others = [abs(p - z) for z in cand if abs(z - cur[i]) > tiny]
        if others and d1 > 0.1 * min(others):
            ok = False
    return cur, ok


def _extrapolate(hist, theta):
    """Lagrange extrapolation (in the angle) of each branch from the last <= 4 points."""
    pts = hist[-4:]
    out = []
    for i in range(len(pts[0][1])):
        acc = 0
        for a, (ta, va) in enumerate(pts):
            w = 1
            for b, (tb, _) in enumerate(pts):
                if b != a:
                    w *= (theta - tb) / (ta - tb)
            acc += w * va[i]
        out.append(acc)
    return out


def _follow(eigs, npts):
    """Values of each branch at the angles 2 pi k / npts, followed continuously
    (adaptive steps where the matching would be ambiguous); checks closure."""
    base = 2 * mp.pi / npts
    v0 = sorted(eigs(mp.mpf(0)), key=lambda z: -mp.re(z))
    scale = max(abs(z) for z in v0) + 1
    tiny = mp.mpf(10) ** (-(mp.mp.dps - 5)) * scale
    hist = [(mp.mpf(0), v0)]
    grid = [v0]
    step = base / 64
    for k in range(1, npts + 1):
        target = base * k
        while hist[-1][0] < target:
            theta = min(hist[-1][0] + step, target)
            cur, ok = _assign(_extrapolate(hist, theta), eigs(theta), tiny)
            if not ok and step > base * mp.mpf(2) ** -40:
                step /= 2
                continue
            hist.append((theta, cur))
            hist = hist[-4:]
            step = min(step * 2, base)
        grid.append(hist[-1][1])
    end = grid.pop()
    for i in range(len(v0)):
        d = [abs(end[i] - v0[j]) for j in range(len(v0))]
        assert d[i] <= min(d) + tiny, "branches do not close: shrink rho"
    return grid


def block_branches(a, h, order: int, rho: float, npts: int = 32, dps: int = 30):
    """Unscaled Taylor coefficients (order + 1, 2 r) of the branches +-sigma of B(x)."""
    with mp.workdps(dps):
        A = mp.matrix(np.asarray(a, dtype=float).tolist())
        H = mp.matrix(np.asarray(h, dtype=float).tolist())
        m, n = A.rows, A.cols
        rho = mp.mpf(rho)

        def eigs(theta):
            ax = A + rho * mp.expj(theta) * H
            g = ax.T * ax if n <= m else ax * ax.T
            e = mp.eig(g, left=False, right=False)
            roots = [mp.sqrt(e[i]) for i in range(len(e))]
            return roots + [-z for z in roots]

        track = _follow(eigs, npts)
        xs = [rho * mp.expj(2 * mp.pi * k / npts) for k in range(npts)]
        N = len(track[0])
        coefs = np.zeros((order + 1, N))
        for j in range(order + 1):
            for i in range(N):
                c = mp.fsum(track[k][i] * xs[k] ** (-j) for k in range(npts)) / npts
                coefs[j, i] = float(mp.re(c))
        return coefs


def sv_branches(a, h, order: int, rho: float, npts: int = 32, dps: int = 30, rel: float = 1e-8):
    """The r singular-value branches (order + 1, r), derivative-scaled like
    ``jaxsvd.derivatives``: from the branches of B, those with c_0 > 0, and through
    zero the one of each +- pair whose first non-zero coefficient is positive
    (zeros for branches that vanish to every order), sorted lexicographically,
    descending."""
    a = np.asarray(a, dtype=float)
    m, n = a.shape
    r = min(m, n)
    c = block_branches(a, h, order, rho, npts, dps)
    scale = max(1.0, float(np.max(np.abs(c))))
    tol = rel * scale
    picked = []
    for i in range(c.shape[1]):
        col = c[:, i]
        nzk = [k for k in range(order + 1) if abs(col[k]) > tol]
        if not nzk:
            continue
        if col[nzk[0]] > 0:
            picked.append(col)
    while len(picked) < r:
        picked.append(np.zeros(order + 1))
    assert len(picked) == r, (len(picked), r)
    key = lambda col: tuple(np.round(col / tol).astype(np.int64))  # noqa: E731
    picked.sort(key=key, reverse=True)
    out = np.stack(picked, axis=1)
    return out * np.array([math.factorial(j) for j in range(order + 1)], dtype=float)[:, None]
