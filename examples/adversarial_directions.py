"""Adversarial directions of a small network: the top singular vectors of its
input Jacobian, matrix-free, and the gradient of sigma_1 with respect to the
weights -- checked against the dense Jacobian.

The Jacobian J = d net(x) / dx at an input x0 is never formed: jaxsvd.svds
sees it as a ``lineax.JacobianLinearOperator`` (products J v by jvp, J^T u by
vjp).  v_1 is the input direction that the network amplifies most (the seed
paper's motivating application), sigma_1 the local Lipschitz constant, and
d sigma_1 / d weights -- the gradient a Lipschitz-regularised training step
needs -- flows through the implicit rule (d sigma_1 = u_1^T dJ v_1), never
through the Lanczos iterations.

    pip install 'jaxsvd[operators]' && python examples/adversarial_directions.py

Time: about 17 s of CPU time with the defaults (measured on a
busy 2-core machine; wall time depends on the load).  Output is printed line by line.
"""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
import lineax as lx

import jaxsvd

jax.config.update("jax_enable_x64", True)


def init(key, sizes):
    params = []
    for k, (a, b) in zip(jax.random.split(key, len(sizes) - 1), zip(sizes[:-1], sizes[1:], strict=True), strict=True):
        params.append(jax.random.normal(k, (b, a)) / jnp.sqrt(a))
    return params


def net(params, x):
    for w in params[:-1]:
        x = jnp.tanh(w @ x)
    return params[-1] @ x


def top_triplets(params, x0, k=3):
    op = lx.JacobianLinearOperator(lambda x, args: net(params, x), x0)
    return jaxsvd.svds(op, k)


def main():
    key = jax.random.key(0)
    params = init(key, [64, 128, 128, 10])
    x0 = jax.random.normal(jax.random.key(1), (64,))
    U, S, Vh = top_triplets(params, x0)

    jac = jax.jacfwd(lambda x: net(params, x))(x0)  # dense (10, 64): only for the check
    u, s, vh = jnp.linalg.svd(jac, full_matrices=False)
    print("sigma_1..3 (svds) :", S)
    print("sigma_1..3 (dense):", s[:3])
    print("|<v_1, v_1 dense>|:", float(jnp.abs(Vh[0] @ vh[0])))
    print("output change along +v_1 vs a random unit direction (step 1e-3):")
    r = jax.random.normal(jax.random.key(2), (64,))
    r = r / jnp.linalg.norm(r)
    for name, d in (("v_1", Vh[0]), ("random", r)):
        print(f"  {name:7s} {float(jnp.linalg.norm(net(params, x0 + 1e-3 * d) - net(params, x0)) / 1e-3):.4f}")

    g = jax.grad(lambda p: top_triplets(p, x0, 1).S[0])(params)
    g_ref = jax.grad(lambda p: jnp.linalg.svd(jax.jacfwd(lambda x: net(p, x))(x0), compute_uv=False)[0])(params)
    err = max(float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(b))) for a, b in zip(g, g_ref, strict=True))
    print(f"d sigma_1 / d weights: max relative difference to the dense-Jacobian route {err:.2e}")
    assert err < 1e-8, err


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)  # progress shows at once, through a pipe too
    main()
