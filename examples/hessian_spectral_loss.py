"""jax.hessian of a loss built on individual singular values.

The loss penalises a badly conditioned weight matrix W (m x n):

    L(W) = log(sigma_1(W) / sigma_r(W)) + 0.5 * ||W - W0||_F^2

Its Hessian (mn x mn) is computed three ways and compared:

1. ``jax.hessian`` through ``jaxsvd.svdvals`` (perturbation-series rules);
2. ``jax.hessian`` through ``jnp.linalg.svdvals`` (JAX's own rule);
3. by hand from the closed forms: with g_k = grad sigma_k = ``jaxsvd.jacobian(W)[k]``
   and H_k = ``jaxsvd.hessian(W, k)``,
       Hess log sigma_k = H_k / sigma_k - g_k (x) g_k / sigma_k^2,
   so Hess L = Hess log sigma_1 - Hess log sigma_r + I.

Then one Newton step on L shows the Hessian in use.

    python examples/hessian_spectral_loss.py [--m 24 --n 40]

Time: about 10 s of CPU time with the defaults (measured on a
busy 2-core machine; wall time depends on the load).  Output is printed line by line.
"""

from __future__ import annotations

import argparse
import sys
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import jaxsvd  # noqa: E402


def make_loss(svdvals, w0):
    def loss(w):
        s = svdvals(w)
        return jnp.log(s[0] / s[-1]) + 0.5 * jnp.sum((w - w0) ** 2)

    return loss


def closed_form_hessian(w):
    m, n = w.shape
    s, jac = jaxsvd.svdvals(w), jaxsvd.jacobian(w)

    def hess_log(k):
        g = jac[k]
        return jaxsvd.hessian(w, k) / s[k] - jnp.einsum("ij,kl->ijkl", g, g) / s[k] ** 2

    eye = jnp.eye(m * n, dtype=w.dtype).reshape(m, n, m, n)
    return hess_log(0) - hess_log(min(m, n) - 1) + eye


def timed(f, *args, repeats=5):
    t = time.perf_counter()
    out = f(*args)
    jax.block_until_ready(out)
    first = time.perf_counter() - t
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(f(*args))
        ts.append(time.perf_counter() - t)
    return out, first, float(np.median(ts))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--m", type=int, default=24)
    p.add_argument("--n", type=int, default=40)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    w0 = jnp.asarray(rng.standard_normal((args.m, args.n)))
    w = w0 + 0.1 * jnp.asarray(rng.standard_normal((args.m, args.n)))
    loss_ours, loss_jnp = make_loss(jaxsvd.svdvals, w0), make_loss(jnp.linalg.svdvals, w0)
    routes = {
        "jax.hessian through jaxsvd.svdvals": jax.jit(jax.hessian(loss_ours)),
        "jax.hessian through jnp.linalg.svdvals": jax.jit(jax.hessian(loss_jnp)),
        "closed forms (jaxsvd.hessian, jacobian)": jax.jit(closed_form_hessian),
    }
    out = {}
    print(
        f"W: {args.m}x{args.n}, condition number {float(jnp.linalg.cond(w)):.3f}, "
        f"Hessian {args.m * args.n}x{args.m * args.n}"
    )
    for name, f in routes.items():
        out[name], first, run = timed(f, w)
        print(f"  {name:42s} first call {first:6.2f} s, then {run * 1e3:8.2f} ms")
    ref = out["jax.hessian through jnp.linalg.svdvals"]
    for name, h in out.items():
        err = float(jnp.max(jnp.abs(h - ref)) / jnp.max(jnp.abs(ref)))
        print(f"  {name:42s} max rel. difference to the jnp route: {err:.1e}")
    # one Newton step on L (the Hessian is positive definite near W0 here)
    mn = args.m * args.n
    hmat = out["closed forms (jaxsvd.hessian, jacobian)"].reshape(mn, mn)
    grad = jax.grad(loss_ours)(w).reshape(mn)
    step = jnp.linalg.solve(hmat, grad).reshape(w.shape)
    grad_after = jnp.linalg.norm(jax.grad(loss_ours)(w - step))
    print(
        f"  Newton step: L {float(loss_ours(w)):.6f} -> {float(loss_ours(w - step)):.6f}, "
        f"|grad| {float(jnp.linalg.norm(grad)):.2e} -> {float(grad_after):.2e}"
    )


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)  # progress shows at once, through a pipe too
    main()
