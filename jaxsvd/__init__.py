"""jaxsvd: derivatives of singular values and vectors, to any order, in JAX.

The public API is re-exported here; implementation lives in private modules.
Semi-public internals (the primitives and the series engine) are in
``jaxsvd.internal`` and carry no stability promise.
"""

from importlib.metadata import PackageNotFoundError, version

from . import _jet_control as _jet_control  # noqa: F401 - jet rules for scan/while/cond/remat
from . import hermitian as hermitian
from . import montecarlo as montecarlo
from ._branches import branches as branches
from ._closed_forms import hessian as hessian
from ._closed_forms import hvp as hvp
from ._closed_forms import jacobian as jacobian
from ._derivatives import derivatives as derivatives
from ._eigh import eigh as eigh
from ._eigh import eigvalsh as eigvalsh
from ._spectral import ky_fan_norm as ky_fan_norm
from ._spectral import nuclear_norm as nuclear_norm
from ._spectral import schatten_norm as schatten_norm
from ._spectral import spectral_function as spectral_function
from ._spectral import spectral_norm as spectral_norm
from ._split import truncated_split as truncated_split
from ._svd import gaps as gaps
from ._svd import svd as svd
from ._svd import svdvals as svdvals
from ._svds import SvdsInfo as SvdsInfo
from ._svds import svds as svds
from ._svds import svds_with_info as svds_with_info
from ._ties import generalized_matrix_function as generalized_matrix_function
from ._ties import polar as polar
from ._ties import projectors as projectors
from ._ties import truncate as truncate
from ._triplet import singular_triplet as singular_triplet

try:
    __version__ = version("jaxsvd")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

__all__ = [
    "branches", "derivatives", "eigh", "eigvalsh", "gaps", "generalized_matrix_function", "hermitian", "hessian",
    "hvp", "jacobian", "ky_fan_norm",
    "montecarlo", "nuclear_norm", "polar", "projectors", "schatten_norm", "singular_triplet",
    "spectral_function", "spectral_norm", "svd", "svds", "svds_with_info", "SvdsInfo",
    "svdvals", "truncate", "truncated_split",
]
