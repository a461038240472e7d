"""``jax.experimental.jet`` through control flow (jaxsvd/_jet_control.py).

Each loop primitive (scan, fori_loop in both lowerings, while_loop, cond
inside a loop, checkpoint) runs the same program; the reference is nested
float64 ``jax.jvp`` through the program unrolled in Python (no loop primitive
at all), with plain jnp inside or with the singular values inside: the 2 x 2
closed form  sigma^2 = (T +- sqrt(T^2 - 4 |det A|^2)) / 2,  T = ||A||_F^2
(cheap to nest six deep), and once ``jnp.linalg.svd`` itself.  Spectra are
well separated (sigma = 3, 1).
"""

import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import gaussian, max_rel_err, nested_jvp_derivatives, with_singular_values
from jax import lax
from jax.experimental import jet

import jaxsvd
from jaxsvd import _jet_control

STEPS = 3


def sv_closed(m):
    """The singular values of a 2 x 2 matrix, closed form (descending)."""
    t = jnp.sum(jnp.abs(m) ** 2)
    det = jnp.abs(m[0, 0] * m[1, 1] - m[0, 1] * m[1, 0])
    r = jnp.sqrt(t * t - 4 * det * det)
    return jnp.sqrt(jnp.stack([t + r, t - r]) / 2)


def sv_jnp(m):
    return jnp.linalg.svd(m, compute_uv=False)


def plain(m):
    """Plain jnp inside the loop: two smooth scalars of the matrix."""
    return jnp.stack([jnp.sum(jnp.sin(m)).real, jnp.sum(jnp.abs(m) ** 2) / 4])


INNER = {"svdvals": jaxsvd.svdvals, "plain": plain}
REF = {"svdvals": sv_closed, "plain": plain}


def step(a, c, i, w, inner, branchy):
    """One step of the program: carry c (scalar), counter i, input w."""
    e = jnp.asarray([[0.0, 1.0], [1.0, 0.0]], a.dtype)
    m = a * (1 + 0.1 * c) + w * e
    s = inner(m).astype(a.dtype)
    fi = jnp.asarray(i).astype(a.dtype)
    c2 = c + 0.3 * s[0] - 0.2 * s[1] * (1 + fi) / 3
    if branchy:  # i's parity picks the branch (a cond inside the loop)
        c2 = lax.cond(i % 2 == 0, lambda u: u, lambda u: jnp.sin(u) + u * u / 4, c2) if \
            not isinstance(i, int) else (c2 if i % 2 == 0 else jnp.sin(c2) + c2 * c2 / 4)
    return c2, s[1] * c


def program(x, inner, loop, limit=None):
    """The same program through one kind of loop ("python": unrolled, the reference)."""
    a = x
    ws = 0.1 * a.reshape(-1)[:STEPS]
    c0 = 0.1 * a[0, 0]
    branchy = loop in ("cond", "python_cond")
    if loop in ("python", "python_cond"):
        c, acc = c0, 0.0 * c0
        for i in range(STEPS if limit is None else limit):
            c, y = step(a, c, i, ws[i % STEPS], inner, branchy)
            acc = acc + y
        return c + acc
    if loop in ("scan", "cond", "checkpoint"):
        f = step if loop != "checkpoint" else jax.checkpoint(step, static_argnums=(4, 5))

        def body(carry, w):
            c, i, acc = carry
            c, y = f(a, c, i, w, inner, branchy)
            return (c, i + 1, acc + y), y

        (c, _, acc), ys = lax.scan(body, (c0, jnp.int32(0), 0.0 * c0), ws)
        return c + jnp.sum(ys)
    if loop in ("fori", "fori_while"):
        # fori_while: the upper bound is traced (from x's primal), so fori_loop lowers to while
        n = STEPS if loop == "fori" else jnp.where(jnp.isfinite(a[0, 0].real), STEPS, 0)

        def fbody(i, carry):
            c, acc = carry
            c, y = step(a, c, i, ws[i], inner, False)
            return c, acc + y

        c, acc = lax.fori_loop(0, n, fbody, (c0, 0.0 * c0))
        return c + acc
    if loop == "while":
        # the trip count is decided by a float carry's primal value (z < limit), not by a counter bound
        def wbody(carry):
            c, i, acc, z = carry
            c, y = step(a, c, i, ws[i % STEPS], inner, False)
            return c, i + 1, acc + y, z + 1 + jnp.abs(y) ** 2

        c, _, acc, _ = lax.while_loop(lambda carry: carry[3] < limit, wbody, (c0, jnp.int32(0), 0.0 * c0, 0.0 * c0))
        return c + acc
    raise ValueError(loop)


def while_limit(x, inner):
    """A limit between the while loop's z after STEPS - 1 and STEPS steps: it runs STEPS times."""
    a = x
    ws = 0.1 * a.reshape(-1)[:STEPS]
    c, z, zs = 0.1 * a[0, 0], 0.0, []
    for i in range(STEPS):
        c, y = step(a, c, i, ws[i], inner, False)
        z = z + 1 + float(jnp.abs(y)) ** 2
        zs.append(z)
    return (zs[-2] + zs[-1]) / 2


PRIMS = {"scan": "scan", "fori": "scan", "fori_while": "while", "while": "while", "cond": "cond",
         "checkpoint": "remat2"}


def point(dtype, seed=0):
    a = with_singular_values(2, 2, [3.0, 1.0], seed=seed, dtype=jnp.float64)
    if jnp.issubdtype(dtype, jnp.complexfloating):
        a = a.astype(dtype) + 0.3j * with_singular_values(2, 2, [1.0, 0.5], seed=seed + 1, dtype=dtype)
    return a.astype(dtype)


def directions(dtype, order, seed=5):
    """A curved path: first three coefficients nonzero, the rest zero."""
    terms = [gaussian((2, 2), seed + k, jnp.float64) if k < 3 else jnp.zeros((2, 2)) for k in range(order)]
    if jnp.issubdtype(dtype, jnp.complexfloating):
        terms = [t.astype(dtype) + 1j * gaussian((2, 2), seed + 50 + k, dtype) if k < 3 else t
                 for k, t in enumerate(terms)]
    return [t.astype(dtype) for t in terms]


def err(x, ref) -> float:
    """max |x - ref| / max |ref| (complex-aware)."""
    x, ref = np.asarray(x, np.complex128), np.asarray(ref, np.complex128)
    return float(np.max(np.abs(x - ref)) / max(np.max(np.abs(ref)), 1e-300))


def tol(dtype):
    return 1e-10 if jnp.finfo(dtype).bits == 64 else 2e-4


#: the order of the jet per (loop, inner): every order 1..6 is sampled for each
#: inner function (a jet of order K checks all the coefficients 1..K)
ORDERS = {("scan", "plain"): 6, ("fori", "plain"): 3, ("fori_while", "plain"): 4, ("while", "plain"): 5,
          ("cond", "plain"): 2, ("checkpoint", "plain"): 1,
          ("scan", "svdvals"): 4, ("fori", "svdvals"): 1, ("fori_while", "svdvals"): 2,
          ("while", "svdvals"): 3, ("cond", "svdvals"): 3, ("checkpoint", "svdvals"): 2}
#: nested jvp costs ~2^K: above this order the reference is jet of the unrolled
#: program (JAX's own rules only, no loop primitive), anchored by nested jvp to this order
NESTED_MAX = 4


@pytest.mark.parametrize("inner", ["svdvals", "plain"])
@pytest.mark.parametrize("loop", ["scan", "fori", "fori_while", "while", "cond", "checkpoint"])
def test_loop_against_nested_jvp(loop, inner):
    """jet on a curved path inside jit and vmap against nested float64 jvp
    through the unrolled program (orders > NESTED_MAX: jet of the unrolled program,
    itself checked against nested jvp up to NESTED_MAX)."""
    dtype = jnp.float64
    x = point(dtype)
    limit = while_limit(x, REF[inner]) if loop == "while" else None
    f = lambda x: program(x, INNER[inner], loop, limit)  # noqa: E731
    assert PRIMS[loop] + "[" in str(jax.make_jaxpr(f)(x))  # the loop primitive is there
    order = ORDERS[loop, inner]
    terms = directions(dtype, order)
    ref_loop = "python_cond" if loop == "cond" else "python"
    unrolled = lambda x: program(x, REF[inner], ref_loop, STEPS)  # noqa: E731
    ref = nested_jvp_derivatives(unrolled, x, terms[:NESTED_MAX], min(order, NESTED_MAX))
    if order > NESTED_MAX:
        r0, rs = jet.jet(unrolled, (x,), (terms,))
        assert max_rel_err(jnp.stack(rs[:NESTED_MAX]), ref[1:]) < tol(dtype)
        ref = jnp.stack([r0, *rs])
    # a batch of two paths: the second one is the first at half speed backwards
    lam = -0.5
    batch = [jnp.stack([t, t * lam ** (k + 1)]) for k, t in enumerate(terms)]
    y0, ys = jax.jit(jax.vmap(lambda *ts: jet.jet(f, (x,), (list(ts),))))(*batch)
    for k in range(order):
        assert max_rel_err(ys[k][0], ref[k + 1]) < tol(dtype), (k + 1, ys[k][0], ref[k + 1])
        assert max_rel_err(ys[k][1], ref[k + 1] * lam ** (k + 1)) < tol(dtype), k + 1
    assert max_rel_err(y0[0], ref[0]) < tol(dtype)


@pytest.mark.parametrize("loop", ["scan", "while"])
def test_float32(loop):
    """float32: orders 1..3 against the float64 reference."""
    x64 = point(jnp.float64)
    limit = while_limit(x64, sv_closed) if loop == "while" else None
    terms = directions(jnp.float64, 3)
    ref = nested_jvp_derivatives(lambda x: program(x, sv_closed, "python", STEPS), x64, terms, 3)
    x32 = x64.astype(jnp.float32)
    f = lambda x: program(x, jaxsvd.svdvals, loop, limit)  # noqa: E731
    y0, ys = jax.jit(lambda x, ts: jet.jet(f, (x,), (ts,)))(x32, [t.astype(jnp.float32) for t in terms])
    assert y0.dtype == jnp.float32 and all(y.dtype == jnp.float32 for y in ys)
    for k in range(3):
        assert max_rel_err(ys[k], ref[k + 1]) < 1e-4, k + 1


def test_complex_scan():
    """A complex matrix and a complex carry in a scan, with svdvals inside; orders 1..2."""
    dtype = jnp.complex128
    x = point(dtype)
    terms = directions(dtype, 2)
    ref = nested_jvp_derivatives(lambda x: program(x, sv_closed, "python", STEPS), x, terms, 2)
    f = lambda x: program(x, jaxsvd.svdvals, "scan")  # noqa: E731
    y0, ys = jax.jit(lambda x, ts: jet.jet(f, (x,), (ts,)))(x, terms)
    assert jnp.iscomplexobj(y0) and abs(ref[1].imag) > 1e-3
    assert err(y0, ref[0]) < 1e-12
    for k in range(2):
        assert err(ys[k], ref[k + 1]) < 1e-10, k + 1


def test_svdvals_in_scan_against_jnp_svd():
    """Once with jnp.linalg.svd's own JVP as the reference (orders 1..3)."""
    x = point(jnp.float64)
    terms = directions(jnp.float64, 3)
    ref = nested_jvp_derivatives(lambda x: program(x, sv_jnp, "python", STEPS), x, terms, 3)
    _, ys = jet.jet(lambda x: program(x, jaxsvd.svdvals, "scan"), (x,), (terms,))
    for k in range(3):
        assert max_rel_err(ys[k], ref[k + 1]) < 1e-10, k + 1


def test_switch_outside_loop():
    """lax.switch with an index from primal values (three branches, one taken)."""
    x = point(jnp.float64)
    branches = [lambda m: jnp.sum(sv_closed(m) ** 3), lambda m: jnp.sum(jaxsvd.svdvals(m) ** 3),
                lambda m: jnp.sum(jnp.cos(m))]
    # the index from lax (JAX's own jet rule of the index clamp inside lax.switch fails on
    # the integer zero series that jnp's jitted functions, like `>`, give their outputs)
    f = lambda x: lax.switch(lax.convert_element_type(lax.gt(x[0, 0], 0.0), jnp.int32) + 1, branches, x)  # noqa: E731
    taken = int(x[0, 0] > 0) + 1
    terms = directions(jnp.float64, 3)
    ref = nested_jvp_derivatives(lambda x: jnp.sum(sv_closed(x) ** 3) if taken == 1 else jnp.sum(jnp.cos(x)),
                                 x, terms, 3)
    _, ys = jet.jet(f, (x,), (terms,))
    assert max_rel_err(jnp.stack(ys), ref[1:]) < 1e-10


VARIANTS = {
    "reverse": lambda x: lax.scan(lambda c, xi: (jnp.sin(c) * xi + c, c * xi), 0.2, x, reverse=True)[1].sum(),
    "unroll": lambda x: lax.scan(lambda c, xi: (jnp.sin(c) * xi + c, c * xi), 0.2, x, unroll=2)[0],
    "map": lambda x: lax.map(jnp.sin, x).sum(),
    "jet_of_vmap": lambda x: jax.vmap(lambda xi: lax.fori_loop(0, 3, lambda i, c: jnp.sin(c) + xi, xi))(x).sum(),
    "while_in_scan": lambda x: lax.scan(lambda c, xi: (lax.while_loop(
        lambda q: q[0] < 2, lambda q: (q[0] + 1, jnp.cos(q[1]) * xi), (0, c))[1], None), 0.1, x)[0],
    "int_output": lambda x: lax.cond(x[0] > 0, lambda y: (jnp.sum(jnp.sin(y)), 1), lambda y: (jnp.sum(y), 2), x)[0],
}


def test_loop_variants():
    """reverse and unrolled scans, lax.map, jet of vmap of a loop, a while inside a
    scan, a branch with an integer output; order 3 against nested jvp."""
    x, h = jnp.array([0.3, 0.5, 0.7]), jnp.array([1.0, -0.5, 0.2])
    for name, f in VARIANTS.items():
        _, ys = jet.jet(f, (x,), ([h, 0 * h, 0 * h],))
        ref = nested_jvp_derivatives(f, x, [h], 3)
        assert max_rel_err(jnp.stack(ys), ref[1:]) < 1e-12, name


def test_vmap_of_jet_with_trip_counts_per_element():
    """vmap over primal inputs whose while loops run different numbers of times (4, 2, 1)."""
    f = lambda s: lax.while_loop(lambda c: c < 3.0, lambda c: 2 * c + jnp.sin(c), s)  # noqa: E731
    s = jnp.array([0.1, 1.0, 2.5])
    _, (y1, y2) = jax.vmap(lambda s: jet.jet(f, (s,), ([1.0, 0.0],)))(s)
    for i in range(3):
        ref = nested_jvp_derivatives(f, s[i], [jnp.ones(())], 2)
        assert max_rel_err(jnp.stack([y1[i], y2[i]]), ref[1:]) < 1e-12, i


# -- jaxsvd.derivatives (its orders run as a scan from order 6 on) ----------------------


def richardson(f, x, d, eps=1e-3):
    """Central differences of order 4: the reference for the first-order jets of
    compile-heavy functions (differences of the same function, no autodiff)."""
    fp, fm, fp2, fm2 = (f(x + c * eps * d) for c in (1.0, -1.0, 2.0, -2.0))
    return jax.tree.map(lambda p, m, p2, m2: (8 * (p - m) - (p2 - m2)) / (12 * eps), fp, fm, fp2, fm2)


def test_jet_of_derivatives_and_of_its_grad():
    """jet of ``derivatives(a, h, 6)`` (a scan over the orders inside) and of its
    gradient, order 1, against differences of the same functions."""
    a = point(jnp.float64)
    h, d = gaussian((2, 2), 1), gaussian((2, 2), 2)
    w = jnp.array([1.0, -0.7])
    f = lambda x: jnp.sum(w * jaxsvd.derivatives(x, h, 6)[6])  # noqa: E731
    assert "scan[" in str(jax.make_jaxpr(f)(a))
    g = jax.grad(f)
    (y0, (y1,)), (g0, (g1,)) = jax.jit(lambda a, d: (jet.jet(f, (a,), ([d],)), jet.jet(g, (a,), ([d],))))(a, d)
    fg = jax.jit(lambda x: (f(x), g(x)))
    r0, q0 = fg(a)
    r1, q1 = richardson(fg, a, d)
    assert max_rel_err(y0, r0) < 1e-12 and max_rel_err(g0, q0) < 1e-12
    assert max_rel_err(y1, r1) < 1e-7
    assert max_rel_err(g1, q1) < 1e-7


def test_derivatives_inside_a_user_scan():
    a = point(jnp.float64)
    h = gaussian((2, 2), 1)

    def user(x):
        def body(c, _):
            return c + 1e-3 * jnp.sum(jaxsvd.derivatives(x * c, h, 6)[6]), None

        return lax.scan(body, jnp.ones((), x.dtype), None, length=2)[0]

    d = gaussian((2, 2), 3)
    y, (y1,) = jax.jit(lambda a, d: jet.jet(user, (a,), ([d],)))(a, d)
    fu = jax.jit(user)
    assert max_rel_err(y, fu(a)) < 1e-12
    assert max_rel_err(y1, richardson(fu, a, d)) < 1e-7


# -- structure: one body, whatever the trip count -------------------------------------


def test_program_does_not_grow_with_trip_count():
    x = point(jnp.float64)
    terms = directions(jnp.float64, 3)

    def size(n):
        f = lambda x: lax.scan(lambda c, _: (c + jnp.sum(jaxsvd.svdvals(x * c)), None), 1.0, None, length=n)[0]  # noqa: E731
        return len(jax.make_jaxpr(lambda x: jet.jet(f, (x,), (terms,)))(x).jaxpr.eqns)

    assert size(2) == size(20)


# -- registration ------------------------------------------------------------------


def test_jax_rules_untouched():
    """In a fresh process: every rule JAX had before ``import jaxsvd`` is still the
    same object (or, inside jaxsvd's shard_map typing wrapper, its ``__wrapped__``),
    and jaxsvd added rules only for primitives JAX had none for."""
    code = (
        "import json, jax.experimental.jet as j\n"
        "before = dict(j.jet_rules)\n"
        "import jaxsvd, jaxsvd._jet_control as c\n"
        "after = j.jet_rules\n"
        "changed = [p.name for p, r in before.items()\n"
        "           if not (after.get(p) is r or getattr(after.get(p), '__wrapped__', None) is r)]\n"
        "added = sorted(p.name for p in after if p not in before)\n"
        "print(json.dumps({'changed': changed, 'added': added, 'jit_kept': after[[p for p in before\n"
        "                  if p.name == 'jit'][0]].__wrapped__ is before[[p for p in before if p.name == 'jit'][0]],\n"
        "                  'registered': sorted(p.name for p in c.REGISTERED)}))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    info = json.loads(out.stdout.strip().splitlines()[-1])
    assert info["changed"] == []
    assert info["jit_kept"]
    assert set(info["registered"]) == {"scan", "while", "cond", "remat2"}
    assert set(info["registered"]) <= set(info["added"])
    for prim in _jet_control.REGISTERED:  # and here, in this process
        assert jet.jet_rules[prim].__wrapped__.__module__ == "jaxsvd._jet_control"


# -- bad input ------------------------------------------------------------------------


@pytest.mark.parametrize("loop", ["scan", "while"])
def test_body_without_rule_names_the_loop(loop):
    def f(x):
        if loop == "scan":
            return lax.scan(lambda c, _: (jnp.sort(c) * 2, None), x, None, length=2)[0]
        return lax.while_loop(lambda c: c[1] < 2, lambda c: (jnp.sort(c[0]) * 2, c[1] + 1), (x, 0))[0]

    x = jnp.array([2.0, 1.0])
    with pytest.raises(_jet_control.JetControlFlowError, match=rf"lax\.{loop}.*'sort'"):
        jet.jet(f, (x,), ([x],))


def test_while_trip_count_is_the_primal_one():
    """The cond sees primal values only: the series follows the primal trip count
    (here 2 steps of x -> 2x, so d/dt = 4), whatever the series would 'want'."""
    f = lambda x: lax.while_loop(lambda c: c < 3.0, lambda c: 2 * c, x)  # noqa: E731
    y, (y1, y2) = jet.jet(f, (1.0,), ([100.0, 7.0],))
    assert float(y) == 4.0 and float(y1) == 400.0 and float(y2) == 28.0
