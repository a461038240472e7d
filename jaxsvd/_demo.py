"""The demo's computation: the seed paper's experiments, checked against independent references.

What ``python -m jaxsvd demo`` / ``check`` / ``figures`` compute, without the
command line around it (``jaxsvd/_cli.py`` parses, prints and sets the exit
status; nothing here prints or exits):

- :func:`paper_cases`: the seed paper's section 7 setup (6x10 N(0,1) and U(0,1)
  matrices, one Gaussian direction, numpy seed 1);
- :func:`compute_case`: for one matrix, jaxsvd's results (public functions only)
  beside the references: JAX's own rules through ``jnp.linalg.svd`` (jacfwd,
  hessian, jvp of jacrev, nested jvp), numpy's LAPACK SVD and central finite
  differences;
- :func:`case_rows`: the checks, ``[check, matrix, reference, rel. error,
  tolerance, ok]``;
- :func:`paper_series` / :func:`paper_formula_rows`: the Taylor coefficients of
  sigma_2 beside the seed paper's printed formula (chain terms only, wrong from
  order 3 on: docs/theory.md, "The complete series for one eigenvalue");
- :func:`write_figures`: the four PNG figures (matplotlib, ``jaxsvd[plot]``).

Layering: imports the public API, ``_paper`` and ``_plots``; never the CLI.
"""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path

import numpy as np

DEMO_SHAPE = (6, 10)
DEMO_SEED = 1  # the seed paper's section 7 ("random seed 1", 6 x 10)


# ---------------------------------------------------------------------------
# the cases
# ---------------------------------------------------------------------------


def paper_cases(seed: int = DEMO_SEED, shape=DEMO_SHAPE):
    """The seed paper's section 7 setup: N(0,1) and U(0,1) matrices, one Gaussian direction."""
    rng = np.random.default_rng(seed)
    a_n = rng.standard_normal(shape)
    h = rng.standard_normal(shape)
    a_u = rng.uniform(0.0, 1.0, shape)
    return [("N(0,1)", a_n, h), ("U(0,1)", a_u, h)]


# ---------------------------------------------------------------------------
# references (independent of jaxsvd)
# ---------------------------------------------------------------------------


def rel_err(x, ref) -> float:
    """max |x - ref| / max |ref|; NaN in the same places counts as agreement."""
    x, ref = np.asarray(x, np.float64), np.asarray(ref, np.float64)
    nx, nr = np.isnan(x), np.isnan(ref)
    if np.any(nx != nr):
        return math.inf
    if np.all(nr):
        return 0.0
    x, ref = x[~nr], ref[~nr]
    return float(np.max(np.abs(x - ref)) / max(float(np.max(np.abs(ref))), 1e-300))


def _references():
    """jit-compiled references through jnp.linalg.svd (JAX's own rules)."""
    import jax
    import jax.numpy as jnp

    @partial(jax.jit, static_argnums=2)
    def nested_jvp(a, h, order):
        f = lambda t: jnp.linalg.svdvals(a + t * h)  # noqa: E731
        fns = [f]
        for _ in range(order):
            fns.append(lambda t, g=fns[-1]: jax.jvp(g, (t,), (jnp.ones((), a.dtype),))[1])
        t0 = jnp.zeros((), a.dtype)
        return jnp.stack([g(t0) for g in fns])

    jac = jax.jit(jax.jacfwd(jnp.linalg.svdvals))
    hess = jax.jit(jax.hessian(jnp.linalg.svdvals))

    @jax.jit
    def hvp(a, h):
        return jax.jvp(jax.jacrev(jnp.linalg.svdvals), (a,), (h,))[1]

    return nested_jvp, jac, hess, hvp


_REFS = None


def references():
    """The (cached) jitted references: ``nested_jvp(a, h, order), jacfwd(a), hessian(a), hvp(a, h)``."""
    global _REFS
    if _REFS is None:
        _REFS = _references()
    return _REFS


def fd_derivatives(a, h, order: int):
    """Central finite differences of t -> svdvals(a + t h) (numpy LAPACK), orders 1..min(order, 2).

    The step is 1e-3 ||a|| / ||h||, or a hundredth of the distance along h to the nearest
    crossing of the block operator's eigenvalues (+-sigma_j, and 0 when m != n), if that is
    smaller: sigma_k(a + t h) is analytic within about that radius, and the 5-point
    formulas' truncation error grows like (step / radius)^4.  (A fixed step failed 5 of 1,200
    rows on 100 good 7x4 and 5x5 matrices of ``jaxsvd check --count 50``, by up to 91x the tolerance.)
    """
    sv = lambda t: np.linalg.svd(a + t * h, compute_uv=False)  # noqa: E731
    s, hn = sv(0.0), max(np.linalg.norm(h, 2), 1e-300)
    eig = np.concatenate([s, -s, np.zeros(1 if a.shape[0] != a.shape[1] else 0)])
    dist = np.abs(s[:, None] - eig[None, :])
    dist[np.arange(s.size), np.arange(s.size)] = np.inf  # sigma_k itself
    radius = float(np.min(dist, initial=np.inf)) / hn
    t = min(1e-3 * max(float(s[0]) if s.size else 0.0, 1e-300) / hn, 1e-2 * radius)
    out = {}
    f = {j: sv(j * t) for j in (-2, -1, 0, 1, 2)}
    out[1] = (f[-2] - 8 * f[-1] + 8 * f[1] - f[2]) / (12 * t)
    if order >= 2:
        out[2] = (-f[-2] + 16 * f[-1] - 30 * f[0] + 16 * f[1] - f[2]) / (12 * t * t)
    return out


def _taylor_tol(j: int) -> float:
    return 1e-9 if j <= 4 else 1e-7


# ---------------------------------------------------------------------------
# one case and its checks
# ---------------------------------------------------------------------------

CASE_STEPS = 5  # calls of ``step`` in one compute_case (for a progress bar's total)


def _all_hessians(a, ks):
    """The closed-form Hessians of sigma_k, k in ``ks``, stacked: one jitted function for every
    call (a new ``jax.jit(lambda ...)`` per matrix recompiled each time: ``check --count 50``)."""
    global _ALL_H
    if _ALL_H is None:
        import jax
        import jax.numpy as jnp

        import jaxsvd

        _ALL_H = jax.jit(lambda x, ks: jnp.stack([jaxsvd.hessian(x, k) for k in ks]), static_argnums=1)
    return _ALL_H(a, ks)


_ALL_H = None


def compute_case(a, h, order: int, *, full_hessian: bool = True, step=None):
    """Everything the demo / check / figures need for one matrix, as numpy arrays.

    ``step(name)``, if given, is called before each stage after the first with
    the stage's name (``CASE_STEPS`` times; e.g. a progress bar's ``advance(1, name)``).
    """
    import jax
    import jax.numpy as jnp

    import jaxsvd

    step = step or (lambda desc=None: None)
    nested_jvp, jac_ref, hess_ref, hvp_ref = references()
    a_j, h_j = jnp.asarray(a, jnp.float64), jnp.asarray(h, jnp.float64)
    m, n = a.shape
    r = min(m, n)
    out = {"a": a, "h": h}
    u, s, vt = jaxsvd.svd(a_j, full_matrices=False)
    out["s"] = np.asarray(s)
    out["s_ref"] = np.linalg.svd(a, compute_uv=False)
    out["recon"] = np.asarray((u * s[None, :]) @ vt)
    step("Jacobian")
    out["jac"] = np.asarray(jaxsvd.jacobian(a_j))
    out["jac_ref"] = np.asarray(jac_ref(a_j))
    ks = list(range(r)) if full_hessian else sorted({0, r // 2, r - 1})
    step("Hessian (closed form)")
    if full_hessian:
        out["hess"] = np.asarray(_all_hessians(a_j, tuple(ks)))
        out["hess_vec0"] = np.asarray(jaxsvd.hessian(a_j, 0, layout="vec"))
        step("Hessian (autodiff through jnp.linalg.svd)")
        out["hess_ref"] = np.asarray(hess_ref(a_j))
    else:
        step("Hessian (autodiff through jnp.linalg.svd)")
    out["hvp_ks"] = ks
    out["hvp"] = np.stack([np.asarray(jaxsvd.hvp(a_j, k, h_j)) for k in ks])
    ref_hvp = np.asarray(hvp_ref(a_j, h_j))
    out["hvp_ref"] = ref_hvp[ks]
    step("Taylor coefficients (jaxsvd.derivatives)")
    out["taylor"] = np.asarray(jax.jit(jaxsvd.derivatives, static_argnums=2)(a_j, h_j, order))
    step(f"nested jvp through jnp.linalg.svd, order {order}")
    out["taylor_ref"] = np.asarray(nested_jvp(a_j, h_j, order))
    out["taylor_fd"] = fd_derivatives(a, h, order)
    return out


def case_rows(name: str, c: dict, order: int):
    """Rows (check, matrix, reference, rel. error, tolerance, ok) for one case."""
    rows = []

    def add(check, ref, err, tol):
        rows.append([check, name, ref, err, tol, bool(err <= tol)])

    add("singular values", "numpy.linalg.svd (LAPACK)", rel_err(c["s"], c["s_ref"]), 1e-12)
    add("U S V^T = A", "the matrix", rel_err(c["recon"], c["a"]), 1e-12)
    add("Jacobian (all k)", "jnp.linalg.svd: jacfwd", rel_err(c["jac"], c["jac_ref"]), 1e-10)
    if "hess" in c:
        ks = c["hvp_ks"]
        add(
            f"Hessian (k = {ks[0]}..{ks[-1]})",
            "jnp.linalg.svd: hessian",
            rel_err(c["hess"], c["hess_ref"][ks]),
            1e-10,
        )
        m, n = c["a"].shape
        vec_ref = c["hess_ref"][0].transpose(1, 0, 3, 2).reshape(m * n, m * n)
        add(
            "Hessian, vec layout (k = 0)",
            "jnp.linalg.svd: hessian, vec",
            rel_err(c["hess_vec0"], vec_ref),
            1e-10,
        )
    add("HVP", "jnp.linalg.svd: jvp of jacrev", rel_err(c["hvp"], c["hvp_ref"]), 1e-10)
    for j in range(1, order + 1):
        add(
            f"Taylor order {j}",
            "jnp.linalg.svd: nested jvp",
            rel_err(c["taylor"][j], c["taylor_ref"][j]),
            _taylor_tol(j),
        )
    for j, fd in c["taylor_fd"].items():
        add(f"Taylor order {j}", "finite differences (numpy)", rel_err(c["taylor"][j], fd), 1e-6)
    return rows


# ---------------------------------------------------------------------------
# the seed paper's printed formula
# ---------------------------------------------------------------------------


def paper_series(computed, order: int, k: int = 1):
    """``[(name, complete, chain)]``: Taylor coefficients of sigma_k, jaxsvd's vs the paper's formula."""
    from ._paper import chain_coefficients

    scale = np.array([math.factorial(j) for j in range(order + 1)])
    return [
        (name, c["taylor"][:, k] / scale, chain_coefficients(c["a"], k, [c["h"]], order))
        for name, c in computed
    ]


def paper_formula_rows(computed, order: int):
    """Rows (matrix, order, jaxsvd, paper, agrees/differs) for sigma_2, orders 1..order."""
    rows = []
    for name, true, chain in paper_series(computed, order):
        for j in range(1, order + 1):
            rows.append(
                [
                    name,
                    str(j),
                    f"{true[j]:+.5g}",
                    f"{chain[j]:+.5g}",
                    "agrees" if abs(chain[j] - true[j]) <= 1e-9 * max(abs(true[j]), 1.0) else "differs",
                ]
            )
    return rows


# ---------------------------------------------------------------------------
# figures
# ---------------------------------------------------------------------------


def write_figures(out: Path, computed, order: int):
    """The four PNGs (Jacobian, Hessian, Taylor error, paper formula) into the existing folder ``out``."""
    from . import _plots

    out = Path(out)
    paths = [
        _plots.jacobian_figure(out / "jacobian.png", [(n, c["jac"], c["jac_ref"]) for n, c in computed]),
        _plots.hessian_figure(
            out / "hessian.png", [(n, c["hess_vec0"], c["hess_ref"][0]) for n, c in computed], k=0
        ),
    ]
    name, c = computed[0]
    paths.append(
        _plots.taylor_error_figure(
            out / "taylor_error.png",
            c["a"],
            c["h"],
            c["taylor"],
            k=0,
            title=f"(A ~ {name}, {c['a'].shape[0]}x{c['a'].shape[1]})",
        )
    )
    paths.append(_plots.paper_series_figure(out / "paper_series.png", paper_series(computed, order), k=1))
    return paths
