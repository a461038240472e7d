"""examples/trg_ising.py at tiny settings (chi = 2, one RG step, no jnp / broadening
routes): the example's own checks pass -- E = -f' by jax.grad and C = beta^2 f'' by
jax.hessian through jaxsvd.truncated_split against Richardson-extrapolated central
differences of the same TRG at beta = 0.1, 0.3, 0.4407, 0.5, 1.0, and f', f'', f''' by
jet against differences."""

import importlib.util
import os

import jax


def test_trg_ising_example_tiny():
    path = os.path.join(os.path.dirname(__file__), "..", "examples", "trg_ising.py")
    spec = importlib.util.spec_from_file_location("trg_ising", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    with jax.numpy_dtype_promotion("standard"):  # the example is user code
        rc = mod.main(["--chi", "2", "--steps", "1", "--num", "2", "--no-compare", "--jet-chi", "2",
                       "--jet-steps", "1"])
    assert rc == 0
