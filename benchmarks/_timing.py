"""Shared timing helpers for the benchmarks: warm-up, block_until_ready, medians,
compile time measured separately."""

from __future__ import annotations

import statistics
import time

import jax


def median_seconds(fn, repeats: int) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls (fn must block)."""
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def compile_and_time(f, args, repeats: int):
    """(compile seconds, median run seconds, output) of ``jax.jit(f)(*args)``, after one warm-up."""
    t = time.perf_counter()
    compiled = jax.jit(f).lower(*args).compile()
    compile_s = time.perf_counter() - t
    out = jax.block_until_ready(compiled(*args))
    run_s = median_seconds(lambda: jax.block_until_ready(compiled(*args)), repeats)
    return compile_s, run_s, out


def nested_jvp(f, order: int):
    """``(a, h) -> D^order f(a)[h, ..., h]`` by nesting ``jax.jvp`` (the 2^order route)."""
    g = lambda x, h: f(x)  # noqa: E731
    for _ in range(order):
        g = (lambda gg: lambda a, h: jax.jvp(lambda x: gg(x, h), (a,), (h,))[1])(g)
    return g
