"""Exact through ties: gradient errors at repeated and nearly repeated singular
values, and the cost of the polar factor -- jaxsvd's tie-safe functions against
the ``jaxsvd.svd`` route, the ``jnp.linalg.svd`` route,
``jax.scipy.linalg.polar`` and PyTorch (when importable), in one run.

Errors (float64, relative max-norm of the gradient against a reference):
  * polar loss sum((U Vh) * T) at 3x3 rotations, a 5x5 rotation, the identity
    and at Q diag(1, 1 + d, 1 - 2d), d = 1e-4 ... 1e-13; reference: reverse-mode
    autodiff through Newton's iteration X <- (X + X^-T)/2 (exact to ~1e-15;
    checked against 50-digit mpmath in tests/test_ties.py);
  * reconstruction norm ||U diag(s) Vh||_F at diag(1, 1, 2, 3), a rotated
    diag(1, 1, 2, 3) and a rotated diag(1 + 1e-10, 1, 2, 3); reference A/||A||;
  * top-2 left projector loss sum((U_2 U_2^T) * W) at a rotated diag(3, 3, 1),
    5x3, and at a rotated diag(3 + 1e-10, 3, 1); reference: 50-digit mpmath
    central differences along each coordinate.
The "jaxsvd.svd" column is ``jax.grad`` through ``jaxsvd.svd`` (the reverse-mode gauge
check of jaxsvd/_gauge.py: exact at exact ties, limited by 1/gap near them).
Cells: "NaN" when the gradient has a NaN, "error" when the route raises.

Timing: ``jax.jit(jax.value_and_grad)`` of the polar loss at 256x256 and
1024x1024 (Gaussian) for ``jaxsvd.polar`` and the jnp route; ``jet`` of order 8
of ``jaxsvd.polar`` at 128x256 against one ``jnp.linalg.svd``.  Compile time
separate; medians after warm-up.

    python benchmarks/bench_ties.py --quick           # 256x256 timing only
    python benchmarks/bench_ties.py --no-timing       # the error table only
    python benchmarks/bench_ties.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import jax
from jax.experimental import jet

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import jax.scipy.linalg as jsl  # noqa: E402
import numpy as np  # noqa: E402
from _timing import compile_and_time, median_seconds  # noqa: E402

import jaxsvd  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests import _ref_ties as R  # noqa: E402  (the independent references)

# ---------------------------------------------------------------------------
# the routes: a -> polar factor / projector / reconstruction (jnp) and torch
# ---------------------------------------------------------------------------


def _jnp_uv(a):
    u, s, vh = jnp.linalg.svd(a, full_matrices=False)
    return u, s, vh


def _jaxsvd_uv(a):
    u, s, vh = jaxsvd.svd(a, full_matrices=False)
    return u, s, vh


POLAR = {
    "jaxsvd.polar": lambda a: jaxsvd.polar(a)[0],
    "jaxsvd.svd": lambda a: (lambda u, s, vh: u @ vh)(*_jaxsvd_uv(a)),
    "jnp.linalg.svd": lambda a: (lambda u, s, vh: u @ vh)(*_jnp_uv(a)),
    "jsp.polar(svd)": lambda a: jsl.polar(a, method="svd")[0],
    "jsp.polar(qdwh)": lambda a: jsl.polar(a, method="qdwh")[0],
}
RECON = {
    "jaxsvd.truncate": lambda a: jaxsvd.truncate(a, min(a.shape)),
    "jaxsvd.svd": lambda a: (lambda u, s, vh: (u * s) @ vh)(*_jaxsvd_uv(a)),
    "jnp.linalg.svd": lambda a: (lambda u, s, vh: (u * s) @ vh)(*_jnp_uv(a)),
}
PROJ = {
    "jaxsvd.projectors": lambda a: jaxsvd.projectors(a, 2)[0],
    "jaxsvd.svd": lambda a: (lambda u, s, vh: u[:, :2] @ u[:, :2].T)(*_jaxsvd_uv(a)),
    "jnp.linalg.svd": lambda a: (lambda u, s, vh: u[:, :2] @ u[:, :2].T)(*_jnp_uv(a)),
}


def _torch_grad(kind, a, w):
    try:
        import torch
    except ImportError:
        return None
    x = torch.from_numpy(np.array(a)).requires_grad_(True)
    u, s, vh = torch.linalg.svd(x, full_matrices=False)
    if kind == "polar":
        f = u @ vh
    elif kind == "recon":
        return torch.autograd.grad(torch.linalg.norm(u @ torch.diag(s) @ vh), x)[0].numpy()
    else:
        f = u[:, :2] @ u[:, :2].T
    return torch.autograd.grad((f * torch.from_numpy(np.array(w))).sum(), x)[0].numpy()


def _rel(g, ref):
    if g is None:
        return None
    if isinstance(g, str):
        return g
    g = np.asarray(g, np.float64)
    if not np.all(np.isfinite(g)):
        return "NaN"
    return float(np.max(np.abs(g - ref)) / np.max(np.abs(ref)))


def _grads(routes, a, loss_of):
    out = {}
    for name, f in routes.items():
        try:
            out[name] = np.asarray(jax.grad(lambda x, f=f: loss_of(f(x)))(jnp.asarray(a)))
        except Exception as e:  # noqa: BLE001  (a route that cannot differentiate)
            out[name] = "error: " + type(e).__name__
    return out


def _rotation(seed, n=3):
    q = np.linalg.qr(np.random.default_rng(seed).standard_normal((n, n)))[0]
    return q if np.linalg.det(q) > 0 else -q


def errors():
    rows = []
    t = np.random.default_rng(100).standard_normal((3, 3))

    def polar_row(label, a, t=t):
        ref = np.asarray(jax.grad(lambda x: jnp.sum(R.newton_polar(x) * t))(jnp.asarray(a)))
        gs = _grads(POLAR, a, lambda u: jnp.sum(u * t))
        gs["torch"] = _torch_grad("polar", a, t)
        rows.append(("polar loss", label, {k: _rel(v, ref) for k, v in gs.items()}))

    for seed in (0, 1, 2):
        polar_row(f"rotation (seed {seed})", _rotation(seed))
    polar_row("rotation 5x5", _rotation(0, 5), np.random.default_rng(100).standard_normal((5, 5)))
    polar_row("identity", np.eye(3))
    q = _rotation(7)
    for d in (1e-4, 1e-6, 1e-8, 1e-10, 1e-13):
        polar_row(f"Q diag(1,1+d,1-2d) d={d:.0e}", q @ np.diag([1.0, 1.0 + d, 1.0 - 2 * d]))

    d = np.diag([1.0, 1.0, 2.0, 3.0])
    for label, a in (("diag(1,1,2,3)", d), ("rotated diag(1,1,2,3)", _rotation(3, 4) @ d @ _rotation(4, 4).T),
                     ("rotated diag(1+1e-10,1,2,3)",
                      _rotation(3, 4) @ np.diag([1.0 + 1e-10, 1.0, 2.0, 3.0]) @ _rotation(4, 4).T)):
        gs = _grads(RECON, a, jnp.linalg.norm)
        gs["torch"] = _torch_grad("recon", a, None)
        rows.append(("reconstruction norm", label, {k: _rel(v, a / np.linalg.norm(a)) for k, v in gs.items()}))

    w = np.random.default_rng(101).standard_normal((5, 5))
    for label, s in (("rotated diag(3,3,1) 5x3", [3.0, 3.0, 1.0]),
                     ("rotated diag(3+1e-10,3,1) 5x3", [3.0 + 1e-10, 3.0, 1.0])):
        a = np.asarray(jnp.asarray(_rotated(s)))
        ref = np.zeros_like(a)
        for i in range(5):
            for j in range(3):
                e = np.zeros_like(a)
                e[i, j] = 1.0
                ref[i, j] = np.sum(w * R.directional(lambda x: R.mp_gmf(x, None, 2, "pu"), a, e, 1))
        gs = _grads(PROJ, a, lambda p: jnp.sum(p * w))
        gs["torch"] = _torch_grad("proj", a, w)
        rows.append(("top-2 projector loss", label, {k: _rel(v, ref) for k, v in gs.items()}))
    return rows


def _rotated(s):
    u = np.linalg.qr(np.random.default_rng(3).standard_normal((5, 5)))[0][:, :3]
    v = np.linalg.qr(np.random.default_rng(4).standard_normal((3, 3)))[0]
    return (u * np.asarray(s)) @ v.T


# ---------------------------------------------------------------------------
# timing
# ---------------------------------------------------------------------------


def timing(sizes, repeats):
    out = []
    for n in sizes:
        rng = np.random.default_rng(n)
        a, t = jnp.asarray(rng.standard_normal((n, n))), jnp.asarray(rng.standard_normal((n, n)))
        row = {"size": f"{n}x{n}"}
        for name in ("jaxsvd.polar", "jnp.linalg.svd"):
            f = POLAR[name]
            c, r, _ = compile_and_time(jax.value_and_grad(lambda x, f=f, t=t: jnp.sum(f(x) * t)), (a,), repeats)
            row[name] = {"compile_s": c, "run_s": r}
        row["ratio jaxsvd/jnp"] = row["jaxsvd.polar"]["run_s"] / row["jnp.linalg.svd"]["run_s"]
        out.append(row)
    return out


def jet_timing(repeats, order=8, shape=(128, 256)):
    rng = np.random.default_rng(5)
    a, h = jnp.asarray(rng.standard_normal(shape)), jnp.asarray(rng.standard_normal(shape))
    zeros = [jnp.zeros(shape)] * (order - 1)

    def f(a, h):
        return jet.jet(lambda x: jaxsvd.polar(x)[0], (a,), ([h] + zeros,))[1]

    c, r, _ = compile_and_time(f, (a, h), repeats)
    svd = jax.jit(lambda x: jnp.linalg.svd(x, full_matrices=False))
    jax.block_until_ready(svd(a))
    r_svd = median_seconds(lambda: jax.block_until_ready(svd(a)), repeats)
    return {"shape": f"{shape[0]}x{shape[1]}", "order": order, "jet_compile_s": c, "jet_run_s": r,
            "svd_run_s": r_svd, "ratio jet/svd": r / r_svd}


def _fmt(x):
    if x is None:
        return "-"
    if isinstance(x, str):
        return x[:12]
    return f"{x:.1e}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="256x256 timing only, 3 repeats")
    ap.add_argument("--no-timing", action="store_true", help="the error table only")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)
    res = {"jax": jax.__version__, "platform": platform.platform(), "device": str(jax.devices()[0])}
    t0 = time.perf_counter()
    if not args.quick:
        rows = errors()
        res["errors"] = [{"loss": a, "matrix": b, "errors": c} for a, b, c in rows]
        routes = ["jaxsvd.polar", "jaxsvd.truncate", "jaxsvd.projectors", "jaxsvd.svd", "jnp.linalg.svd",
                  "jsp.polar(svd)", "jsp.polar(qdwh)", "torch"]
        print(f"{'loss':22s} {'matrix':30s} " + " ".join(f"{r[:13]:>13s}" for r in routes))
        for loss, mat, errs in rows:
            print(f"{loss:22s} {mat:30s} " + " ".join(f"{_fmt(errs.get(r)):>13s}" for r in routes))
    if args.no_timing:
        res["wall_s"] = time.perf_counter() - t0
        if args.json:
            Path(args.json).write_text(json.dumps(res, indent=1))
        return 0
    res["timing"] = timing([256] if args.quick else [256, 1024], 3 if args.quick else 5)
    print("\npolar + gradient (jit(value_and_grad)), median seconds")
    for row in res["timing"]:
        print(f"  {row['size']:>10s}  jaxsvd {row['jaxsvd.polar']['run_s']:.4f}  "
              f"jnp {row['jnp.linalg.svd']['run_s']:.4f}  ratio {row['ratio jaxsvd/jnp']:.2f}")
    if not args.quick:
        res["jet"] = jet_timing(3)
        j = res["jet"]
        print(f"\njet order {j['order']} of polar at {j['shape']}: {j['jet_run_s']:.4f} s, one SVD "
              f"{j['svd_run_s']:.4f} s, ratio {j['ratio jet/svd']:.2f}")
    res["wall_s"] = time.perf_counter() - t0
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
