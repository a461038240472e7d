"""User functions in generalized_matrix_function and spectral_function: g and f
built from jax.nn (custom_jvp functions: relu, softplus, logaddexp; gelu) and
parameters ``F(a, *params)`` (a traced threshold tau), every mode against
independent references: nested float64 autodiff through jnp.linalg.svd at
generic points, finite differences at ties.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest
from _ref_ties import DPS, STEP, _mp, mp_gmf
from helpers import assert_fd_close, gaussian, max_rel_err, richardson, with_singular_values
from jax.experimental import jet

import jaxsvd

G = {
    "relu": lambda s, t: jax.nn.relu(s - t),
    "softplus": lambda s, t: jax.nn.softplus(3.0 * (s - t)),
    "gelu": lambda s, t: jax.nn.gelu(s - t),
    "logaddexp": lambda s, t: jnp.logaddexp(s, t),
}


def gmf_ref(g):
    """U diag(g(s, *p)) V^H through jnp.linalg.svd (exact for simple singular values)."""
    def F(a, *p):
        u, s, vh = jnp.linalg.svd(a, full_matrices=False)
        return (u * g(s, *p).astype(u.dtype)[..., None, :]) @ vh
    return F


def spec_ref(f):
    return lambda a, *p: f(jnp.linalg.svd(a, compute_uv=False), *p)


def _modes(F, w, second=True):
    """value, jvp in (a, tau), grad in (a, tau) and (second) the Hessian of the loss
    in (a, tau) applied to (h, 0.3): one trace per order (compile-lean)."""
    def loss(a, t):
        return jnp.sum(jnp.real(jnp.sin(F(a, t)) * w))

    def run(a, t, h):
        dt = jnp.asarray(0.3, t.dtype)
        ga, gt = jax.grad(loss, (0, 1))(a, t)
        out = dict(value=F(a, t), jvp=jax.jvp(F, (a, t), (h, dt))[1], grad_a=ga, grad_t=gt)
        if second:
            out["hvp_a"], out["hvp_t"] = jax.jvp(jax.grad(loss, (0, 1)), (a, t), (h, dt))[1]
        return out
    return jax.jit(run)


# second order for the two custom_jvp functions (each order-2 compile costs ~10-30 s);
# gelu and logaddexp at first order here, at second order in the spectral tests
@pytest.mark.parametrize("name, second", [("relu", True), ("softplus", True), ("gelu", False),
                                          ("logaddexp", False)])
def test_gmf_generic_against_jnp(name, second):
    # tall here, wide in the float32 test
    a = with_singular_values(5, 3, [2.5, 1.6, 0.7], seed=1)
    h, w = gaussian((5, 3), 2), gaussian((5, 3), 3)
    t = jnp.asarray(1.0)
    F = jaxsvd.generalized_matrix_function(G[name])
    got = _modes(F, w, second)(a, t, h)
    ref = _modes(gmf_ref(G[name]), w, second)(a, t, h)
    for k in got:
        assert max_rel_err(got[k], ref[k]) < 1e-10, (name, k)


# the same g in mpmath (jax.nn.gelu is the tanh approximation by default)
G_MP = {
    "relu": lambda s, t: max(s - t, 0),
    "softplus": lambda s, t: mpmath.log(1 + mpmath.exp(3 * (s - t))),
    "gelu": lambda s, t: (s - t) / 2 * (1 + mpmath.tanh(mpmath.sqrt(2 / mpmath.pi)
                                                          * ((s - t) + mpmath.mpf("0.044715") * (s - t) ** 3))),
    "logaddexp": lambda s, t: mpmath.log(mpmath.exp(s) + mpmath.exp(t)),
}


def _mp_checks(name, a, t, h, w, second):
    """The references of :func:`_ours_checks` from mpmath's SVD at 50 digits: the
    derivatives along (h, 1) in (a, tau) of F and of the loss sum(sin(F) w) by central
    differences with step 1e-12 (error ~1e-24; F is smooth through the tie)."""
    with mpmath.workdps(DPS):
        A, H, W = _mp(a), _mp(h), _mp(w)
        g = G_MP[name]

        def F(x):
            return mp_gmf(A + x * H, lambda s: g(s, mpmath.mpf(t) + x))

        def loss(x):
            f = F(x)
            return mpmath.fsum(mpmath.sin(f[i, j]) * W[i, j] for i in range(f.rows) for j in range(f.cols))

        e = STEP
        out = [np.array(((F(e) - F(-e)) / (2 * e)).tolist(), np.float64),
               float((loss(e) - loss(-e)) / (2 * e))]
        if second:
            out.append(float((loss(e) - 2 * loss(0) + loss(-e)) / e ** 2))
        return out


def _ours_checks(F, a, t, h, w, second):
    """jvp, directional grad and (second) the second derivative of the loss along
    (h, 1) in (a, tau)."""
    def loss(a, t):
        return jnp.sum(jnp.sin(F(a, t)) * w)

    @jax.jit
    def ours(a, t):
        ga, gt = jax.grad(loss, (0, 1))(a, t)
        out = [jax.jvp(F, (a, t), (h, jnp.ones_like(t)))[1], jnp.sum(ga * h) + gt]
        if second:
            ha, ht = jax.jvp(jax.grad(loss, (0, 1)), (a, t), (h, jnp.ones_like(t)))[1]
            out.append(jnp.sum(ha * h) + ht)
        return out

    return ours(a, t)


@pytest.mark.parametrize("name, sv, tau, second", [
    ("softplus", [1.5, 1.5, 0.7], 1.0, True),    # sigma_1 = sigma_2 (jnp's route: NaN)
    ("gelu", [1.5, 1.5, 0.7], 1.0, False),
    ("relu", [1.2, 1.2, 1.2], 0.5, False),       # identity-like: all tied, threshold below
    ("logaddexp", [1.2, 1.2, 1.2], 0.5, False),
])
def test_gmf_at_ties_against_mpmath(name, sv, tau, second):
    # Reference: 50-digit differences (error ~1e-24).  The float64 central differences
    # this test used before (step 1e-4) carry a rounding error ~4 eps |loss| / e^2 ~ 1e-6
    # in the second derivative, the size of the old tolerance: at softplus they were
    # 1.2e-6 off while ours agrees with mpmath to 3e-14.
    a = with_singular_values(4, 3, sv, seed=4)
    h, w = gaussian((4, 3), 5), gaussian((4, 3), 6)
    F = jaxsvd.generalized_matrix_function(G[name])
    ours = _ours_checks(F, a, jnp.asarray(tau), h, w, second)
    refs = _mp_checks(name, a, tau, h, w, second)
    for x, y in zip(ours, refs, strict=True):
        assert max_rel_err(x, y) < 1e-10, name


def test_threshold_traced_without_recompiling_and_learnable():
    traces = []
    F = jaxsvd.generalized_matrix_function(lambda s, t: jax.nn.relu(s - t))

    @jax.jit
    def step(a, t):
        traces.append(1)
        loss = lambda t: jnp.sum(F(a, t) ** 2)  # noqa: E731
        return loss(t), jax.grad(loss)(t)

    a = with_singular_values(4, 4, [3.0, 2.0, 1.0, 0.5], seed=9)
    ts = [0.7, 1.3, 1.7, 2.4]
    outs = [step(a, jnp.asarray(t)) for t in ts]
    assert len(traces) == 1
    # the same for spectral_function
    S_traces = []
    Fs = jaxsvd.spectral_function(lambda s, t: jnp.sum(jax.nn.softplus(s - t)))

    @jax.jit
    def sstep(a, t):
        S_traces.append(1)
        return jax.grad(Fs, (0, 1))(a, t)

    for t in ts[:2]:
        sstep(a, jnp.asarray(t))
    assert len(S_traces) == 1
    ref = spec_ref(lambda s, t: jnp.sum(jax.nn.relu(s - t) ** 2))
    for t, (v, g) in zip(ts, outs, strict=True):
        fd = richardson(lambda e, t=t: ref(a, t + e), 1e-3)
        assert abs(float(v) - float(ref(a, t))) < 1e-12
        assert_fd_close(g, fd, 1e-7, rel=False)


def test_kink_window_float32_and_float64():
    # a singular value 1e-5 (float32) / 1e-12 (float64) relative from tau: finite and
    # exact (the window is ~4 eps, module doc of _ties); at tau itself NaN
    F = jaxsvd.generalized_matrix_function(lambda s, t: jax.nn.relu(s - t))
    ref = gmf_ref(G["relu"])
    w = gaussian((4, 3), 10)
    for dt, r in ((jnp.float32, 1e-5), (jnp.float64, 1e-12)):
        mats = jnp.stack([with_singular_values(4, 3, [2.0, 1.0 + x, 0.3], seed=11) for x in (r, -r, 0.0)])
        g = jax.jit(jax.vmap(jax.grad(lambda a, t: jnp.sum(F(a, t) * w.astype(a.dtype)), (0, 1)), (0, None)))(
            mats.astype(dt), jnp.asarray(1.0, dt))
        g_ref = jax.vmap(jax.grad(lambda a, t: jnp.sum(ref(a, t) * w), (0, 1)), (0, None))(mats, 1.0)
        assert g[0].dtype == dt
        tol = 1e-4 if dt == jnp.float32 else 1e-10
        for i in (0, 1):
            assert max_rel_err(g[0][i], g_ref[0][i]) < tol and abs(float(g[1][i] - g_ref[1][i])) < tol
        assert bool(jnp.all(jnp.isnan(g[0][2])))


def test_float32_wide_against_float64():
    a = with_singular_values(3, 5, [2.5, 1.6, 0.7], seed=12)
    h, w = gaussian((3, 5), 13), gaussian((3, 5), 14)
    F = jaxsvd.generalized_matrix_function(G["softplus"])
    run = _modes(F, w.astype(jnp.float32), second=False)
    got = run(a.astype(jnp.float32), jnp.asarray(1.0, jnp.float32), h.astype(jnp.float32))
    ref = _modes(gmf_ref(G["softplus"]), w, second=False)(a, jnp.asarray(1.0), h)
    for k in got:
        assert got[k].dtype == jnp.float32 and max_rel_err(got[k], ref[k]) < 2e-4, k


def test_complex_gmf():
    rng = np.random.default_rng(15)
    a = jnp.asarray(rng.standard_normal((4, 3)) + 1j * rng.standard_normal((4, 3)))
    w = jnp.asarray(rng.standard_normal((4, 3)) + 1j * rng.standard_normal((4, 3)))
    g = G["softplus"]

    def loss(F):
        return lambda a, t: jnp.sum(jnp.abs(F(a, t) - w) ** 2)

    ours = jax.jit(jax.grad(loss(jaxsvd.generalized_matrix_function(g)), (0, 1)))(a, 1.0)
    ref = jax.grad(loss(gmf_ref(g)), (0, 1))(a, 1.0)
    assert float(jnp.max(jnp.abs(ours[0] - ref[0]))) < 1e-10 * float(jnp.max(jnp.abs(ref[0])))
    assert abs(float(ours[1] - ref[1])) < 1e-10 * abs(float(ref[1]))


def test_vector_parameter_and_vmap_over_tau():
    # per-value weights (shape (r,)) and a batch of thresholds through vmap
    g = lambda s, wt, t: wt * jax.nn.softplus(s - t)  # noqa: E731
    a = with_singular_values(4, 3, [2.0, 1.2, 0.4], seed=16)
    wt = jnp.asarray([1.0, 2.0, 0.5])
    c = gaussian((4, 3), 17)
    F, R = jaxsvd.generalized_matrix_function(g), gmf_ref(g)
    lo = lambda F: lambda a, wt, t: jnp.sum(F(a, wt, t) * c)  # noqa: E731
    ours = jax.jit(jax.vmap(jax.grad(lo(F), (0, 1, 2)), (None, None, 0)))(a, wt, jnp.asarray([0.5, 1.0]))
    ref = jax.vmap(jax.grad(lo(R), (0, 1, 2)), (None, None, 0))(a, wt, jnp.asarray([0.5, 1.0]))
    for x, y in zip(ours, ref, strict=True):
        assert max_rel_err(x, y) < 1e-10


def test_jet_with_custom_jvp_g():
    a = with_singular_values(4, 3, [2.0, 1.2, 0.4], seed=18)
    h = gaussian((4, 3), 19)
    F = jaxsvd.generalized_matrix_function(G["logaddexp"])
    R = gmf_ref(G["logaddexp"])
    t = jnp.asarray(0.8)
    _, ys = jax.jit(lambda a, h: jet.jet(lambda x: F(x, t), (a,), ([h, jnp.zeros_like(h), jnp.zeros_like(h)],)))(a, h)
    line = lambda x: R(a + x * h, t)  # noqa: E731
    d1 = lambda x: jax.jvp(line, (x,), (1.0,))[1]  # noqa: E731
    d2 = lambda x: jax.jvp(d1, (x,), (1.0,))[1]  # noqa: E731
    d3 = lambda x: jax.jvp(d2, (x,), (1.0,))[1]  # noqa: E731
    for y, d in zip(ys, (d1, d2, d3), strict=True):
        assert max_rel_err(y, d(0.0)) < 1e-9
    with pytest.raises(NotImplementedError, match="parameters"):
        jet.jet(lambda x: F(a, x), (t,), ([jnp.ones(())],))


# ---------------------------------------------------------------------------
# spectral_function
# ---------------------------------------------------------------------------

S = {k: (lambda g: lambda s, t: jnp.sum(g(s, t) ** 2))(g) for k, g in G.items()}


@pytest.mark.parametrize("name", ["relu", "softplus", "gelu", "logaddexp"])
def test_spectral_generic_against_jnp(name):
    a = with_singular_values(5, 3, [2.5, 1.6, 0.7], seed=20)
    h = gaussian((5, 3), 21)
    F, R = jaxsvd.spectral_function(S[name]), spec_ref(S[name])

    def run(F):
        def go(a, t):
            return (F(a, t), jax.jvp(F, (a, t), (h, 0.3))[1], jax.grad(F, (0, 1))(a, t),
                    jax.hessian(F, (0, 1))(a, t))
        return go

    got, ref = jax.jit(run(F))(a, 1.0), run(R)(a, 1.0)
    for x, y in zip(jax.tree.leaves(got), jax.tree.leaves(ref), strict=True):
        assert max_rel_err(x, y) < 1e-10, name
    # jet in a (orders >= 3 through the analytic branches and jet_user)
    _, ys = jet.jet(lambda x: F(x, 1.0), (a,), ([h] + [jnp.zeros_like(h)] * 2,))
    line = lambda x: R(a + x * h, 1.0)  # noqa: E731
    ds = [jax.grad(line)]
    for _ in range(2):
        ds.append(jax.grad(ds[-1]))
    for y, d in zip(ys, ds, strict=True):
        assert abs(float(y - d(0.0))) < 1e-9 * max(1.0, abs(float(y)))


def test_spectral_at_a_tie_against_finite_differences():
    a = with_singular_values(4, 3, [1.5, 1.5, 0.6], seed=22)
    h = gaussian((4, 3), 23)
    F = jaxsvd.spectral_function(S["softplus"])
    t = 1.0
    hv = jax.jit(lambda a, t: jax.jvp(lambda x: jax.grad(F)(x, t), (a,), (h,))[1])(a, t)
    htt = jax.grad(jax.grad(F, 1), 1)(a, t)
    # Richardson-extrapolated second differences (float64; F is smooth through the tie)
    assert_fd_close(jnp.sum(hv * h), richardson(lambda e: F(a + e * h, t), 1e-2, order=2), 1e-6)
    assert_fd_close(htt, richardson(lambda e: F(a, t + e), 1e-2, order=2), 1e-6)


# ---------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------


@jax.custom_vjp
def _cvjp(s):
    return jnp.tanh(s)


_cvjp.defvjp(lambda s: (jnp.tanh(s), s), lambda s, ct: (ct * (1 - jnp.tanh(s) ** 2),))


def test_bad_g_and_parameters():
    a = jnp.diag(jnp.asarray([1.0, 2.0, 3.0]))
    gmf, sf = jaxsvd.generalized_matrix_function, jaxsvd.spectral_function

    def shrink_all(s):
        return jnp.sum(s)

    def total(s):
        return jnp.sum(s)

    with pytest.raises(ValueError, match="g = shrink_all.*elementwise"):
        gmf(shrink_all)(a)
    with pytest.raises(ValueError, match="real floats"):
        gmf(lambda s: s > 1.0)(a)
    with pytest.raises(ValueError, match="real floats"):
        gmf(lambda s: jax.lax.complex(s, s))(a)
    with pytest.raises(ValueError, match=r"parameters of shapes \[\(2,\)\]"):
        gmf(lambda s, t: s - t)(a, jnp.ones(2))
    with pytest.raises(ValueError, match="elementwise"):
        gmf(lambda s, t: s[None, :] - t)(a, jnp.ones((2, 3)))
    with pytest.raises(TypeError, match="parameter 0 .* real"):
        gmf(lambda s, t: s - t)(a, 1j)
    with pytest.raises(TypeError, match="parameter 0"):
        gmf(lambda s, t: s - t)(a, "x")
    with pytest.raises(ValueError, match="f = .*scalar"):
        sf(lambda s: s)(a)
    with pytest.raises(ValueError, match=r"f = total failed .* parameters of shapes \[\(\)\]"):
        sf(total)(a, 1.0)  # one parameter too many

    @jax.jit
    def traced(x, tau):
        return gmf(lambda s: jnp.maximum(s - tau, 0.0))(x)

    with pytest.raises(TypeError, match="pass it as a parameter"):
        traced(a, 0.5)
    # custom_vjp g: the value works, derivatives name g
    F = gmf(_cvjp)
    assert max_rel_err(F(a), jnp.diag(jnp.tanh(jnp.asarray([1.0, 2.0, 3.0])))) < 1e-15
    with pytest.raises(TypeError, match="g = _cvjp uses a jax.custom_vjp"):
        jax.jvp(F, (a,), (a,))
    # spectral_function(f) with a custom_vjp f: gradient and Hessian (jacfwd of f's
    # custom reverse rule) work; Taylor mode (forward through f itself) names f
    def f_cvjp(s):
        return jnp.sum(_cvjp(s) ** 2)

    b = with_singular_values(4, 3, [2.0, 1.0, 0.5], seed=24)
    ref = spec_ref(lambda s: jnp.sum(jnp.tanh(s) ** 2))
    assert max_rel_err(jax.hessian(sf(f_cvjp))(b), jax.hessian(ref)(b)) < 1e-10
    with pytest.raises(TypeError, match="f = f_cvjp uses a jax.custom_vjp"):
        jet.jet(sf(f_cvjp), (b,), ([b, b, b],))


def test_jet_user_cost_is_polynomial():
    # the Taylor coefficients of a custom_jvp g to order 10 trace in linear-ish
    # time (nested jvp would be 2^10); checked through the number of equations
    from jaxsvd import _compat
    x = jnp.linspace(0.1, 1.0, 3)
    sizes = []
    for K in (4, 8):
        series = ([jnp.ones(3)] + [jnp.zeros(3)] * (K - 1),)
        sizes.append(len(jax.make_jaxpr(lambda x: _compat.jet_user(jax.nn.softplus, (x,), series))(x).eqns))
    assert sizes[1] < 6 * sizes[0]
    y0, ys = _compat.jet_user(jax.nn.softplus, (x,), ([jnp.ones(3)] + [jnp.zeros(3)] * 3,))
    sig = jax.nn.sigmoid(x)
    assert max_rel_err(ys[0], sig) < 1e-14 and max_rel_err(ys[1], sig * (1 - sig) / 2) < 1e-14
    assert math.isfinite(float(ys[3][0]))
