"""The largest singular triplets of a matrix-free operator: thick-restart
Golub--Kahan--Lanczos bidiagonalisation with full reorthogonalisation.

Only products ``x -> A x`` and ``y -> A^T y`` are used; memory beyond the
operator is O((m + n) p) for a Krylov dimension ``p`` (the bases P, Q) plus the
small p x p projected matrix.  Every loop bound is static or a ``while_loop``,
so the solver runs under ``jit`` and ``vmap``.  It is never differentiated:
jaxsvd/_svds.py attaches the implicit derivative rules.

Mathematics (Golub & Kahan 1965; Baglama & Reichel, "Augmented implicitly
restarted Lanczos bidiagonalization methods", SIAM J. Sci. Comput. 27 (2005);
Wu & Simon's thick restart for Lanczos).  Orthonormal bases P = [p_0 ...]
(right, n x p) and Q = [q_0 ...] (left, m x p) with

    A P = Q B,      A^T Q = P B^T + beta p_p e_{p-1}^T,

B = Q^T A P upper triangular (bidiagonal until the first restart).  B is kept
dense and filled from the Gram--Schmidt coefficients themselves (step j:
B[:j, j] = Q^T A p_j, B[j, j] = |A p_j - Q Q^T A p_j|), so after a thick
restart -- P <- [P Vb_l, p_p], Q <- Q Ub_l, B <- diag(theta_l) for the SVD
B = Ub diag(theta) Vb^T -- the coupling row appears in the next step's
coefficients without special cases.  The Ritz triplet (theta_i, Q ub_i, P vb_i)
satisfies A v = theta u exactly and

    |A^T u_i - theta_i v_i| = |beta * Ub[p-1, i]|,

the residual estimate used for convergence.  Breakdown (an invariant
subspace: |A p_j| or |A^T q_j| below eps |A| after orthogonalisation) is
continued with a random vector orthogonal to the basis; the dense B records the
actual projections, so no relation is broken.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

_HIGHEST = lax.Precision.HIGHEST


class KrylovResult(NamedTuple):
    u: jax.Array  # (m, k) left singular vectors (columns)
    s: jax.Array  # (k,) descending
    v: jax.Array  # (n, k) right singular vectors (columns)
    residual: jax.Array  # (k,) estimate of |A^T u_i - s_i v_i| / s_0 (A v_i = s_i u_i holds exactly)
    steps: jax.Array  # () int32: Krylov steps taken (each one product with A and one with A^T)
    converged: jax.Array  # (k,) bool
    next_value: jax.Array  # () the (k+1)-th Ritz value (for the tie-at-the-cut check); 0 if p == k


def default_tol(dtype) -> float:
    """Residual tolerance |A^H u - s v| / s_0 by dtype (see svds' docstring)."""
    return 1e-7 if jnp.finfo(dtype).dtype == jnp.float32 else 1e-12


def default_krylov_dim(k: int, r: int) -> int:
    """Krylov dimension p: room for k wanted triplets and as many more (>= 40)."""
    return int(min(r, max(2 * k + 8, k + 40)))


def _mv_cols(A, X):
    return A @ X


def _orth(x, basis):
    """x minus its projection on the rows of ``basis`` (two passes of
    classical Gram--Schmidt, 'twice is enough'); returns (x', coefficients)."""
    cb = jnp.conj(basis)  # coefficients b_i^H x (a no-op for real bases)
    c1 = jnp.matmul(cb, x, precision=_HIGHEST)
    x = x - jnp.matmul(c1, basis, precision=_HIGHEST)
    c2 = jnp.matmul(cb, x, precision=_HIGHEST)
    x = x - jnp.matmul(c2, basis, precision=_HIGHEST)
    return x, c1 + c2


def _unit_or_random(x, basis, rnd, shift, floor):
    """x / |x|, or (breakdown, |x| <= floor) a unit vector orthogonal to basis
    made from the random vector ``rnd`` rolled by ``shift`` (one random draw per
    solve: a draw per step would cost as much as the products)."""
    nrm = jnp.linalg.norm(x)
    ok = nrm > floor

    def fallback(x):
        y, _ = _orth(jnp.roll(rnd, shift), basis)
        return y / jnp.maximum(jnp.linalg.norm(y), jnp.finfo(x.dtype).tiny).astype(y.dtype)

    return lax.cond(ok, lambda x: x / jnp.where(ok, nrm, 1.0).astype(x.dtype), fallback, x), nrm


def _small_svd(B):
    # the projected p x p matrix: QR-iteration SVD (gesvd).  XLA:CPU's default
    # divide-and-conquer path takes ~100 ms at p = 41 (vs ~1 ms): measured, jax 0.10.2.
    # gesvd does not return on NaN input: non-finite B (NaN in the operator) is
    # replaced by 0 here and the result flagged by the caller.
    finite = jnp.all(jnp.isfinite(B))
    u, s, vt = lax.linalg.svd(jnp.where(finite, B, 0.0), full_matrices=True, compute_uv=True,
                              algorithm=lax.linalg.SvdAlgorithm.QR)
    return u, jnp.where(finite, s, jnp.asarray(jnp.nan, s.dtype)), vt


def gkl_svds(mv: Callable, rmv: Callable, m: int, n: int, k: int, *, dtype, key,
             tol: float, maxiter: int, p: int | None = None) -> KrylovResult:
    """The k largest singular triplets of the operator (mv, rmv), A: R^n -> R^m (or C^n -> C^m).

    Args:
      mv, rmv: x (n,) -> A x (m,), y (m,) -> A^H y (n,); traceable, linear.
      m, n, k: static sizes, 1 <= k <= min(m, n).
      dtype: floating dtype of the computation.
      key: a ``jax.random`` key (start vector and breakdown vectors).
      tol: converged when the residual estimate |A^T u_i - s_i v_i| <= tol * s_0.
      maxiter: the most Krylov steps (products with A, each with one with A^T).
      p: Krylov dimension (static); default :func:`default_krylov_dim`.

    Returns:
      :class:`KrylovResult`; triplets that did not converge are returned as
      they are, with ``converged`` False (the caller turns them into NaN).
    """
    r = min(m, n)
    p = default_krylov_dim(k, r) if p is None else int(min(max(p, k), r))
    keep = max(min(p - 1, k + (p - k) // 2), 0)  # Ritz vectors kept at a restart
    eps = jnp.finfo(dtype).eps
    rdt = jnp.finfo(dtype).dtype  # real dtype of norms and singular values
    k_start, k_n, k_m = jax.random.split(key, 3)
    rnd_n = jax.random.normal(k_n, (n,), dtype)
    rnd_m = jax.random.normal(k_m, (m,), dtype)
    # start in the row space of A (p0 = A^T y): with p = min(m, n) one cycle
    # then exhausts it and the residual vanishes (small or low-rank operators)
    y0 = jax.random.normal(k_start, (m,), dtype)
    p0, _ = _unit_or_random(rmv(y0), jnp.zeros((1, n), dtype), rnd_n, 0, 0.0)

    # the bases as rows (contiguous updates): P (p + 1, n), Q (p, m)
    P = jnp.zeros((p + 1, n), dtype).at[0].set(p0)
    Q = jnp.zeros((p, m), dtype)
    B = jnp.zeros((p, p), dtype)
    eye_p = jnp.eye(p, dtype=dtype)

    def step(j, state):
        P, Q, B, beta, scale, count = state
        pj = lax.dynamic_index_in_dim(P, j, axis=0, keepdims=False)
        w, c = _orth(mv(pj), Q)
        scale = jnp.maximum(scale, jnp.linalg.norm(c))
        q, alpha = _unit_or_random(w, Q, rnd_m, count, 10 * eps * scale)
        scale = jnp.maximum(scale, alpha)
        B = lax.dynamic_update_index_in_dim(B, c + alpha.astype(dtype) * eye_p[j], j, axis=1)
        Q = lax.dynamic_update_index_in_dim(Q, q, j, axis=0)
        z, _ = _orth(rmv(q), P)
        pn, beta = _unit_or_random(z, P, rnd_n, count, 10 * eps * scale)
        scale = jnp.maximum(scale, beta)
        P = lax.dynamic_update_index_in_dim(P, pn, j + 1, axis=0)
        return P, Q, B, beta, scale, count + 1

    def ritz(B, beta):
        ub, th, vbt = _small_svd(B)
        res = beta * jnp.abs(ub[p - 1, :])
        return ub, th, jnp.conj(vbt.T), res

    def cycle(state):
        P, Q, B, beta, scale, count, j0, _, _ = state
        P, Q, B, beta, scale, count = lax.fori_loop(j0, p, step, (P, Q, B, beta, scale, count))
        ub, th, vb, res = ritz(B, beta)
        conv = jnp.all(res[:k] <= tol * th[0])
        # thick restart: keep the leading Ritz vectors, continue from p_p
        Pn = jnp.zeros_like(P)
        Pn = Pn.at[:keep].set(jnp.matmul(vb[:, :keep].T, P[:p], precision=_HIGHEST))
        Pn = Pn.at[keep].set(P[p])
        Qn = jnp.zeros_like(Q).at[:keep].set(jnp.matmul(ub[:, :keep].T, Q, precision=_HIGHEST))
        Bn = jnp.zeros_like(B).at[jnp.arange(keep), jnp.arange(keep)].set(th[:keep].astype(dtype))
        # on convergence keep the unrestarted state (the triplets come from it)
        sel = lambda a, b: jnp.where(conv, a, b)  # noqa: E731
        return (sel(P, Pn), sel(Q, Qn), sel(B, Bn), beta, scale, count, jnp.asarray(keep, jnp.int32), conv,
                res)

    def cond(state):
        scale, count, conv = state[4], state[5], state[7]
        return (~conv) & (count < maxiter) & jnp.isfinite(scale)  # NaN in A: stop, NaN out

    init = (P, Q, B, jnp.zeros((), rdt), jnp.zeros((), rdt), jnp.zeros((), jnp.int32),
            jnp.zeros((), jnp.int32), jnp.zeros((), bool), jnp.zeros((p,), rdt))
    # the first cycle runs unconditionally
    state = cycle(init)
    P, Q, B, beta, scale, count, _, conv, res = lax.while_loop(cond, cycle, state)
    # converged: the unrestarted state.  Not converged: the restarted one, whose
    # B = diag(theta_keep) holds the kept Ritz pairs (res: their last estimates)
    ub, th, vbt = _small_svd(B)
    vb = jnp.conj(vbt.T)
    u = jnp.matmul(Q.T, ub[:, :k], precision=_HIGHEST)
    v = jnp.matmul(P[:p].T, vb[:, :k], precision=_HIGHEST)
    s = th[:k]
    res_k = res[:k] / jnp.where(th[0] > 0, th[0], 1.0)
    nxt = th[k] if p > k else jnp.zeros((), rdt)
    conv_k = res[:k] <= tol * th[0]
    return KrylovResult(u, s, v, res_k, count, conv_k, nxt)
