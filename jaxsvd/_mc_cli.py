"""The ``mc`` sub-command: Monte Carlo sensitivity from the command line.

    python -m jaxsvd mc --shape 6x10 --num 100000 --ensemble gaussian --order 3 --out DIR

writes into DIR: ``sensitivity.npz`` (:meth:`SensitivityResult.save`), the
quantile table ``quantiles.txt`` and ``quantiles.json``, and histograms
``hist_order{j}.png`` of D^j sigma_max and D^j sigma_min for j = 1..order.
The table (or, with ``--json``, the JSON summary) also goes to stdout.
Bad arguments end with one line on stderr and exit status 2.

Thin layer over the public API (``jaxsvd.montecarlo``); the top-level parser
(``jaxsvd/_cli.py``) calls :func:`register`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

PROG = "jaxsvd mc"


class _UsageError(Exception):
    pass


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``mc`` sub-parser to ``subparsers`` (from ``add_subparsers``)."""
    from ._montecarlo import DIRECTIONS, ENSEMBLES

    p = subparsers.add_parser(
        "mc", help="Monte Carlo sensitivity of singular values over a random-matrix ensemble",
        description="Derivatives of orders 0..ORDER of all singular values of NUM random matrices "
                    "along random directions; writes sensitivity.npz, quantiles.txt/.json and "
                    "histogram PNGs into OUT.")
    p.add_argument("--shape", default="6x10", help="matrix shape MxN (default 6x10)")
    p.add_argument("--num", type=int, default=10000, help="number of samples (default 10000)")
    p.add_argument("--ensemble", default="gaussian", help=f"one of {', '.join(ENSEMBLES)} (default gaussian)")
    p.add_argument("--order", type=int, default=2, help="highest derivative order (default 2)")
    p.add_argument("--direction", default="gaussian",
                   help=f"{' or '.join(DIRECTIONS)}, or a file (.npy, .npz with one array, .csv) "
                        "holding one fixed MxN direction (default gaussian)")
    p.add_argument("--out", required=True, help="output folder (created if missing)")
    p.add_argument("--batch-size", type=int, default=None, help="samples per chunk (default min(num, 1024))")
    p.add_argument("--seed", type=int, default=0, help="PRNG seed (default 0)")
    p.add_argument("--dtype", default="float64", help="float32 or float64 (default float64)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--checkpoint", default=None, metavar="DIR",
                   help="persist each finished chunk in DIR; rerun the same command to resume")
    p.add_argument("--json", action="store_true", help="print the summary as JSON instead of a table")
    p.set_defaults(func=run)
    return p


def _parse_shape(text: str) -> tuple[int, int]:
    parts = text.lower().replace(",", "x").split("x")
    try:
        m, n = (int(p) for p in parts)
    except ValueError:
        raise _UsageError(f"--shape must look like 6x10 (two positive ints), got {text!r}") from None
    if m < 1 or n < 1:
        raise _UsageError(f"--shape must have positive sizes, got {text!r}")
    return m, n


def _load_direction(path: str):
    import numpy as np

    if not os.path.isfile(path):
        raise _UsageError(f"--direction {path!r} is neither {' nor '.join(('gaussian', 'uniform'))} "
                          "nor an existing file")
    try:
        if path.endswith(".npy"):
            return np.load(path, allow_pickle=False)
        if path.endswith(".npz"):
            with np.load(path, allow_pickle=False) as z:
                if len(z.files) != 1:
                    raise _UsageError(f"--direction {path}: the .npz must hold exactly one array, "
                                      f"it holds {len(z.files)}")
                return z[z.files[0]]
        if path.endswith(".csv"):
            return np.loadtxt(path, delimiter=",", ndmin=2)
    except _UsageError:
        raise
    except Exception as e:  # noqa: BLE001 - any unreadable file is a usage error
        raise _UsageError(f"--direction {path}: cannot read it ({type(e).__name__}: {e})") from None
    raise _UsageError(f"--direction {path}: unknown file type (use .npy, .npz or .csv)")


def _fail(msg: str) -> int:
    print(f"{PROG}: error: {msg}", file=sys.stderr)
    return 2


def run(args) -> int:
    """Run the ``mc`` sub-command; returns the exit status."""
    try:
        shape = _parse_shape(args.shape)
        if args.dtype not in ("float32", "float64"):
            raise _UsageError(f"--dtype must be float32 or float64, got {args.dtype!r}")
        if args.num < 1:
            raise _UsageError(f"--num must be >= 1, got {args.num}")
        if args.order < 0:
            raise _UsageError(f"--order must be >= 0, got {args.order}")
        if args.batch_size is not None and args.batch_size < 1:
            raise _UsageError(f"--batch-size must be >= 1, got {args.batch_size}")
        if args.seed < 0:
            raise _UsageError(f"--seed must be >= 0, got {args.seed}")
        direction = args.direction
        if direction not in ("gaussian", "uniform"):
            direction = _load_direction(direction)
    except _UsageError as e:
        return _fail(str(e))

    import jax

    if args.dtype == "float64" and not jax.config.jax_enable_x64:
        jax.config.update("jax_enable_x64", True)  # a CLI process owns its config

    from ._montecarlo import sensitivity

    try:
        res = sensitivity(jax.random.key(args.seed), shape, args.num, ensemble=args.ensemble,
                          direction=direction, order=args.order, batch_size=args.batch_size,
                          progress=not args.no_progress, dtype=args.dtype, checkpoint=args.checkpoint)
    except (ValueError, TypeError, OSError) as e:
        return _fail(str(e))

    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as e:
        return _fail(f"--out {args.out}: {e.strerror or e}")
    npz = res.save(os.path.join(args.out, "sensitivity.npz"))
    table = res.summary()
    summary = res.summary_dict()
    summary["seed"] = args.seed
    with open(os.path.join(args.out, "quantiles.txt"), "w") as f:
        f.write(table + "\n")
    with open(os.path.join(args.out, "quantiles.json"), "w") as f:
        json.dump(summary, f, indent=1)
    pngs = []
    try:
        for j in range(1, res.order + 1):
            path = os.path.join(args.out, f"hist_order{j}.png")
            res.plot(orders=(j,), indices=(0, -1), path=path)
            pngs.append(path)
    except ImportError:
        print(f"{PROG}: note: matplotlib is not installed; no histograms written", file=sys.stderr)
    if args.json:
        print(json.dumps(summary))
    else:
        print(table)
        print(f"wrote {npz}, quantiles.txt, quantiles.json" + (f" and {len(pngs)} PNG(s)" if pngs else "")
              + f" to {args.out}")
    return 0


def main(argv=None) -> int:
    """Stand-alone entry (``python -m jaxsvd._mc_cli ...``); ``jaxsvd mc`` is the usual one."""
    parser = argparse.ArgumentParser(prog="jaxsvd")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["mc"] + list(sys.argv[1:] if argv is None else argv))
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
