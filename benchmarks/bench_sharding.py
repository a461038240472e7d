"""Scaling out on a device mesh: what jaxsvd communicates, and what it costs.

Runs on a 4-device CPU mesh (``XLA_FLAGS=--xla_force_host_platform_device_count=4``
is set here unless the host already has several devices) and prints, for each
case, the collectives in the compiled program (read from the HLO: kind, count,
bytes of their results; a collective inside a loop counts once), the output
sharding, and the median run time as a ratio to a baseline in the same process:

  1. ``jit`` on a batch sharded along its first axis: svdvals, svd, the gradient
     of the nuclear norm, derivatives (order 2), polar -- against the same call
     on one device;
  2. one tall matrix sharded by rows: ``svds(a, k)`` against
     ``jnp.linalg.svd`` / ``jaxsvd.svd`` of the same sharded matrix;
  3. ``shard_map`` (check_vma=True): the gradient of a loss of svdvals on each
     device's block, against case 1's jit;
  4. Monte Carlo: ``montecarlo.sensitivity(..., mesh=mesh)`` against no mesh.

Timings on virtual CPU devices share the host's cores: read the ratios as what
the partitioning costs or saves in work, not as a multi-device speed-up.
docs/sharding.md quotes a run.

    python benchmarks/bench_sharding.py --repeats 5
"""

from __future__ import annotations

import os

if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4").strip()

import argparse  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from _timing import median_seconds  # noqa: E402
from jax.sharding import AxisType, NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

import jaxsvd  # noqa: E402
import jaxsvd.montecarlo as mc  # noqa: E402

_COLLECTIVES = ("all-reduce", "all-gather", "reduce-scatter", "all-to-all", "collective-permute",
                "collective-broadcast")
_BYTES = {"f64": 8, "f32": 4, "s32": 4, "u32": 4, "pred": 1, "f16": 2, "bf16": 2, "s64": 8, "u64": 8,
          "c64": 8, "c128": 16}


def collectives(hlo: str) -> dict:
    """{kind: [count, bytes of the results]} of the collectives in an HLO module's text."""
    out: dict = {}
    for line in hlo.splitlines():
        m = re.search(r"=\s*(.+?)\s+(" + "|".join(_COLLECTIVES) + r")(-start)?\(", line)
        if not m:
            continue
        kind = m.group(2)
        nbytes = 0
        for dt, dims in re.findall(r"\b([a-z]+\d*)\[([\d,]*)\]", m.group(1)):
            if dt in _BYTES:
                nbytes += _BYTES[dt] * int(np.prod([int(d) for d in dims.split(",") if d] or [1]))
        c = out.setdefault(kind, [0, 0])
        c[0] += 1
        c[1] += nbytes
    return out


def _fmt(coll: dict) -> str:
    if not coll:
        return "none"
    return ", ".join(f"{k} x{c} ({b:,} B)" for k, (c, b) in sorted(coll.items()))


def _run(f, args, repeats):
    t = time.perf_counter()
    c = jax.jit(f).lower(*args).compile()
    compile_s = time.perf_counter() - t
    out = jax.block_until_ready(c(*args))
    run_s = median_seconds(lambda: jax.block_until_ready(c(*args)), repeats)
    return {"compile_s": compile_s, "run_s": run_s, "collectives": collectives(c.as_text()),
            "out_spec": str(jax.tree.leaves(out)[0].sharding.spec)
            if hasattr(jax.tree.leaves(out)[0].sharding, "spec") else "-"}, out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch", type=int, default=256, help="matrices in the sharded batch (case 1, 3)")
    ap.add_argument("--size", type=int, nargs=2, default=(16, 12), help="m n of each batched matrix")
    ap.add_argument("--tall", type=int, nargs=2, default=(8192, 256), help="m n of the row-sharded matrix")
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--json", default=None, help="write the results here too")
    args = ap.parse_args(argv)
    jax.config.update("jax_enable_x64", True)
    ndev = len(jax.devices())
    mesh = jax.make_mesh((ndev,), ("d",), axis_types=(AxisType.Auto,))
    rows = NamedSharding(mesh, P("d"))
    one = jax.devices()[0]
    print(f"jax {jax.__version__}, {ndev} {jax.devices()[0].platform} devices, mesh axis 'd' (Auto)")
    report = {"devices": ndev, "jax": jax.__version__}

    # 1. jit on a sharded batch
    m, n = args.size
    a_host = np.random.default_rng(0).standard_normal((args.batch, m, n))
    a_sh, a_one = jax.device_put(a_host, rows), jax.device_put(a_host, one)
    h_sh, h_one = jax.device_put(np.cos(a_host), rows), jax.device_put(np.cos(a_host), one)
    cases = {
        "svdvals": (jaxsvd.svdvals, 1),
        "svd": (lambda x: jaxsvd.svd(x, full_matrices=False), 1),
        "grad nuclear_norm": (jax.grad(lambda x: jnp.sum(jaxsvd.nuclear_norm(x))), 1),
        "derivatives(order 2)": (lambda x, h: jaxsvd.derivatives(x, h, 2), 2),
        "polar": (lambda x: jaxsvd.polar(x)[0], 1),
        "jnp.linalg.svdvals": (jnp.linalg.svdvals, 1),
    }
    print(f"\n1. jit on a batch of {args.batch} {m}x{n} float64 matrices sharded P('d')")
    print(f"{'function':24s} {'collectives':28s} {'out spec':10s} {'sharded/1 device':>16s}")
    report["batch"] = {}
    for name, (f, nin) in cases.items():
        sh, out = _run(f, (a_sh, h_sh)[:nin], args.repeats)
        base, ref = _run(f, (a_one, h_one)[:nin], args.repeats)
        same = all(np.allclose(np.asarray(x), np.asarray(y), rtol=1e-10, atol=1e-12, equal_nan=True)
                   for x, y in zip(jax.tree.leaves(out), jax.tree.leaves(ref), strict=True))
        ratio = sh["run_s"] / base["run_s"]
        print(f"{name:24s} {_fmt(sh['collectives']):28s} {sh['out_spec']:10s} {ratio:16.2f}"
              + ("" if same else "  (values differ!)"))
        report["batch"][name] = {**sh, "ratio": ratio, "same": same, "one_device_s": base["run_s"]}

    # 2. one tall matrix sharded by rows
    mt, nt = args.tall
    k = args.k
    t_host = np.random.default_rng(1).standard_normal((mt, nt)).astype(np.float32)
    t_sh = jax.device_put(t_host, rows)
    t_one = jax.device_put(t_host, one)
    print(f"\n2. one {mt}x{nt} float32 matrix sharded by rows P('d', None) ({t_host.nbytes:,} B); k = {k}")
    print(f"{'function':30s} {'collectives':44s} {'time / svds sharded':>20s}")
    report["rows"] = {}
    row_cases = {
        "svds(a, k)": lambda x: jaxsvd.svds(x, k),
        "grad svds(a, k).S.sum()": jax.grad(lambda x: jnp.sum(jaxsvd.svds(x, k)[1])),
        "jnp.linalg.svd(a)": lambda x: jnp.linalg.svd(x, full_matrices=False),
        "jaxsvd.svd(a)": lambda x: jaxsvd.svd(x, full_matrices=False),
        "svds(a, k) on 1 device": None,
    }
    base_s = None
    for name, f in row_cases.items():
        if f is None:
            res, _ = _run(lambda x: jaxsvd.svds(x, k), (t_one,), args.repeats)
        else:
            res, _ = _run(f, (t_sh,), args.repeats)
        base_s = base_s or res["run_s"]
        print(f"{name:30s} {_fmt(res['collectives']):44s} {res['run_s'] / base_s:20.2f}")
        report["rows"][name] = res

    # 3. shard_map with check_vma=True
    def local(x):
        return jax.grad(lambda y: jnp.sum(jnp.sin(jaxsvd.svdvals(y))))(x)

    smap = jax.shard_map(local, mesh=mesh, in_specs=P("d"), out_specs=P("d"))
    r_sm, g_sm = _run(smap, (a_sh,), args.repeats)
    r_jit, g_jit = _run(local, (a_sh,), args.repeats)
    same = bool(np.allclose(np.asarray(g_sm), np.asarray(g_jit), rtol=1e-12, atol=1e-14))
    print(f"\n3. shard_map(grad of sum(sin(svdvals))) on the sharded batch: collectives "
          f"{_fmt(r_sm['collectives'])}; time / jit's {r_sm['run_s'] / r_jit['run_s']:.2f}; equal: {same}")
    report["shard_map"] = {"shard_map": r_sm, "jit": r_jit, "same": same}

    # 4. Monte Carlo on the mesh
    key = jax.random.key(0)
    num = 4096
    for name, kw in (("no mesh", {}), ("mesh", {"mesh": mesh})):
        mc.sensitivity(key, (m, n), num, order=2, progress=False, **kw)  # compile
        s = median_seconds(lambda kw=kw: mc.sensitivity(key, (m, n), num, order=2, progress=False, **kw),
                           max(2, args.repeats // 2))
        report.setdefault("montecarlo", {})[name] = s
    r = mc.sensitivity(key, (m, n), 64, order=2, progress=False).derivatives
    r4 = mc.sensitivity(key, (m, n), 64, order=2, progress=False, mesh=mesh).derivatives
    mc_same = bool(np.array_equal(r, r4, equal_nan=True))
    mcr = report["montecarlo"]
    print(f"\n4. montecarlo.sensitivity({m}x{n}, num={num}, order=2): mesh / no mesh "
          f"{mcr['mesh'] / mcr['no mesh']:.2f}; results bitwise equal: {mc_same}")
    mcr["same"] = mc_same
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=1, default=str)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
