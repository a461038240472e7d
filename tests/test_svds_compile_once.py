"""Eager ``jaxsvd.svds`` calls on BCOO matrices and lineax operators reuse the
compiled solver when only the arrays change (jaxsvd/_svds.py ``_operator_entry``,
``_operator``): a retrace count on the jits, no timing.  Values against numpy's SVD."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import gaussian
from jax.experimental import sparse

import jaxsvd
from jaxsvd import _svds

lx = pytest.importorskip("lineax")


def sparse_matrix(seed, shape=(12, 9)):
    r = np.random.default_rng(seed)
    return jnp.asarray(np.where(r.random(shape) < 0.4, r.standard_normal(shape), 0.0))


def top(a, k):
    return np.linalg.svd(np.asarray(a), compute_uv=False)[:k]


def test_second_eager_call_with_new_arrays_does_not_retrace():
    def calls(make, arrays, k=2, size=_svds._operator_entry._cache_size):
        """svds of make(x) for each x: the solver's jit traces once, on the first."""
        before = None
        for i, x in enumerate(arrays):
            np.testing.assert_allclose(jaxsvd.svds(make(x), k).S, top(x, k), rtol=1e-10)
            if i == 0:
                before = size()
        assert size() == before

    # BCOO: new values on the same pattern, and a new pattern with as many entries
    d0 = sparse_matrix(0)
    b0 = sparse.BCOO.fromdense(d0)
    nse = b0.nse
    calls(lambda d: sparse.BCOO.fromdense(d, nse=nse), [d0, 2.0 * d0, jnp.where(d0 != 0, sparse_matrix(1), 0.0)])
    ws = [gaussian((12, 9), seed=s) for s in range(3)]
    # a FunctionLinearOperator rebuilt around a new closure each call (the same program)
    # (a function leaf: the solver's own jit, keyed by the text of the traced products)
    calls(lambda w: lx.FunctionLinearOperator(lambda x: w @ x, jax.ShapeDtypeStruct((9,), w.dtype)), ws,
          size=_svds._impl_jit._cache_size)


def test_operator_cache_key():
    """One operator object per program (the solver's jit key): the same for new arrays
    and new closures, different for a different program, shape or dtype."""
    w1, w2 = gaussian((6, 4), seed=1), gaussian((6, 4), seed=2)

    def op(f, w, n=4):
        return _svds._operator(lambda x: f(w, x), lambda y: y @ w, w.shape[0], n, w.dtype)[0]

    matmul = lambda w, x: w @ x  # noqa: E731
    assert op(matmul, w1) is op(lambda w, x: w @ x, w2)
    assert op(matmul, w1) is not op(lambda w, x: jnp.tanh(w) @ x, w1)
    assert op(matmul, w1) is not op(lambda w, x: 2.0 * (w @ x), w1)
    assert op(matmul, w1) is not op(matmul, w1.astype(jnp.float32))
    assert op(matmul, w1) is not op(matmul, gaussian((6, 5), seed=3), 5)


@pytest.mark.slow
def test_spectral_normalization_example():
    """examples/spectral_normalization.py on a tiny MLP: svds' sigma_1 and gradient are at tol,
    the one-step power iteration's are not (LAPACK float64 references inside the example)."""
    import importlib.util
    import os

    path = os.path.join(os.path.dirname(__file__), "..", "examples", "spectral_normalization.py")
    spec = importlib.util.spec_from_file_location("spectral_normalization", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    # the example is user code: standard dtype promotion (optax, when installed, mixes its int32 step
    # count with Python floats, which the suite's strict promotion rejects)
    with jax.numpy_dtype_promotion("standard"):
        svds_row, power_row = mod.main(["--steps", "4", "--widths", "6,10,3", "--batch", "16", "--samples", "32",
                                        "--log-every", "1"])
    assert svds_row["sig_max"] < 1e-5 and svds_row["grad"] < 1e-3
    assert power_row["sig_max"] > 1e-3
