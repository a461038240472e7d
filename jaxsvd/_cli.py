"""The command line: ``python -m jaxsvd`` (also installed as ``jaxsvd``).

Subcommands: ``demo`` (the seed paper's 6x10 experiments, checked against
independent references, with a table and figures), ``check`` (the same checks
on given or random matrices), ``figures``, ``taylor``, ``hessian``, ``bench``
and ``mc`` (Monte Carlo, when available).  Only jaxsvd's public functions are
used for the results; the references are JAX's own rules through
``jnp.linalg.svd``, numpy's LAPACK SVD and finite differences.

Errors in the input (a bad file, shape or option) end with one line on stderr
and exit status 2; a failed check ends with exit status 1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

try:  # the Monte Carlo subcommand lives with the montecarlo module
    from . import _mc_cli
except ImportError:  # pragma: no cover - depends on the checkout
    _mc_cli = None

PROG = "jaxsvd"
DEMO_SHAPE = (6, 10)
DEMO_SEED = 1  # the seed paper's section 7 ("random seed 1", 6 x 10)


class CLIError(Exception):
    """A user error: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage block
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


# ---------------------------------------------------------------------------
# input
# ---------------------------------------------------------------------------


def load_matrix(path, array: str | None = None, what: str = "matrix") -> np.ndarray:
    """Read a real 2-D matrix from .npy, .npz (one named array) or .csv -- never with pickle."""
    p = Path(path)
    if not p.is_file():
        raise CLIError(f"{what} file {str(p)!r} does not exist")
    suffix = p.suffix.lower()
    try:
        if suffix == ".npy":
            x = np.load(p, allow_pickle=False)
        elif suffix == ".npz":
            with np.load(p, allow_pickle=False) as z:
                names = list(z.files)
                if array is not None:
                    if array not in names:
                        raise CLIError(
                            f"{what} file {p.name} has no array {array!r} (it has: {', '.join(names)})"
                        )
                    name = array
                elif len(names) == 1:
                    name = names[0]
                elif not names:
                    raise CLIError(f"{what} file {p.name} holds no arrays")
                else:
                    raise CLIError(
                        f"{what} file {p.name} holds several arrays ({', '.join(names)}): "
                        "choose one with --array NAME"
                    )
                x = z[name]
        elif suffix == ".csv":
            x = np.loadtxt(p, delimiter=",", ndmin=2, dtype=np.float64)
        else:
            raise CLIError(
                f"{what} file {p.name}: unknown format {suffix or '(none)'!r}; use .npy, .npz or .csv"
            )
    except CLIError:
        raise
    except ValueError as e:  # pickled objects, unparsable csv, corrupt files
        raise CLIError(f"cannot read {what} file {p.name}: {str(e).splitlines()[0]}") from None
    except (OSError, EOFError) as e:
        raise CLIError(f"cannot read {what} file {p.name}: {e}") from None
    except Exception as e:  # noqa: BLE001 - zipfile.BadZipFile and friends
        raise CLIError(f"cannot read {what} file {p.name}: {type(e).__name__}: {e}") from None
    x = np.asarray(x)
    if x.dtype.kind not in "fiub":
        raise CLIError(f"{what} in {p.name} must be real numbers; got dtype {x.dtype}")
    if x.ndim != 2:
        raise CLIError(f"{what} in {p.name} must be 2-D (m, n); got shape {x.shape}")
    if 0 in x.shape:
        raise CLIError(f"{what} in {p.name} is empty; got shape {x.shape}")
    x = x.astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise CLIError(f"{what} in {p.name} contains NaN or infinity")
    return x


# ---------------------------------------------------------------------------
# output helpers
# ---------------------------------------------------------------------------


def _jsonable(x):
    x = np.asarray(x, dtype=np.float64)
    return (
        [None if not math.isfinite(v) else v for v in x.ravel().tolist()]
        if x.ndim == 1
        else [_jsonable(row) for row in x]
    )


@contextlib.contextmanager
def _progress(description: str, total: int, enabled: bool = True):
    """A rich progress bar on stderr (a no-op without rich or when disabled)."""
    bar = None
    if enabled:
        try:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
        except ImportError:
            bar = None
        else:
            bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            )
    if bar is None:
        yield lambda desc=None: None
        return
    with bar:
        task = bar.add_task(description, total=total)

        def step(desc=None):
            bar.update(task, advance=1, **({"description": desc} if desc else {}))

        yield step


def _print_table(title, columns, rows, file=None):
    file = file or sys.stdout
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        Console = None
    if Console is not None:
        table = Table(title=title)
        for c in columns:
            table.add_column(c, justify="right" if c in ("rel. error", "tolerance") else "left")
        for r in rows:
            table.add_row(*[str(x) for x in r])
        Console(file=file, width=max(120, min(160, _term_width()))).print(table)
        return
    widths = [max(len(str(c)), *(len(str(r[i])) for r in rows)) for i, c in enumerate(columns)]
    print(title, file=file)
    print("  ".join(str(c).ljust(w) for c, w in zip(columns, widths, strict=True)), file=file)
    for r in rows:
        print("  ".join(str(x).ljust(w) for x, w in zip(r, widths, strict=True)), file=file)


def _term_width():
    try:
        return os.get_terminal_size().columns
    except OSError:
        return 100


def _fmt(x):
    return "nan" if not math.isfinite(x) else f"{x:.1e}"


# ---------------------------------------------------------------------------
# references (independent of jaxsvd) and the checks
# ---------------------------------------------------------------------------


def _rel_err(x, ref) -> float:
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


def _refs():
    global _REFS
    if _REFS is None:
        _REFS = _references()
    return _REFS


def _fd_derivatives(a, h, order: int):
    """Central finite differences of t -> svdvals(a + t h) (numpy LAPACK), orders 1..min(order, 2)."""
    sv = lambda t: np.linalg.svd(a + t * h, compute_uv=False)  # noqa: E731
    t = 1e-3 * max(np.linalg.norm(a, 2), 1e-300) / max(np.linalg.norm(h, 2), 1e-300)
    out = {}
    f = {j: sv(j * t) for j in (-2, -1, 0, 1, 2)}
    out[1] = (f[-2] - 8 * f[-1] + 8 * f[1] - f[2]) / (12 * t)
    if order >= 2:
        out[2] = (-f[-2] + 16 * f[-1] - 30 * f[0] + 16 * f[1] - f[2]) / (12 * t * t)
    return out


def _taylor_tol(j: int) -> float:
    return 1e-9 if j <= 4 else 1e-7


def compute_case(a, h, order: int, *, full_hessian: bool = True, step=lambda desc=None: None):
    """Everything the demo / check / figures need for one matrix, as numpy arrays."""
    import jax
    import jax.numpy as jnp

    import jaxsvd

    nested_jvp, jac_ref, hess_ref, hvp_ref = _refs()
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
        all_h = jax.jit(lambda x: jnp.stack([jaxsvd.hessian(x, k) for k in ks]))
        out["hess"] = np.asarray(all_h(a_j))
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
    out["taylor_fd"] = _fd_derivatives(a, h, order)
    return out


def case_rows(name: str, c: dict, order: int):
    """Rows (check, matrix, reference, rel. error, tolerance, ok) for one case."""
    rows = []

    def add(check, ref, err, tol):
        rows.append([check, name, ref, err, tol, bool(err <= tol)])

    add("singular values", "numpy.linalg.svd (LAPACK)", _rel_err(c["s"], c["s_ref"]), 1e-12)
    add("U S V^T = A", "the matrix", _rel_err(c["recon"], c["a"]), 1e-12)
    add("Jacobian (all k)", "jnp.linalg.svd: jacfwd", _rel_err(c["jac"], c["jac_ref"]), 1e-10)
    if "hess" in c:
        ks = c["hvp_ks"]
        add(
            f"Hessian (k = {ks[0]}..{ks[-1]})",
            "jnp.linalg.svd: hessian",
            _rel_err(c["hess"], c["hess_ref"][ks]),
            1e-10,
        )
        m, n = c["a"].shape
        vec_ref = c["hess_ref"][0].transpose(1, 0, 3, 2).reshape(m * n, m * n)
        add(
            "Hessian, vec layout (k = 0)",
            "jnp.linalg.svd: hessian, vec",
            _rel_err(c["hess_vec0"], vec_ref),
            1e-10,
        )
    add("HVP", "jnp.linalg.svd: jvp of jacrev", _rel_err(c["hvp"], c["hvp_ref"]), 1e-10)
    for j in range(1, order + 1):
        add(
            f"Taylor order {j}",
            "jnp.linalg.svd: nested jvp",
            _rel_err(c["taylor"][j], c["taylor_ref"][j]),
            _taylor_tol(j),
        )
    for j, fd in c["taylor_fd"].items():
        add(f"Taylor order {j}", "finite differences (numpy)", _rel_err(c["taylor"][j], fd), 1e-6)
    return rows


def _format_rows(rows):
    return [[r[0], r[1], r[2], _fmt(r[3]), f"{r[4]:.0e}", "ok" if r[5] else "FAIL"] for r in rows]


def paper_cases(seed: int = DEMO_SEED, shape=DEMO_SHAPE):
    """The seed paper's section 7 setup: N(0,1) and U(0,1) matrices, one Gaussian direction."""
    rng = np.random.default_rng(seed)
    a_n = rng.standard_normal(shape)
    h = rng.standard_normal(shape)
    a_u = rng.uniform(0.0, 1.0, shape)
    return [("N(0,1)", a_n, h), ("U(0,1)", a_u, h)]


def _rows_json(rows):
    return [
        {
            "check": r[0],
            "matrix": r[1],
            "reference": r[2],
            "rel_error": None if not math.isfinite(r[3]) else r[3],
            "tolerance": r[4],
            "ok": r[5],
        }
        for r in rows
    ]


def _paper_formula_rows(cases, order):
    from ._paper import chain_coefficients

    rows = []
    for name, c in cases:
        true = c["taylor"][:, 1] / np.array([math.factorial(j) for j in range(order + 1)])
        chain = chain_coefficients(c["a"], 1, [c["h"]], order)
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
# subcommands
# ---------------------------------------------------------------------------


def _have_matplotlib() -> bool:
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None


def _cmd_demo(args) -> int:
    order = args.order
    cases = paper_cases(args.seed)
    computed = []
    if not args.no_figures and not _have_matplotlib():
        print("jaxsvd demo: figures skipped (matplotlib is not installed: pip install 'jaxsvd[plot]')",
              file=sys.stderr)
        args.no_figures = True
    nsteps = len(cases) * 6 + (0 if args.no_figures else 1)
    t0 = time.perf_counter()
    with _progress("demo", nsteps, enabled=not args.quiet) as step:
        for name, a, h in cases:
            step(f"{name}: SVD")
            computed.append((name, compute_case(a, h, order, step=step)))
        paths = []
        if not args.no_figures:
            step("figures")
            paths = _write_figures(Path(args.out), computed, order)
    rows = [r for name, c in computed for r in case_rows(name, c, order)]
    ok = all(r[5] for r in rows)
    paper_rows = _paper_formula_rows(computed, order)
    if args.json:
        print(
            json.dumps(
                {
                    "ok": ok,
                    "shape": list(DEMO_SHAPE),
                    "seed": args.seed,
                    "order": order,
                    "checks": _rows_json(rows),
                    "figures": [str(p) for p in paths],
                    "seconds": time.perf_counter() - t0,
                },
                indent=2,
            )
        )
    else:
        m, n = DEMO_SHAPE
        _print_table(
            f"jaxsvd demo: the seed paper's {m}x{n} experiments (seed {args.seed}), direction H ~ N(0,1)",
            ["check", "matrix", "reference", "rel. error", "tolerance", ""],
            _format_rows(rows),
        )
        _print_table(
            "sigma_2 Taylor coefficients: complete series vs the seed paper's printed formula",
            ["matrix", "order", "jaxsvd", "paper (chain terms)", ""],
            paper_rows,
        )
        for p in paths:
            print(f"wrote {p}")
        print(
            f"{'all checks passed' if ok else 'SOME CHECKS FAILED'} "
            f"({sum(r[5] for r in rows)}/{len(rows)}, {time.perf_counter() - t0:.1f} s)"
        )
    return 0 if ok else 1


def _write_figures(out: Path, computed, order):
    from . import _plots
    from ._paper import chain_coefficients

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CLIError(f"cannot create output folder {str(out)!r}: {e}") from None
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
    series = []
    for name, c in computed:
        true = c["taylor"][:, 1] / np.array([math.factorial(j) for j in range(order + 1)])
        series.append((name, true, chain_coefficients(c["a"], 1, [c["h"]], order)))
    paths.append(_plots.paper_series_figure(out / "paper_series.png", series, k=1))
    return paths


def _cmd_figures(args) -> int:
    if not _have_matplotlib():
        raise CLIError("figures need matplotlib: pip install 'jaxsvd[plot]'")
    cases = paper_cases(args.seed)
    with _progress("figures", len(cases) * 6 + 1, enabled=not args.quiet) as step:
        computed = [(name, compute_case(a, h, args.order, step=step)) for name, a, h in cases]
        step("figures")
        paths = _write_figures(Path(args.out), computed, args.order)
    for p in paths:
        print(p)
    return 0


def _cmd_check(args) -> int:
    mats = []
    rng = np.random.default_rng(args.seed)
    if args.matrix:
        for path in args.matrix:
            a = load_matrix(path, args.array)
            mats.append((Path(path).name, a))
    else:
        m, n = args.random
        if m < 1 or n < 1:
            raise CLIError(f"--random needs positive sizes; got {m} {n}")
        for i in range(args.count):
            mats.append((f"random #{i} {m}x{n}", rng.standard_normal((m, n))))
    rows = []
    with _progress("check", len(mats) * 6, enabled=not args.quiet) as step:
        for name, a in mats:
            h = rng.standard_normal(a.shape)
            full = a.size <= args.max_hessian_size
            rows += case_rows(name, compute_case(a, h, args.order, full_hessian=full, step=step), args.order)
    ok = all(r[5] for r in rows)
    if args.json:
        print(json.dumps({"ok": ok, "checks": _rows_json(rows)}, indent=2))
    else:
        _print_table(
            "jaxsvd check",
            ["check", "matrix", "reference", "rel. error", "tolerance", ""],
            _format_rows(rows),
        )
        print(
            f"{'all checks passed' if ok else 'SOME CHECKS FAILED'} ({sum(r[5] for r in rows)}/{len(rows)})"
        )
    return 0 if ok else 1


def _cmd_taylor(args) -> int:
    import jax.numpy as jnp

    import jaxsvd

    a = load_matrix(args.matrix, args.array)
    h = load_matrix(args.direction, args.array, what="direction")
    if h.shape != a.shape:
        raise CLIError(f"direction has shape {h.shape}, but the matrix has shape {a.shape}")
    d = np.asarray(jaxsvd.derivatives(jnp.asarray(a), jnp.asarray(h), args.order))
    if args.json:
        print(json.dumps({"shape": list(a.shape), "order": args.order, "derivatives": _jsonable(d)}))
        return 0
    cols = [f"sigma_{i + 1}" for i in range(d.shape[1])]
    _print_table(
        f"D^j sigma(A)[H, ..., H], j = 0..{args.order}",
        ["j"] + cols,
        [[str(j)] + [f"{v:+.6e}" for v in row] for j, row in enumerate(d)],
    )
    return 0


def _cmd_hessian(args) -> int:
    import jax.numpy as jnp

    import jaxsvd

    a = load_matrix(args.matrix, args.array)
    r = min(a.shape)
    if not -r <= args.k < r:
        raise CLIError(f"--k {args.k} is out of range for a {a.shape[0]}x{a.shape[1]} matrix (0..{r - 1})")
    hess = np.asarray(jaxsvd.hessian(jnp.asarray(a), args.k, layout=args.layout))
    out = Path(args.out)
    if out.suffix != ".npy":
        raise CLIError(f"--out must end in .npy; got {str(out)!r}")
    try:
        np.save(out, hess)
    except OSError as e:
        raise CLIError(f"cannot write {str(out)!r}: {e}") from None
    bad = bool(np.isnan(hess).any())
    msg = {"out": str(out), "shape": list(hess.shape), "layout": args.layout, "k": args.k, "nan": bad}
    print(
        json.dumps(msg)
        if args.json
        else f"wrote {out}: shape {hess.shape} ({args.layout} layout)"
        + (" -- NaN: sigma_k is degenerate" if bad else "")
    )
    return 0


def _find_benchmarks() -> Path | None:
    for base in (Path.cwd(), Path(__file__).resolve().parents[1]):
        if (base / "benchmarks" / "bench_hessian.py").is_file():
            return base / "benchmarks"
    return None


def _cmd_bench(args) -> int:
    where = _find_benchmarks()
    names = ["bench_hessian.py", "bench_taylor.py"] if args.which == "all" else [f"bench_{args.which}.py"]
    if where is None:
        print(
            "The benchmarks ship with the source tree, not the wheel. From a checkout, run\n"
            "  python benchmarks/bench_hessian.py --quick\n  python benchmarks/bench_taylor.py --quick",
            file=sys.stderr,
        )
        return 1
    rc = 0
    for name in names:
        script = where / name
        if not script.is_file():
            print(f"{script} not found; skipped", file=sys.stderr)
            continue
        cmd = [sys.executable, str(script)] + ([] if args.full else ["--quick"])
        print("$ " + " ".join(cmd), flush=True)
        rc = max(rc, subprocess.call(cmd))
    return rc


# ---------------------------------------------------------------------------
# the parser
# ---------------------------------------------------------------------------


def _positive_int(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {v}")
    return v


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Derivatives of singular values to any order, in JAX: "
        "checks, figures and closed forms from the shell.",
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def quiet(p):
        p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser("demo", help="the seed paper's 6x10 experiments, checked, with a table and figures")
    p.add_argument("--out", default="jaxsvd-demo", help="folder for the PNG figures (default ./jaxsvd-demo)")
    p.add_argument("--seed", type=int, default=DEMO_SEED, help=f"numpy seed (default {DEMO_SEED})")
    p.add_argument("--order", type=_positive_int, default=6, help="highest Taylor order (default 6)")
    p.add_argument("--no-figures", action="store_true", help="skip the figures")
    p.add_argument("--json", action="store_true", help="print the checks as JSON")
    quiet(p)
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("check", help="check every rule against independent references (exit 1 on failure)")
    p.add_argument(
        "--matrix", nargs="+", metavar="FILE", help=".npy / .npz / .csv matrices (default: random)"
    )
    p.add_argument("--array", help="array name inside .npz files")
    p.add_argument(
        "--random",
        nargs=2,
        type=int,
        metavar=("M", "N"),
        default=(6, 10),
        help="shape of the random Gaussian matrices (default 6 10)",
    )
    p.add_argument("--count", type=_positive_int, default=2, help="how many random matrices (default 2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--order", type=_positive_int, default=4, help="highest Taylor order (default 4)")
    p.add_argument(
        "--max-hessian-size",
        type=int,
        default=400,
        metavar="MN",
        help="compare full Hessians only for m*n <= MN (HVPs always; default 400)",
    )
    p.add_argument("--json", action="store_true")
    quiet(p)
    p.set_defaults(func=_cmd_check)

    p = sub.add_parser(
        "figures", help="write the PNG figures (Jacobian, Hessian, Taylor error, paper formula)"
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--seed", type=int, default=DEMO_SEED)
    p.add_argument("--order", type=_positive_int, default=6)
    quiet(p)
    p.set_defaults(func=_cmd_figures)

    p = sub.add_parser("taylor", help="derivatives D^j sigma(A)[H, ..., H], j = 0..K")
    p.add_argument("--matrix", required=True, metavar="A", help="matrix file (.npy, .npz, .csv)")
    p.add_argument("--direction", required=True, metavar="H", help="direction file, same shape")
    p.add_argument("--order", required=True, type=_positive_int, metavar="K")
    p.add_argument("--array", help="array name inside .npz files")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_taylor)

    p = sub.add_parser("hessian", help="closed-form Hessian of sigma_k, saved to .npy")
    p.add_argument("--matrix", required=True, metavar="A", help="matrix file (.npy, .npz, .csv)")
    p.add_argument("--k", required=True, type=int, help="0-based index of the singular value (descending)")
    p.add_argument("--out", required=True, help="output .npy file")
    p.add_argument(
        "--layout",
        choices=("tensor", "vec"),
        default="tensor",
        help="tensor (m, n, m, n) or vec (mn, mn), column-major (default tensor)",
    )
    p.add_argument("--array", help="array name inside .npz files")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_hessian)

    p = sub.add_parser("bench", help="run the benchmarks (quick by default; from a source checkout)")
    p.add_argument("--full", action="store_true", help="the full sizes, not --quick")
    p.add_argument("--which", choices=("hessian", "taylor", "all"), default="hessian")
    p.set_defaults(func=_cmd_bench)

    if _mc_cli is not None:
        _mc_cli.register(sub)
    return parser


def _version():
    from . import __version__

    return f"{PROG} {__version__}"


def main(argv=None) -> int:
    """Entry point of ``python -m jaxsvd`` and the ``jaxsvd`` script; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version, usage errors
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return 2
    import jax

    jax.config.update("jax_enable_x64", True)  # the checks are float64
    try:
        return int(args.func(args) or 0)
    except (CLIError, ValueError, NotImplementedError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"{PROG} {args.command}: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
