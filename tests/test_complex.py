"""Complex input (complex64 / complex128): the Hermitian block operator
[[0, A], [A^H, 0]] and JAX's phase gauge.

References, all independent of jaxsvd: numpy's SVD (values, reconstruction,
unitarity), JAX's own complex SVD rule through ``jnp.linalg.svd`` (first order,
and nested to higher orders where the spectrum is simple -- its gauge is the
one jaxsvd continues), mpmath's Hermitian eigensolver on the block operator
(tests/_ref_mpmath.py), the Newton iteration X <- (X + X^-H)/2 for the polar
factor, and closed forms (sum sigma^2 = |A|_F^2).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental import jet

import jaxsvd
from tests._ref_mpmath import sigma_derivatives
from tests.helpers import SHAPES, assert_fd_close, richardson

C = jax.lax.complex


def max_rel_err(x, ref) -> float:
    x, ref = np.asarray(x, np.complex128), np.asarray(ref, np.complex128)
    return float(np.max(np.abs(x - ref)) / max(np.max(np.abs(ref)), 1e-300))


def line(a, h):
    """x -> a + x h for a real scalar x (explicit casts: strict promotion)."""
    return lambda x: a + x.astype(h.dtype) * h


def cgauss(shape, seed=0, dtype=jnp.complex128):
    g = np.random.default_rng(seed)
    return jnp.asarray(g.standard_normal(shape) + 1j * g.standard_normal(shape), dtype=dtype)


def unitary(n, seed=0):
    q, r = np.linalg.qr(np.asarray(cgauss((n, n), seed)))
    return q * (np.diag(r) / np.abs(np.diag(r)))


def rtol(dtype):
    return 1e-10 if jnp.dtype(dtype) == jnp.complex128 else 3e-4


def nested(f, k):
    """k-th derivative at x = 0 of f(x) by nested jax.jvp (independent reference)."""
    for _ in range(k):
        f = (lambda g: (lambda x: jax.jvp(g, (x,), (jnp.ones_like(x),))[1]))(f)
    return f


def real_wrapper(f):
    """f of a complex matrix as a function of (Re a, Im a)."""
    return lambda re, im: f(C(re, im))


# ---------------------------------------------------------------------------
# values and first order
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [jnp.complex64, jnp.complex128])
@pytest.mark.parametrize("full", [False, True])
def test_values_match_numpy(shape, dtype, full):
    a = cgauss(shape, 1, dtype)
    u, s, vh = jaxsvd.svd(a, full_matrices=full)
    assert s.dtype == jnp.finfo(dtype).dtype and u.dtype == dtype and vh.dtype == dtype
    tol = rtol(dtype)
    assert max_rel_err(s, np.linalg.svd(np.asarray(a), compute_uv=False)) < tol
    r = min(shape)
    rec = (np.asarray(u)[:, :r] * np.asarray(s)[None, :]) @ np.asarray(vh)[:r]
    assert np.max(np.abs(rec - np.asarray(a))) < 10 * tol * np.max(np.abs(np.asarray(a)))
    un, vn = np.asarray(u), np.asarray(vh)
    for g in (un.conj().T @ un, vn @ vn.conj().T):
        assert np.max(np.abs(g - np.eye(g.shape[0]))) < 10 * tol
    np.testing.assert_allclose(jaxsvd.svdvals(a), s, rtol=tol)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [jnp.complex64, jnp.complex128])
def test_thin_jvp_equals_jnp(shape, dtype):
    a, h = cgauss(shape, 2, dtype), cgauss(shape, 3, dtype)
    p1, t1 = jax.jvp(lambda a: tuple(jaxsvd.svd(a, full_matrices=False)), (a,), (h,))
    p2, t2 = jax.jvp(lambda a: tuple(jnp.linalg.svd(a, full_matrices=False)), (a,), (h,))
    for x, y in zip(p1, p2, strict=True):
        np.testing.assert_array_equal(x, y)  # same LAPACK call
    for x, y in zip(t1, t2, strict=True):
        assert x.dtype == y.dtype
        assert max_rel_err(x, y) < 10 * rtol(dtype)


def test_full_matrices_jvp():
    # square: equal to jnp's; tall and wide (jnp has no rule): the derivative of
    # A = U S V^H and of U^H U = I must hold
    a, h = cgauss((4, 4), 4), cgauss((4, 4), 5)
    t1 = jax.jvp(jaxsvd.svd, (a,), (h,))[1]
    t2 = jax.jvp(jnp.linalg.svd, (a,), (h,))[1]
    for x, y in zip(t1, t2, strict=True):
        assert max_rel_err(x, y) < 1e-12
    for shape in [(5, 3), (3, 5)]:
        a, h = cgauss(shape, 6), cgauss(shape, 7)
        (u, s, vh), (du, ds, dvh) = jax.jvp(jaxsvd.svd, (a,), (h,))
        m, n = shape
        smat = jnp.zeros(shape, a.dtype).at[jnp.arange(min(shape)), jnp.arange(min(shape))].set(s.astype(a.dtype))
        dsmat = jnp.zeros(shape, a.dtype).at[jnp.arange(min(shape)), jnp.arange(min(shape))].set(ds.astype(a.dtype))
        rec = du @ smat @ vh + u @ dsmat @ vh + u @ smat @ dvh
        assert float(jnp.max(jnp.abs(rec - h))) < 1e-12
        for x in (u.conj().T @ du, vh @ dvh.conj().T):
            assert float(jnp.max(jnp.abs(x + x.conj().T))) < 1e-12


@pytest.mark.parametrize("shape", [(4, 3), (3, 4)])
def test_grad_of_real_losses_follows_jax_convention(shape):
    a = cgauss(shape, 8)
    m = shape[0]
    w = jnp.asarray(np.random.default_rng(9).standard_normal(m))

    def loss(svd):
        def f(a):
            u, s, vh = svd(a, full_matrices=False)
            rec = (u * s.astype(u.dtype)[None, :]) @ vh
            return (jnp.sum(w[:, None] * jnp.abs(u) ** 2) + jnp.sum(s ** 3)
                    + jnp.real(jnp.sum(rec * jnp.conj(rec))) + jnp.abs(u[0, 0] * vh[0, 1]))
        return f

    g1, g2 = jax.grad(loss(jaxsvd.svd))(a), jax.grad(loss(jnp.linalg.svd))(a)
    assert g1.dtype == a.dtype
    assert max_rel_err(g1, g2) < 1e-12


# ---------------------------------------------------------------------------
# higher orders: jet, derivatives, Hessians in (Re A, Im A)
# ---------------------------------------------------------------------------


def test_jet_of_svd_equals_nested_jvp_through_jnp():
    # the phase gauge continued to every order: U, S, Vh all agree with nested
    # jvp of JAX's own rule (parallel transport of V), not just gauge-invariants
    a, h = cgauss((4, 3), 10), cgauss((4, 3), 11)
    K = 3
    f = lambda a: tuple(jaxsvd.svd(a, full_matrices=False))  # noqa: E731
    _, ser = jet.jet(f, (a,), ([h] + [jnp.zeros_like(h)] * (K - 1),))
    for k in range(1, K + 1):
        ref = nested(lambda x: tuple(jnp.linalg.svd(line(a, h)(x), full_matrices=False)), k)(
            jnp.zeros((), jnp.float64))
        for out, y in zip(ser, ref, strict=True):
            assert max_rel_err(out[k - 1], y) < 1e-11, k


def test_taylor_coefficients_of_sigma_match_mpmath():
    a, h = np.asarray(cgauss((3, 4), 12)), np.asarray(cgauss((3, 4), 13))
    d = np.asarray(jaxsvd.derivatives(jnp.asarray(a), jnp.asarray(h), 8))
    for k in range(3):
        ref = sigma_derivatives(a, h, k, 8, dps=40)
        err = np.abs(d[:, k] - ref) / np.maximum(np.abs(ref), np.abs(ref).max() * 1e-3)
        assert np.all(err < 1e-9), (k, err)


def test_derivatives_promotes_real_a_with_complex_h():
    a, h = np.asarray(cgauss((3, 3), 14)).real, cgauss((3, 3), 15)
    d = jaxsvd.derivatives(a, h, 2)
    ref = sigma_derivatives(a, np.asarray(h), 0, 2)
    assert d.dtype == jnp.float64
    assert max_rel_err(d[:, 0], ref) < 1e-10


def test_second_order_of_gauge_invariant_quantities():
    # projector, |u_k^H x|^2, U diag(s) V^H: second order in (Re, Im) against
    # nested float64 jacfwd through jnp.linalg.svd (simple spectrum); jaxsvd by
    # forward-over-reverse and forward-over-forward, along two real directions
    a = cgauss((3, 2), 16)
    x = cgauss((3,), 17)

    def quantities(svd):
        def f(a):
            u, s, vh = svd(a, full_matrices=False)
            proj = u[:, :2] @ u[:, :2].conj().T
            rec = (u * s.astype(u.dtype)[None, :]) @ vh
            return jnp.concatenate([jnp.abs(u.conj().T @ x) ** 2, jnp.real(proj).ravel(), jnp.imag(proj).ravel(),
                                    jnp.real(rec).ravel()])
        return real_wrapper(f)

    dr, di = np.asarray(cgauss((3, 2), 18)).real, np.asarray(cgauss((3, 2), 19)).imag

    def second(f):  # forward over forward along (dr, di)
        first = lambda re, im: jax.jvp(f, (re, im), (dr, di))[1]  # noqa: E731
        return jax.jvp(first, (a.real, a.imag), (dr, di))[1]

    ref = second(quantities(jnp.linalg.svd))
    assert max_rel_err(jax.jit(lambda: second(quantities(jaxsvd.svd)))(), ref) < 1e-10  # one program
    # forward over reverse (an HVP) of a weighted sum
    w = jnp.asarray(np.random.default_rng(20).standard_normal(ref.shape))
    f = quantities(jaxsvd.svd)
    g = jax.grad(lambda re, im: jnp.sum(w * f(re, im)), (0, 1))
    hv = jax.jit(lambda: jax.jvp(g, (a.real, a.imag), (dr, di))[1])()
    assert abs(float(jnp.sum(hv[0] * dr) + jnp.sum(hv[1] * di) - jnp.sum(w * ref))) < 1e-10 * float(
        jnp.sum(jnp.abs(w * ref)))


def test_singular_triplet_and_gaps():
    a, h = cgauss((5, 3), 18), cgauss((5, 3), 19)
    s, u, v = jaxsvd.singular_triplet(a, 1)
    assert float(jnp.max(jnp.abs(a @ v - s.astype(a.dtype) * u))) < 1e-12  # A v = s u
    assert float(jnp.max(jnp.abs(a.conj().T @ u - s.astype(a.dtype) * v))) < 1e-12
    t1 = jax.jvp(lambda a: jaxsvd.singular_triplet(a, 1), (a,), (h,))[1]
    t2 = jax.jvp(lambda a: jnp.linalg.svd(a, full_matrices=False), (a,), (h,))[1]
    assert max_rel_err(t1[0], t2.S[1]) < 1e-12
    assert max_rel_err(t1[1], t2.U[:, 1]) < 1e-12
    assert max_rel_err(t1[2], jnp.conj(t2.Vh[1])) < 1e-12
    sv = np.linalg.svd(np.asarray(a), compute_uv=False)
    gap1 = min(sv[0] - sv[1], 2 * sv[0], sv[0]) / sv[0]  # m != n: distance to 0 counts
    assert abs(float(jaxsvd.gaps(a)[0]) - gap1) < 1e-12


# ---------------------------------------------------------------------------
# spectral functions, at generic and unitary matrices
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["nuclear", "schatten3", "kyfan2"])
def test_spectral_functions_match_jnp(name):
    f = {"nuclear": jaxsvd.nuclear_norm, "schatten3": lambda a: jaxsvd.schatten_norm(a, 3),
         "kyfan2": lambda a: jaxsvd.ky_fan_norm(a, 2)}[name]
    g = {"nuclear": lambda s: jnp.sum(s), "schatten3": lambda s: jnp.sum(s ** 3) ** (1 / 3),
         "kyfan2": lambda s: jnp.sum(s[:2])}[name]
    ref = lambda a: g(jnp.linalg.svd(a, compute_uv=False))  # noqa: E731
    a, h = cgauss((3, 2), 20), cgauss((3, 2), 21)
    assert abs(float(f(a) - ref(a))) < 1e-12
    assert max_rel_err(jax.grad(f)(a), jax.grad(ref)(a)) < 1e-12
    hvp = lambda f: jax.jvp(jax.grad(f), (a,), (h,))[1]  # noqa: E731
    assert max_rel_err(hvp(f), hvp(ref)) < 1e-10
    if name != "schatten3":  # sums of singular values: the mpmath series directly
        _, ser = jet.jet(f, (a,), ([h, jnp.zeros_like(h), jnp.zeros_like(h)],))
        ks = range(2)  # 3 x 2: the nuclear norm and the Ky Fan 2-norm are both s_0 + s_1
        ref_d = sum(sigma_derivatives(np.asarray(a), np.asarray(h), k, 3, dps=30) for k in ks)
        np.testing.assert_allclose(np.asarray(ser), ref_d[1:], rtol=1e-9)


def test_spectral_functions_at_a_unitary_matrix():
    q = jnp.asarray(unitary(2, 22))
    sq = jaxsvd.spectral_function(lambda s: jnp.sum(s ** 2))
    hs = jax.hessian(real_wrapper(sq), argnums=(0, 1))(q.real, q.imag)
    eye = np.eye(4).reshape(2, 2, 2, 2)
    np.testing.assert_allclose(hs[0][0], 2 * eye, atol=1e-12)
    np.testing.assert_allclose(hs[1][1], 2 * eye, atol=1e-12)
    np.testing.assert_allclose(hs[0][1], 0 * eye, atol=1e-12)
    # nuclear norm: |A|_* = tr((A^H A)^(1/2)); its gradient at a unitary Q is conj(Q)
    # (JAX convention), and along H its second derivative is that of the polar
    # part: d^2/dx^2 |Q + xH|_* = Re tr(Q^H H (..)) -- checked by central differences
    np.testing.assert_allclose(jax.grad(jaxsvd.nuclear_norm)(q), jnp.conj(q), atol=1e-12)
    h = cgauss((2, 2), 23)
    d2 = jax.jvp(lambda x: jax.jvp(jaxsvd.nuclear_norm, (line(q, h)(x),), (h,))[1],
                 (jnp.zeros(()),), (jnp.ones(()),))[1]
    nuc = lambda x: np.sum(np.linalg.svd(np.asarray(q) + x * np.asarray(h), compute_uv=False))  # noqa: E731
    # Richardson-extrapolated second differences (a plain one at eps = 1e-4 has a
    # rounding error ~4 eps |nuc| / eps^2 ~ 2e-7, within 10x of the tolerance)
    assert_fd_close(d2, richardson(nuc, 1e-2, order=2), 1e-6, floor=1.0)
    # the spectral norm is not differentiable at a unitary matrix (all sigma tied)
    d2 = jax.jvp(lambda x: jax.jvp(jaxsvd.spectral_norm, (line(q, h)(x),), (h,))[1],
                 (jnp.zeros(()),), (jnp.ones(()),))[1]
    assert np.isnan(float(d2))


# ---------------------------------------------------------------------------
# tie-safe functions
# ---------------------------------------------------------------------------


def newton_polar(a, iters=40):
    return jax.lax.fori_loop(0, iters, lambda i, x: 0.5 * (x + jnp.linalg.inv(x).conj().T), a)


@pytest.mark.parametrize("where", ["unitary", "near_tie", "generic"])
def test_polar_against_newton_iteration(where):
    q = unitary(3, 24)
    a = {"unitary": q, "near_tie": q @ np.diag([1.0, 1.0 + 1e-10, 2.0]) @ unitary(3, 25),
         "generic": np.asarray(cgauss((3, 3), 26))}[where]
    a, h = jnp.asarray(a), cgauss((3, 3), 27)
    up = lambda a: jaxsvd.polar(a)[0]  # noqa: E731
    assert max_rel_err(up(a), newton_polar(a)) < 1e-12
    _, ser = jet.jet(up, (a,), ([h, jnp.zeros_like(h)],))
    for k in range(1, 3):
        ref = nested(lambda x: newton_polar(line(a, h)(x)), k)(jnp.zeros((), jnp.float64))
        assert max_rel_err(ser[k - 1], ref) < 1e-11
    w = cgauss((3, 3), 28)
    loss = lambda p: lambda a: jnp.real(jnp.sum(w * p(a)))  # noqa: E731
    assert max_rel_err(jax.grad(loss(up))(a), jax.grad(loss(newton_polar))(a)) < 1e-11
    if where == "unitary":  # the Hessian in (Re, Im)
        h1 = jax.jit(jax.hessian(real_wrapper(loss(up)), argnums=(0, 1)))(a.real, a.imag)
        h2 = jax.hessian(real_wrapper(loss(newton_polar)), argnums=(0, 1))(a.real, a.imag)
        for i in range(2):
            for j in range(2):
                assert max_rel_err(h1[i][j], h2[i][j]) < 1e-10
    _, p = jaxsvd.polar(a)
    np.testing.assert_allclose(p, p.conj().T, atol=1e-12)  # Hermitian


def test_projectors_truncate_gmf_at_a_tie():
    # a = Q diag(3, 3, 1) P^H (5 x 3): top-2 projectors and rank-2 truncation are
    # smooth (sigma_2 > sigma_3); reference: the spectral projector of A A^H by the
    # Newton sign iteration (differentiable through the iterations)
    q, p = unitary(5, 29)[:, :3], unitary(3, 30)
    a = jnp.asarray(q @ np.diag([3.0, 3.0, 1.0]) @ p.conj().T)
    h = cgauss((5, 3), 31)

    def sign_proj(a):
        g = a @ a.conj().T
        x = g - 4.0 * jnp.eye(5, dtype=a.dtype)
        x = jax.lax.fori_loop(0, 40, lambda i, x: 0.5 * (x + jnp.linalg.inv(x)), x)
        return 0.5 * (jnp.eye(5, dtype=a.dtype) + x)  # projector on eigenvalues > 4

    t1 = jax.jvp(lambda a: jaxsvd.projectors(a, 2)[0], (a,), (h,))[1]
    t2 = jax.jvp(sign_proj, (a,), (h,))[1]
    assert max_rel_err(t1, t2) < 1e-10
    t1 = jax.jvp(lambda a: jaxsvd.truncate(a, 2), (a,), (h,))[1]
    t2 = jax.jvp(lambda a: sign_proj(a) @ a, (a,), (h,))[1]
    assert max_rel_err(t1, t2) < 1e-10
    # generalized matrix function g = s^3 is A A^H A exactly
    F = jaxsvd.generalized_matrix_function(lambda s: s ** 3)
    _, ser = jet.jet(F, (a,), ([h, jnp.zeros_like(h)],))
    cube = lambda a: a @ a.conj().T @ a  # noqa: E731
    _, ref = jet.jet(cube, (a,), ([h, jnp.zeros_like(h)],))
    for x, y in zip(ser, ref, strict=True):
        assert max_rel_err(x, y) < 1e-11


# ---------------------------------------------------------------------------
# transforms, complex64, bad input
# ---------------------------------------------------------------------------


def test_vmap_jit_complex64():
    a = jnp.stack([cgauss((4, 3), 32, jnp.complex64), jnp.asarray(unitary(4, 33)[:, :3], jnp.complex64)])
    h = jnp.stack([cgauss((4, 3), 34, jnp.complex64)] * 2)
    f = jax.jit(jax.vmap(lambda a, h: jax.jvp(lambda a: tuple(jaxsvd.svd(a, full_matrices=False)), (a,), (h,))[1]))
    g = jax.vmap(lambda a, h: jax.jvp(lambda a: tuple(jnp.linalg.svd(a, full_matrices=False)), (a,), (h,))[1])
    t1, t2 = f(a, h), g(a, h)
    assert t1[1].dtype == jnp.float32
    # the generic matrix: equal to jnp's; the isometry (one cluster): values agree,
    # vectors are NaN by the degeneracy policy
    for x, y in zip(t1, t2, strict=True):
        assert max_rel_err(x[0], y[0]) < 1e-4
    assert max_rel_err(t1[1][1], t2[1][1]) < 1e-5
    assert np.isnan(np.asarray(t1[0][1])).all()
    gr = jax.jit(jax.vmap(jax.grad(lambda a: jnp.sum(jaxsvd.svdvals(a) ** 3))))(a)
    ref = jax.vmap(jax.grad(lambda a: jnp.sum(jnp.linalg.svd(a, compute_uv=False) ** 3)))(a)
    assert gr.dtype == jnp.complex64 and max_rel_err(gr, ref) < 1e-4
    d = jaxsvd.derivatives(a[0], h[0], 3)
    ref = sigma_derivatives(np.asarray(a[0], complex), np.asarray(h[0], complex), 0, 3)
    assert d.dtype == jnp.float32 and max_rel_err(d[:, 0], ref) < 2e-3


def test_bad_and_nan_input():
    with pytest.raises(TypeError, match="float16"):
        jaxsvd.svd(jnp.ones((2, 2), jnp.float16))
    with pytest.raises(NotImplementedError, match="real wrapper"):
        jaxsvd.hessian(cgauss((2, 2)), 0)
    a = cgauss((3, 3), 35).at[0, 1].set(complex(0.0, math.nan))
    assert np.isnan(np.asarray(jaxsvd.svdvals(a))).all()
    assert np.isnan(np.asarray(jaxsvd.polar(a)[0])).all()


def test_issue_example_reconstruction_gradient():
    # the report: d/dt of Re (U diag(s) Vh)[0, 0] along [[1j, 0.5j], [0, 0]] + t E_00 is 1
    # (a rank-1 matrix: the zero singular value's vectors carry no cotangent)
    a0 = jnp.array([[1j, 0.5j], [0.0, 0.0]], dtype=jnp.complex128)
    e = jnp.zeros((2, 2), jnp.complex128).at[0, 0].set(1.0)

    def f(t):
        u, s, vh = jaxsvd.svd(a0 + t.astype(e.dtype) * e, full_matrices=False)
        return jnp.real(((u * s.astype(u.dtype)[None, :]) @ vh)[0, 0])

    assert abs(float(jax.grad(f)(jnp.zeros(()))) - 1.0) < 1e-14
