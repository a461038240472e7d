"""The four failure modes of the usual eigh-derivative fixes, each on one worked
case, set against jaxsvd (the numbers quoted in docs/hermitian.md).

    python examples/hermitian_failure_modes.py

1. NaN          -- the Hessian of sum_i sqrt(w_i) at A = 2I through jnp.linalg.eigvalsh.
2. finite-wrong -- grad tr(G sqrtm(A)), sqrtm written through jnp.linalg.eigh, at a
                   rotated exact tie A = R diag(1, 1, 2, 3) R^T.
3. masking      -- the same gradient with the 1/(w_i - w_j) terms inside the tied
                   cluster set to 0 (pyscfad, CAGPJax, MatrixAlgebraKit, xitorch).
4. broadening   -- the same gradient with 1/x replaced by x/(x^2 + 1e-20)
                   (TensorFlow's _SafeReciprocal), at a near tie w_2 - w_1 = 1e-10.

References: the Daleckii--Krein formula in numpy (independent of jaxsvd) and,
for the tie, scipy.linalg.sqrtm of the block matrix [[A, G], [0, A]] (Frechet).
"""

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg as sl

import jaxsvd

jax.config.update("jax_enable_x64", True)


def rotated(w, seed=0):
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((len(w), len(w))))
    q = q * np.sign(np.diag(r))
    a = (q * w) @ q.T
    return 0.5 * (a + a.T)


def frechet_sqrtm(a, g):
    n = a.shape[0]
    big = np.block([[a, g], [np.zeros((n, n)), a]])
    return sl.sqrtm(big)[:n, n:].real


def eigh_route_grad(a, g, recip):
    """grad tr(G Q sqrt(w) Q^T) written out in the eigenbasis with a given reciprocal
    of the gaps (the rule every eigh-based tool uses, with its fix plugged in)."""
    w, q = np.linalg.eigh(a)
    f, fp = np.sqrt(w), 0.5 / np.sqrt(w)
    gt = q.T @ (0.5 * (g + g.T)) @ q
    d = w[None, :] - w[:, None]
    m = recip(d) * (f[None, :] - f[:, None])
    np.fill_diagonal(m, fp)
    return q @ (m * gt) @ q.T


def rel(x, ref):
    return float(np.max(np.abs(x - ref)) / np.max(np.abs(ref)))


def main():
    rng = np.random.default_rng(1)
    g = rng.standard_normal((4, 4))
    g = 0.5 * (g + g.T)
    out = {}

    # 1. NaN: Hessian of sum sqrt(w) at 2I
    e = jnp.asarray(g)
    hv_jnp = jax.jvp(jax.grad(lambda x: jnp.sum(jnp.sqrt(jnp.linalg.eigvalsh(x)))), (2.0 * jnp.eye(4),), (e,))[1]
    hv_ours = jax.jvp(jax.grad(lambda x: jnp.trace(jaxsvd.hermitian.sqrtm(x))), (2.0 * jnp.eye(4),), (e,))[1]
    ref = -0.25 * 2.0 ** -1.5 * g
    out["1 NaN: Hessian of sum sqrt(w) at 2I, jnp"] = "NaN" if np.isnan(hv_jnp).any() else rel(hv_jnp, ref)
    out["1 NaN: jaxsvd"] = rel(0.5 * (hv_ours + hv_ours.T), ref)

    # 2. finite-wrong at a rotated exact tie; 3. masking at the same point
    a = rotated(np.array([1.0, 1.0, 2.0, 3.0]))
    ref = frechet_sqrtm(a, g)

    def sqrtm_eigh(x):
        w, q = jnp.linalg.eigh(x)
        return (q * jnp.sqrt(w)[None, :]) @ q.T

    gj = jax.grad(lambda x: jnp.sum(jnp.asarray(g) * sqrtm_eigh(x)))(jnp.asarray(a))
    out["2 finite-wrong: grad tr(G sqrtm_eigh(A)) at R diag(1,1,2,3) R^T, jnp"] = rel(0.5 * (gj + gj.T), ref)
    w = np.linalg.eigvalsh(a)
    out["  (computed gap of the tie)"] = float(w[1] - w[0])
    gs = jax.grad(lambda x: jnp.sum(jnp.asarray(g) * jaxsvd.hermitian.sqrtm(x)))(jnp.asarray(a))
    out["2 finite-wrong: jaxsvd.hermitian.sqrtm"] = rel(0.5 * (gs + gs.T), ref)
    ge = jax.grad(lambda x: jnp.sum(jnp.asarray(g) * (lambda wq: (wq[1] * jnp.sqrt(wq[0])[None, :]) @ wq[1].T)(
        jaxsvd.eigh(x))))(jnp.asarray(a))
    out["2 the same eigh route through jaxsvd.eigh (cotangent check)"] = "NaN" if np.isnan(ge).all() else rel(ge, ref)
    mask = eigh_route_grad(a, g, lambda d: np.where(np.abs(d) < 1e-10, 0.0, 1.0 / np.where(d == 0, 1, d)))
    out["3 masking |gap| < 1e-10 (error, max-abs relative)"] = rel(mask, ref)
    out["3 masking (error, max-abs)"] = float(np.max(np.abs(mask - ref)))

    # 4. broadening at a near tie 1e-10: the reference is the exact divided difference
    a4 = rotated(np.array([1.0, 1.0 + 1e-10, 2.0, 3.0]), seed=2)
    w4, q4 = np.linalg.eigh(a4)
    f = np.sqrt(w4)
    dd = np.empty((4, 4))
    for i in range(4):
        for j in range(4):
            # divided difference of sqrt without cancellation: 1 / (sqrt w_i + sqrt w_j)
            dd[i, j] = 1.0 / (f[i] + f[j])
    ref4 = q4 @ (dd * (q4.T @ g @ q4)) @ q4.T
    broad = eigh_route_grad(a4, g, lambda d: d / (d * d + 1e-20))
    out["4 broadening x/(x^2+1e-20) at a near tie 1e-10"] = rel(broad, ref4)
    g4 = jax.grad(lambda x: jnp.sum(jnp.asarray(g) * jaxsvd.hermitian.sqrtm(x)))(jnp.asarray(a4))
    out["4 broadening: jaxsvd.hermitian.sqrtm"] = rel(0.5 * (g4 + g4.T), ref4)
    for k, v in out.items():
        print(f"{k:72s} {v if isinstance(v, str) else f'{v:.2e}'}")


if __name__ == "__main__":
    main()
