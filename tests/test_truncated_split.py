"""jaxsvd.truncated_split: derivatives of bond-gauge-invariant losses against
independent references -- nested float64 autodiff through jnp.linalg.svd at
generic points, mpmath (50 digits) differences at exact and near ties --
NaN at a tie at the cut and for a gauge-dependent loss in reverse mode.

Compile-lean: the cases of one shape go through one vmapped call.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest
from jax.experimental.jet import jet

import jaxsvd
from tests import _ref_ties as R
from tests.helpers import assert_fd_close, nested_jvp_derivatives, orthogonal, richardson, with_singular_values

K = 2


def _loss_jnp(t1, t2):
    """Three bond-invariant contractions of (L, R), (m, k) and (k, n): tr(L R T1 L R T1),
    <T2, L R> and tr((L^T L)(R R^T)) (Frobenius pairing; real part for complex)."""
    def loss(l, r):
        x = l @ r
        return jnp.real(jnp.trace(x @ t1 @ x @ t1) + jnp.sum(t2 * x)
                        + 0.5 * jnp.trace((l.T @ l) @ (r @ r.T)))
    return loss


def _ref_split(a, k=K, p=0.5):
    """The split from jnp.linalg.svd (correct derivatives at simple singular values)."""
    u, s, vt = jnp.linalg.svd(a, full_matrices=False)
    return u[..., :, :k] * s[..., None, :k] ** p, s[..., :k, None] ** (1 - p) * vt[..., :k, :]


def _mp_loss(t1, t2, k=K, p=0.5):
    """The same loss from mpmath's SVD at 50 digits (any gauge: the loss is invariant)."""
    t1m, t2m = R._mp(t1), R._mp(t2)

    def fn(a):
        tall = a.rows >= a.cols
        x = a if tall else a.T
        u, s, vt = mpmath.svd_r(x, full_matrices=False)
        if not tall:
            u, vt = vt.T, u.T
        l = mpmath.matrix(a.rows, k)
        r = mpmath.matrix(k, a.cols)
        for j in range(k):
            for i in range(a.rows):
                l[i, j] = u[i, j] * s[j] ** p
            for i in range(a.cols):
                r[j, i] = s[j] ** (1 - p) * vt[j, i]
        xx = l * r
        tr = lambda y: sum(y[i, i] for i in range(y.rows))  # noqa: E731
        pair = sum(t2m[i, j] * xx[i, j] for i in range(xx.rows) for j in range(xx.cols))
        return tr(xx * t1m * xx * t1m) + pair + tr((l.T * l) * (r * r.T)) / 2
    return fn


def _mp_directional(fn, a, h, order):
    """d^j/dt^j fn(a + t h) at 0, j = 1..order, by mpmath.diff at 50 digits."""
    with mpmath.workdps(50):
        am, hm = R._mp(a), R._mp(h)
        return [float(mpmath.diff(lambda t: fn(am + t * hm), 0, j)) for j in range(1, order + 1)]


def _ours(loss, k=K, p=0.5):
    return lambda a: loss(*jaxsvd.truncated_split(a, k, p))


def _data(m, n, seed=0):
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.standard_normal((n, m))), jnp.asarray(rng.standard_normal((m, n)))


def _rotated_tie(m, n, s, seed):
    """U diag(s) V^T with Haar U, V (ties in s inside the kept space: rotations of a tie)."""
    return with_singular_values(m, n, s, seed=seed)


# ---------------------------------------------------------------------------
# generic points: all orders against nested autodiff through jnp.linalg.svd
# ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("shape", [(5, 4), (4, 6), (4, 4)])
def test_generic_orders_against_jnp(shape):
    m, n = shape
    r = min(m, n)
    t1, t2 = _data(m, n)
    loss = _loss_jnp(t1, t2)
    a = jnp.stack([with_singular_values(m, n, np.linspace(3.0, 0.5, r) + 0.1 * i, seed=i) for i in range(2)])
    h = jnp.asarray(np.random.default_rng(7).standard_normal(a.shape))
    ours = jax.vmap(lambda a, h: jnp.stack(jet(_ours(loss), (a,), ((h,) + (jnp.zeros_like(h),) * 3,))[1]))(a, h)
    ref = jax.vmap(lambda a, h: nested_jvp_derivatives(lambda x: loss(*_ref_split(x)), a, [h], 4)[1:])(a, h)
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-9 * float(jnp.max(jnp.abs(ref))))
    # grad and a Hessian-vector product (reverse, forward over reverse)
    g = jax.vmap(jax.grad(_ours(loss)))(a)
    g_ref = jax.vmap(jax.grad(lambda x: loss(*_ref_split(x))))(a)
    np.testing.assert_allclose(g, g_ref, rtol=1e-10, atol=1e-10 * float(jnp.max(jnp.abs(g_ref))))
    hv = jax.vmap(lambda a, h: jax.jvp(jax.grad(_ours(loss)), (a,), (h,))[1])(a, h)
    hv_ref = jax.vmap(lambda a, h: jax.jvp(jax.grad(lambda x: loss(*_ref_split(x))), (a,), (h,))[1])(a, h)
    np.testing.assert_allclose(hv, hv_ref, rtol=1e-9, atol=1e-9 * float(jnp.max(jnp.abs(hv_ref))))


@pytest.mark.slow
def test_trg_step_against_jnp():
    """One TRG step: a 2 x 2 x 2 x 2 tensor split twice (two groupings of its legs),
    the four halves contracted around a plaquette, the trace of the new tensor; at a
    generic point against autodiff through jnp.linalg.svd (grad and hessian)."""
    d, k = 2, 3

    def trg(split, a):
        t = a.reshape(d, d, d, d)  # legs (up, right, down, left)
        l1, r1 = split(t.reshape(d * d, d * d))  # (u r)(d l)
        l2, r2 = split(t.transpose(1, 2, 3, 0).reshape(d * d, d * d))  # (r d)(l u)
        new = jnp.einsum("iab,jbc,cdk,dal->ijkl", r1.reshape(k, d, d), r2.reshape(k, d, d),
                         l1.reshape(d, d, k), l2.reshape(d, d, k))
        return jnp.log(jnp.abs(jnp.einsum("ijij->", new)) + jnp.einsum("ijkl,ijkl->", new, new))

    a = jnp.asarray(np.random.default_rng(3).standard_normal(d ** 4)).reshape(d * d, d * d) + 2 * jnp.eye(d * d)
    a = a.reshape(-1)
    ours = lambda x: trg(lambda y: jaxsvd.truncated_split(y, k), x)  # noqa: E731
    ref = lambda x: trg(lambda y: _ref_split(y, k), x)  # noqa: E731
    np.testing.assert_allclose(jax.grad(ours)(a), jax.grad(ref)(a), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(jax.hessian(ours)(a), jax.hessian(ref)(a), rtol=1e-8, atol=1e-10)


# ---------------------------------------------------------------------------
# exact and near ties inside the kept space: against mpmath
# ---------------------------------------------------------------------------


def _rot_diag331(m, n):
    """Rotated diag(3, 3, 1) (tall 4 x 3 or wide 3 x 4): a tie inside the top k = 2."""
    r = min(m, n)
    s = [3.0, 3.0, 1.0][:r]
    return with_singular_values(m, n, s, seed=11)


@pytest.mark.parametrize("shape", [(4, 3), (3, 4)])
def test_truncation_loss_at_rotated_tie(shape):
    """<T, U_k diag(s_k) Vh_k> at rotated diag(3, 3, 1), k = 2: exact through truncate and
    through truncated_split (L @ R) against 50-digit differences; NaN through svd."""
    m, n = shape
    a = _rot_diag331(m, n)
    t = jnp.asarray(np.random.default_rng(2).standard_normal((m, n)))
    h = jnp.asarray(np.random.default_rng(4).standard_normal((m, n)))
    mp_t = R._mp(t)

    def mp_fn(x):
        y = R.mp_gmf(x, None, 2, "truncate")
        return mpmath.matrix([[sum(mp_t[i, j] * y[i, j] for i in range(m) for j in range(n))]])

    d1 = R.directional(mp_fn, a, h)[0, 0]
    d2 = R.directional(mp_fn, a, h, order=2)[0, 0]
    split = lambda x: jnp.sum(t * (lambda l, r: l @ r)(*jaxsvd.truncated_split(x, 2)))  # noqa: E731
    trunc = lambda x: jnp.sum(t * jaxsvd.truncate(x, 2))  # noqa: E731
    for f in (split, trunc):
        g = jax.grad(f)(a)
        assert abs(float(jnp.sum(g * h)) - d1) <= 1e-10 * max(1.0, abs(d1))
        hv = jax.jvp(jax.grad(f), (a,), (h,))[1]
        assert abs(float(jnp.sum(hv * h)) - d2) <= 1e-8 * max(1.0, abs(d2))

    def through_svd(x):
        u, s, vt = jaxsvd.svd(x, full_matrices=False)
        return jnp.sum(t * ((u[:, :2] * s[None, :2]) @ vt[:2]))

    assert bool(jnp.all(jnp.isnan(jax.grad(through_svd)(a))))


@pytest.mark.slow
def test_ties_and_near_ties_against_mpmath():
    """Exact ties (rotations, a Z2-symmetric tensor) and near ties d = 1e-13 ... 1e-6
    inside the kept space, 5 x 4, k = 2 and k = 3: orders 1 and 2 by jvp/hessian-vector
    against mpmath differences; orders 1..4 by jet at one tie against mpmath.diff."""
    m, n = 5, 4
    t1, t2 = _data(m, n, seed=5)
    mats = [_rotated_tie(m, n, [3.0, 3.0, 1.0, 0.5], 1),
            _rotated_tie(m, n, [2.0, 2.0, 2.0, 0.5], 2)]
    ks = [2, 3]
    for d in (1e-13, 1e-10, 1e-6):
        mats.append(_rotated_tie(m, n, [3.0, 3.0 - d, 1.0, 0.5], 3))
        ks.append(2)
    # a Z2-symmetric matrix [[A, B], [B, A]] (invariant under swapping the halves of rows
    # and columns): its even and odd sectors A + B, A - B share singular values when B's
    # sector structure makes them equal -- here A + B and A - B are rotations of one
    # diag(2, 1), so every value is tied in a pair; embedded in a 5 x 4 by a zero row
    c, s_ = np.cos(0.7), np.sin(0.7)
    rot = np.array([[c, -s_], [s_, c]])
    apb, amb = rot @ np.diag([2.0, 1.0]), np.diag([2.0, 1.0]) @ rot.T
    blk_a, blk_b = (apb + amb) / 2, (apb - amb) / 2
    z2 = np.block([[blk_a, blk_b], [blk_b, blk_a]])
    z2 = np.vstack([z2, np.zeros((1, 4))])
    mats.append(jnp.asarray(orthogonal(5, 8) @ z2))
    ks.append(2)
    h = jnp.asarray(np.random.default_rng(6).standard_normal((m, n)))
    loss = _loss_jnp(t1, t2)
    for k in sorted(set(ks)):
        idx = [i for i, kk in enumerate(ks) if kk == k]
        a = jnp.stack([mats[i] for i in idx])
        f = _ours(loss, k)
        d1 = jax.vmap(lambda x: jax.jvp(f, (x,), (h,))[1])(a)
        d2 = jax.vmap(lambda x: jnp.sum(jax.jvp(jax.grad(f), (x,), (h,))[1] * h))(a)
        for j, i in enumerate(idx):
            mpf = _mp_loss(t1, t2, k)
            ref1 = R.directional(lambda x: mpmath.matrix([[mpf(x)]]), mats[i], h)[0, 0]
            ref2 = R.directional(lambda x: mpmath.matrix([[mpf(x)]]), mats[i], h, order=2)[0, 0]
            assert abs(float(d1[j]) - ref1) <= 1e-10 * abs(ref1), (i, float(d1[j]), ref1)
            assert abs(float(d2[j]) - ref2) <= 1e-8 * abs(ref2), (i, float(d2[j]), ref2)
    # orders 1..4 at the exact tie (jet) against mpmath.diff
    zero = jnp.zeros_like(h)
    ys = jet(_ours(loss, 2), (mats[0],), ((h, zero, zero, zero),))[1]
    ref = _mp_directional(_mp_loss(t1, t2, 2), mats[0], h, 4)
    np.testing.assert_allclose([float(y) for y in ys], ref, rtol=1e-8)


def test_float32_and_complex():
    m, n = 5, 4
    t1, t2 = _data(m, n, seed=1)
    loss = _loss_jnp(t1, t2)
    a = _rotated_tie(m, n, [3.0, 3.0, 1.0, 0.5], 4)
    g64 = jax.grad(_ours(loss))(a)
    loss32 = _loss_jnp(t1.astype(jnp.float32), t2.astype(jnp.float32))
    g32 = jax.grad(_ours(loss32))(a.astype(jnp.float32))
    assert g32.dtype == jnp.float32
    np.testing.assert_allclose(g32, g64, rtol=0, atol=2e-4 * float(jnp.max(jnp.abs(g64))))
    # complex: a tie inside the kept space of a complex matrix, unitary bond gauge;
    # reference: central differences in complex128 of the loss through mpmath-free
    # reconstruction x = L R, checked against differences of the real and imaginary parts
    rng = np.random.default_rng(12)
    q1, _ = np.linalg.qr(rng.standard_normal((m, m)) + 1j * rng.standard_normal((m, m)))
    q2, _ = np.linalg.qr(rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n)))
    ac = jnp.asarray(q1[:, :4] @ np.diag([3.0, 3.0, 1.0, 0.5]) @ q2.conj().T)
    n1, n2 = np.asarray(t1), np.asarray(t2)
    tc1 = jnp.asarray(n1 + 0.5j * n1[::-1])
    tc2 = jnp.asarray(n2 - 0.3j * n2[::-1])
    lossc = _loss_jnp(tc1, tc2)
    fc = _ours(lossc)
    hc = jnp.asarray(rng.standard_normal((m, n)) + 1j * rng.standard_normal((m, n)))
    d1 = jax.jvp(fc, (ac,), (hc,))[1]
    jfc = jax.jit(fc)
    fd = richardson(lambda e: jfc(ac + e * hc), 1e-3)  # Richardson-extrapolated differences
    assert_fd_close(d1, fd, 1e-8)
    # reverse mode: the directional derivative from the gradient (JAX's convention for
    # complex inputs, e.g. grad |z|^2 = 2 conj(z): Re sum(g h) is the derivative along h)
    g = jax.grad(fc)(ac)
    assert_fd_close(jnp.real(jnp.sum(g * hc)), fd, 1e-8)
    # a gauge-dependent loss of a complex split: NaN in reverse mode
    assert bool(jnp.all(jnp.isnan(jax.grad(lambda x: jnp.real(jaxsvd.truncated_split(x, 2)[0][0, 0]))(ac))))


def test_cluster_invariant_loss_at_tie_against_mpmath():
    """A loss invariant under the bond gauge inside each tied cluster but not on the
    whole bond -- the kept values weighted per cluster, w = (1, 1, 2) on sigma = (3, 3, 1):
    <T, L W R> + tr(W L^T L W L^T L), W = diag(w) -- at rotated diag(3, 3, 1, 0.5), k = 3:
    gradient, Hessian-vector product and jet orders 1..3 against mpmath (50 digits)."""
    m, n, k = 5, 4, 3
    a = _rotated_tie(m, n, [3.0, 3.0, 1.0, 0.5], 4)
    t = jnp.asarray(np.random.default_rng(8).standard_normal((m, n)))
    h = jnp.asarray(np.random.default_rng(9).standard_normal((m, n)))
    w = jnp.asarray([1.0, 1.0, 2.0])

    def loss(x):
        l, r = jaxsvd.truncated_split(x, k)
        wl = l.T @ l * w[None, :]
        return jnp.sum(t * ((l * w[None, :]) @ r)) + jnp.trace(wl @ wl)

    tm = R._mp(t)

    def mp_loss(x):
        u, s, vt = mpmath.svd_r(x, full_matrices=False)  # tall: any gauge, the loss is invariant
        y = sum(tm[i, j] * sum(u[i, c] * float(w[c]) * s[c] * vt[c, j] for c in range(k))
                for i in range(m) for j in range(n))
        return y + sum(float(w[c]) ** 2 * s[c] ** 2 for c in range(k))  # L^T L = diag(s_k)

    ref = _mp_directional(mp_loss, a, h, 3)
    g = jax.grad(loss)(a)
    assert abs(float(jnp.sum(g * h)) - ref[0]) <= 1e-10 * max(1.0, abs(ref[0]))
    hv = jax.jvp(jax.grad(loss), (a,), (h,))[1]
    assert abs(float(jnp.sum(hv * h)) - ref[1]) <= 1e-8 * max(1.0, abs(ref[1]))
    z = jnp.zeros(())
    ys = jet(lambda x: loss(a + x * h), (z,), ((jnp.ones(()), z, z),))[1]
    np.testing.assert_allclose(np.asarray(ys), ref, rtol=1e-8, atol=1e-9)


# ---------------------------------------------------------------------------
# NaN where the split is not differentiable, and for gauge-dependent losses
# ---------------------------------------------------------------------------


def test_nan_at_tie_at_the_cut_and_gauge_dependent_loss():
    m, n = 5, 4
    t1, t2 = _data(m, n)
    loss = _loss_jnp(t1, t2)
    cut = _rotated_tie(m, n, [3.0, 1.0, 1.0, 0.5], 2)  # sigma_2 = sigma_3, k = 2
    h = jnp.asarray(np.random.default_rng(1).standard_normal((m, n)))
    f = _ours(loss)
    assert bool(jnp.isnan(jax.jvp(f, (cut,), (h,))[1]))
    assert bool(jnp.all(jnp.isnan(jax.grad(f)(cut))))
    assert bool(jnp.all(jnp.isnan(jnp.stack(jet(f, (cut,), ((h, h),))[1]))))
    zero_k = _rotated_tie(m, n, [3.0, 0.0, 0.0, 0.0], 2)  # sigma_k = 0 (k = 2)
    assert bool(jnp.all(jnp.isnan(jax.grad(f)(zero_k))))
    # a loss that depends on the gauge inside a tied cluster: NaN in reverse mode
    tie = _rotated_tie(m, n, [3.0, 3.0, 1.0, 0.5], 1)
    dep = (lambda x: jaxsvd.truncated_split(x, 2)[0][0, 0],
           lambda x: jnp.sum(jaxsvd.truncated_split(x, 2)[1] * t2[:2]))
    for g in dep:
        assert bool(jnp.all(jnp.isnan(jax.grad(g)(tie))))
    assert bool(jnp.all(jnp.isfinite(jax.grad(f)(tie))))
    # at a generic point only signs are free (no infinitesimal gauge): the derivative
    # is that of the sign-continued split, the same as through jnp.linalg.svd
    gen = _rotated_tie(m, n, [3.0, 2.0, 1.0, 0.5], 1)
    for g, ref in zip(dep, (lambda x: _ref_split(x)[0][0, 0], lambda x: jnp.sum(_ref_split(x)[1] * t2[:2])),
                      strict=True):
        np.testing.assert_allclose(jax.grad(g)(gen), jax.grad(ref)(gen), rtol=1e-10, atol=1e-12)


def test_values_and_bad_input():
    m, n = 4, 6
    a = jnp.asarray(np.random.default_rng(0).standard_normal((3, m, n)))
    l, r = jaxsvd.truncated_split(a, 2, power=0.25)
    assert l.shape == (3, m, 2) and r.shape == (3, 2, n)
    u, s, vt = np.linalg.svd(np.asarray(a), full_matrices=False)
    np.testing.assert_allclose(l @ r, (u[..., :2] * s[..., None, :2]) @ vt[..., :2, :], atol=1e-13)
    np.testing.assert_allclose(jnp.sum(l * l, axis=-2), s[..., :2] ** 0.5, rtol=1e-13)  # ||L e_i|| = s_i^p
    with pytest.raises(ValueError, match="k=5"):
        jaxsvd.truncated_split(a, 5)
    with pytest.raises(ValueError, match="k=0"):
        jaxsvd.truncated_split(a, 0)
    with pytest.raises(TypeError, match="power"):
        jaxsvd.truncated_split(a, 2, power=0.5j)
    with pytest.raises(TypeError, match="power"):
        jaxsvd.truncated_split(a, 2, power=jnp.ones(2))
    with pytest.raises(TypeError, match="power"):
        jax.jit(lambda p: jaxsvd.truncated_split(a, 2, power=p))(0.5)
    with pytest.raises(ValueError, match="finite"):
        jaxsvd.truncated_split(a, 2, power=float("nan"))
    with pytest.raises(ValueError, match="dimensions"):
        jaxsvd.truncated_split(jnp.ones(3), 1)
    with pytest.raises(TypeError, match="static Python int"):
        jaxsvd.truncated_split(a, True)
    # an infinite entry: NaN out (LAPACK's SVD never returns on inf; replaced by NaN first)
    l, r = jaxsvd.truncated_split(a[0].at[0, 0].set(jnp.inf), 2)
    assert bool(jnp.all(jnp.isnan(l))) and bool(jnp.all(jnp.isnan(r)))
    # a padded bond (k above the rank): the values are s**p, so at p = 0 L = U_k is an isometry
    pad = jnp.asarray([[2.0, 1.0, 0.0], [1.0, 3.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    l0, r1 = jaxsvd.truncated_split(pad, 3, power=0.0)[0], jaxsvd.truncated_split(pad, 3, power=1.0)[1]
    np.testing.assert_allclose(l0.T @ l0, np.eye(3), atol=1e-14)
    np.testing.assert_allclose(r1 @ r1.T, np.eye(3), atol=1e-14)


@pytest.mark.slow
def test_transforms():
    """jit of vmap of grad, and jet of grad, against autodiff through jnp.linalg.svd."""
    m, n = 4, 6
    a = jnp.asarray(np.random.default_rng(0).standard_normal((3, m, n)))
    t1, t2 = _data(m, n)
    f = _ours(_loss_jnp(t1, t2), 2, 0.25)
    ref = lambda x: _loss_jnp(t1, t2)(*_ref_split(x, 2, 0.25))  # noqa: E731
    g_jit = jax.jit(jax.vmap(jax.grad(f)))(a)
    np.testing.assert_allclose(g_jit, jax.vmap(jax.grad(ref))(a), rtol=1e-10, atol=1e-11)
    h = jnp.asarray(np.random.default_rng(1).standard_normal((m, n)))
    _, (j1, _) = jet(jax.grad(f), (a[0],), ((h, jnp.zeros_like(h)),))
    hv = jax.jvp(jax.grad(ref), (a[0],), (h,))[1]
    np.testing.assert_allclose(j1, hv, rtol=1e-9, atol=1e-10)
