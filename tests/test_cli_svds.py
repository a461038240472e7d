"""``jaxsvd svds``: dense and scipy-sparse files, JSON, bad input (exit 2, one line)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from helpers import SUBPROCESS_TIMEOUT, gaussian

from jaxsvd._cli import main


def test_svds_dense_json(tmp_path, capsys):
    a = np.asarray(gaussian((30, 20), seed=3))
    np.save(tmp_path / "a.npy", a)
    assert main(["svds", "--matrix", str(tmp_path / "a.npy"), "--k", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    np.testing.assert_allclose(out["singular_values"], np.linalg.svd(a, compute_uv=False)[:3], rtol=1e-11)
    assert out["converged"] and out["krylov_steps"] >= 3 and max(out["residuals"]) <= 1e-12


def test_svds_scipy_sparse_table(tmp_path, capsys):
    sp = pytest.importorskip("scipy.sparse")
    m = sp.random(40, 25, density=0.2, random_state=np.random.default_rng(1), format="csr")
    sp.save_npz(tmp_path / "a.npz", m)
    assert main(["svds", "--matrix", str(tmp_path / "a.npz"), "--k", "2"]) == 0
    out = capsys.readouterr().out
    s = np.linalg.svd(m.toarray(), compute_uv=False)[:2]
    for v in s:
        assert f"{v:.10e}" in out


@pytest.mark.parametrize("args", [["--k", "0"], ["--k", "31"], ["--k", "x"]])
def test_svds_bad_k_exit_2(tmp_path, capsys, args):
    np.save(tmp_path / "a.npy", np.asarray(gaussian((30, 20), seed=3)))
    assert main(["svds", "--matrix", str(tmp_path / "a.npy")] + args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "error" in err


def test_svds_missing_file_and_subprocess(tmp_path):
    assert main(["svds", "--matrix", str(tmp_path / "nope.npy"), "--k", "1"]) == 2
    np.save(tmp_path / "a.npy", np.diag([3.0, 2.0, 1.0]))
    r = subprocess.run([sys.executable, "-m", "jaxsvd", "svds", "--matrix", str(tmp_path / "a.npy"), "--k", "2",
                        "--json"], capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT)
    assert r.returncode == 0, r.stderr
    np.testing.assert_allclose(json.loads(r.stdout)["singular_values"], [3.0, 2.0], rtol=1e-12)
