"""The seed paper's section 7 experiments, end to end, with jaxsvd.

Luo's paper checks its Jacobian (Lemma 5.1) and Hessian (Lemma 6.1) of a
singular value against autodiff on 6 x 10 matrices drawn from N(0, 1) and
U(0, 1) with random seed 1 (its Figures 2 and 3).  Here:

1. the closed forms ``jaxsvd.jacobian`` / ``jaxsvd.hessian`` against
   ``jax.jacfwd`` / ``jax.hessian`` through ``jnp.linalg.svd``, all k;
2. the higher orders the paper's general formula (Theorem 4.2) is about:
   ``jaxsvd.derivatives`` up to order 6 against nested ``jax.jvp`` through
   ``jnp.linalg.svd`` -- the complete series agrees, the paper's printed
   chain-term formula does not from order 3 on;
3. the paper's Figures 2 and 3 (if matplotlib is installed).

    python examples/paper_experiments.py [--out DIR]

(``python -m jaxsvd demo`` runs the same checks with a table and more figures.)

Time: about 18 s of CPU time with the defaults (measured on a
busy 2-core machine; wall time depends on the load).  Output is printed line by line.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import jaxsvd  # noqa: E402
from jaxsvd._paper import chain_coefficients  # noqa: E402  (the paper's formula, for comparison)


def rel(x, ref):
    x, ref = np.asarray(x), np.asarray(ref)
    return float(np.max(np.abs(x - ref)) / np.max(np.abs(ref)))


def nested_jvp(a, h, order):
    fns = [lambda t: jnp.linalg.svdvals(a + t * h)]
    for _ in range(order):
        fns.append(lambda t, g=fns[-1]: jax.jvp(g, (t,), (jnp.ones(()),))[1])
    return jnp.stack([g(jnp.zeros(())) for g in fns])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="paper-figures", help="folder for the figures")
    args = p.parse_args()
    rng = np.random.default_rng(1)  # the paper: "random seed 1", 6 x 10
    a_gauss, h = rng.standard_normal((6, 10)), rng.standard_normal((6, 10))
    a_unif = rng.uniform(size=(6, 10))
    results = {}
    for name, a in (("N(0,1)", a_gauss), ("U(0,1)", a_unif)):
        a, hh = jnp.asarray(a), jnp.asarray(h)
        r = min(a.shape)
        jac, jac_ref = jaxsvd.jacobian(a), jax.jacfwd(jnp.linalg.svdvals)(a)
        hess = jnp.stack([jaxsvd.hessian(a, k) for k in range(r)])
        hess_ref = jax.jit(jax.hessian(jnp.linalg.svdvals))(a)
        print(f"{name}: singular values {np.round(np.asarray(jaxsvd.svdvals(a)), 4)}")
        print(f"  Jacobian (Lemma 5.1) vs autodiff:  max rel. error {rel(jac, jac_ref):.1e}")
        print(f"  Hessian  (Lemma 6.1) vs autodiff:  max rel. error {rel(hess, hess_ref):.1e}")
        d = jaxsvd.derivatives(a, hh, 6)
        d_ref = jax.jit(nested_jvp, static_argnums=2)(a, hh, 6)
        fact = np.array([math.factorial(j) for j in range(7)])
        chain = chain_coefficients(np.asarray(a), 1, [h], 6) * fact
        print("  D^n sigma_2[H,...,H]   n:  " + "  ".join(f"{n:>10d}" for n in range(1, 7)))
        print("    jaxsvd.derivatives     " + "  ".join(f"{v:>10.4g}" for v in np.asarray(d[1:, 1])))
        print("    nested jvp (jnp)       " + "  ".join(f"{v:>10.4g}" for v in np.asarray(d_ref[1:, 1])))
        print("    paper, Theorem 4.2     " + "  ".join(f"{v:>10.4g}" for v in chain[1:]))
        print(f"  derivatives vs nested jvp, orders 1..6: max rel. error {rel(d[1:], d_ref[1:]):.1e}")
        results[name] = (jac, jac_ref, hess[0], hess_ref[0])
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no figures (pip install 'jaxsvd[plot]')")
        return
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    m, n = a_gauss.shape
    vec_j = lambda x: np.asarray(x).transpose(0, 2, 1).reshape(x.shape[0], -1)  # noqa: E731
    vec_h = lambda x: np.asarray(x).transpose(1, 0, 3, 2).reshape(m * n, m * n)  # noqa: E731
    for fig_no, (what, idx, vec) in enumerate(
        (("Jacobians of all singular values", (0, 1), vec_j), ("Hessian of sigma_1", (2, 3), vec_h)), start=2
    ):
        fig, axes = plt.subplots(2, 3, figsize=(13, 8))
        for row, (name, res) in enumerate(results.items()):
            ours, ref = vec(res[idx[0]]), vec(res[idx[1]])
            for ax, img, title in zip(
                axes[row],
                (ours, ref, ours - ref),
                ("closed form", "autodiff (jnp.linalg.svd)", "difference"),
                strict=True,
            ):
                lim = max(np.abs(img).max(), 1e-300)
                im = ax.imshow(img, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
                ax.set_title(f"{name}: {title}", fontsize=10)
                ax.set_xlabel("vec(A) index (column-major)")
                fig.colorbar(im, ax=ax, fraction=0.046)
        fig.suptitle(f"{what}, {m}x{n} (seed paper, Figure {fig_no})")
        fig.tight_layout()
        path = out / f"figure{fig_no}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        print(f"wrote {path}")


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)  # progress shows at once, through a pipe too
    main()
