"""Primal behaviour of jaxsvd.svd / svdvals / singular_triplet / gaps, and bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import SHAPES, gaussian, with_singular_values

import jaxsvd


@pytest.mark.parametrize("shape", SHAPES + [(2, 4, 3)])
@pytest.mark.parametrize("full", [True, False])
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_same_values_and_signs_as_jnp(shape, full, dtype):
    a = gaussian(shape, 1, dtype)
    ours = jaxsvd.svd(a, full_matrices=full)
    ref = jnp.linalg.svd(a, full_matrices=full)
    assert type(ours).__name__ == "SVDResult"
    for x, y in zip(ours, ref, strict=False):
        assert x.shape == y.shape and x.dtype == y.dtype
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    np.testing.assert_array_equal(jaxsvd.svdvals(a), jnp.linalg.svdvals(a))
    np.testing.assert_array_equal(jaxsvd.svd(a, compute_uv=False), jnp.linalg.svd(a, compute_uv=False))


def test_jit_and_vmap_primal():
    a = gaussian((3, 5, 4), 2)
    ref = jnp.linalg.svd(a, full_matrices=False)
    for got in (jax.jit(lambda x: jaxsvd.svd(x, full_matrices=False))(a),
                jax.vmap(lambda x: jaxsvd.svd(x, full_matrices=False))(a)):
        for x, y in zip(got, ref, strict=False):
            np.testing.assert_allclose(x, y, atol=1e-12)


@pytest.mark.parametrize("k", [0, 1, 2])
def test_singular_triplet_matches_svd(k):
    a = gaussian((5, 3), 3)
    s, u, v = jaxsvd.singular_triplet(a, k)
    U, S, Vt = jnp.linalg.svd(a, full_matrices=False)
    np.testing.assert_allclose(s, S[k], atol=1e-14)
    np.testing.assert_allclose(u, U[:, k], atol=1e-14)
    np.testing.assert_allclose(v, Vt[k], atol=1e-14)


def test_singular_triplet_errors():
    a = gaussian((4, 3), 0)
    with pytest.raises(ValueError, match="out of range"):
        jaxsvd.singular_triplet(a, 3)
    with pytest.raises(ValueError, match="k=-1 is out of range"):  # no Python-style negative index
        jaxsvd.singular_triplet(a, -1)
    with pytest.raises(TypeError, match="static"):
        jax.jit(lambda a, k: jaxsvd.singular_triplet(a, k))(a, 1)


def test_gaps_definition():
    a = with_singular_values(5, 3, [4.0, 3.0, 1.0])
    # block-operator spectrum: +-4, +-3, +-1 and 0 (m != n)
    np.testing.assert_allclose(jaxsvd.gaps(a), np.array([1.0, 1.0, 1.0]) / 4.0, atol=1e-13)
    sq = with_singular_values(3, 3, [4.0, 3.0, 0.25])
    np.testing.assert_allclose(jaxsvd.gaps(sq), np.array([1.0, 1.0, 0.5]) / 4.0, atol=1e-13)


@pytest.mark.parametrize("bad", [np.ones(3), np.float64(1.0)])
def test_rank_errors_name_the_shape(bad):
    with pytest.raises(ValueError, match=r"shape \("):
        jaxsvd.svd(bad)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        jaxsvd.svdvals(bad)


def test_hermitian_subset_errors():
    with pytest.raises(NotImplementedError, match="eigh"):
        jaxsvd.svd(jnp.eye(2), hermitian=True)
    with pytest.raises(NotImplementedError, match="singular_triplet"):
        jaxsvd.svd(jnp.eye(3), subset_by_index=(0, 1))
    jaxsvd.svd(jnp.eye(3), subset_by_index=(0, 3))  # the whole range is fine


def test_integer_input_promoted_like_jnp():
    a = jnp.arange(6, dtype=jnp.int32).reshape(2, 3)
    assert jaxsvd.svdvals(a).dtype == jnp.linalg.svdvals(a).dtype
    np.testing.assert_allclose(jaxsvd.svdvals(a), jnp.linalg.svdvals(a), rtol=1e-6)


@pytest.mark.parametrize("shape", [(0, 3), (3, 0), (2, 0, 0)])
def test_empty_matrices(shape):
    a = jnp.zeros(shape)
    for full in (True, False):
        ours, ref = jaxsvd.svd(a, full_matrices=full), jnp.linalg.svd(a, full_matrices=full)
        for x, y in zip(ours, ref, strict=False):
            assert x.shape == y.shape
            np.testing.assert_array_equal(x, y)
    g = jax.grad(lambda x: jnp.sum(jaxsvd.svdvals(x)))(a)
    assert g.shape == a.shape
    d = jaxsvd.derivatives(a, a, 3)
    assert d.shape == (4,) + shape[:-2] + (0,)


def test_nan_input_gives_nan_not_exception():
    a = jnp.full((3, 4), jnp.nan)
    assert bool(jnp.isnan(jaxsvd.svdvals(a)).all())
    assert bool(jnp.isnan(jaxsvd.derivatives(a, jnp.ones((3, 4)), 2)).all())
    assert bool(jnp.isnan(jax.grad(lambda x: jaxsvd.svdvals(x)[0])(a)).all())


def test_derivatives_argument_errors():
    a = gaussian((3, 4), 0)
    with pytest.raises(ValueError, match="shape"):
        jaxsvd.derivatives(a, jnp.ones((4, 3)), 2)
    with pytest.raises(ValueError, match="order"):
        jaxsvd.derivatives(a, a, -1)
    np.testing.assert_array_equal(jaxsvd.derivatives(a, a, 0)[0], jnp.linalg.svdvals(a))


def test_installed_in_place_of_jnp_linalg(monkeypatch):
    # a program may install jaxsvd's functions as jnp.linalg.svd / svdvals (JAX's own
    # tests can be run that way): empty and integer input must not recurse
    ints = jnp.arange(6, dtype=jnp.int32).reshape(2, 3)
    dtype = jnp.linalg.svdvals(ints).dtype
    monkeypatch.setattr(jnp.linalg, "svd", jaxsvd.svd)
    monkeypatch.setattr(jnp.linalg, "svdvals", jaxsvd.svdvals)
    u, s, vt = jnp.linalg.svd(jnp.zeros((3, 2, 0)), full_matrices=False)
    assert (u.shape, s.shape, vt.shape) == ((3, 2, 0), (3, 0), (3, 0, 0))
    assert jnp.linalg.svdvals(ints).dtype == dtype
