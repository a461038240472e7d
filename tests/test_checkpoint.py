"""``sensitivity(..., checkpoint=DIR)``: chunks persisted atomically and verified by
their hash, resumed after ``kill -9`` at random points bitwise equal to an
uninterrupted run (the reference: the same call without a checkpoint, in this
process), torn files recomputed, other runs' directories refused."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest
from helpers import SUBPROCESS_TIMEOUT

import jaxsvd.montecarlo as mc
from jaxsvd import _montecarlo as _mc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KW = dict(order=2, batch_size=256, progress=False)
SHAPE, NUM = (3, 4), 256 * 24  # 24 chunks

_CHILD = textwrap.dedent("""
    import sys, jax
    jax.config.update("jax_enable_x64", True)
    import jaxsvd.montecarlo as mc
    kw = dict(order=2, batch_size=256, progress=False)
    mc.sensitivity(jax.random.key(5), (3, 4), 256, **kw)  # compile first
    print("ready", flush=True)
    mc.sensitivity(jax.random.key(5), (3, 4), int(sys.argv[2]), checkpoint=sys.argv[1], **kw)
    print("done", flush=True)
""")


def _chunks(d):
    return sorted(f for f in os.listdir(d) if f.startswith("chunk-"))


def test_kill9_at_random_points_then_resume_bitwise(tmp_path):
    """kill -9 of a running checkpointed run, ROUNDS times at random moments after
    its compile, then one run to the end: bitwise equal to an uninterrupted run."""
    rounds = int(os.environ.get("JAXSVD_KILL_ROUNDS", "10"))
    d = str(tmp_path / "ck")
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    rng = random.Random(0)
    killed_with = []
    for _ in range(rounds):
        p = subprocess.Popen([sys.executable, "-c", _CHILD, d, str(NUM)], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
        try:
            assert p.stdout.readline().strip() == "ready"
            try:
                p.wait(timeout=rng.uniform(0.0, 0.4))
            except subprocess.TimeoutExpired:
                pass
            p.kill()  # SIGKILL
        finally:
            p.wait(timeout=SUBPROCESS_TIMEOUT)
            p.stdout.close()
        killed_with.append(len(_chunks(d)))
        # no temporary file is ever taken for a chunk
        assert all(not f.startswith("chunk-") or f.endswith(".npy") for f in os.listdir(d))
    want = mc.sensitivity(jax.random.key(5), SHAPE, NUM, **KW)
    got = mc.sensitivity(jax.random.key(5), SHAPE, NUM, checkpoint=d, **KW)
    np.testing.assert_array_equal(got.derivatives, want.derivatives)
    assert len(_chunks(d)) == NUM // 256
    assert killed_with == sorted(killed_with)  # chunks only accumulate


def test_torn_and_missing_chunks_recomputed_other_run_refused(tmp_path):
    d = str(tmp_path / "ck")
    want = mc.sensitivity(jax.random.key(1), SHAPE, 2048, **KW)
    mc.sensitivity(jax.random.key(1), SHAPE, 2048, checkpoint=d, **KW)
    fs = _chunks(d)
    assert len(fs) == 8
    os.unlink(os.path.join(d, fs[1]))                       # missing
    with open(os.path.join(d, fs[3]), "r+b") as f:          # torn: truncated mid-array
        f.truncate(60)
    with open(os.path.join(d, fs[5]), "r+b") as f:          # altered bytes, same length
        f.seek(-8, os.SEEK_END)
        f.write(b"\x00" * 8)
    calls = []
    run = _mc._chunk
    _mc._chunk = lambda *a, **k: (calls.append(1), run(*a, **k))[1]
    try:
        got = mc.sensitivity(jax.random.key(1), SHAPE, 2048, checkpoint=d, **KW)
    finally:
        _mc._chunk = run
    np.testing.assert_array_equal(got.derivatives, want.derivatives)
    assert len(calls) == 3  # only the three bad chunks were recomputed
    assert len(_chunks(d)) == 8
    # another run's directory: a clear error, nothing written
    for other in (dict(key=jax.random.key(2)), dict(order=3), dict(num=4096)):
        args = dict(key=jax.random.key(1), num=2048, order=2) | other
        with pytest.raises(ValueError, match="belongs to another run"):
            mc.sensitivity(args["key"], SHAPE, args["num"], order=args["order"], batch_size=256,
                           progress=False, checkpoint=d)
    assert len(_chunks(d)) == 8


def test_bad_directories(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(OSError, match="cannot be created"):
        mc.sensitivity(jax.random.key(0), SHAPE, 8, progress=False, checkpoint=str(f / "sub"))
    d = tmp_path / "notours"
    d.mkdir()
    (d / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match="not a jaxsvd checkpoint manifest"):
        mc.sensitivity(jax.random.key(0), SHAPE, 8, progress=False, checkpoint=str(d))


def test_cli_checkpoint_resumes(tmp_path, capsys):
    from jaxsvd._cli import main

    ck, out = tmp_path / "ck", tmp_path / "out"
    argv = ["mc", "--shape", "3x4", "--num", "600", "--order", "1", "--batch-size", "256", "--seed", "3",
            "--out", str(out), "--no-progress", "--json", "--checkpoint", str(ck)]
    assert main(argv) == 0
    assert len(_chunks(ck)) == 3
    os.unlink(os.path.join(ck, _chunks(ck)[0]))
    assert main(argv) == 0
    res = mc.SensitivityResult.load(out / "sensitivity.npz")
    ref = mc.sensitivity(jax.random.key(3), SHAPE, 600, order=1, progress=False)
    np.testing.assert_array_equal(res.derivatives, ref.derivatives)
    # another run in the same directory: one clear line, exit status 2
    capsys.readouterr()
    assert main(argv[:6] + ["2"] + argv[7:]) == 2  # --order 2
    assert "belongs to another run" in capsys.readouterr().err
