"""The seed paper's printed chain-term formula (jaxsvd._paper) is right at
orders 1 and 2 and wrong from order 3 on; the numbers of THEORY.md section 2."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
from helpers import nested_jvp_derivatives

from jaxsvd._paper import chain_coefficients, complete_coefficients


def _theory_setup():
    # THEORY.md section 2: "a 6x10 Gaussian matrix, k = 1, Gaussian H" --
    # np.random.default_rng(1), A then H, k 0-based, unscaled Taylor coefficients
    g = np.random.default_rng(1)
    return g.standard_normal((6, 10)), g.standard_normal((6, 10))


def test_theory_numbers():
    a, h = _theory_setup()
    true = complete_coefficients(a, 1, [h], 6)
    chain = chain_coefficients(a, 1, [h], 6)
    np.testing.assert_allclose(true[3:], [1.5347, 43.978, -110.49, -1099.8], rtol=1e-4)
    np.testing.assert_allclose(chain[3:], [-14.594, -22.110, -15.845, 18.337], rtol=1e-4)


def test_chain_formula_right_at_orders_1_2_wrong_from_3():
    # independent reference: nested jvp through jnp.linalg.svd (derivatives -> / n!)
    a, h = _theory_setup()
    ref = np.asarray(nested_jvp_derivatives(jnp.linalg.svdvals, jnp.asarray(a), [jnp.asarray(h)], 4))[:, 1]
    ref = ref / np.array([math.factorial(j) for j in range(5)])
    chain = chain_coefficients(a, 1, [h], 4)
    complete = complete_coefficients(a, 1, [h], 4)
    np.testing.assert_allclose(chain[:3], ref[:3], rtol=1e-11)
    np.testing.assert_allclose(complete, ref, rtol=1e-10)
    # from order 3 on the chain formula is off by far more than rounding
    assert np.all(np.abs(chain[3:] - ref[3:]) > 0.1 * np.abs(ref[3:]))


def test_complete_series_tall_quadratic_path():
    # tall matrix, a path with two nonzero terms: the complete series still agrees
    g = np.random.default_rng(7)
    a, h1, h2 = g.standard_normal((5, 3)), g.standard_normal((5, 3)), g.standard_normal((5, 3))
    ref = np.asarray(
        nested_jvp_derivatives(jnp.linalg.svdvals, jnp.asarray(a), [jnp.asarray(h1), jnp.asarray(2 * h2)], 3)
    )[:, 0]
    ref = ref / np.array([math.factorial(j) for j in range(4)])
    np.testing.assert_allclose(complete_coefficients(a, 0, [h1, h2], 3), ref, rtol=1e-10)
    np.testing.assert_allclose(chain_coefficients(a, 0, [h1, h2], 2), ref[:3], rtol=1e-10)
