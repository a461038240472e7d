"""The spectral norm of a 4096 x 4096 matrix and its gradient, matrix-free,
side by side with the dense route (a full SVD inside jnp.linalg.norm(A, 2)).

    python examples/large_spectral_norm.py [--n 4096]

The gradient of sigma_1 is u_1 v_1^T; jaxsvd.svds gets (sigma_1, u_1, v_1) from a
few hundred matrix-vector products (thick-restart Golub--Kahan--Lanczos) and the
gradient from the implicit rule, so value + gradient cost a small multiple of
100 products with A, where the dense route costs a full SVD.  Errors are
against a float64 LAPACK reference on the same matrix.

Time: not measured at the default n = 4096 (minutes on a 2-core CPU, where the dense
SVD it compares against is slow); use --n 1024 for a shorter run.  Output is printed
line by line as it comes.
"""

from __future__ import annotations

import argparse
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import jaxsvd


def timed(f, *args):
    jax.block_until_ready(f(*args))  # compile + warm up
    t = time.perf_counter()
    out = jax.block_until_ready(f(*args))
    return time.perf_counter() - t, out


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n", type=int, default=4096)
    n = p.parse_args().n
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    ours = jax.jit(jax.value_and_grad(lambda a: jaxsvd.svds(a, 1).S[0]))
    dense = jax.jit(jax.value_and_grad(lambda a: jnp.linalg.norm(a, 2)))
    t1, (v1, g1) = timed(ours, a)
    t2, (v2, g2) = timed(dense, a)
    a64 = np.asarray(a, np.float64)
    u, s, vt = np.linalg.svd(a64)
    g_ref = np.outer(u[:, 0], vt[0])

    def rel(g):
        return float(np.linalg.norm(np.asarray(g, np.float64) - g_ref) / np.linalg.norm(g_ref))

    print(f"n = {n}, float32; relative gap (s1 - s2)/s1 = {(s[0] - s[1]) / s[0]:.2e}")
    print(f"{'route':28s} {'time [s]':>9s} {'value err':>10s} {'grad err':>10s}")
    print(f"{'jaxsvd.svds(a, 1)':28s} {t1:9.3f} {abs(float(v1) - s[0]) / s[0]:10.2e} {rel(g1):10.2e}")
    print(f"{'jnp.linalg.norm(a, 2)':28s} {t2:9.3f} {abs(float(v2) - s[0]) / s[0]:10.2e} {rel(g2):10.2e}")
    print(f"speed-up: {t2 / t1:.1f}x")


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)  # progress shows at once, through a pipe too
    main()
