"""Test set-up, once: float64 available, strict dtype promotion, and no implicit
rank promotion (arrays of different rank must be broadcast explicitly)."""

import os

# One OpenBLAS thread per process (LAPACK behind XLA's CPU SVD comes from scipy's
# OpenBLAS): with -n 2 on a busy 2-core machine its worker threads wait on each other
# and one 64 x 64 SVD took 0.094 s instead of 0.0007 s (examples/trg_ising.py, measured
# at load 6).  Set here, in the controller, before pytest-xdist starts its workers,
# which inherit it; an explicit setting in the environment wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")


def pytest_configure(config):
    """A worker that *crashes* (a segfault, not a failing test) gets its test rerun once.

    Why: in 2 of 3 full ``-n 2`` runs of the suite on jaxlib 0.10.2 (CPU) a worker died
    with a segfault inside XLA's CPU compiler (``backend_compile_and_load``) while
    compiling an eager ``tie_p`` rule in tests/test_truncated_split.py; the same test
    passes alone, under a 2 MB stack and on rerun.  With pytest-rerunfailures (in the
    ``test`` extra) and pytest-xdist, such a crash reruns the test once; an ordinary
    failure is never rerun (``only_rerun`` matches only the crash message), and the
    summary counts every rerun.  Without the plugin nothing changes.
    """
    if config.pluginmanager.hasplugin("rerunfailures") and not config.getoption("reruns", None):
        config.option.reruns = 1
        config.option.only_rerun = [r"worker '\w+' crashed"]

