"""Every k, order, index and count argument of the public API goes through one check
(``jaxsvd._svd.static_int``): a non-integer (``2.0``, a bool, a string, a traced value)
raises TypeError; a value out of range raises ValueError, negative indices included
(there is no Python-style negative indexing, except in the selections of a Monte Carlo
result's rows, which follow numpy's indexing and say so).

Checked by tracing only (``jax.eval_shape``): nothing is compiled.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxsvd
import jaxsvd.montecarlo as mc

A = jnp.asarray(np.random.default_rng(0).standard_normal((4, 3)))  # r = 3
H = jnp.ones((4, 3))
KEY = jax.random.key(0)

# (name, call with the argument v, valid values, out-of-range values)
TRACEABLE = [
    ("singular_triplet k", lambda v: jaxsvd.singular_triplet(A, v), [0, 2, np.int64(1)], [-1, -3, 3]),
    ("hessian k", lambda v: jaxsvd.hessian(A, v), [0, 2], [-1, 3]),
    ("hvp k", lambda v: jaxsvd.hvp(A, v, H), [0, 2], [-1, 3]),
    ("derivatives order", lambda v: jaxsvd.derivatives(A, H, v), [0, 3], [-1]),
    ("branches order", lambda v: jaxsvd.branches(A, H, v), [0, 2], [-1]),
    ("ky_fan_norm k", lambda v: jaxsvd.ky_fan_norm(A, v), [1, 3], [0, -1, 4]),
    ("truncate k", lambda v: jaxsvd.truncate(A, v), [1, 3], [0, -1, 4]),
    ("projectors k", lambda v: jaxsvd.projectors(A, v), [1, 3], [0, -1, 4]),
    ("truncated_split k", lambda v: jaxsvd.truncated_split(A, v), [1, 3], [0, -1, 4]),
    ("svds k", lambda v: jaxsvd.svds(A, v), [1, 3], [0, -1, 4]),
    ("svds_with_info k", lambda v: jaxsvd.svds_with_info(A, v), [1], [0, -1, 4]),
    ("svds krylov_dim", lambda v: jaxsvd.svds(A, 1, krylov_dim=v), [2, 3], [1, -1]),
    ("svds block_size", lambda v: jaxsvd.svds(A, 1, block_size=v), [1], [0, -1]),
    ("svds maxiter", lambda v: jaxsvd.svds(A, 1, maxiter=v), [1, 50], [0, -1]),
    ("svd subset_by_index", lambda v: jaxsvd.svd(A, subset_by_index=(0, v)), [3], []),
]
NOT_INTS = [2.0, 1.0, True, False, np.bool_(True), "1", 1.5, jnp.asarray(1.0), None]


@pytest.mark.parametrize("name, fn, good, bad", TRACEABLE, ids=[c[0] for c in TRACEABLE])
def test_traceable_arguments(name, fn, good, bad):
    arg = name.split()[-1]
    for v in good:
        jax.eval_shape(lambda v=v: fn(v))
    for v in NOT_INTS:
        if v is None and arg in ("krylov_dim", "block_size", "maxiter"):
            continue  # None: the default
        with pytest.raises(TypeError, match=f"{arg}.*must be a static Python int"):
            jax.eval_shape(lambda v=v: fn(v))
    with pytest.raises(TypeError, match="traced value"):
        jax.eval_shape(fn, 1)
    for v in bad:
        with pytest.raises(ValueError, match=f"{arg}"):
            jax.eval_shape(lambda v=v: fn(v))


def test_issue_examples():
    """The issue's two: ``svds(a, 2.0)`` and ``singular_triplet(a, -1)``."""
    with pytest.raises(TypeError, match="k must be a static Python int, got 2.0"):
        jaxsvd.svds(A, 2.0)
    with pytest.raises(ValueError, match=r"k=-1 is out of range: need 0 <= k <= min\(m, n\) - 1 = 2"):
        jaxsvd.singular_triplet(A, -1)
    s, _, _ = jaxsvd.singular_triplet(A, 2)  # the smallest, asked for explicitly
    assert float(s) == pytest.approx(float(jnp.linalg.svd(A, compute_uv=False)[2]))


def test_montecarlo_arguments():
    for kw in (dict(num=2.0), dict(order=2.0), dict(order=True), dict(batch_size=1.0)):
        args = dict(num=2, order=1, progress=False) | kw
        with pytest.raises(TypeError, match="must be a static Python int"):
            mc.sensitivity(KEY, (3, 2), args.pop("num"), **args)
    for kw in (dict(num=0), dict(order=-1), dict(batch_size=0)):
        args = dict(num=2, order=1, progress=False) | kw
        with pytest.raises(ValueError, match="must be an int >="):
            mc.sensitivity(KEY, (3, 2), args.pop("num"), **args)
    with pytest.raises(TypeError, match="num"):
        mc.sample(KEY, "gaussian", (3, 2), 2.0)


def test_result_selections():
    res = mc.sensitivity(KEY, (3, 2), 2, order=1, progress=False)
    assert res.sample_at(1)[0].shape == (3, 2)
    for i, exc in ((2, ValueError), (-1, ValueError), (1.0, TypeError), (True, TypeError)):
        with pytest.raises(exc, match="i"):
            res.sample_at(i)
    assert "k" in res.summary(orders=[1], indices=[0, -1])  # numpy-style row selection, documented
    for kw, exc in ((dict(orders=[2]), ValueError), (dict(orders=[1.0]), TypeError),
                    (dict(indices=[2]), ValueError), (dict(indices=[-3]), ValueError),
                    (dict(indices=[0.0]), TypeError)):
        with pytest.raises(exc):
            res.summary(**kw)
