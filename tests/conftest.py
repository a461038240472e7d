"""Test set-up, once: float64 available, strict dtype promotion, and no implicit
rank promotion (arrays of different rank must be broadcast explicitly)."""

import jax

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")
