"""Compile time of Taylor mode in the order and in the loop length (issue 22, item 5).

  * ``jaxsvd.derivatives(a, h, K)`` at K = 16 against K = 1 (goal: <= 3x);
  * ``jet`` (order 3) of a function with ``jaxsvd.svdvals`` inside a 20-step
    ``lax.scan`` against a 2-step one (goal: <= 1.5x; the body is jet-ed once).

Each compile is ``jax.jit(f).lower(*args).compile()`` from a cold cache for that
function, the pairs interleaved (A, B, A, B, ...) in one process, medians printed
with the ratio.  Usage: ``python benchmarks/bench_jet_compile.py [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.experimental import jet

import jaxsvd


def compile_seconds(make):
    """Seconds to lower and compile a freshly built function (no cache hit)."""
    f, args = make()
    t = time.perf_counter()
    jax.jit(f).lower(*args).compile()
    return time.perf_counter() - t


def derivatives_case(order, shape=(16, 16)):
    def make():
        rng = np.random.default_rng(0)
        a, h = (jnp.asarray(rng.standard_normal(shape)) for _ in range(2))
        return (lambda a, h: jaxsvd.derivatives(a, h, order)), (a, h)

    return make


def scan_case(steps, order=3, shape=(8, 8)):
    def make():
        rng = np.random.default_rng(1)
        a = jnp.asarray(rng.standard_normal(shape))

        def f(x):
            def body(c, _):
                return c + 0.01 * jnp.sum(jaxsvd.svdvals(x * (1 + 0.01 * c))), None

            return lax.scan(body, jnp.zeros((), x.dtype), None, length=steps)[0]

        z = jnp.zeros_like(a)
        return (lambda x, d: jet.jet(f, (x,), ([d] + [z] * (order - 1),))), (a, a)

    return make


def ab(name, make_a, make_b, repeats):
    ta, tb = [], []
    for _ in range(repeats):
        ta.append(compile_seconds(make_a))
        tb.append(compile_seconds(make_b))
    a, b = statistics.median(ta), statistics.median(tb)
    print(f"{name:40s} A {a:7.2f} s   B {b:7.2f} s   B/A {b / a:5.2f}", flush=True)
    return b / a


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    jax.config.update("jax_enable_x64", True)
    print(f"jax {jax.__version__}, {jax.devices()[0].platform}; compile seconds, medians of {args.repeats}")
    ab("derivatives 16x16: A order 1, B order 16", derivatives_case(1), derivatives_case(16), args.repeats)
    ab("jet order 3 of scan: A 2 steps, B 20 steps", scan_case(2), scan_case(20), args.repeats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
