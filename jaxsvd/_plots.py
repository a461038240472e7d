"""PNG figures for the demo and ``python -m jaxsvd figures``.

matplotlib is imported inside each function (the library works without it;
``pip install jaxsvd[plot]``).  The functions take numpy arrays that the caller
computed (closed form and reference), so plotting does no differentiation
except :func:`taylor_error_figure`, which evaluates sigma(A + tH) with numpy.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np


def _plt():
    try:
        import matplotlib
    except ImportError:  # pragma: no cover - optional dependency
        raise ImportError("figures need matplotlib: pip install 'jaxsvd[plot]'") from None
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _panel(fig, ax, img, title, cmap="RdBu_r", sym=True, label=None):
    lim = float(np.nanmax(np.abs(img))) if np.isfinite(img).any() else 1.0
    kw = dict(vmin=-lim, vmax=lim) if sym else {}
    im = ax.imshow(img, cmap=cmap, aspect="auto", interpolation="nearest", **kw)
    ax.set_title(title, fontsize=10)
    cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
    cb.ax.tick_params(labelsize=8)
    if label:
        cb.set_label(label, fontsize=8)
    ax.tick_params(labelsize=8)
    return im


def _triptych(path, rows, row_label, xlabel, ylabel, suptitle):
    """One row per matrix: closed form | autodiff | difference."""
    plt = _plt()
    fig, axes = plt.subplots(len(rows), 3, figsize=(14, 4.2 * len(rows)), squeeze=False)
    for i, (name, ours, ref) in enumerate(rows):
        diff = ours - ref
        _panel(fig, axes[i, 0], ours, f"{name}: closed form (jaxsvd)")
        _panel(fig, axes[i, 1], ref, f"{name}: autodiff through jnp.linalg.svd")
        err = np.nanmax(np.abs(diff)) / max(np.nanmax(np.abs(ref)), 1e-300)
        _panel(
            fig, axes[i, 2], diff, f"{name}: difference (max rel. {err:.1e})", label="closed form - autodiff"
        )
        if not np.any(diff):
            axes[i, 2].text(
                0.5,
                0.5,
                "identical to the last bit",
                ha="center",
                va="center",
                transform=axes[i, 2].transAxes,
                fontsize=11,
                color="0.3",
            )
        for ax in axes[i]:
            ax.set_xlabel(xlabel, fontsize=9)
            ax.set_ylabel(ylabel, fontsize=9)
    fig.suptitle(suptitle, fontsize=12)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def jacobian_figure(path, cases):
    """The seed paper's Figure 2: Jacobians of all singular values.

    Args:
      path: output PNG.
      cases: list of (name, closed form (r, m, n), reference (r, m, n)).
    Row k of each image is vec(d sigma_k / dA) (column-major, the paper's vec).
    """
    rows = []
    for name, ours, ref in cases:
        r, m, n = ours.shape
        vec = lambda x, r=r, m=m, n=n: np.asarray(x).transpose(0, 2, 1).reshape(r, m * n)  # noqa: E731
        rows.append((name, vec(ours), vec(ref)))
    r, m, n = cases[0][1].shape
    return _triptych(
        path,
        rows,
        "k",
        f"vec(A) index (column-major, {m}x{n})",
        "singular value k",
        f"Jacobians d sigma_k / dA = u_k v_k^T of a {m}x{n} matrix (seed paper, Figure 2)",
    )


def hessian_figure(path, cases, k=0):
    """The seed paper's Figure 3: Hessian of sigma_k in the vec layout.

    Args:
      path: output PNG.
      cases: list of (name, closed form (mn, mn) vec layout, reference (m, n, m, n) tensor).
    """
    rows = []
    for name, ours, ref in cases:
        m, n = ref.shape[:2]
        rows.append((name, np.asarray(ours), np.asarray(ref).transpose(1, 0, 3, 2).reshape(m * n, m * n)))
    m, n = cases[0][2].shape[:2]
    return _triptych(
        path,
        rows,
        "",
        "vec(A) index (column-major)",
        "vec(A) index (column-major)",
        f"Hessian d^2 sigma_{k + 1} / d vec(A)^2 of a {m}x{n} matrix, {m * n}x{m * n} (seed paper, Figure 3)",
    )


def taylor_error_figure(path, a, h, derivs, k=0, title=""):
    """Taylor-polynomial error |sigma_k(A + tH) - sum_{j<=K} D^j t^j / j!| against t, K = 1..order.

    sigma_k(A + tH) comes from numpy's LAPACK SVD; the derivatives ``derivs``
    (shape (order + 1, r)) from jaxsvd.  On log-log axes each curve has slope
    K + 1 until it reaches rounding error.
    """
    plt = _plt()
    a, h, derivs = np.asarray(a), np.asarray(h), np.asarray(derivs)
    order = derivs.shape[0] - 1
    # step sizes relative to the scale of the problem
    t = np.logspace(-2.5, 0, 30) * np.linalg.norm(a, 2) / np.linalg.norm(h, 2) * 0.1
    exact = np.array([np.linalg.svd(a + ti * h, compute_uv=False)[k] for ti in t])
    fig, ax = plt.subplots(figsize=(7.5, 5.5))
    colors = plt.cm.viridis(np.linspace(0, 0.9, order))
    floor = 4 * np.finfo(np.float64).eps * abs(derivs[0, k])
    for K in range(1, order + 1):
        poly = sum(derivs[j, k] * t**j / math.factorial(j) for j in range(K + 1))
        err = np.abs(exact - poly)
        ax.loglog(t, np.maximum(err, 1e-300), "o-", ms=3, color=colors[K - 1], label=f"K = {K}")
        # a reference line of slope K + 1 through the point where the error is cleanest
        ok = err > 100 * floor
        if ok.any():
            i = np.argmax(ok)
            ax.loglog(t[i:], err[i] * (t[i:] / t[i]) ** (K + 1), ":", color=colors[K - 1], lw=1)
    ax.axhline(floor, color="grey", lw=0.8, ls="--")
    ax.text(t[0], floor * 1.6, "rounding level", fontsize=8, color="grey")
    top = max(np.max(np.abs(exact - derivs[0, k] - derivs[1, k] * t)), floor) * 10
    ax.set_ylim(floor / 10, top)
    ax.set_xlabel("step size t")
    ax.set_ylabel(f"|sigma_{k + 1}(A + tH) - Taylor polynomial of order K|")
    ax.set_title(
        f"Taylor error of sigma_{k + 1} along a direction H {title}\n"
        "dotted: slope K + 1 (exact sigma from numpy LAPACK, derivatives from jaxsvd)",
        fontsize=10,
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(title="order", fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def paper_series_figure(path, series, k=1):
    """Complete series vs the seed paper's printed chain-term formula, orders 1..K.

    Args:
      series: list of (name, true coefficients (K + 1,), chain coefficients (K + 1,)).
    """
    plt = _plt()
    fig, axes = plt.subplots(1, len(series), figsize=(6.2 * len(series), 4.8), squeeze=False)
    for ax, (name, true, chain) in zip(axes[0], series, strict=True):
        order = len(true) - 1
        n = np.arange(1, order + 1)
        ax.plot(n, true[1:], "o-", color="C0", ms=7, label="complete series (jaxsvd)")
        ax.plot(n, chain[1:], "s--", color="C3", ms=6, label="paper's printed formula (chain terms)")
        ax.set_yscale("symlog", linthresh=1.0)
        ax.axvspan(2.5, order + 0.5, color="C3", alpha=0.06)
        ax.text(
            2.6, 0.02, "formula wrong from n = 3", transform=ax.get_xaxis_transform(), color="C3", fontsize=8
        )
        ax.set_xticks(n)
        ax.set_xlabel("order n")
        ax.set_ylabel(f"Taylor coefficient sigma_{k + 1}^(n)  (symlog)")
        ax.set_title(f"{name}: sigma_{k + 1}(A + xH) = sum_n sigma^(n) x^n", fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    fig.suptitle("The complete perturbation series vs the seed paper's Theorem 3.1 / 4.2", fontsize=12)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
