"""Hermitian matrix functions, projectors and spectral functions, exact through
tied eigenvalues to any order (the public namespace is ``jaxsvd.hermitian``).

One construction (docs/hermitian.md): with c = 2 max|lambda| (a constant; 1 for
the zero matrix), ``a + cI`` is positive definite and its SVD is the
eigendecomposition ``s = lambda + c``, ``U = V = Q``.  So

    Q diag(f(lambda)) Q^H  =  U diag(g(s)) V^H,     g(s) = f(s - c),

a generalized matrix function of ``a + cI`` (jaxsvd/_ties.py, ``tie_p``): the
same primitive, the same series engine in its cluster gauge, the same divided
differences and their confluent limits (Daleckii--Krein at first order, the
Taylor expansion of f about each near-tie cluster's mean at every order), the
same NaN policy (f not differentiable at an eigenvalue).  The factorisation
comes from ``eigh`` (LAPACK), not from an SVD; the shift does not enter any
derivative (d(a + cI) = da).  The k smallest eigenvalues of ``a`` are the k
largest singular values of ``cI - a``, whose left projector is the spectral
projector (``_ties.left_projector``).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ._branches import branches as _svd_branches
from ._eigh import as_square, eigh, eigvalsh, hermitian_part, lapack_eigh, shift_of, shifted_basis
from ._series import mH, svd_series
from ._spectral import spectral_function as _svd_spectral_function
from ._svd import static_int
from ._ties import apply_general, left_projector

# ---------------------------------------------------------------------------
# the shifted problem
# ---------------------------------------------------------------------------


def _checked(a, name: str = "a"):
    a = as_square(a, name)
    if a.shape[-1] == 0:
        raise ValueError(f"{name} must be a non-empty matrix; got shape {a.shape}")
    return hermitian_part(a)


def _eye_like(a):
    return jnp.broadcast_to(jnp.eye(a.shape[-1], dtype=a.dtype), a.shape)


def shifted(a, descending: bool = True):
    """``(b, (s, U, Vt), c)``: ``b = a + cI`` (``descending``: s follows lambda
    descending) or ``b = cI - a`` (s follows lambda ascending), its SVD from
    LAPACK's eigh of ``a`` (a cache: no tangent), and c (..., 1)."""
    w, q = lapack_eigh(lax.stop_gradient(a))
    c = shift_of(w)
    cI = c[..., None].astype(a.dtype) * _eye_like(a)
    if descending:
        u = q[..., ::-1]
        return a + cI, (w[..., ::-1] + c, u, mH(u)), c
    return cI - a, (c - w, q, mH(q)), c


# ---------------------------------------------------------------------------
# matrix functions
# ---------------------------------------------------------------------------


def matrix_function(f):
    r"""Turn an elementwise function of the eigenvalues into ``F(a, *params) = Q diag(f(w, *params)) Q^H``.

    For Hermitian ``a = Q diag(w) Q^H``.  First derivative (Daleckii--Krein):

    .. math::

        DF[H] = Q \big[ f^{[1]}(w_i, w_j) \, (Q^H H Q)_{ij} \big] Q^H,\qquad
        f^{[1]}(x, y) = \frac{f(x) - f(y)}{x - y}, \quad f^{[1]}(x, x) = f'(x),

    and every order from the series engine (docs/hermitian.md): exact at exact
    ties, near ties (merged below a relative gap ``eps**(1/9)`` of the shifted
    spectrum, where the divided differences become a Taylor expansion of f) and
    generic points, in ``jvp``, ``grad``, ``hessian`` and ``jet``, and in the
    parameters.

    Args:
      f: elementwise ``f(w, *params)``, ``(n,) -> (n,)`` real floats; any JAX
        function including ``jax.custom_jvp`` ones (derivatives in w are its
        Taylor coefficients).  Must not close over traced values: pass them as
        parameters.

    Returns:
      ``F(a, *params)``: ``a`` real symmetric or complex Hermitian
      ``(..., n, n)`` (symmetrised, ``(a + a^H)/2``, and so is every direction)
      to ``(..., n, n)``.  Parameters: real arrays or numbers, the same for
      every matrix of a batch.

    NaN: derivatives of order p where f is not p times differentiable at an
    eigenvalue (within ~4 eps of the spectrum's scale), the value where f is
    NaN at one (e.g. ``sqrt`` of a negative eigenvalue).

    Raises:
      ValueError: ``a`` not ``(..., n, n)`` or empty; f does not map ``(n,)`` to ``(n,)``.
      TypeError: f not callable; a parameter not real; f closes over a traced value.

    Example:
      >>> import jax, jax.numpy as jnp, jaxsvd
      >>> F = jaxsvd.hermitian.matrix_function(jnp.exp)
      >>> a = jnp.eye(2)           # tied eigenvalues: DF[H] = e H
      >>> jax.jvp(F, (a,), (jnp.array([[0.0, 1.0], [1.0, 0.0]]),))[1]
      Array([[0.       , 2.7182817],
             [2.7182817, 0.       ]], dtype=float32)
    """
    if not callable(f):
        raise TypeError(f"f must be callable, got {f!r}")
    name = getattr(f, "__name__", "f")

    def g(s, c, *params):  # on the shifted spectrum s = w + c
        return f(s - c, *params)

    g.__name__ = name
    specs = {}

    def F(a, *params):
        a = _checked(a)
        b, factors, c = shifted(a)
        return apply_general(g, name, specs, b, params, factors, batched=(c[..., 0],))

    F.__name__ = F.__qualname__ = f"matrix_function({name})"
    return F


_SQRT = matrix_function(jnp.sqrt)
_LOG = matrix_function(jnp.log)
_EXP = matrix_function(jnp.exp)


def _power(w, p):
    return jnp.power(w, p)


_POW = matrix_function(_power)


def sqrtm(a):
    r"""Principal square root ``Q diag(sqrt(w)) Q^H`` of a positive semidefinite ``a``.

    Derivatives exact through ties (first order ``[DF[H]]_ij = H_ij / (sqrt w_i +
    sqrt w_j)`` in the eigenbasis); NaN derivatives at a zero eigenvalue (sqrt is
    not differentiable there), NaN value for a negative eigenvalue.  See
    :func:`matrix_function`.

    Example:
      >>> import jax.numpy as jnp, jaxsvd
      >>> jaxsvd.hermitian.sqrtm(jnp.diag(jnp.array([4.0, 9.0])))
      Array([[2., 0.],
             [0., 3.]], dtype=float32)
    """
    return _SQRT(a)


def logm(a):
    r"""Principal logarithm ``Q diag(log w) Q^H`` of a positive definite ``a``
    (NaN value for a negative eigenvalue, ``-inf`` entries and NaN derivatives
    at a zero one).  See :func:`matrix_function`."""
    return _LOG(a)


def expm(a):
    r"""Exponential ``Q diag(exp w) Q^H`` of a Hermitian ``a``, every derivative
    exact through ties (e.g. ``DF[H] = e^c H`` at ``a = cI``).  See :func:`matrix_function`."""
    return _EXP(a)


def powm(a, p):
    r"""Power ``Q diag(w**p) Q^H`` (``p`` a real number or scalar array, traced and
    differentiable; NaN where ``w**p`` is, e.g. a negative eigenvalue with a
    non-integer p, and NaN derivatives where it is not differentiable).  See
    :func:`matrix_function`."""
    return _POW(a, p)


def logdet(a):
    r"""``log det a = sum log w`` of a positive definite ``a``, shape ``(...)``:
    ``tr logm(a)``, so every derivative (gradient ``a^{-1}``, Hessian, ``jet``)
    is exact through ties.  NaN for a negative eigenvalue, ``-inf`` at a zero one.

    Example:
      >>> import jax, jax.numpy as jnp, jaxsvd
      >>> jax.grad(jaxsvd.hermitian.logdet)(2.0 * jnp.eye(2))
      Array([[0.5, 0. ],
             [0. , 0.5]], dtype=float32)
    """
    return jnp.real(jnp.trace(logm(a), axis1=-2, axis2=-1))


def spectral_function(f):
    r"""Turn a permutation-symmetric function of the eigenvalues into ``F(a, *params) = f(eigvalsh(a), *params)``.

    Gradient ``Q diag(grad f(w)) Q^H`` and Hessian from the Lewis--Sendov
    divided differences with their limits at ties (exact at ``cI``, rotated
    ties and near ties), through :func:`jaxsvd.spectral_function` on
    ``a + cI`` (docs/spectral.md, docs/hermitian.md).  Third and higher
    derivatives are exact where the eigenvalues are simple, NaN where they tie;
    for ``f = sum_i h(w_i)`` use ``trace(matrix_function(h)(a))``, exact to any
    order (as :func:`logdet` does).

    Args:
      f: ``f(w, *params)``, ``(n,)`` ascending eigenvalues to a real scalar.

    Returns:
      ``F(a, *params)`` for ``a`` ``(..., n, n)``, shape ``(...)``.

    Example:
      >>> import jax, jax.numpy as jnp, jaxsvd
      >>> F = jaxsvd.hermitian.spectral_function(lambda w: jnp.max(w) ** 2 + jnp.sum(w ** 2))
      >>> bool(jnp.all(jnp.isfinite(jax.hessian(F)(jnp.diag(jnp.array([1.0, 1.0, 3.0]))))))
      True
    """
    if not callable(f):
        raise TypeError(f"f must be callable, got {f!r}")
    name = getattr(f, "__name__", "f")

    def g(s, c, *params):  # s = w[::-1] + c descending
        return f(s[::-1] - c, *params)

    g.__name__ = name
    sf = _svd_spectral_function(g)

    def one(b, c, *params):
        return sf(b, c, *params)

    def F(a, *params):
        a = _checked(a)
        b, _, c = shifted(a)
        fn = one
        for _ in a.shape[:-2]:
            fn = jax.vmap(fn, in_axes=(0, 0) + (None,) * len(params))
        return fn(b, c[..., 0], *params)

    F.__name__ = F.__qualname__ = f"spectral_function({name})"
    return F


# ---------------------------------------------------------------------------
# projectors
# ---------------------------------------------------------------------------


def projector(a, k: int, which: str = "SA"):
    r"""Orthogonal projector onto the eigenspace of the k smallest (``"SA"``) or
    largest (``"LA"``) eigenvalues, ``(..., n, n)``.

    ``P = Q_k Q_k^H`` (e.g. the density matrix of k occupied orbitals).
    Differentiable iff the cut is a gap (``w_k < w_(k+1)`` for ``"SA"``),
    whatever ties lie on either side: every derivative, to any order, is exact
    there (first order ``dP = sum_{i in, j out} Q_i Q_i^H H Q_j Q_j^H / (w_i - w_j) + h.c.``),
    and NaN with a tie at the cut.  ``k = n`` gives the identity.

    Args:
      a: Hermitian ``(..., n, n)``; k: static int, ``1 <= k <= n``;
      which: ``"SA"`` or ``"LA"``.

    Example:
      >>> import jax.numpy as jnp, jaxsvd
      >>> jaxsvd.hermitian.projector(jnp.diag(jnp.array([3.0, 1.0, 2.0])), 1)
      Array([[0., 0., 0.],
             [0., 1., 0.],
             [0., 0., 0.]], dtype=float32)
    """
    if which not in ("SA", "LA"):
        raise ValueError(f"which must be 'SA' (smallest) or 'LA' (largest), got {which!r}")
    a = _checked(a)
    n = a.shape[-1]
    k = static_int(k, "k")
    if not 1 <= k <= n:
        raise ValueError(f"k={k} must satisfy 1 <= k <= n = {n}")
    b, factors, _ = shifted(a, descending=(which == "LA"))
    return left_projector(b, k, factors)


# ---------------------------------------------------------------------------
# eigenvalue derivatives and gaps
# ---------------------------------------------------------------------------


def derivatives(a, h, order: int):
    r"""Directional derivatives of the eigenvalues up to ``order``, ``(order + 1, ..., n)``.

    Row j is ``D^j w(a)[h, ..., h]``, the j-th derivative of
    ``t -> eigvalsh(a + t h)`` at 0 (row 0 = ``eigvalsh(a)``), from one pass of
    the Taylor-mode rule (cost ~ order**2 products).  ``h`` is symmetrised.
    Rows j >= 2 are NaN for eigenvalues that tie with another (they do not
    exist as derivatives of the sorted eigenvalues).

    Example:
      >>> import jax.numpy as jnp, jaxsvd
      >>> a = jnp.diag(jnp.array([1.0, 2.0]))
      >>> h = jnp.array([[0.0, 1.0], [1.0, 0.0]])
      >>> jaxsvd.hermitian.derivatives(a, h, 2)[:, 0]   # w_1(t) = 1 - t^2 + ...
      Array([ 1.,  0., -2.], dtype=float32)
    """
    a = _checked(a)
    h = hermitian_part(as_square(h, "h"))
    if h.shape != a.shape:
        raise ValueError(f"direction h must have the shape of a {a.shape}; got {h.shape}")
    order = static_int(order, "order", low=0)  # as jaxsvd.derivatives
    if a.dtype != h.dtype:
        dtype = np.promote_types(a.dtype, h.dtype)
        a, h = a.astype(dtype), h.astype(dtype)
    if order == 0:
        return eigvalsh(a)[None]
    s, q, c = shifted_basis(a)
    ser = svd_series(s, q, q, [h], num_orders=order, vectors=False)
    scale = np.array([math.factorial(j) for j in range(order + 1)], dtype=s.dtype)
    rows = jnp.stack([s - c] + list(ser.s))[..., ::-1]
    return rows * scale.reshape((order + 1,) + (1,) * (s.ndim))


def branches(a, h, order: int):
    r"""Analytic (Rellich) eigenvalue branches along ``a + x h``, ``(order + 1, ..., n)``.

    Row j is the j-th derivative at x = 0 of each analytic branch (row 0 =
    ``eigvalsh(a)``); it equals :func:`derivatives` where the eigenvalues are
    simple.  Through ties the branches exist where the sorted eigenvalues do not
    (degenerate perturbation theory, as many reduction levels as the path
    needs): :func:`jaxsvd.branches` on ``a + cI`` (docs/branches.md).  Ordering:
    like ``eigvalsh`` at x = 0, tied branches by their derivatives, ascending,
    first order first (the order of the sorted eigenvalues for small x > 0).
    Near ties within ``sqrt(eps)`` of the shifted spectrum are merged.  Real
    input only; ``h`` is symmetrised.

    Example:
      >>> import jax.numpy as jnp, jaxsvd
      >>> h = jnp.array([[1.0, 2.0], [2.0, -1.0]])
      >>> b = jaxsvd.hermitian.branches(jnp.eye(2), h, 1)  # 1 -+ sqrt(5) x
      >>> [round(float(x), 4) for x in b[1]]
      [-2.2361, 2.2361]
    """
    a = _checked(a)
    h = hermitian_part(as_square(h, "h"))
    if h.shape != a.shape:
        raise ValueError(f"direction h must have the shape of a {a.shape}; got {h.shape}")
    if a.dtype != h.dtype:  # promote (a complex h must not lose its imaginary part)
        dtype = np.promote_types(a.dtype, h.dtype)
        a, h = a.astype(dtype), h.astype(dtype)
    b, _, c = shifted(a)
    rows = _svd_branches(b, h, order)[..., ::-1]
    return rows.at[0].add(-c)


def gaps(a):
    r"""Relative eigenvalue gaps, ``(..., n)``: the distance of each eigenvalue to
    the nearest other, divided by ``max |w|`` (inf for n = 1, NaN for the zero
    matrix).  The j-th derivative of ``w_k`` scales like ``gap**-(j-1)``; 0
    means ``w_k`` ties (not differentiable beyond first order).

    Example:
      >>> import jax.numpy as jnp, jaxsvd
      >>> jaxsvd.hermitian.gaps(jnp.diag(jnp.array([-1.0, 1.0, 2.0])))
      Array([1. , 0.5, 0.5], dtype=float32)
    """
    w = eigvalsh(_checked(a))
    n = w.shape[-1]
    d = jnp.abs(w[..., :, None] - w[..., None, :])
    d = jnp.where(jnp.eye(n, dtype=bool), jnp.inf, d)
    return jnp.min(d, axis=-1) / jnp.max(jnp.abs(w), axis=-1, keepdims=True)



# ---------------------------------------------------------------------------
# fidelity and the generalized problem
# ---------------------------------------------------------------------------


def _sqrt_psd(w):
    return jnp.sqrt(jnp.where(w > 0, w, jnp.zeros_like(w)))


_SQRT_PSD = matrix_function(_sqrt_psd)


def fidelity(rho, sigma):
    r"""Uhlmann fidelity ``(tr sqrt(sqrt(rho) sigma sqrt(rho)))**2`` of density matrices, ``(...)``.

    Both square roots are :func:`matrix_function` square roots, so ``grad``,
    ``hessian`` and ``jet`` are exact at degenerate states (the maximally mixed
    state included), where an eigh-route square root is NaN or wrong.
    Rank deficiency: eigenvalues are clipped at 0 (rounding below 0 is not a
    NaN), the value is exact, and derivatives are NaN wherever a square root
    meets a zero eigenvalue (sqrt is not differentiable there), e.g. at pure
    states.

    Args:
      rho, sigma: Hermitian positive semidefinite ``(..., n, n)``, trace 1 (not checked).

    Example:
      >>> import jax.numpy as jnp, jaxsvd
      >>> rho = jnp.eye(2) / 2
      >>> round(float(jaxsvd.hermitian.fidelity(rho, jnp.diag(jnp.array([0.9, 0.1])))), 4)  # (sum sqrt(p q))**2
      0.8
    """
    rho, sigma = _checked(rho, "rho"), _checked(sigma, "sigma")
    if sigma.shape != rho.shape:
        raise ValueError(f"rho and sigma must have the same shape; got {rho.shape} and {sigma.shape}")
    if rho.dtype != sigma.dtype:  # both square roots in the common precision
        dtype = np.promote_types(rho.dtype, sigma.dtype)
        rho, sigma = rho.astype(dtype), sigma.astype(dtype)
    r = _SQRT_PSD(rho)
    t = jnp.real(jnp.trace(_SQRT_PSD(r @ sigma @ r), axis1=-2, axis2=-1))
    return t * t


def eigh_generalized(a, b):
    r"""Generalized Hermitian eigenproblem ``a x = w b x`` with ``b`` positive definite
    (scipy's ``eigh(a, b)``): ``(w, x)``, ``w`` ascending ``(..., n)``, ``x``
    ``(..., n, n)`` with ``x^H b x = I``.

    By Cholesky reduction: ``b = L L^H``, ``C = L^{-1} a L^{-H}``,
    ``C = Y diag(w) Y^H`` (:func:`jaxsvd.eigh`), ``x = L^{-H} Y``.  ``jvp``,
    ``grad`` and ``hessian`` compose (through JAX's Cholesky and triangular
    solves; ``jet`` does not: JAX's Cholesky has no Taylor rule); the eigh step
    follows :func:`jaxsvd.eigh`'s degeneracy policy.  A ``b`` that is not
    positive definite gives NaN.

    Example:
      >>> import jax.numpy as jnp, jaxsvd
      >>> w, x = jaxsvd.hermitian.eigh_generalized(jnp.diag(jnp.array([2.0, 6.0])), 4.0 * jnp.eye(2))
      >>> w
      Array([0.5, 1.5], dtype=float32)
    """
    a = _checked(a)
    b = _checked(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape; got {a.shape} and {b.shape}")
    if a.dtype != b.dtype:
        dtype = np.promote_types(a.dtype, b.dtype)
        a, b = a.astype(dtype), b.astype(dtype)
    low = jnp.linalg.cholesky(b)
    tri = jax.scipy.linalg.solve_triangular
    y = tri(low, a, lower=True)  # L^-1 a
    c = mH(tri(low, mH(y), lower=True))  # L^-1 a L^-H
    w, v = eigh(c)
    return w, tri(low, v, lower=True, trans="C")
