"""The command line: ``python -m jaxsvd`` (also installed as ``jaxsvd``).

Subcommands: ``demo`` (the seed paper's 6x10 experiments, checked against
independent references, with a table and figures), ``check`` (the same checks
on given or random matrices), ``figures``, ``taylor``, ``hessian``, ``bench``
and ``mc`` (Monte Carlo, when available).  Only jaxsvd's public functions are
used for the results; the references are JAX's own rules through
``jnp.linalg.svd``, numpy's LAPACK SVD and finite differences.

A thin layer: parse, read the input files, call the public functions or the
demo's computation (``jaxsvd/_demo.py``), print, set the exit status.  The
progress bar is ``jaxsvd/_progress.py`` (shared with Monte Carlo); the ``mc``
subcommand is ``jaxsvd/_mc_cli.py``.

Errors in the input (a bad file, shape or option) end with one line on stderr
and exit status 2; a failed check ends with exit status 1.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from . import _demo
from ._demo import DEMO_SEED, DEMO_SHAPE
from ._progress import progress_bar

try:  # the Monte Carlo subcommand lives with the montecarlo module
    from . import _mc_cli
except ImportError:  # pragma: no cover - depends on the checkout
    _mc_cli = None

PROG = "jaxsvd"


class CLIError(Exception):
    """A user error: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage block
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


# ---------------------------------------------------------------------------
# input
# ---------------------------------------------------------------------------


# Every command reads its matrices here: .npy, .npz (one named array) and .csv
# as dense numpy arrays, never with pickle; load_operator also takes a scipy
# sparse .npz (scipy.sparse.save_npz, read back with scipy.sparse.load_npz,
# which does not unpickle either) as a jax.experimental.sparse.BCOO matrix,
# for the matrix-free commands.  A bad file is a CLIError: one line, exit 2.

_SPARSE_KEYS = frozenset({"format", "shape", "data"})  # what scipy.sparse.save_npz always writes


def _existing(path, what: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise CLIError(f"{what} file {str(p)!r} does not exist")
    return p


def _is_scipy_sparse(z) -> bool:
    """Whether an open .npz was written by scipy.sparse.save_npz (its keys and a 0-d format name)."""
    if not _SPARSE_KEYS <= set(z.files):
        return False
    try:
        fmt = z["format"]
    except ValueError:  # an object array: not scipy's, and not to be unpickled
        return False
    return fmt.ndim == 0 and fmt.dtype.kind in "SU"


def _read(p: Path, array: str | None, what: str, sparse: bool):
    """The raw contents of a matrix file: an ndarray, or (``sparse``) a scipy sparse matrix."""
    suffix = p.suffix.lower()
    try:
        if suffix == ".npy":
            return np.load(p, allow_pickle=False)
        if suffix == ".npz":
            with np.load(p, allow_pickle=False) as z:
                names = list(z.files)
                if array is None and _is_scipy_sparse(z):
                    if not sparse:
                        raise CLIError(
                            f"{what} file {p.name} is a scipy sparse matrix; "
                            "this command needs a dense one (.npy, .npz or .csv)"
                        )
                    return _read_scipy_sparse(p, what)
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
                return z[name]
        if suffix == ".csv":
            return np.loadtxt(p, delimiter=",", ndmin=2, dtype=np.float64)
        raise CLIError(f"{what} file {p.name}: unknown format {suffix or '(none)'!r}; use .npy, .npz or .csv")
    except CLIError:
        raise
    except ValueError as e:  # pickled objects, unparsable csv, corrupt files
        raise CLIError(f"cannot read {what} file {p.name}: {str(e).splitlines()[0]}") from None
    except (OSError, EOFError) as e:
        raise CLIError(f"cannot read {what} file {p.name}: {e}") from None
    except Exception as e:  # noqa: BLE001 - zipfile.BadZipFile and friends
        raise CLIError(f"cannot read {what} file {p.name}: {type(e).__name__}: {e}") from None


def _read_scipy_sparse(p: Path, what: str):
    try:
        import scipy.sparse
    except ImportError:
        raise CLIError(
            f"{what} file {p.name} is a scipy sparse matrix; reading it needs scipy: pip install scipy"
        ) from None
    x = scipy.sparse.load_npz(p)  # np.load(allow_pickle=False) inside
    if hasattr(x, "check_format"):  # csr, csc, bsr: indptr / indices consistent and in range
        x.check_format()  # full_check=True by default
    return x


def _check_real_2d(x, p: Path, what: str):
    if x.dtype.kind not in "fiub":
        raise CLIError(f"{what} in {p.name} must be real numbers; got dtype {x.dtype}")
    if len(x.shape) != 2:
        raise CLIError(f"{what} in {p.name} must be 2-D (m, n); got shape {tuple(x.shape)}")
    if 0 in x.shape:
        raise CLIError(f"{what} in {p.name} is empty; got shape {tuple(x.shape)}")


def _dense(x, p: Path, what: str) -> np.ndarray:
    x = np.asarray(x)
    _check_real_2d(x, p, what)
    x = x.astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise CLIError(f"{what} in {p.name} contains NaN or infinity")
    return x


def load_matrix(path, array: str | None = None, what: str = "matrix") -> np.ndarray:
    """Read a real 2-D matrix from .npy, .npz (one named array) or .csv -- never with pickle."""
    p = _existing(path, what)
    return _dense(_read(p, array, what, sparse=False), p, what)


def load_operator(path, array: str | None = None, what: str = "matrix"):
    """A real 2-D matrix from a file: a numpy array, or a BCOO matrix for a scipy sparse .npz.

    Dense files (.npy, .npz with one array or ``array``, .csv) as in
    :func:`load_matrix`.  An .npz written by ``scipy.sparse.save_npz`` (any
    format: csr, csc, coo, bsr, dia) is read with ``scipy.sparse.load_npz``
    (never with pickle; scipy is needed only then) and returned as a float64
    ``jax.experimental.sparse.BCOO`` of the same shape, without a dense copy.
    """
    p = _existing(path, what)
    x = _read(p, array, what, sparse=True)
    if isinstance(x, np.ndarray):
        return _dense(x, p, what)
    _check_real_2d(x, p, what)
    x = x.tocoo().astype(np.float64)
    if not np.all(np.isfinite(x.data)):
        raise CLIError(f"{what} in {p.name} contains NaN or infinity")
    from ._compat import bcoo_from_scipy

    return bcoo_from_scipy(x)


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
def _bar(description: str, total: int, args):
    """The progress bar on stderr (not with --quiet), as ``step(next_stage_name=None)``."""
    with progress_bar(total, description, enabled=not args.quiet, transient=True) as bar:
        yield lambda desc=None: bar.advance(1, desc)


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
# the checks as a table or JSON
# ---------------------------------------------------------------------------


def _format_rows(rows):
    return [[r[0], r[1], r[2], _fmt(r[3]), f"{r[4]:.0e}", "ok" if r[5] else "FAIL"] for r in rows]


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


# ---------------------------------------------------------------------------
# subcommands
# ---------------------------------------------------------------------------


def _have_matplotlib() -> bool:
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None


def _cmd_demo(args) -> int:
    order = args.order
    cases = _demo.paper_cases(args.seed)
    computed = []
    if not args.no_figures and not _have_matplotlib():
        print("jaxsvd demo: figures skipped (matplotlib is not installed: pip install 'jaxsvd[plot]')",
              file=sys.stderr)
        args.no_figures = True
    nsteps = len(cases) * (_demo.CASE_STEPS + 1) + (0 if args.no_figures else 1)
    t0 = time.perf_counter()
    with _bar("demo", nsteps, args) as step:
        for name, a, h in cases:
            step(f"{name}: SVD")
            computed.append((name, _demo.compute_case(a, h, order, step=step)))
        paths = []
        if not args.no_figures:
            step("figures")
            paths = _write_figures(args.out, computed, order)
    rows = [r for name, c in computed for r in _demo.case_rows(name, c, order)]
    ok = all(r[5] for r in rows)
    paper_rows = _demo.paper_formula_rows(computed, order)
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


def _write_figures(out, computed, order):
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CLIError(f"cannot create output folder {str(out)!r}: {e}") from None
    return _demo.write_figures(out, computed, order)


def _cmd_figures(args) -> int:
    if not _have_matplotlib():
        raise CLIError("figures need matplotlib: pip install 'jaxsvd[plot]'")
    cases = _demo.paper_cases(args.seed)
    with _bar("figures", len(cases) * _demo.CASE_STEPS + 1, args) as step:
        computed = [(name, _demo.compute_case(a, h, args.order, step=step)) for name, a, h in cases]
        step("figures")
        paths = _write_figures(args.out, computed, args.order)
    for p in paths:
        print(p)
    return 0


# The direction's own key stream (``--seed``, this constant and the matrix's bytes), so that
# it is never the matrix itself: with one stream, ``--matrix A.npy`` for A drawn from
# ``default_rng(0)`` got H = A, along which every derivative of order >= 2 is zero, and the
# relative errors against those zero references came out as 1.0 (7/12 FAIL on a good matrix).
_DIRECTION_STREAM = 0x6A78_7376_6468  # "jxsvdh"


def check_direction(a, seed: int) -> np.ndarray:
    """The Gaussian direction ``jaxsvd check`` uses for ``a``: its own stream, seeded by
    ``seed``, a constant and a hash of ``a`` (independent of how ``a`` was drawn)."""
    a = np.ascontiguousarray(a, np.float64)
    digest = hashlib.blake2b(a.tobytes() + repr(a.shape).encode(), digest_size=8).digest()
    ss = np.random.SeedSequence([_DIRECTION_STREAM, seed % 2**64, int.from_bytes(digest, "little")])
    return np.random.default_rng(ss).standard_normal(a.shape)


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
    with _bar("check", len(mats) * _demo.CASE_STEPS, args) as step:
        for name, a in mats:
            h = check_direction(a, args.seed)
            full = a.size <= args.max_hessian_size
            c = _demo.compute_case(a, h, args.order, full_hessian=full, step=step)
            rows += _demo.case_rows(name, c, args.order)
    ok = all(r[5] for r in rows)
    if args.json:
        print(json.dumps({"ok": ok, "checks": _rows_json(rows)}, indent=2))
    else:
        _print_table(
            f"jaxsvd check: each row against the reference named, along H ~ N(0,1) (own stream, seed {args.seed})",
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


def _cmd_svds(args) -> int:
    import jax
    import jax.numpy as jnp

    from ._svds import svds_with_info

    a = load_operator(args.matrix, args.array)
    m, n = a.shape
    if not 1 <= args.k <= min(m, n):
        raise CLIError(f"--k {args.k} is out of range for a {m} x {n} matrix (1 <= K <= {min(m, n)})")
    if isinstance(a, np.ndarray):
        a = jnp.asarray(a)
    (u, s, vh), info = svds_with_info(a, args.k, tol=args.tol, maxiter=args.maxiter,
                                      key=jax.random.key(args.seed))
    s, res = np.asarray(s), np.asarray(info.residual)
    steps = int(info.steps)
    if args.json:
        print(json.dumps({"shape": [m, n], "k": args.k, "sparse": not isinstance(a, jax.Array),
                          "singular_values": _jsonable(s), "residuals": _jsonable(res),
                          "krylov_steps": steps, "converged": bool(np.all(np.isfinite(s)))}))
    else:
        _print_table(
            f"{args.k} largest singular values of the {m} x {n} matrix ({steps} Krylov steps)",
            ["i", "sigma_i", "residual |A^T u - s v| / s_1"],
            [[str(i + 1), f"{v:.10e}", f"{r:.2e}"] for i, (v, r) in enumerate(zip(s, res, strict=True))],
        )
    if not np.all(np.isfinite(s)):
        print(f"{PROG} svds: not converged within --maxiter (NaN); raise --maxiter or --tol", file=sys.stderr)
        return 1
    return 0


def _cmd_hessian(args) -> int:
    import jax.numpy as jnp

    import jaxsvd

    a = load_matrix(args.matrix, args.array)
    r = min(a.shape)
    if not 0 <= args.k < r:
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
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the random matrices and (on a stream of its own) of the directions (default 0)")
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

    p = sub.add_parser("svds", help="the K largest singular triplets, matrix-free (dense or scipy-sparse files)")
    p.add_argument("--matrix", required=True, metavar="A",
                   help="matrix file (.npy, .npz, .csv, or a scipy.sparse.save_npz .npz)")
    p.add_argument("--k", required=True, type=_positive_int, metavar="K")
    p.add_argument("--tol", type=float, default=None, help="residual tolerance relative to sigma_1")
    p.add_argument("--maxiter", type=_positive_int, default=None, help="most Krylov steps")
    p.add_argument("--seed", type=int, default=0, help="start-vector seed")
    p.add_argument("--array", help="array name inside dense .npz files")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_svds)

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
