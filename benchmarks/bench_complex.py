"""Complex matrices (complex128): jaxsvd vs the jnp route and PyTorch, side by side.

  * ``jit(jvp)`` of the thin SVD at 64x128: ``jaxsvd.svd`` vs ``jnp.linalg.svd`` (JAX's complex
    rule) vs ``torch.func.jvp`` of ``torch.linalg.svd`` (where torch supports complex forward
    mode); the same at a real 64x128 matrix (real input must not slow down);
  * the Hessian of sigma_0 with respect to (Re A, Im A) at 8x12 through ``jaxsvd.svdvals`` and
    through ``jnp.linalg.svdvals`` (time and agreement);
  * the order-6 derivative of the singular values along a + x h at 32x64 by
    ``jaxsvd.derivatives`` and by nested ``jax.jvp`` through jnp (time and agreement).

Warm-up, ``block_until_ready``, medians; compile times separately.  Table + JSON.

    python benchmarks/bench_complex.py [--quick] [--repeats 20] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from _timing import compile_and_time, median_seconds, nested_jvp  # noqa: E402

import jaxsvd  # noqa: E402


def cgauss(shape, seed):
    g = np.random.default_rng(seed)
    return jnp.asarray(g.standard_normal(shape) + 1j * g.standard_normal(shape))


def rel(x, ref):
    x, ref = np.asarray(x, np.complex128), np.asarray(ref, np.complex128)
    return float(np.max(np.abs(x - ref)) / np.max(np.abs(ref)))


def torch_jvp_seconds(a, h, repeats):
    try:
        import torch
        from torch.func import jvp
    except ImportError:
        return None, "torch not installed"
    ta, th = torch.from_numpy(np.asarray(a)), torch.from_numpy(np.asarray(h))
    f = lambda x: torch.linalg.svd(x, full_matrices=False)  # noqa: E731
    try:
        jvp(f, (ta,), (th,))
    except Exception as e:  # noqa: BLE001 - report what torch says
        return None, f"{type(e).__name__}: {str(e).splitlines()[0][:80]}"
    return median_seconds(lambda: jvp(f, (ta,), (th,)), repeats), None


def first_order(shape, dtype_complex, repeats):
    a = cgauss(shape, 0) if dtype_complex else jnp.asarray(np.random.default_rng(0).standard_normal(shape))
    h = cgauss(shape, 1) if dtype_complex else jnp.asarray(np.random.default_rng(1).standard_normal(shape))
    rows = {}
    for name, svd in (("jaxsvd", jaxsvd.svd), ("jnp", jnp.linalg.svd)):
        f = lambda a, h, svd=svd: jax.jvp(lambda x: tuple(svd(x, full_matrices=False)), (a,), (h,))  # noqa: E731
        c, t, out = compile_and_time(f, (a, h), repeats)
        rows[name] = dict(compile_s=c, run_s=t, out=out)
    err = max(rel(x, y) for x, y in zip(rows["jaxsvd"]["out"][1], rows["jnp"]["out"][1], strict=True))
    torch_s, torch_note = torch_jvp_seconds(a, h, repeats)
    kind = "complex128" if dtype_complex else "float64"
    return dict(case=f"jit(jvp) thin SVD {shape[0]}x{shape[1]} {kind}",
                jaxsvd_s=rows["jaxsvd"]["run_s"], jnp_s=rows["jnp"]["run_s"], torch_s=torch_s,
                torch_note=torch_note, ratio_vs_jnp=rows["jaxsvd"]["run_s"] / rows["jnp"]["run_s"],
                compile_jaxsvd_s=rows["jaxsvd"]["compile_s"], compile_jnp_s=rows["jnp"]["compile_s"],
                agreement=err)


def hessian_sigma0(shape, repeats):
    a = cgauss(shape, 2)
    out = {}
    for name, sv in (("jaxsvd", jaxsvd.svdvals), ("jnp", jnp.linalg.svdvals)):
        f = jax.hessian(lambda re, im, sv=sv: sv(jax.lax.complex(re, im))[0], argnums=(0, 1))
        c, t, hs = compile_and_time(f, (a.real, a.imag), repeats)
        out[name] = dict(compile_s=c, run_s=t, h=hs)
    err = max(rel(out["jaxsvd"]["h"][i][j], out["jnp"]["h"][i][j]) for i in range(2) for j in range(2))
    return dict(case=f"hessian sigma_0 wrt (Re, Im) {shape[0]}x{shape[1]}", jaxsvd_s=out["jaxsvd"]["run_s"],
                jnp_s=out["jnp"]["run_s"], torch_s=None, torch_note="not run",
                ratio_vs_jnp=out["jaxsvd"]["run_s"] / out["jnp"]["run_s"],
                compile_jaxsvd_s=out["jaxsvd"]["compile_s"], compile_jnp_s=out["jnp"]["compile_s"], agreement=err)


def order_k(shape, order, repeats):
    a, h = cgauss(shape, 3), cgauss(shape, 4)
    c1, t1, d = compile_and_time(lambda a, h: jaxsvd.derivatives(a, h, order)[order], (a, h), repeats)
    nested = nested_jvp(lambda x: jnp.linalg.svd(x, compute_uv=False), order)
    c2, t2, ref = compile_and_time(nested, (a, h), max(3, repeats // 4))
    return dict(case=f"order-{order} derivative of sigma along a + x h {shape[0]}x{shape[1]}",
                jaxsvd_s=t1, jnp_s=t2, torch_s=None, torch_note="not run", ratio_vs_jnp=t1 / t2,
                compile_jaxsvd_s=c1, compile_jnp_s=c2, agreement=rel(d, ref))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--order", type=int, default=6)
    p.add_argument("--json", default=None, help="also write the JSON here")
    p.add_argument("--quick", action="store_true", help="5 repeats (a smoke run)")
    args = p.parse_args(argv)
    if args.quick:
        args.repeats = 5
    rows = [first_order((64, 128), True, args.repeats), first_order((64, 128), False, args.repeats),
            hessian_sigma0((8, 12), args.repeats), order_k((32, 64), args.order, args.repeats)]
    meta = dict(jax=jax.__version__, backend=jax.default_backend(), machine=platform.machine(),
                cpus=jax.device_count())
    print(f"{'case':<52} {'jaxsvd s':>10} {'jnp s':>10} {'torch s':>10} {'jaxsvd/jnp':>10} {'agreement':>10}")
    for r in rows:
        ts = f"{r['torch_s']:.2e}" if r["torch_s"] is not None else "-"
        print(f"{r['case']:<52} {r['jaxsvd_s']:>10.2e} {r['jnp_s']:>10.2e} {ts:>10} "
              f"{r['ratio_vs_jnp']:>10.3f} {r['agreement']:>10.1e}")
        if r["torch_note"] and r["torch_s"] is None and r["torch_note"] != "not run":
            print(f"{'':<52} torch: {r['torch_note']}")
    print("(run times are medians after warm-up; compile times in the JSON)")
    doc = json.dumps(dict(meta=meta, rows=rows), indent=1)
    print(doc)
    if args.json:
        with open(args.json, "w") as fh:
            fh.write(doc)


if __name__ == "__main__":
    main()
