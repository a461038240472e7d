"""Hermitian eigenproblems: matrix functions, projectors, spectral functions and
eigenvalue derivatives, exact through tied eigenvalues to any order.

``matrix_function(f)`` turns an elementwise f into ``F(a) = Q diag(f(w)) Q^H``
(Daleckii--Krein divided differences and their confluent limits, every order,
``jet`` included); ``sqrtm``, ``logm``, ``expm``, ``powm`` and ``logdet`` are
built on it; ``projector(a, k, which)`` is the spectral projector onto k
extreme eigenvalues; ``spectral_function(f)`` is ``f(eigvalsh(a))``;
``derivatives``, ``branches`` and ``gaps`` describe the eigenvalues themselves;
``fidelity`` is Uhlmann's, ``eigh_generalized`` solves ``a x = w b x``.
``jaxsvd.eigh`` / ``jaxsvd.eigvalsh`` are the drop-ins for ``jnp.linalg``.
See docs/hermitian.md and ``jaxsvd/_hermitian.py``.
"""

from ._hermitian import branches as branches
from ._hermitian import derivatives as derivatives
from ._hermitian import eigh_generalized as eigh_generalized
from ._hermitian import expm as expm
from ._hermitian import fidelity as fidelity
from ._hermitian import gaps as gaps
from ._hermitian import logdet as logdet
from ._hermitian import logm as logm
from ._hermitian import matrix_function as matrix_function
from ._hermitian import powm as powm
from ._hermitian import projector as projector
from ._hermitian import spectral_function as spectral_function
from ._hermitian import sqrtm as sqrtm

__all__ = ["branches", "derivatives", "eigh_generalized", "expm", "fidelity", "gaps", "logdet", "logm",
           "matrix_function", "powm", "projector", "spectral_function", "sqrtm"]
