"""The CLI's input section: load_operator (dense files as numpy, scipy sparse .npz as BCOO), bad files.

Dense reading through the commands is in tests/test_cli.py; here the function
the matrix-free commands will use, directly (no compilation: fast).
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from helpers import gaussian

from jaxsvd._cli import CLIError, load_matrix, load_operator

sp = pytest.importorskip("scipy.sparse")


def _one_line(excinfo):
    msg = str(excinfo.value)
    assert msg and "\n" not in msg
    return msg


def test_dense_files(tmp_path):
    a = np.asarray(gaussian((4, 3), 1))
    np.save(tmp_path / "a.npy", a)
    np.savetxt(tmp_path / "a.csv", a, delimiter=",")
    np.savez(tmp_path / "one.npz", M=a)
    np.savez(tmp_path / "two.npz", A=a, B=2 * a)
    for path, array in [("a.npy", None), ("a.csv", None), ("one.npz", None), ("two.npz", "A")]:
        got = load_operator(tmp_path / path, array)
        assert type(got) is np.ndarray and got.dtype == np.float64 and got.shape == (4, 3)
        np.testing.assert_allclose(got, a, rtol=1e-15 if path != "a.csv" else 1e-12)
    np.testing.assert_array_equal(load_operator(tmp_path / "a.npy", what="direction"), load_matrix(tmp_path / "a.npy"))
    # an integer matrix is promoted, as for load_matrix
    np.save(tmp_path / "i.npy", np.arange(6).reshape(2, 3))
    assert load_operator(tmp_path / "i.npy").dtype == np.float64


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo", "bsr", "dia"])
@pytest.mark.parametrize("kind", ["matrix", "array"])
def test_sparse_round_trip(tmp_path, fmt, kind):
    from jax.experimental import sparse as jsparse

    m = sp.random(7, 5, density=0.4, format=fmt, random_state=0, dtype=np.float32)
    if kind == "array":
        m = sp.csr_array(m).asformat(fmt)
    sp.save_npz(tmp_path / "s.npz", m)
    op = load_operator(tmp_path / "s.npz")
    assert isinstance(op, jsparse.BCOO) and op.shape == (7, 5) and op.dtype == np.float64
    dense = m.toarray().astype(np.float64)
    np.testing.assert_array_equal(np.asarray(op.todense()), dense)
    x = np.asarray(gaussian((5,), 2))
    np.testing.assert_allclose(np.asarray(op @ x), dense @ x, rtol=1e-14, atol=1e-14)


def test_sparse_with_duplicates_and_no_dense_copy_needed(tmp_path):
    # duplicate entries (legal in coo) add up, as scipy's own products do
    m = sp.coo_matrix((np.array([1.0, 2.0, 3.0]), (np.array([0, 0, 2]), np.array([1, 1, 0]))), shape=(3, 2))
    sp.save_npz(tmp_path / "d.npz", m, compressed=False)
    op = load_operator(tmp_path / "d.npz")
    np.testing.assert_array_equal(np.asarray(op.todense()), m.toarray())


def test_sparse_file_where_a_dense_matrix_is_needed(tmp_path):
    sp.save_npz(tmp_path / "s.npz", sp.eye(3, format="csr"))
    with pytest.raises(CLIError) as e:
        load_matrix(tmp_path / "s.npz")
    assert "scipy sparse" in _one_line(e) and "s.npz" in str(e.value)


def _hide(monkeypatch, name):
    for mod in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, name, None)


def test_sparse_file_without_scipy(tmp_path, monkeypatch):
    sp.save_npz(tmp_path / "s.npz", sp.eye(3, format="csr"))
    np.save(tmp_path / "a.npy", np.eye(3))
    _hide(monkeypatch, "scipy")
    with pytest.raises(CLIError) as e:
        load_operator(tmp_path / "s.npz")
    assert "pip install scipy" in _one_line(e)
    assert type(load_operator(tmp_path / "a.npy")) is np.ndarray  # dense files never need scipy


def _bad_sparse(tmp_path, case):
    p = tmp_path / f"{case}.npz"
    good = dict(format=np.array("csr"), shape=np.array([2, 3]), data=np.array([1.0, 2.0]),
                indices=np.array([0, 2]), indptr=np.array([0, 1, 2]))
    if case == "complex":
        sp.save_npz(p, sp.csr_matrix(np.array([[1j, 0], [0, 1]])))
    elif case == "nan":
        sp.save_npz(p, sp.csr_matrix(np.array([[np.nan, 0], [0, 1]])))
    elif case == "empty":
        sp.save_npz(p, sp.csr_matrix((0, 3)))
    elif case == "indptr":
        np.savez(p, **dict(good, indptr=np.array([0, 5, 2])))
    elif case == "format":
        np.savez(p, **dict(good, format=np.array("lil")))
    elif case == "missing":
        np.savez(p, **{k: v for k, v in good.items() if k != "indices"})
    elif case == "badzip":
        p.write_bytes(b"PK\x03\x04 not really a zip")
    elif case == "nofile":
        p = tmp_path / "nope.npz"
    return p


@pytest.mark.parametrize(
    "case, match",
    [
        ("complex", "real numbers"),
        ("nan", "NaN"),
        ("empty", "empty"),
        ("indptr", "cannot read"),
        ("format", "cannot read"),
        ("missing", "cannot read"),
        ("badzip", "cannot read"),
        ("nofile", "does not exist"),
    ],
)
def test_bad_files_one_line(tmp_path, case, match):
    p = _bad_sparse(tmp_path, case)
    with pytest.raises(CLIError) as e:
        load_operator(p)
    msg = _one_line(e)
    assert match in msg and p.name in msg, msg


def test_pickled_object_arrays_are_refused(tmp_path):
    # an .npz with the sparse keys but an object 'format' is neither unpickled nor taken for scipy's
    p = tmp_path / "o.npz"
    np.savez(p, format=np.array([{"x": 1}], dtype=object), shape=np.array([2, 2]), data=np.ones(2))
    with pytest.raises(CLIError) as e:
        load_operator(p)
    assert "several arrays" in _one_line(e)
    with pytest.raises(CLIError) as e:
        load_operator(p, array="format")
    assert "pickle" in _one_line(e).lower()
