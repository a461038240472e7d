"""jaxsvd inside ``jax.shard_map`` with ``check_vma=True`` (the default) on a 4-device CPU mesh.

Every check runs a function on a batch of 8 small matrices sharded over 4
devices (2 per device) and compares it with the same function on the unsharded
batch in the same process: values, ``jvp``, ``grad`` across the shard_map
boundary and inside it, ``hessian`` (or forward-over-reverse Hessian-vector
products where a full Hessian compiles slowly), ``jet``; ``svds`` on each
device's block and under ``vmap``; ``montecarlo.sensitivity`` on the mesh; and
bad input raises inside shard_map what it raises outside.  The unsharded
results are the reference: they are checked against independent references
(jnp.linalg.svd, mpmath, finite differences) in the other test files.

JAX fixes its device count when it starts, and the suite runs in one process
with the default single CPU device, so the checks run once in a subprocess with
``XLA_FLAGS=--xla_force_host_platform_device_count=4`` (``python
tests/test_shard_map.py`` prints their results as JSON); each test reads its
own result.  Several functions share one compiled program per transform so the
file compiles little.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import traceback

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NDEV = 4

# (check name, what it covers): each is one entry of the subprocess's JSON
CHECKS = [
    "value", "jvp", "grad_across", "grad_inside", "hessian", "hvp_ties", "jet", "float32_grad",
    "svds_blocks", "svds_vmap", "svds_grad", "montecarlo", "errors",
]


# ---------------------------------------------------------------------------
# the subprocess: everything below runs with 4 CPU devices
# ---------------------------------------------------------------------------


def _functions():
    """name -> function of one (m, n) matrix (vmapped over the batch by the checks)."""
    import jax.numpy as jnp

    import jaxsvd

    def recon(r):
        return r.U @ (r.S[..., None] * r.Vh)

    return {
        "svd": lambda x: recon(jaxsvd.svd(x, full_matrices=False)),
        "svd_full": lambda x: (lambda r: (r.U @ r.U.T, r.Vh.T @ r.Vh, r.S))(jaxsvd.svd(x)),
        "svdvals": jaxsvd.svdvals,
        "derivatives": lambda x: jaxsvd.derivatives(x, jnp.cos(x), 3),
        "spectral_function": lambda x: jaxsvd.spectral_function(lambda s: jnp.sum(s ** 3))(x),
        "nuclear_norm": jaxsvd.nuclear_norm,
        "singular_triplet": lambda x: jaxsvd.singular_triplet(x, 0)[0],
        "gaps": jaxsvd.gaps,
    }


def _tie_functions():
    """The tie-safe functions (their Hessians compile slowly: checked as Hessian-vector products)."""
    import jax.numpy as jnp

    import jaxsvd

    return {
        "polar": lambda x: jaxsvd.polar(x)[0],
        "truncate": lambda x: jaxsvd.truncate(x, 1),
        "projectors": lambda x: jaxsvd.projectors(x, 1),
        "generalized_matrix_function": jaxsvd.generalized_matrix_function(jnp.tanh),
        # bond-gauge-invariant contractions (L, R themselves carry the backend's signs)
        "truncated_split": lambda x: (lambda lf, rt: (lf @ rt, lf @ lf.T, rt.T @ rt))(*jaxsvd.truncated_split(x, 1)),
    }


def _compare(got, ref, rtol):
    """Largest relative difference of two pytrees; NaN where their NaN patterns differ."""
    import jax

    worst = 0.0
    gl, rl = jax.tree.leaves(got), jax.tree.leaves(ref)
    if len(gl) != len(rl):
        return float("nan")
    for g, r in zip(gl, rl, strict=True):
        g, r = np.asarray(g, np.float64), np.asarray(r, np.float64)
        if g.shape != r.shape or not np.array_equal(np.isnan(g), np.isnan(r)):
            return float("nan")
        ok = ~np.isnan(r)
        if ok.any():
            scale = max(float(np.max(np.abs(r[ok]))), 1e-300)
            worst = max(worst, float(np.max(np.abs(g[ok] - r[ok]))) / scale)
    return worst


def _run_checks() -> dict:
    import jax
    import jax.numpy as jnp
    from jax.experimental import jet
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    import jaxsvd
    import jaxsvd.montecarlo as mc

    assert len(jax.devices()) == NDEV, jax.devices()
    mesh = jax.make_mesh((NDEV,), ("d",))
    shard = NamedSharding(mesh, P("d"))
    k0, k1 = jax.random.split(jax.random.key(0))
    a0 = jax.random.normal(k0, (2 * NDEV, 3, 2), jnp.float64)
    t0 = jax.random.normal(k1, (2 * NDEV, 3, 2), jnp.float64)
    a, t = jax.device_put(a0, shard), jax.device_put(t0, shard)
    b0 = a0[:NDEV]  # one matrix per device
    b = jax.device_put(b0, shard)

    def sm(f, n_in=1, out=P("d")):
        return jax.jit(jax.shard_map(f, mesh=mesh, in_specs=(P("d"),) * n_in, out_specs=out))

    def loss(y):
        return sum(jnp.sum(jnp.sin(z)) for z in jax.tree.leaves(y))

    funs, ties = _functions(), _tie_functions()

    def every(fs):
        return jax.vmap(lambda x: {k: f(x) for k, f in fs.items()})

    f_all = every({**funs, **ties})
    f_smooth = every(funs)
    hess = {k: funs[k] for k in ("svd", "svdvals", "derivatives", "spectral_function")}
    f_f32 = every({k: funs[k] for k in ("svd", "svdvals")})
    f_ties = every(ties)

    def one_loss(fs):
        return lambda x: loss({k: f(x) for k, f in fs.items()})

    cases = {
        "value": (lambda: sm(f_all)(a), lambda: jax.jit(f_all)(a0)),
        "jvp": (lambda: sm(lambda x, v: jax.jvp(f_all, (x,), (v,))[1], 2)(a, t),
                lambda: jax.jit(lambda x, v: jax.jvp(f_all, (x,), (v,))[1])(a0, t0)),
        # the example: grad of a loss of the shard_map's result
        "grad_across": (lambda: jax.jit(jax.grad(lambda x: loss(sm(f_all)(x))))(a),
                        lambda: jax.jit(jax.grad(lambda x: loss(f_all(x))))(a0)),
        # (the tie-safe functions' gradients inside: hvp_ties)
        "grad_inside": (lambda: sm(jax.grad(lambda x: loss(f_smooth(x))))(a),
                        lambda: jax.jit(jax.grad(lambda x: loss(f_smooth(x))))(a0)),
        "hessian": (lambda: sm(jax.vmap(jax.hessian(one_loss(hess))))(a),
                    lambda: jax.jit(jax.vmap(jax.hessian(one_loss(hess))))(a0)),
        "hvp_ties": (lambda: sm(lambda x, v: jax.jvp(jax.grad(lambda y: loss(f_ties(y))), (x,), (v,))[1], 2)(a, t),
                     lambda: jax.jit(lambda x, v: jax.jvp(jax.grad(lambda y: loss(f_ties(y))), (x,), (v,))[1])(a0, t0)),
        "jet": (lambda: sm(lambda x, v: jet.jet(f_all, (x,), ((v, jnp.sin(v)),))[1], 2)(a, t),
                lambda: jax.jit(lambda x, v: jet.jet(f_all, (x,), ((v, jnp.sin(v)),))[1])(a0, t0)),
        "float32_grad": (lambda: jax.jit(jax.grad(lambda x: loss(sm(f_f32)(x))))(a.astype(jnp.float32)),
                         lambda: jax.jit(jax.grad(lambda x: loss(f_f32(x))))(a0.astype(jnp.float32))),
    }

    # svds: each device's block (one matrix) and vmap over the local batch
    def svds_sum(x):
        u, s, vh = jaxsvd.svds(x, 1)
        return s, u @ vh

    cases["svds_blocks"] = (lambda: sm(lambda x: jax.tree.map(lambda z: z[None], svds_sum(x[0])))(b),
                            lambda: jax.jit(jax.vmap(svds_sum))(b0))
    cases["svds_vmap"] = (lambda: sm(jax.vmap(svds_sum))(a), lambda: jax.jit(jax.vmap(svds_sum))(a0))
    cases["svds_grad"] = (lambda: jax.jit(jax.grad(lambda x: loss(sm(jax.vmap(svds_sum))(x))))(a),
                          lambda: jax.jit(jax.grad(lambda x: loss(jax.vmap(svds_sum)(x))))(a0))

    # Monte Carlo on the mesh (its chunks run under shard_map with check_vma=True)
    key = jax.random.key(5)
    cases["montecarlo"] = (lambda: mc.sensitivity(key, (3, 2), 6, order=2, mesh=mesh, progress=False).derivatives,
                           lambda: mc.sensitivity(key, (3, 2), 6, order=2, progress=False).derivatives)

    results = {}
    for name, (sharded, reference) in cases.items():
        try:
            tol = 1e-4 if name == "float32_grad" else 1e-9
            err = _compare(sharded(), reference(), tol)
            results[name] = {"ok": bool(err <= tol), "detail": f"max relative difference {err:.2e} (tol {tol})"}
        except Exception as e:  # noqa: BLE001 - reported to the test
            results[name] = {"ok": False, "detail": "".join(traceback.format_exception(e))[-3000:]}
    results["errors"] = _check_errors(sm, a)
    return results


def _check_errors(sm, a):
    """Bad input raises inside shard_map the exception (type and message) it raises outside."""
    import jax.numpy as jnp

    import jaxsvd

    bad = {
        "vector": lambda x: jaxsvd.svd(x[0, 0]),
        "float16": lambda x: jaxsvd.svdvals(x.astype(jnp.float16)),
        "truncate_k": lambda x: jaxsvd.truncate(x, 5),
        "triplet_k": lambda x: jaxsvd.singular_triplet(x[0], 7),
        "svds_k": lambda x: jaxsvd.svds(x[0], 3),
        "derivatives_order": lambda x: jaxsvd.derivatives(x, x, -1),
        "hermitian": lambda x: jaxsvd.svd(x, hermitian=True),
    }
    detail = []
    for name, f in bad.items():
        out = []
        for run in (lambda: f(np.ones((2, 3, 2))), lambda: sm(f)(a)):
            try:
                run()
                out.append(None)
            except Exception as e:  # noqa: BLE001
                out.append((type(e).__name__, str(e).split("\n")[0]))
        if out[0] is None or out[0] != out[1]:
            detail.append(f"{name}: outside {out[0]}, inside {out[1]}")
    return {"ok": not detail, "detail": "; ".join(detail)}


# ---------------------------------------------------------------------------
# the tests (in the suite's single-device process)
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def results():
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={NDEV}", JAX_PLATFORMS="cpu",
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, os.path.abspath(__file__)], env=env, capture_output=True, text=True,
                          timeout=1800)  # a hang guard (helpers.SUBPROCESS_TIMEOUT), not a measurement
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("check", CHECKS)
def test_sharded_equals_unsharded(results, check):
    res = results[check]
    assert res["ok"], res["detail"]


if __name__ == "__main__":
    import jax

    # the suite's settings (tests/conftest.py)
    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_numpy_dtype_promotion", "strict")
    jax.config.update("jax_numpy_rank_promotion", "raise")
    print(json.dumps(_run_checks()))
