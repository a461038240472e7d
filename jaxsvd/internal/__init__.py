"""Semi-public internals: the primitives and the perturbation-series engine.

No stability promise: names and signatures here may change in any release.
"""

from .._eigh import eigh_p as eigh_p
from .._gauge import GAUGE_CHECK_ULPS as GAUGE_CHECK_ULPS
from .._gauge import gauge_check_rtol as gauge_check_rtol
from .._gauge import gauge_mask as gauge_mask
from .._gauge import gauge_mask_p as gauge_mask_p
from .._nanmask import nan_unless as nan_unless
from .._nanmask import nan_unless_p as nan_unless_p
from .._series import SVDSeries as SVDSeries
from .._series import svd_series as svd_series
from .._spectral import spectral_grad_p as spectral_grad_p
from .._spectral import spectral_value_p as spectral_value_p
from .._spectrum import DEGENERACY_ULPS as DEGENERACY_ULPS
from .._spectrum import cluster_ids as cluster_ids
from .._spectrum import degeneracy_tol as degeneracy_tol
from .._spectrum import degenerate as degenerate
from .._spectrum import near_cluster_ids as near_cluster_ids
from .._spectrum import near_tie_rtol as near_tie_rtol
from .._spectrum import pair_structure as pair_structure
from .._spectrum import spectral_pairs as spectral_pairs
from .._spectrum import tie_merge_rtol as tie_merge_rtol
from .._svd import svd_p as svd_p
from .._ties import tie_p as tie_p
from .._triplet import triplet_p as triplet_p
