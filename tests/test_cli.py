"""The command line: in-process through main([...]) and once through
``python -m jaxsvd`` in a subprocess (the demo, compile-heavy: one run serves
several assertions)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import SUBPROCESS_TIMEOUT, gaussian, max_rel_err

import jaxsvd
from jaxsvd._cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        [sys.executable, "-m", "jaxsvd", "demo", "--out", str(out / "figs"), "--quiet"],
        capture_output=True,
        text=True,
        env=env,
        timeout=SUBPROCESS_TIMEOUT,
    )
    return proc, out / "figs"


@pytest.mark.slow
def test_demo_subprocess(demo_run):
    proc, figs = demo_run
    assert proc.returncode == 0, proc.stderr
    assert "all checks passed" in proc.stdout
    assert "Traceback" not in proc.stderr
    for name in ("jacobian", "hessian", "taylor_error", "paper_series"):
        png = figs / f"{name}.png"
        assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the table shows the seed paper's formula departing from order 3 (THEORY.md section 2)
    assert "+1.5347" in proc.stdout and "-14.594" in proc.stdout


def _save(path, x):
    np.save(path, np.asarray(x))
    return str(path)


def test_taylor_json_matches_derivatives(tmp_path, capsys):
    a, h = gaussian((4, 3), 1), gaussian((4, 3), 2)
    rc = main(
        [
            "taylor",
            "--matrix",
            _save(tmp_path / "a.npy", a),
            "--direction",
            _save(tmp_path / "h.npy", h),
            "--order",
            "3",
            "--json",
        ]
    )
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    got = np.array(out["derivatives"])
    assert got.shape == (4, 3)
    np.testing.assert_allclose(got, jaxsvd.derivatives(a, h, 3), rtol=1e-13)
    # and the values against the independent reference (first two orders)
    ref1 = jax.jvp(jnp.linalg.svdvals, (a,), (h,))[1]
    assert max_rel_err(got[1], ref1) <= 1e-12


def test_taylor_csv_and_npz_inputs(tmp_path, capsys):
    a, h = gaussian((3, 5), 3), gaussian((3, 5), 4)
    np.savetxt(tmp_path / "a.csv", np.asarray(a), delimiter=",")
    np.savez(tmp_path / "ah.npz", A=np.asarray(a), H=np.asarray(h))
    assert (
        main(
            [
                "taylor",
                "--matrix",
                str(tmp_path / "a.csv"),
                "--direction",
                _save(tmp_path / "h.npy", h),
                "--order",
                "2",
                "--json",
            ]
        )
        == 0
    )
    got = np.array(json.loads(capsys.readouterr().out)["derivatives"])
    np.testing.assert_allclose(got, jaxsvd.derivatives(a, h, 2), rtol=1e-12)
    # .npz with two arrays needs --array
    rc = main(
        [
            "taylor",
            "--matrix",
            str(tmp_path / "ah.npz"),
            "--direction",
            str(tmp_path / "ah.npz"),
            "--order",
            "2",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "--array" in err and len(err.strip().splitlines()) == 1
    # the text table
    assert (
        main(
            [
                "taylor",
                "--matrix",
                str(tmp_path / "a.csv"),
                "--direction",
                str(tmp_path / "h.npy"),
                "--order",
                "1",
            ]
        )
        == 0
    )
    assert "sigma_3" in capsys.readouterr().out


def test_hessian_command(tmp_path, capsys):
    a = gaussian((3, 4), 5)
    src = _save(tmp_path / "a.npy", a)
    out = tmp_path / "h.npy"
    assert main(["hessian", "--matrix", src, "--k", "1", "--out", str(out)]) == 0
    ref = jax.hessian(lambda b: jnp.linalg.svdvals(b)[1])(a)
    assert max_rel_err(np.load(out), ref) <= 1e-10
    assert main(["hessian", "--matrix", src, "--k", "1", "--out", str(out), "--layout", "vec", "--json"]) == 0
    info = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert info["shape"] == [12, 12]
    assert max_rel_err(np.load(out), np.asarray(ref).transpose(1, 0, 3, 2).reshape(12, 12)) <= 1e-10


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "pickle",
        "3d",
        "text",
        "badcsv",
        "suffix",
        "complex",
        "badzip",
        "nonfinite",
        "k",
        "shape",
        "option",
        "order",
    ],
)
def test_bad_input_one_line_exit_2(tmp_path, capsys, case):
    good = _save(tmp_path / "good.npy", np.eye(3) + np.diag([1.0, 2.0, 3.0]))
    bad = tmp_path / "bad.npy"
    argv = None
    if case == "missing":
        bad = tmp_path / "nope.npy"
    elif case == "pickle":
        np.save(bad, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    elif case == "3d":
        np.save(bad, np.zeros((2, 2, 2)))
    elif case == "text":
        np.save(bad, np.array(["a", "b"]))
    elif case == "badcsv":
        bad = tmp_path / "bad.csv"
        bad.write_text("1,2\nx,y\n")
    elif case == "suffix":
        bad = tmp_path / "bad.txt"
        bad.write_text("1 2\n")
    elif case == "complex":
        np.save(bad, np.ones((2, 2), np.complex128))
    elif case == "badzip":
        bad = tmp_path / "bad.npz"
        bad.write_bytes(b"not a zip file")
    elif case == "nonfinite":
        np.save(bad, np.array([[1.0, np.nan], [0.0, 1.0]]))
    elif case == "k":
        argv = ["hessian", "--matrix", good, "--k", "7", "--out", str(tmp_path / "o.npy")]
    elif case == "shape":
        argv = [
            "taylor",
            "--matrix",
            good,
            "--direction",
            _save(tmp_path / "h.npy", np.ones((2, 3))),
            "--order",
            "2",
        ]
    elif case == "option":
        argv = ["hessian", "--matrix", good, "--k", "0", "--out", "o.npy", "--layout", "kron"]
    elif case == "order":
        argv = ["taylor", "--matrix", good, "--direction", good, "--order", "0"]
    if argv is None:
        argv = ["taylor", "--matrix", str(bad), "--direction", good, "--order", "2"]
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err and "error" in err


def test_check_random_and_files(tmp_path, capsys):
    assert main(["check", "--random", "3", "4", "--count", "1", "--order", "2", "--json", "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] and all(c["ok"] for c in out["checks"])
    assert {c["reference"] for c in out["checks"]} >= {
        "jnp.linalg.svd: hessian",
        "finite differences (numpy)",
    }
    # a file input, and a diagonal matrix (exact zeros in the singular vectors)
    src = _save(tmp_path / "d.npy", np.diag([3.0, 2.0, 1.0]))
    assert main(["check", "--matrix", src, "--order", "2", "--quiet"]) == 0


def test_help_and_no_command(capsys):
    assert main(["--help"]) == 0
    assert "demo" in capsys.readouterr().out
    assert main([]) == 2
    assert main(["frobnicate"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) >= 1


def test_bench_prints_how_without_checkout(monkeypatch, tmp_path, capsys):
    import jaxsvd._cli as cli

    monkeypatch.setattr(cli, "_find_benchmarks", lambda: None)
    assert main(["bench"]) == 1
    assert "bench_hessian.py --quick" in capsys.readouterr().err


def test_without_matplotlib_demo_skips_figures_and_figures_exits_2(tmp_path, monkeypatch, capsys):
    import jaxsvd._cli as cli

    monkeypatch.setattr(cli, "_have_matplotlib", lambda: False)
    assert main(["figures", "--out", str(tmp_path / "f"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "matplotlib" in err[0]
    assert main(["demo", "--order", "2", "--out", str(tmp_path / "d"), "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert "figures skipped" in err and "all checks passed" in out
    assert not (tmp_path / "d").exists()
