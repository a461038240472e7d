"""Monte Carlo sensitivity: jaxsvd.montecarlo.sample / sensitivity / SensitivityResult, and `mc` CLI.

References: a Python loop over jaxsvd.derivatives (the issue's contract), nested
jax.jvp through jnp.linalg.svd (independent), numpy statistics, numpy SVD, an
independent re-implementation of the documented key scheme with jax.random.
Shapes are small (3x4) and a few static configurations are reused so the file
compiles little.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import SUBPROCESS_TIMEOUT, max_rel_err, nested_jvp_derivatives

import jaxsvd
import jaxsvd.montecarlo as mc
from jaxsvd import _mc_cli
from jaxsvd import _montecarlo as _mc

SHAPE = (3, 4)
NUM = 10
KEY = jax.random.key(42)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(num=NUM, **kw):
    kw.setdefault("order", 2)
    kw.setdefault("progress", False)
    return mc.sensitivity(KEY, SHAPE, num, **kw)


@pytest.fixture(scope="module")
def base():
    return _run()


# ---------------------------------------------------------------------------
# correctness
# ---------------------------------------------------------------------------


def test_equals_python_loop_over_derivatives(base):
    a, h = base.matrices, base.directions
    assert a.shape == h.shape == (NUM,) + SHAPE
    loop = np.stack([np.asarray(jaxsvd.derivatives(a[i], h[i], 2)) for i in range(NUM)])
    assert base.derivatives.shape == (NUM, 3, 3)
    np.testing.assert_allclose(base.derivatives, loop, rtol=1e-11, atol=1e-12)


def test_against_nested_jvp_through_jnp_svd(base):
    # independent reference: JAX's own SVD rule, nested jvp, float64
    a, h = base.matrices, base.directions
    for i in (0, 3):
        ref = nested_jvp_derivatives(jnp.linalg.svdvals, jnp.asarray(a[i]), [jnp.asarray(h[i])], 2)
        assert max_rel_err(base.derivatives[i], ref) < 1e-9


def test_key_scheme_is_the_documented_one(base):
    # re-derive sample i's matrix and direction from the documented fold_in scheme
    for i in (0, 7):
        ki = jax.random.fold_in(KEY, i)
        a = jax.random.normal(jax.random.fold_in(ki, 0), SHAPE, jnp.float64)
        h = jax.random.normal(jax.random.fold_in(ki, 1), SHAPE, jnp.float64)
        np.testing.assert_array_equal(base.matrices[i], np.asarray(a))
        np.testing.assert_array_equal(base.directions[i], np.asarray(h))
    np.testing.assert_array_equal(np.asarray(mc.sample(KEY, "gaussian", SHAPE, NUM)), base.matrices)


@pytest.mark.parametrize("batch_size", [1, 7, NUM])
def test_chunking_invariance(base, batch_size):
    res = _run(batch_size=batch_size)
    np.testing.assert_array_equal(res.derivatives, base.derivatives)  # bitwise: the same compiled step


def test_same_key_same_result_and_prefix_stable(base):
    again = _run()
    np.testing.assert_array_equal(again.derivatives, base.derivatives)
    other = mc.sensitivity(jax.random.key(43), SHAPE, NUM, order=2, progress=False)
    assert not np.allclose(other.derivatives, base.derivatives)
    # a raw uint32 key with the same bits gives the same numbers
    raw = jax.random.key_data(KEY)
    np.testing.assert_array_equal(mc.sensitivity(raw, SHAPE, NUM, order=2, progress=False).derivatives,
                                  base.derivatives)
    # sample i does not depend on num: a shorter run is a prefix
    short = _run(num=4, batch_size=NUM)
    np.testing.assert_array_equal(short.derivatives, base.derivatives[:4])


def test_fixed_direction():
    h = np.arange(12.0).reshape(SHAPE) / 10 - 0.5
    res = _run(num=4, direction=h, order=1)
    assert res.direction == "fixed"
    np.testing.assert_array_equal(res.directions, np.broadcast_to(h, (4,) + SHAPE))
    a = res.matrices
    loop = np.stack([np.asarray(jaxsvd.derivatives(a[i], h, 1)) for i in range(4)])
    np.testing.assert_allclose(res.derivatives, loop, rtol=1e-11, atol=1e-12)
    # first derivative d sigma_k = u_k^T H v_k, numpy SVD as the reference
    u, s, vt = np.linalg.svd(a[0], full_matrices=False)
    np.testing.assert_allclose(res.derivatives[0, 1], np.einsum("ik,ij,jk->k", u, h, vt.T), rtol=1e-10)


def test_chunk_function_compiled_once():
    # a static configuration no other test uses: order 1, uniform directions
    before = _mc._chunk._cache_size()
    res = _run(num=9, batch_size=4, order=1, direction="uniform")  # 3 chunks, last one padded
    assert _mc._chunk._cache_size() == before + 1
    assert res.derivatives.shape == (9, 2, 3)
    assert np.all(res.directions >= 0) and np.all(res.directions < 1)


def test_float32():
    res = mc.sensitivity(KEY, SHAPE, 4, order=2, dtype=jnp.float32, progress=False)
    assert res.derivatives.dtype == np.float32 and res.matrices.dtype == np.float32
    # float32 draws are other numbers than float64 draws: compare with the float64
    # reference (nested jvp through jnp.linalg.svd) on the same float32 matrices
    a, h = res.matrices.astype(np.float64), res.directions.astype(np.float64)
    for i in (0, 1):
        ref = nested_jvp_derivatives(jnp.linalg.svdvals, jnp.asarray(a[i]), [jnp.asarray(h[i])], 2)
        assert max_rel_err(res.derivatives[i], ref) < 2e-3


_SHARDED = textwrap.dedent("""
    import json, jax, numpy as np
    import jaxsvd.montecarlo as mc
    from jaxsvd import _montecarlo as _mc
    assert len(jax.devices()) == 4, jax.devices()
    key = jax.random.key(7)
    mesh = jax.make_mesh((4,), ("d",))
    out = {}
    for ens in ("gaussian", "wishart"):
        one = mc.sensitivity(key, (3, 4), 10, ensemble=ens, order=2, batch_size=5, progress=False)
        four = mc.sensitivity(key, (3, 4), 10, ensemble=ens, order=2, batch_size=5, mesh=mesh,
                              progress=False)
        out[ens] = [one.derivatives.tolist(), four.derivatives.tolist()]
    # a 2-D mesh: the chunk is sharded over all four devices, not only the first axis
    run, used = _mc._chunk_sharded, []
    _mc._chunk_sharded = lambda *a, **k: (lambda y: (used.append(len(y.sharding.device_set)), y)[1])(run(*a, **k))
    grid = mc.sensitivity(key, (3, 4), 10, order=2, batch_size=5, mesh=jax.make_mesh((2, 2), ("a", "b")),
                          progress=False)
    _mc._chunk_sharded = run
    out["grid"], out["grid_devices"] = grid.derivatives.tolist(), used
    idx = jax.device_put(jax.numpy.arange(4 * _mc._inner_size((3, 4)), dtype=jax.numpy.uint32),
                         jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("d")))
    y = _mc._chunk_sharded(key, idx, jax.numpy.zeros(()), ensemble="gaussian", direction="gaussian",
                           shape=(3, 4), order=2, dtype=np.dtype("float64"), mesh=mesh)
    out["devices"] = len({s.device for s in y.addressable_shards})
    out["shard_rows"] = [s.data.shape[0] for s in y.addressable_shards]
    print(json.dumps(out))
""")


_LAPACK_POOL = textwrap.dedent("""
    import json, jax, numpy as np
    from jax.sharding import Mesh
    import jaxsvd.montecarlo as mc
    mesh = Mesh(np.array(jax.devices()), ("d",))
    key = jax.random.key(3)
    # 6 x 10: a step of batched SVDs above jaxlib's inline bound used to deadlock the
    # CPU thread pool with four devices (every pool thread blocked in ParallelBatchMap)
    runs = [mc.sensitivity(key, (6, 10), 1500, order=2, mesh=mesh, progress=False).derivatives
            for _ in range(3)]
    one = mc.sensitivity(key, (6, 10), 1500, order=2, progress=False).derivatives
    print(json.dumps({"equal": [bool(np.array_equal(r, one, equal_nan=True)) for r in runs],
                      "finite": bool(np.isfinite(one).all())}))
""")


def test_four_device_mesh_default_pool_no_deadlock():
    """The default CPU thread pool (no NPROC), four virtual devices, batched SVDs
    above jaxlib's inline bound: three runs finish and equal one device bitwise.
    The timeout only turns a hang into a failure (measured: ~20 s quiet)."""
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_ENABLE_X64="1",
               JAX_PLATFORMS="cpu", PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("NPROC", None)
    try:
        proc = subprocess.run([sys.executable, "-c", _LAPACK_POOL], env=env, capture_output=True, text=True,
                              timeout=900)
    except subprocess.TimeoutExpired:
        pytest.fail("sensitivity over a 4-device CPU mesh did not finish in 900 s: the LAPACK pool deadlock")
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {"equal": [True, True, True], "finite": True}


def test_four_device_mesh_matches_one_device():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_ENABLE_X64="1",
               JAX_PLATFORMS="cpu", PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", _SHARDED], env=env, capture_output=True, text=True,
                          timeout=SUBPROCESS_TIMEOUT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    for ens in ("gaussian", "wishart"):
        one, four = (np.asarray(x) for x in out[ens])
        assert one.shape == (10, 3, 3)  # num = 10 is not a multiple of 4
        np.testing.assert_array_equal(four, one)
    np.testing.assert_array_equal(np.asarray(out["grid"]), np.asarray(out["gaussian"][0]))
    assert out["grid_devices"] == [4]
    assert out["devices"] == 4 and out["shard_rows"] == [_mc._inner_size((3, 4))] * 4
    # and the single-device subprocess agrees with this process's own computation
    # (bitwise on the same backend; another backend -- a GPU here, the CPU in the subprocess --
    # runs other SVD kernels: equal to rounding)
    here = mc.sensitivity(jax.random.key(7), (3, 4), 10, order=2, progress=False)
    if jax.default_backend() == "cpu":
        np.testing.assert_array_equal(np.asarray(out["gaussian"][0]), here.derivatives)
    else:
        np.testing.assert_allclose(np.asarray(out["gaussian"][0]), here.derivatives, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------
# ensembles
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(4, 4), (5, 3), (3, 5)])
def test_orthogonal_ensemble(shape):
    q = np.asarray(mc.sample(KEY, "orthogonal", shape, 6))
    s = np.linalg.svd(q, compute_uv=False)
    np.testing.assert_allclose(s, 1.0, atol=1e-13)
    gram = np.swapaxes(q, -1, -2) @ q if shape[0] >= shape[1] else q @ np.swapaxes(q, -1, -2)
    np.testing.assert_allclose(gram, np.broadcast_to(np.eye(min(shape)), gram.shape), atol=1e-13)
    assert np.unique(np.round(q.reshape(6, -1), 12), axis=0).shape[0] == 6  # distinct draws


def test_orthogonal_haar_first_moment():
    # Haar on O(n): E[Q_ij] = 0, E[Q_ij^2] = 1/n
    q = np.asarray(mc.sample(KEY, "orthogonal", (3, 3), 3000))
    assert abs(q.mean()) < 0.02
    np.testing.assert_allclose((q ** 2).mean(axis=0), 1 / 3, atol=0.03)


def test_orthogonal_sensitivity_nan_beyond_first_order():
    # orthonormal columns: sigma = (1, 1, 1) coincide -> D^2 sigma does not exist
    res = mc.sensitivity(KEY, (5, 3), 4, ensemble="orthogonal", order=2, progress=False)
    np.testing.assert_allclose(res.derivatives[:, 0], 1.0, atol=1e-13)
    assert np.all(np.isnan(res.derivatives[:, 2]))
    np.testing.assert_array_equal(res.num_nan[2], [4, 4, 4])
    np.testing.assert_array_equal(res.num_nan[:2], 0)
    assert np.all(np.isnan(res.mean[2])) and np.all(np.isfinite(res.mean[:2]))


def test_gaussian_uniform_wishart_moments():
    g = np.asarray(mc.sample(KEY, "gaussian", SHAPE, 4000))
    assert abs(g.mean()) < 0.02 and abs(g.var() - 1) < 0.03
    u = np.asarray(mc.sample(KEY, "uniform", SHAPE, 4000))
    assert u.min() >= 0 and u.max() < 1
    assert abs(u.mean() - 0.5) < 0.01 and abs(u.var() - 1 / 12) < 0.005
    w = np.asarray(mc.sample(KEY, "wishart", SHAPE, 4000))
    # G1 G2 / sqrt(p): entries have mean 0 and variance 1; E[A A^T] = n I
    assert abs(w.mean()) < 0.03 and abs(w.var() - 1) < 0.05
    np.testing.assert_allclose((w @ np.swapaxes(w, -1, -2)).mean(axis=0), 4 * np.eye(3), atol=0.25)
    assert mc.sample(KEY, "gaussian", SHAPE, 2, dtype=jnp.float32).dtype == jnp.float32


# ---------------------------------------------------------------------------
# result object
# ---------------------------------------------------------------------------


def test_statistics_against_numpy(base):
    d = base.derivatives
    np.testing.assert_allclose(base.mean, d.mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose(base.std, d.std(axis=0, ddof=0), rtol=1e-13)
    assert base.quantile_levels == (0.05, 0.25, 0.5, 0.75, 0.95)
    assert base.quantiles.shape == (5, 3, 3)
    for q, level in enumerate(base.quantile_levels):
        np.testing.assert_allclose(base.quantiles[q], np.quantile(d, level, axis=0), rtol=1e-14)
    np.testing.assert_array_equal(base.num_nan, 0)


def test_statistics_ignore_nan_samples():
    d = np.arange(2 * 2 * 2, dtype=float).reshape(2, 2, 2) + np.array([0.0, 10.0])[:, None, None]
    d = np.concatenate([d, np.full((1, 2, 2), np.nan)])
    res = mc.SensitivityResult(d, key=KEY, shape=(2, 3), ensemble="gaussian", direction="gaussian")
    np.testing.assert_allclose(res.mean, d[:2].mean(axis=0))
    np.testing.assert_allclose(res.std, d[:2].std(axis=0))
    np.testing.assert_array_equal(res.num_nan, 1)


def test_summary_table(base):
    text = base.summary()
    lines = text.splitlines()
    assert len(lines) == 3 + 3 * 3
    assert "q05" in lines[1] and "q95" in lines[1]
    short = base.summary(orders=[2], indices=[0, -1])
    assert len(short.splitlines()) == 3 + 2
    assert f"{base.mean[2, 2]: .4e}" in short.splitlines()[-1]
    d = base.summary_dict()
    json.dumps(d)
    np.testing.assert_allclose(d["quantiles"], base.quantiles)


def test_save_load_round_trip(tmp_path, base):
    path = base.save(tmp_path / "res")
    assert path.endswith(".npz")
    with np.load(path, allow_pickle=False) as z:  # no pickled objects inside
        assert "derivatives" in z.files
    back = mc.SensitivityResult.load(path)
    np.testing.assert_array_equal(back.derivatives, base.derivatives)
    assert (back.shape, back.ensemble, back.direction, back.dtype, back.order, back.num) == \
        (base.shape, base.ensemble, base.direction, base.dtype, base.order, base.num)
    np.testing.assert_array_equal(back.matrices, base.matrices)
    np.testing.assert_array_equal(back.directions, base.directions)
    np.testing.assert_array_equal(back.quantiles, base.quantiles)
    a3, h3 = back.sample_at(3)
    np.testing.assert_array_equal(a3, base.matrices[3])
    np.testing.assert_array_equal(h3, base.directions[3])


def test_save_load_fixed_direction(tmp_path):
    h = np.ones(SHAPE)
    res = _run(num=4, direction=h, order=1)
    back = mc.SensitivityResult.load(res.save(tmp_path / "fixed.npz"))
    assert back.direction == "fixed"
    np.testing.assert_array_equal(back.fixed_direction, h)
    np.testing.assert_array_equal(back.derivatives, res.derivatives)


def test_load_rejects_other_npz(tmp_path):
    p = tmp_path / "other.npz"
    np.savez(p, x=np.zeros(3))
    with pytest.raises(ValueError, match="not a saved SensitivityResult"):
        mc.SensitivityResult.load(p)


def test_plot_writes_png(tmp_path, base):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    path = tmp_path / "hist.png"
    fig = base.plot(orders=(1, 2), indices=(0, -1), path=path)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 4
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="order"):
        base.plot(orders=(5,))
    with pytest.raises(ValueError, match="index"):
        base.plot(indices=(3,))


def test_progress_through_the_shared_helper(monkeypatch):
    """sensitivity(progress=...) opens one jaxsvd._progress bar and advances it to num (tests/test_progress.py
    covers the bar itself: terminal-aware, rich / tqdm / silent)."""
    from jaxsvd._progress import NoBar

    calls = []

    class Recorder(NoBar):
        def advance(self, n=1, description=None):
            calls.append(n)

    def fake_bar(total, description, *, enabled=True, transient=False):
        calls.append(("open", total, enabled))
        return Recorder()

    monkeypatch.setattr(_mc, "progress_bar", fake_bar)
    _run(progress=True)
    assert calls[0] == ("open", NUM, True) and sum(calls[1:]) == NUM
    calls.clear()
    _run(progress=False)
    assert calls[0] == ("open", NUM, False)


# ---------------------------------------------------------------------------
# bad arguments
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("kw, exc, match", [
    (dict(ensemble="cauchy"), ValueError, "unknown ensemble"),
    (dict(num=0), ValueError, "num must be an int >= 1"),
    (dict(num=-3), ValueError, "num must be"),
    (dict(num=2.5), TypeError, "num must be a static Python int"),
    (dict(shape=(3, 4, 5)), ValueError, "shape must be a pair"),
    (dict(shape=(3,)), ValueError, "shape must be a pair"),
    (dict(shape=(0, 4)), ValueError, "shape must be a pair"),
    (dict(shape=7), ValueError, "shape must be a pair"),
    (dict(order=-1), ValueError, "order must be an int >= 0"),
    (dict(order=True), TypeError, "order must be"),
    (dict(direction="cauchy"), ValueError, "unknown direction"),
    (dict(direction=np.ones((4, 3))), ValueError, r"matrix shape \(3, 4\)"),
    (dict(direction=np.ones((3, 4), complex)), ValueError, "real array"),
    (dict(direction=np.full((3, 4), np.nan)), ValueError, "finite"),
    (dict(batch_size=0), ValueError, "batch_size must be"),
    (dict(mesh="cpu"), TypeError, "Mesh"),
    (dict(key=3), TypeError, "PRNG key"),
    (dict(key=jax.random.split(KEY, 2)), ValueError, "single PRNG key"),
    (dict(dtype=jnp.int32), ValueError, "float32 or float64"),
])
def test_bad_arguments(kw, exc, match):
    args = dict(key=KEY, shape=SHAPE, num=4, order=2, progress=False)
    args.update(kw)
    with pytest.raises(exc, match=match):
        mc.sensitivity(args.pop("key"), args.pop("shape"), args.pop("num"), **args)


def test_sample_bad_arguments():
    with pytest.raises(ValueError, match="unknown ensemble"):
        mc.sample(KEY, "cauchy", SHAPE, 3)
    with pytest.raises(ValueError, match="num"):
        mc.sample(KEY, "gaussian", SHAPE, 0)
    with pytest.raises(ValueError, match="shape"):
        mc.sample(KEY, "gaussian", (2, 2, 2), 3)


# ---------------------------------------------------------------------------
# CLI (own argparse harness: jaxsvd/_cli.py calls _mc_cli.register)
# ---------------------------------------------------------------------------


def _cli(argv):
    parser = argparse.ArgumentParser(prog="jaxsvd")
    _mc_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_writes_outputs(tmp_path, capsys):
    out = tmp_path / "mc"
    rc = _cli(["mc", "--shape", "3x4", "--num", str(NUM), "--order", "2", "--seed", "0",
               "--out", str(out), "--no-progress"])
    assert rc == 0
    files = sorted(os.listdir(out))
    assert files == ["hist_order1.png", "hist_order2.png", "quantiles.json", "quantiles.txt",
                     "sensitivity.npz"]
    stdout = capsys.readouterr().out
    assert "q50" in stdout
    res = mc.SensitivityResult.load(out / "sensitivity.npz")
    ref = mc.sensitivity(jax.random.key(0), SHAPE, NUM, order=2, progress=False)
    np.testing.assert_array_equal(res.derivatives, ref.derivatives)
    summary = json.loads((out / "quantiles.json").read_text())
    np.testing.assert_allclose(summary["quantiles"], ref.quantiles)


def test_cli_json_and_fixed_direction_file(tmp_path, capsys):
    hpath = tmp_path / "h.csv"
    np.savetxt(hpath, np.ones(SHAPE), delimiter=",")
    rc = _cli(["mc", "--shape", "3x4", "--num", "4", "--order", "1", "--direction", str(hpath),
               "--out", str(tmp_path / "o"), "--no-progress", "--json"])
    assert rc == 0
    d = json.loads(capsys.readouterr().out)
    assert d["direction"] == "fixed" and d["num"] == 4 and len(d["mean"]) == 2


@pytest.mark.parametrize("extra, match", [
    (["--shape", "3"], "--shape"),
    (["--shape", "0x4"], "--shape"),
    (["--num", "0"], "--num"),
    (["--order", "-1"], "--order"),
    (["--ensemble", "cauchy"], "unknown ensemble"),
    (["--direction", "missing.npy"], "--direction"),
    (["--dtype", "int8"], "--dtype"),
    (["--batch-size", "0"], "--batch-size"),
])
def test_cli_bad_arguments(tmp_path, capsys, extra, match):
    rc = _cli(["mc", "--shape", "3x4", "--num", "3", "--out", str(tmp_path / "o"), "--no-progress"] + extra)
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and match in err and err.startswith("jaxsvd mc: error:")


def test_cli_direction_file_wrong_shape(tmp_path, capsys):
    hpath = tmp_path / "h.npy"
    np.save(hpath, np.ones((4, 3)))
    rc = _cli(["mc", "--shape", "3x4", "--num", "3", "--direction", str(hpath), "--out", str(tmp_path / "o"),
               "--no-progress"])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "matrix shape (3, 4)" in err


@pytest.mark.slow
def test_example_runs(tmp_path):
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "montecarlo_sensitivity.py"),
                           "--num", "200", "--bins", "4", "--out", str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "fitted slope" in proc.stdout
    assert {"gaussian.npz", "uniform.npz", "hist_gaussian.png", "hist_uniform.png",
            "spread_vs_gap.png"} <= set(os.listdir(tmp_path))
