"""Monte Carlo sensitivity of singular values over random-matrix ensembles.

``sample`` draws matrices from an ensemble; ``sensitivity`` computes, for each
sample, the derivatives of orders 0..order of all singular values along a
random (or fixed) direction -- batched with ``vmap``, in chunks of bounded
memory, optionally sharded over the devices of a ``jax.sharding.Mesh`` -- and
returns a :class:`SensitivityResult` with statistics, ``.save``/``.load`` and
``.plot``.  See ``jaxsvd/_montecarlo.py`` for the implementation.
"""

from ._montecarlo import DIRECTIONS as DIRECTIONS
from ._montecarlo import ENSEMBLES as ENSEMBLES
from ._montecarlo import QUANTILE_LEVELS as QUANTILE_LEVELS
from ._montecarlo import SensitivityResult as SensitivityResult
from ._montecarlo import sample as sample
from ._montecarlo import sensitivity as sensitivity

__all__ = ["DIRECTIONS", "ENSEMBLES", "QUANTILE_LEVELS", "SensitivityResult", "sample", "sensitivity"]
