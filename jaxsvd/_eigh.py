"""The Hermitian eigendecomposition primitive and its rules: primal, first order
(JVP), Taylor mode, registration -- in that order -- plus the public ``eigh``
and ``eigvalsh``.

``eigh_p(a; lower, vectors, masked)`` returns ``(w, Q)`` (or ``(w,)``), ``w``
ascending, like ``lax.linalg.eigh``'s primitive (values first).

Mathematics (docs/hermitian.md).  For Hermitian A with eigenvalues lambda and
c = 2 max |lambda| (1 for A = 0), A + cI is positive definite and its SVD *is*
its eigendecomposition: s = lambda + c (descending), U = V = Q (columns
reversed).  On that SVD the series engine (jaxsvd/_series.py) is the
Rayleigh--Schroedinger recursion of the Hermitian eigenproblem: for Hermitian
terms A_j and U = V the two sides coincide, F = G = Q^H E_n Q, so the sum part
(beta - alpha, the reciprocals 1/(s_i + s_j)) vanishes identically and what is
left is

    Q_n = Q alpha_n,   alpha_ij = -F_ij / (lambda_i - lambda_j)   (different clusters)
                       alpha_ij = -C_ij / 2                       (same cluster, i = j)
    Lambda_n = cluster blocks of F + [Lambda_0, alpha_n]

with C_n = sum_{a=1..n-1} Q_a^H Q_(n-a).  The shift enters no derivative
(d(A + cI) = dA, (s_i - s_j) = lambda_i - lambda_j; c is a constant), so the
engine's cluster structure, its NaN policy and the reverse-mode cotangent check
(jaxsvd/_gauge.py) carry over unchanged: one mechanism.  The gauge is JAX's,
diag(Q^H dQ) = 0, at every order (parallel transport: what nested ``jvp`` of
JAX's rule differentiates), with no rotation inside a cluster of tied
eigenvalues.

Ties: eigenvalues count as tied within the engine's tolerance on the shifted
spectrum, ``4 n eps (lambda_max + 2 max|lambda|)`` (_spectrum.degeneracy_tol).
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from . import _compat
from ._gauge import gauge_mask
from ._series import mH, svd_series
from ._svd import as_matrix, first_order_values, real_dtype

# ---------------------------------------------------------------------------
# input checking
# ---------------------------------------------------------------------------


def as_square(a, name: str = "a"):
    """Validate ``a`` (..., n, n) like :func:`jaxsvd._svd.as_matrix`, and square."""
    a = as_matrix(a, name, what="Hermitian eigensolver", like="jnp.linalg.eigh")
    if a.shape[-1] != a.shape[-2]:
        raise ValueError(f"{name} must be square (..., n, n) (Hermitian); got shape {a.shape}")
    return a


def hermitian_part(x):
    """(x + x^H) / 2: how inputs and directions are symmetrised (jnp's ``symmetrize_input``)."""
    return 0.5 * (x + mH(x))


def _lower(UPLO) -> bool:
    if UPLO is None or UPLO == "L":
        return True
    if UPLO == "U":
        return False
    raise ValueError(f"UPLO must be one of None, 'L', or 'U', got {UPLO}")


# ---------------------------------------------------------------------------
# primal
# ---------------------------------------------------------------------------
# ``masked`` as for svd_p (jaxsvd/_svd.py): the public primitive (True) returns NaN
# for derivatives that do not exist; the internal one (False) is the smooth basis
# the rules are written in.  ``vectors``: return Q too (eigvalsh does not).

eigh_p = _compat.new_primitive("jaxsvd_eigh", multiple_results=True)


def lapack_eigh(a, lower: bool = True):
    """``lax.linalg.eigh`` (reading the ``lower`` triangle) with infinite entries
    replaced by NaN first (NaN in, NaN out: never a LAPACK hang).  Returns (w, Q)."""
    a = jnp.where(jnp.isinf(a), jnp.asarray(jnp.nan, a.dtype), a)
    q, w = lax.linalg.eigh(a, lower=lower, symmetrize_input=False)
    return w, q


def _eigh_impl(a, *, lower, vectors, masked):
    del masked
    w, q = lapack_eigh(a, lower)
    return [w, q] if vectors else [w]


def _eigh_abstract_eval(a, *, lower, vectors, masked):
    w = _compat.ShapedArray(a.shape[:-1], real_dtype(a.dtype))
    return (w, _compat.ShapedArray(a.shape, a.dtype)) if vectors else (w,)


def shift_of(w):
    """The constant c (..., 1) that makes A + cI positive definite: 2 max|lambda|
    (1 for the zero matrix; NaN for NaN input)."""
    big = lax.stop_gradient(jnp.max(jnp.abs(w), axis=-1, keepdims=True))
    return jnp.where(big > 0, 2 * big, jnp.ones_like(big))


def shifted_basis(a, lower: bool = True):
    """The smooth internal basis as the SVD of A + cI: (s, Q, c) with
    s = lambda[::-1] + c descending (..., n), Q's columns reversed, c (..., 1)."""
    w, q = eigh_p.bind(a, lower=lower, vectors=True, masked=False)
    c = shift_of(w)
    return w[..., ::-1] + c, q[..., ::-1], c


def _rev(x):
    return x[..., ::-1]


# ---------------------------------------------------------------------------
# first order: the engine at order 1 (linear in the tangent, so transposable)
# ---------------------------------------------------------------------------


def _eigh_jvp(primals, tangents, *, lower, vectors, masked):
    (a,), (da,) = primals, tangents
    out = eigh_p.bind(a, lower=lower, vectors=vectors, masked=masked)
    s, q, _ = shifted_basis(a, lower)
    da = hermitian_part(da)
    dw = first_order_values(s, q, q, da)  # Re q_k^H dA q_k, guarded like svd's
    if not vectors:
        return out, (_rev(dw),)
    if masked and not jnp.iscomplexobj(a):
        # NaN vectors at ties in forward mode; in reverse mode a cotangent invariant
        # under rotations inside each cluster passes (jaxsvd/_gauge.py).  U = V = Q:
        # dQ = (dU + dV)/2, whose transpose hands each side half of Q's cotangent.
        ser = svd_series(s, q, q, [da], mask=False)
        dw, du, dv = gauge_mask(dw, ser.u[0], ser.v[0], s, q, q)
        dq = 0.5 * (du + dv)
    else:
        dq = svd_series(s, q, q, [da], mask=masked).u[0]
    return out, (_rev(dw), _rev(dq))


# ---------------------------------------------------------------------------
# Taylor mode: the engine at order K (unscaled coefficients in and out)
# ---------------------------------------------------------------------------


def _eigh_taylor(primals_in, series_in, *, lower, vectors, masked):
    (a,), (terms,) = primals_in, series_in
    terms = [hermitian_part(jnp.broadcast_to(jnp.asarray(t, a.dtype), a.shape)) for t in terms]
    out = eigh_p.bind(a, lower=lower, vectors=vectors, masked=masked)
    s, q, _ = shifted_basis(a, lower)
    ser = svd_series(s, q, q, terms, vectors=vectors, mask=masked)
    ws = [_rev(x) for x in ser.s]
    if not vectors:
        return out, [ws]
    return out, [ws, [_rev(x) for x in ser.u]]


# ---------------------------------------------------------------------------
# registration
# ---------------------------------------------------------------------------

_compat.def_rules(eigh_p, impl=_eigh_impl, abstract=_eigh_abstract_eval,
                  static_argnames=("lower", "vectors", "masked"), jvp=_eigh_jvp, transpose=None,
                  taylor=_eigh_taylor, multiple_results=True, out_dims="leading")


# ---------------------------------------------------------------------------
# public functions
# ---------------------------------------------------------------------------


def _prepare(a, UPLO, symmetrize_input):
    lower = _lower(UPLO)
    a = as_square(a)
    if symmetrize_input:
        a = hermitian_part(a)
    else:
        # The Hermitian matrix the read triangle stands for: the same entries reach
        # LAPACK (same values), and a tangent in the ignored triangle now has no
        # effect, as on the function itself (finite differences agree).
        a = triangle_hermitian(a, lower)
    return a, lower


def triangle_hermitian(a, lower: bool):
    """The Hermitian matrix that ``a``'s lower (or upper) triangle stands for
    (the diagonal's real part): what LAPACK's eigh reads."""
    t = jnp.tril(a) if lower else jnp.triu(a)
    return hermitian_part(t + mH(jnp.tril(a, -1) if lower else jnp.triu(a, 1)))


def eigh(a, UPLO=None, symmetrize_input: bool = True):
    r"""Eigendecomposition of a Hermitian matrix, differentiable to any order.

    A drop-in for :func:`jax.numpy.linalg.eigh` (same signature, defaults, return
    type, values and signs/phases: both call LAPACK / cuSOLVER through
    ``lax.linalg.eigh``) whose derivative rules come from the perturbation series
    of jaxsvd's engine applied to ``a + cI`` (docs/hermitian.md): ``jax.jvp``,
    ``grad``, ``jacfwd``, ``jacrev``, ``hessian`` and Taylor mode (``jet``)
    compose with it to any order, under ``jit`` and ``vmap``.

    First order: ``dw_k = Re q_k^H dA q_k``, ``dQ = Q (F o Q^H dA Q)`` with
    ``F_ij = 1/(w_j - w_i)`` (JAX's rule); every order continues it.

    Derivative gauge: ``diag(Q^H dQ) = 0`` (JAX's), at every order.  A tangent
    is symmetrised, ``dA -> (dA + dA^H)/2``.  With ``symmetrize_input=False``
    the derivative is that of the Hermitian matrix the read triangle (``UPLO``)
    stands for: a tangent in the other triangle has no effect, as on the values.

    Degeneracy (as :func:`jaxsvd.svd`): where ``w_k`` ties with another
    eigenvalue (within ``4 n eps (w_max + 2 max|w|)``), the derivatives that do
    not exist -- those of ``q_k`` and of ``w_k`` beyond the first order -- are
    NaN; every other coefficient stays exact.  Reverse mode of a real loss that
    is invariant under rotations of the eigenvectors inside each cluster
    (``Q_c Q_c^H``, ``||Q diag(w) Q^H||_F``, a projector at a gap) is exact there
    too (the cotangent is checked for that invariance; NaN if it fails;
    complex input: NaN).  A linear read-out of a matrix function,
    ``sum(T * Q diag(f(w)) Q^H)``, is NaN in reverse mode at ties, even for
    ``f(w) = w`` (its cotangent cannot be told from a non-invariant loss's,
    docs/degeneracy.md): use :func:`jaxsvd.hermitian.matrix_function`, exact there.

    Args:
      a: real symmetric or complex Hermitian array ``(..., n, n)``
        (float32/64, complex64/128; integers are promoted).
      UPLO: ``None`` or ``"L"`` (lower triangle), ``"U"``; used only when
        ``symmetrize_input`` is False.
      symmetrize_input: use ``(a + a^H)/2`` (default, like jnp).

    Returns:
      ``EighResult(eigenvalues, eigenvectors)``: ``(..., n)`` ascending (real),
      ``(..., n, n)`` columns.

    Raises:
      ValueError: ``a`` is not ``(..., n, n)``; a bad ``UPLO``.
      TypeError: float16/bfloat16 input.

    Example:
      >>> import jax, jax.numpy as jnp, jaxsvd
      >>> a = jnp.diag(jnp.array([1.0, 2.0]))
      >>> jax.jacfwd(lambda a: jaxsvd.eigh(a).eigenvalues)(a)[1]
      Array([[0., 0.],
             [0., 1.]], dtype=float32)
    """
    a, lower = _prepare(a, UPLO, symmetrize_input)
    if a.shape[-1] == 0:
        w, q = lapack_eigh(lax.stop_gradient(a), lower)
        return _compat.EighResult(w, q)
    w, q = eigh_p.bind(a, lower=lower, vectors=True, masked=True)
    return _compat.EighResult(w, q)


def eigvalsh(a, UPLO=None, *, symmetrize_input: bool = True):
    r"""Eigenvalues of a Hermitian matrix, ascending ``(..., n)``.

    A drop-in for :func:`jax.numpy.linalg.eigvalsh`, differentiable to any order
    like :func:`eigh`; ``dw_k = Re q_k^H dA q_k``.  Derivatives of order >= 2 of
    an eigenvalue that ties with another are NaN (they do not exist: use
    :func:`jaxsvd.hermitian.branches` along a line, or symmetric functions).

    Example:
      >>> import jax.numpy as jnp, jaxsvd
      >>> jaxsvd.eigvalsh(jnp.array([[2.0, 1.0], [1.0, 2.0]]))
      Array([1., 3.], dtype=float32)
    """
    a, lower = _prepare(a, UPLO, symmetrize_input)
    if a.shape[-1] == 0:
        return lapack_eigh(lax.stop_gradient(a), lower)[0]
    return eigh_p.bind(a, lower=lower, vectors=False, masked=True)[0]
