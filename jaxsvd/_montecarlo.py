"""Monte Carlo sensitivity of singular values over random-matrix ensembles.

For ``i = 0 .. num-1`` a matrix ``A_i`` is drawn from an ensemble and a
direction ``H_i`` from a direction distribution (or fixed), and the
derivatives ``D^j sigma(A_i)[H_i, ..., H_i]``, ``j = 0 .. order``, of all
singular values are computed in one Taylor-mode pass
(:func:`jaxsvd.derivatives`, the series engine at order ``order``).

Reproducibility.  Sample ``i`` depends only on ``(key, i)``: its key is
``fold_in(key, i)``, from which the matrix key ``fold_in(k_i, 0)`` and the
direction key ``fold_in(k_i, 1)`` are derived.  Keys are never split per
chunk, and ``A_i``, ``H_i`` can be regenerated at any time from the key
(``SensitivityResult.matrices`` / ``.directions``) instead of being stored.
The derivatives are computed ``_inner_size(shape)`` samples at a time (one
vmapped step of a ``lax.map``; the step size depends on the shape only, and keeps
one batched LAPACK SVD of the step under jaxlib's inline bound, which a
multi-device CPU mesh needs: see ``_LAPACK_INLINE_FLOPS``), so
the compiled arithmetic a sample goes through is the same whatever
``batch_size``, ``num`` or the mesh: the numbers are bitwise the same on a given
backend and device kind.  (Vectorising over the whole chunk instead lets XLA
pick other kernels per chunk size: 12 x 20 matrices at order 3 then differed
by up to 1.7e-12 relative between ``batch_size`` 1, 7 and 40 on CPU.)

Execution.  Samples are processed in chunks of ``batch_size`` by one jitted
chunk function (compiled once: the last chunk is computed at full size and
the padding dropped).  With a ``jax.sharding.Mesh`` the chunk's sample
indices are sharded over all the mesh's devices (its axes flattened into one,
in the mesh's device order) and the chunk function runs under
``jax.shard_map``, so each device generates and differentiates its own slice.
The chunk is rounded up to a multiple of the inner step times the device
count.  Only one chunk's matrices exist at a time (two with the pipelining of
host transfer), so memory is bounded by ``batch_size`` (or the inner step, if
larger) whatever ``num`` is; the results themselves, ``(num, order+1, r)``
floats, are kept on the host.
"""

from __future__ import annotations

import os
import warnings
from functools import cached_property, partial
from typing import Optional, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ._checkpoint import ChunkStore, array_digest
from ._derivatives import derivatives as _derivatives
from ._progress import progress_bar
from ._series import mm, mT
from ._svd import static_int

ENSEMBLES = ("gaussian", "uniform", "wishart", "orthogonal")
DIRECTIONS = ("gaussian", "uniform")
QUANTILE_LEVELS = (0.05, 0.25, 0.5, 0.75, 0.95)
_DEFAULT_BATCH = 1024
_FORMAT_VERSION = 1

# ---------------------------------------------------------------------------
# argument checking
# ---------------------------------------------------------------------------


def _check_key(key):
    """A typed PRNG key (jax.random.key) or a raw uint32 key (jax.random.PRNGKey)."""
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        raise TypeError(f"key must be a JAX PRNG key (jax.random.key(seed)), got the int {key!r}")
    try:
        arr = jnp.asarray(key) if not isinstance(key, jax.Array) else key
    except TypeError as e:
        raise TypeError(f"key must be a JAX PRNG key (jax.random.key(seed)), got {type(key).__name__}") from e
    if jax.dtypes.issubdtype(arr.dtype, jax.dtypes.prng_key):
        if arr.shape != ():
            raise ValueError(f"key must be a single PRNG key, got a key array of shape {arr.shape}")
        return arr
    if arr.dtype == jnp.uint32 and arr.ndim == 1:
        try:
            return jax.random.wrap_key_data(arr)
        except (TypeError, ValueError) as e:
            raise ValueError(f"key must be a single PRNG key; got a uint32 array of shape {arr.shape}") from e
    raise TypeError(
        f"key must be a JAX PRNG key (jax.random.key(seed) or jax.random.PRNGKey(seed)), "
        f"got an array of dtype {arr.dtype} and shape {arr.shape}")


def _check_int(value, name: str, minimum: int) -> int:
    return static_int(value, name, low=minimum)


def _check_shape(shape) -> tuple[int, int]:
    try:
        shape = tuple(shape)
    except TypeError:
        raise ValueError(f"shape must be a pair (m, n) of positive ints, got {shape!r}") from None
    if len(shape) != 2 or any(isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1
                              for d in shape):
        raise ValueError(f"shape must be a pair (m, n) of positive ints (one matrix; use num for "
                         f"the batch), got {shape!r}")
    return int(shape[0]), int(shape[1])


def _check_ensemble(ensemble) -> str:
    if not isinstance(ensemble, str) or ensemble not in ENSEMBLES:
        raise ValueError(f"unknown ensemble {ensemble!r}; choose one of {', '.join(ENSEMBLES)}")
    return ensemble


def _check_dtype(dtype):
    if dtype is None:
        return jax.dtypes.canonicalize_dtype(jnp.float64)
    dt = jnp.dtype(dtype)
    if not jnp.issubdtype(dt, jnp.floating) or dt.itemsize < 4:
        raise ValueError(f"dtype must be float32 or float64, got {dt}")
    canon = jax.dtypes.canonicalize_dtype(dt)
    if canon != dt:
        raise ValueError(f"dtype {dt} is not available: enable jax_enable_x64 or use {canon}")
    return dt


def _check_direction(direction, shape, dtype):
    """Returns (name, array-or-None): name is 'gaussian', 'uniform' or 'fixed'."""
    if isinstance(direction, str):
        if direction not in DIRECTIONS:
            raise ValueError(f"unknown direction {direction!r}; choose one of {', '.join(DIRECTIONS)} "
                             f"or pass a fixed array of shape {shape}")
        return direction, None
    try:
        h = np.asarray(direction)
    except Exception as e:  # noqa: BLE001 - anything unconvertible is a bad direction
        raise ValueError(f"direction must be a name or an array of shape {shape}") from e
    if h.shape != shape:
        raise ValueError(f"a fixed direction must have the matrix shape {shape}, got {h.shape}")
    if np.iscomplexobj(h) or not (np.issubdtype(h.dtype, np.floating) or np.issubdtype(h.dtype, np.integer)):
        raise ValueError(f"a fixed direction must be a real array, got dtype {h.dtype}")
    if not np.all(np.isfinite(h)):
        raise ValueError("a fixed direction must be finite")
    return "fixed", h.astype(dtype)


def _check_mesh(mesh):
    if mesh is None:
        return None
    if not isinstance(mesh, Mesh):
        raise TypeError(f"mesh must be a jax.sharding.Mesh or None, got {type(mesh).__name__}")
    return mesh


# ---------------------------------------------------------------------------
# ensembles: one sample from one key (vmapped over keys)
# ---------------------------------------------------------------------------


def _draw_matrix(key, ensemble: str, shape: tuple[int, int], dtype):
    """One matrix of the ensemble.

    * gaussian:   iid N(0, 1) entries.
    * uniform:    iid U[0, 1) entries.
    * wishart:    G1 @ G2 / sqrt(p), G1 (m, p), G2 (p, n) independent iid N(0, 1),
                  p = max(m, n): a product of two Gaussian factors (its Gram matrix
                  A A^T is a Wishart-type product matrix), full rank almost surely.
    * orthogonal: Haar on the Stiefel manifold: Q from the QR of an iid Gaussian
                  (max(m,n), min(m,n)) matrix, columns' signs fixed by diag(R) > 0;
                  transposed when m < n.  Orthonormal columns (m >= n) or rows (m < n);
                  all singular values are 1 (square: Haar orthogonal group).
    """
    m, n = shape
    if ensemble == "gaussian":
        return jax.random.normal(key, shape, dtype)
    if ensemble == "uniform":
        return jax.random.uniform(key, shape, dtype)
    if ensemble == "wishart":
        p = max(m, n)
        k1, k2 = jax.random.split(key)
        g1 = jax.random.normal(k1, (m, p), dtype)
        g2 = jax.random.normal(k2, (p, n), dtype)
        return mm(g1, g2) / jnp.sqrt(jnp.asarray(p, dtype))
    if ensemble == "orthogonal":
        big, small = max(m, n), min(m, n)
        q, r = jnp.linalg.qr(jax.random.normal(key, (big, small), dtype))
        d = jnp.diagonal(r)
        q = q * jnp.where(d < 0, -1, 1).astype(dtype)[None, :]
        return q if m >= n else mT(q)
    raise AssertionError(ensemble)  # pragma: no cover - checked before


def _draw_direction(key, direction: str, shape, dtype):
    if direction == "gaussian":
        return jax.random.normal(key, shape, dtype)
    return jax.random.uniform(key, shape, dtype)


def _sample_keys(key, idx):
    k = jax.vmap(lambda i: jax.random.fold_in(key, i))(idx)
    km = jax.vmap(lambda k: jax.random.fold_in(k, 0))(k)
    kd = jax.vmap(lambda k: jax.random.fold_in(k, 1))(k)
    return km, kd


def _matrices_local(key, idx, *, ensemble, shape, dtype):
    km, _ = _sample_keys(key, idx)
    return jax.vmap(lambda k: _draw_matrix(k, ensemble, shape, dtype))(km)


def _directions_local(key, idx, *, direction, shape, dtype):
    _, kd = _sample_keys(key, idx)
    return jax.vmap(lambda k: _draw_direction(k, direction, shape, dtype))(kd)


def _chunk_local(key, idx, fixed_h, *, ensemble, direction, shape, order, dtype):
    a = _matrices_local(key, idx, ensemble=ensemble, shape=shape, dtype=dtype)
    if direction == "fixed":
        h = jnp.broadcast_to(fixed_h, a.shape)
    else:
        h = _directions_local(key, idx, direction=direction, shape=shape, dtype=dtype)
    return _derivatives_in_steps(a, h, order)  # (B, order+1, r)


# jaxlib's CPU LAPACK kernels (jaxlib/cpu/lapack_kernels.cc, ``ParallelBatchMap``)
# split a batched SVD over XLA's intra-op thread pool when batch x 10 m n min(m, n)
# reaches 2e5 flops, and the pool thread that called the kernel then *blocks* until
# the pieces finish.  With a mesh of more CPU devices than pool threads, every pool
# thread ends up blocked in such a wait while the pieces sit in the queue behind
# them: a deadlock (all threads in futex_wait, CPU idle; measured: 4 virtual devices,
# 6 x 10, order 4).  Below the bound the kernel runs the batch inline on its thread.
_LAPACK_INLINE_FLOPS = 200_000


def _inner_size(shape) -> int:
    """Samples per vectorised step: a function of the shape only (1 .. 256,
    about 64k matrix entries per step, and few enough that one batched LAPACK SVD
    of the step runs inline: see ``_LAPACK_INLINE_FLOPS``), never of
    ``batch_size`` or the mesh."""
    m, n = shape
    inline = max(1, (_LAPACK_INLINE_FLOPS - 1) // (10 * m * n * min(m, n)))
    return max(1, min(256, 65536 // (m * n), inline))


def _derivatives_in_steps(a, h, order):
    # lax.map over fixed-size vmapped steps: each sample meets the same compiled
    # step whatever the chunk size (bitwise reproducibility, see the module docstring)
    b, step = a.shape[0], _inner_size(a.shape[1:])
    if b % step:
        raise AssertionError(f"chunk of {b} samples is not a multiple of the step {step}")
    split = lambda x: x.reshape((b // step, step) + x.shape[1:])  # noqa: E731
    out = jax.lax.map(lambda ah: jax.vmap(lambda a_, h_: _derivatives(a_, h_, order))(*ah), (split(a), split(h)))
    return out.reshape((b,) + out.shape[2:])


_STATIC = ("ensemble", "direction", "shape", "order", "dtype")


@partial(jax.jit, static_argnames=_STATIC)
def _chunk(key, idx, fixed_h, *, ensemble, direction, shape, order, dtype):
    return _chunk_local(key, idx, fixed_h, ensemble=ensemble, direction=direction, shape=shape,
                        order=order, dtype=dtype)


@partial(jax.jit, static_argnames=_STATIC + ("mesh",))
def _chunk_sharded(key, idx, fixed_h, *, ensemble, direction, shape, order, dtype, mesh):
    axis = mesh.axis_names[0]
    f = partial(_chunk_local, ensemble=ensemble, direction=direction, shape=shape, order=order,
                dtype=dtype)
    return jax.shard_map(f, mesh=mesh, in_specs=(PartitionSpec(), PartitionSpec(axis), PartitionSpec()),
                         out_specs=PartitionSpec(axis))(key, idx, fixed_h)


@partial(jax.jit, static_argnames=("ensemble", "shape", "dtype"))
def _matrices_chunk(key, idx, *, ensemble, shape, dtype):
    return _matrices_local(key, idx, ensemble=ensemble, shape=shape, dtype=dtype)


@partial(jax.jit, static_argnames=("direction", "shape", "dtype"))
def _directions_chunk(key, idx, *, direction, shape, dtype):
    return _directions_local(key, idx, direction=direction, shape=shape, dtype=dtype)


def _generate(fn, num: int, batch: int = _DEFAULT_BATCH) -> np.ndarray:
    """Concatenate fn(idx) over fixed-size index chunks (one compilation)."""
    batch = min(num, batch)
    out = None
    for start in range(0, num, batch):
        idx = jnp.arange(start, start + batch, dtype=jnp.uint32)
        part = np.asarray(fn(idx))
        if out is None:
            out = np.empty((num,) + part.shape[1:], part.dtype)
        stop = min(start + batch, num)
        out[start:stop] = part[: stop - start]
    return out


# ---------------------------------------------------------------------------
# public: sample
# ---------------------------------------------------------------------------


def sample(key, ensemble: str, shape, num: int, dtype=None):
    r"""Draw ``num`` random ``(m, n)`` matrices from an ensemble.

    Matrix ``i`` is drawn with the key ``fold_in(fold_in(key, i), 0)``, so the
    matrices are the ones :func:`sensitivity` uses with the same key, and matrix
    ``i`` does not depend on ``num``.

    Ensembles:

    * ``"gaussian"``: iid N(0, 1) entries (Ginibre).
    * ``"uniform"``: iid U[0, 1) entries.
    * ``"wishart"``: :math:`A = G_1 G_2 / \sqrt{p}` with independent iid N(0, 1)
      factors ``G1`` (m, p), ``G2`` (p, n), ``p = max(m, n)`` -- a product of
      Gaussian factors (``A A^T`` is a Wishart-type product matrix).
    * ``"orthogonal"``: Haar-distributed orthonormal columns (m >= n) or rows
      (m < n), from the QR of a Gaussian matrix with the signs of ``diag(R)``
      made positive; all singular values are 1 (for m == n: the Haar measure on
      O(n)).  Its singular values coincide, so their individual derivatives
      beyond first order do not exist: use it for order <= 1, or as a base
      point to perturb.

    Args:
      key: a JAX PRNG key (``jax.random.key(seed)`` or ``jax.random.PRNGKey(seed)``).
      ensemble: one of ``"gaussian"``, ``"uniform"``, ``"wishart"``, ``"orthogonal"``.
      shape: ``(m, n)``.
      num: number of matrices (>= 1).
      dtype: float32 or float64; default the default float type of JAX.

    Returns:
      array of shape ``(num, m, n)``.

    Example:
      >>> import jax, jaxsvd.montecarlo as mc
      >>> a = mc.sample(jax.random.key(0), "orthogonal", (3, 3), 2)
      >>> a.shape
      (2, 3, 3)
    """
    key = _check_key(key)
    ensemble = _check_ensemble(ensemble)
    shape = _check_shape(shape)
    num = _check_int(num, "num", 1)
    dtype = _check_dtype(dtype)
    fn = partial(_matrices_chunk, key, ensemble=ensemble, shape=shape, dtype=dtype)
    return jnp.asarray(_generate(fn, num))


# ---------------------------------------------------------------------------
# public: sensitivity
# ---------------------------------------------------------------------------


def sensitivity(key, shape, num: int, *, ensemble: str = "gaussian",
                direction: Union[str, np.ndarray, jax.Array] = "gaussian", order: int = 2,
                batch_size: Optional[int] = None, mesh: Optional[Mesh] = None, progress: bool = True,
                dtype=None, checkpoint=None) -> "SensitivityResult":
    r"""Derivatives of all singular values of random matrices along random directions.

    For each sample ``i``: ``A_i`` from ``ensemble`` (see :func:`sample`),
    ``H_i`` from ``direction``, and

    .. math:: D^j \sigma_k(A_i)[H_i, \dots, H_i]
              = \frac{d^j}{dt^j} \sigma_k(A_i + t H_i) \Big|_{t=0},\quad j = 0..\text{order},

    from one Taylor-mode pass of :func:`jaxsvd.derivatives` (cost ~ order**2
    matrix products, not 2**order), vmapped over chunks of ``batch_size``.

    Reproducible: sample ``i`` uses ``fold_in(key, i)`` (then ``fold_in(., 0)``
    for the matrix and ``fold_in(., 1)`` for the direction), and every sample is
    differentiated by the same compiled step (a fixed number of samples that
    depends on ``shape`` only), so on a given backend the numbers are bitwise the
    same whatever ``batch_size``, the mesh, or ``num`` (the first samples of a
    longer run are the same).  Other backends or device kinds round differently.

    Degeneracy: a derivative of order >= 2 of a singular value that is zero or
    coincides with another does not exist; :func:`jaxsvd.derivatives` reports it
    as NaN (this happens with probability 0 for the continuous ensembles, but
    always for ``"orthogonal"``, whose singular values are all 1).  The
    statistics of :class:`SensitivityResult` ignore NaN samples and count them.

    Args:
      key: a JAX PRNG key (``jax.random.key(seed)`` or ``jax.random.PRNGKey(seed)``).
      shape: ``(m, n)`` of each matrix.
      num: number of samples (>= 1).
      ensemble: ``"gaussian"``, ``"uniform"``, ``"wishart"`` or ``"orthogonal"``.
      direction: ``"gaussian"`` (iid N(0, 1)), ``"uniform"`` (iid U[0, 1)), or a
        fixed ``(m, n)`` array used for every sample.
      order: highest derivative order (>= 0).
      batch_size: samples per chunk (default 1024); memory scales with it, not
        with ``num``.  It is rounded up to a multiple of the inner step
        (``max(8, min(256, 65536 // (m n)))`` samples) times the number of devices
        of the mesh; a chunk larger than ``num`` is padded and the padding dropped.
      mesh: optional ``jax.sharding.Mesh`` of any rank; each chunk is sharded
        over all its devices (the mesh's axes flattened, ``NamedSharding``) and
        every device computes its slice.  The result is bitwise the same as
        without a mesh; ``num`` need not divide by the device count.
      progress: show a progress bar (rich, else tqdm) on stderr when it is a terminal.
      dtype: float32 or float64 (default: JAX's default float type).
      checkpoint: optional directory (str or path).  Every finished chunk is
        written there atomically (temporary file, fsync, rename) under a name
        carrying its SHA-256, after a ``manifest.json`` naming the run's
        arguments, the chunk size, the backend and the format version.  Called
        again with the same arguments and directory -- after a crash or
        ``kill -9`` at any point -- the run reads back the verified chunks,
        computes only the missing ones (the progress bar starts at the resumed
        count) and returns results bitwise equal to an uninterrupted run.  A
        torn or altered chunk file fails its hash and is recomputed, never read.
        Single process only for now.

    Returns:
      :class:`SensitivityResult` with ``derivatives`` of shape ``(num, order+1, r)``.

    Raises:
      ValueError: unknown ensemble or direction name, ``num`` or ``batch_size`` < 1,
        ``order`` < 0, ``shape`` not a pair of positive ints, a fixed direction
        of the wrong shape.
      TypeError: ``key`` is not a PRNG key, ``mesh`` is not a Mesh.
      ValueError: ``checkpoint`` holds another run (other arguments, chunk size,
        backend or jaxsvd version), or a manifest that is not jaxsvd's.
      OSError: ``checkpoint`` cannot be created or written.

    Example:
      >>> import jax, jaxsvd.montecarlo as mc
      >>> res = mc.sensitivity(jax.random.key(0), (3, 4), 10, order=2, progress=False)
      >>> res.derivatives.shape, res.mean.shape
      ((10, 3, 3), (3, 3))
    """
    key = _check_key(key)
    shape = _check_shape(shape)
    num = _check_int(num, "num", 1)
    ensemble = _check_ensemble(ensemble)
    order = _check_int(order, "order", 0)
    dtype = _check_dtype(dtype)
    dname, fixed = _check_direction(direction, shape, dtype)
    mesh = _check_mesh(mesh)
    batch = _DEFAULT_BATCH if batch_size is None else _check_int(batch_size, "batch_size", 1)
    m, n = shape
    r = min(m, n)

    fixed_h = jnp.asarray(fixed if fixed is not None else np.zeros((), dtype), dtype)
    static = dict(ensemble=ensemble, direction=dname, shape=shape, order=order, dtype=dtype)
    step = _inner_size(shape)
    if mesh is None:
        batch = -(-min(batch, num) // step) * step
        run_chunk = partial(_chunk, key, fixed_h=fixed_h, **static)
        place = lambda idx: idx  # noqa: E731
    else:
        mesh = Mesh(np.asarray(mesh.devices).reshape(-1), ("samples",))  # all axes, flattened
        axis = mesh.axis_names[0]
        ndev = mesh.shape[axis]
        batch = -(-min(batch, num) // (step * ndev)) * (step * ndev)
        idx_sharding = NamedSharding(mesh, PartitionSpec(axis))
        repl = NamedSharding(mesh, PartitionSpec())
        key = jax.device_put(key, repl)
        fixed_h = jax.device_put(fixed_h, repl)
        run_chunk = partial(_chunk_sharded, key, fixed_h=fixed_h, mesh=mesh, **static)
        place = lambda idx: jax.device_put(idx, idx_sharding)  # noqa: E731

    out = np.empty((num, order + 1, r), dtype)
    starts = list(range(0, num, batch))
    store = None
    if checkpoint is not None:
        store = ChunkStore(checkpoint, _run_identity(key, shape, num, ensemble, dname, fixed, order, dtype, batch),
                           (order + 1, r), dtype)
    resumed = 0
    todo = []
    for start in starts:
        stop = min(start + batch, num)
        old = store.load(start, stop - start) if store is not None else None
        if old is None:
            todo.append(start)
        else:
            out[start:stop] = old
            resumed += stop - start
    pending = None  # (start, device array): one chunk in flight while the next is dispatched

    def collect(item):
        start, arr = item
        stop = min(start + batch, num)
        out[start:stop] = np.asarray(arr)[: stop - start]
        if store is not None:
            store.save(start, out[start:stop])
        bar.advance(stop - start)

    desc = f"{ensemble} {m}x{n}, order {order}" + (f" (resumed {resumed})" if resumed else "")
    with progress_bar(num, desc, enabled=progress) as bar:
        if resumed:
            bar.advance(resumed)
        for start in todo:
            idx = place(jnp.arange(start, start + batch, dtype=jnp.uint32))
            item = (start, run_chunk(idx))
            if pending is not None:
                collect(pending)
            pending = item
        if pending is not None:
            collect(pending)

    return SensitivityResult(out, key=key, shape=shape, ensemble=ensemble, direction=dname,
                             fixed_direction=fixed, dtype=dtype)


def _run_identity(key, shape, num, ensemble, direction, fixed, order, dtype, batch) -> dict:
    """Everything that fixes a run's numbers and its chunk layout (the checkpoint manifest)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        ver = version("jaxsvd")
    except PackageNotFoundError:  # pragma: no cover - a source tree without metadata
        ver = "unknown"
    return {
        "key_data": np.asarray(jax.random.key_data(key)).tolist(),
        "key_impl": str(jax.random.key_impl(key)),
        "shape": list(shape), "num": int(num), "ensemble": ensemble, "direction": direction,
        "fixed_direction_sha256": None if fixed is None else array_digest(np.asarray(fixed)),
        "order": int(order), "dtype": str(np.dtype(dtype)), "chunk": int(batch),
        "backend": jax.default_backend(), "jaxsvd": ver,
    }


# ---------------------------------------------------------------------------
# the result
# ---------------------------------------------------------------------------


class SensitivityResult:
    r"""Per-sample derivatives of the singular values and their statistics.

    Attributes:
      derivatives: ``(num, order+1, r)`` numpy array; ``derivatives[i, j, k]`` is
        ``D^j sigma_k(A_i)[H_i, ..., H_i]`` (k = 0 is the largest singular value).
      key, shape, ensemble, direction, dtype: what regenerates the samples
        (``direction`` is the name or ``"fixed"``; the array is ``fixed_direction``).
      num, order, r: sizes.

    Statistics (over samples, NaN samples ignored -- ``num_nan`` counts them),
    all of shape ``(order+1, r)`` except ``quantiles``: ``mean``, ``std`` (ddof 0),
    ``quantiles`` ``(5, order+1, r)`` at ``quantile_levels`` = (0.05, 0.25, 0.5,
    0.75, 0.95), ``num_nan``.
    """

    quantile_levels = QUANTILE_LEVELS

    def __init__(self, derivatives, *, key, shape, ensemble, direction, fixed_direction=None, dtype=None):
        self.derivatives = np.asarray(derivatives)
        if self.derivatives.ndim != 3:
            raise ValueError(f"derivatives must have shape (num, order+1, r), got {self.derivatives.shape}")
        self.key = _check_key(key)
        self.shape = _check_shape(shape)
        self.ensemble = _check_ensemble(ensemble)
        self.dtype = np.dtype(dtype if dtype is not None else self.derivatives.dtype)
        if direction == "fixed":
            if fixed_direction is None:
                raise ValueError("direction 'fixed' needs fixed_direction")
            self.fixed_direction = np.asarray(fixed_direction, self.dtype)
        else:
            self.fixed_direction = None
            if direction not in DIRECTIONS:
                raise ValueError(f"unknown direction {direction!r}")
        self.direction = direction
        self.num, k1, self.r = self.derivatives.shape
        self.order = k1 - 1
        if self.r != min(self.shape):
            raise ValueError(f"derivatives have r = {self.r} but shape {self.shape} has min(m, n) = "
                             f"{min(self.shape)}")

    def __repr__(self):
        m, n = self.shape
        return (f"SensitivityResult(ensemble={self.ensemble!r}, shape=({m}, {n}), num={self.num}, "
                f"order={self.order}, direction={self.direction!r}, dtype={self.dtype})")

    # -- regenerated samples -------------------------------------------------

    @property
    def matrices(self) -> np.ndarray:
        """The sampled matrices ``(num, m, n)``, regenerated from the key (not stored)."""
        fn = partial(_matrices_chunk, self.key, ensemble=self.ensemble, shape=self.shape, dtype=self.dtype)
        return _generate(fn, self.num)

    @property
    def directions(self) -> np.ndarray:
        """The directions ``(num, m, n)``, regenerated from the key (a broadcast view if fixed)."""
        if self.direction == "fixed":
            return np.broadcast_to(self.fixed_direction, (self.num,) + self.shape)
        fn = partial(_directions_chunk, self.key, direction=self.direction, shape=self.shape,
                     dtype=self.dtype)
        return _generate(fn, self.num)

    def sample_at(self, i: int):
        """``(A_i, H_i)`` for one sample index, without regenerating the others."""
        i = static_int(i, "i", low=0, high=self.num - 1, high_name="num - 1")
        idx = jnp.asarray([i], jnp.uint32)
        a = np.asarray(_matrices_chunk(self.key, idx, ensemble=self.ensemble, shape=self.shape,
                                       dtype=self.dtype))[0]
        if self.direction == "fixed":
            return a, self.fixed_direction
        h = np.asarray(_directions_chunk(self.key, idx, direction=self.direction, shape=self.shape,
                                         dtype=self.dtype))[0]
        return a, h

    # -- statistics ----------------------------------------------------------

    def _quiet(self, f, *args, **kw):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return f(*args, **kw)

    @cached_property
    def num_nan(self) -> np.ndarray:
        """Samples whose derivative is NaN (does not exist), shape ``(order+1, r)``."""
        return np.sum(np.isnan(self.derivatives), axis=0)

    @cached_property
    def mean(self) -> np.ndarray:
        """Sample mean over non-NaN samples, ``(order+1, r)``."""
        return self._quiet(np.nanmean, self.derivatives, axis=0)

    @cached_property
    def std(self) -> np.ndarray:
        """Sample standard deviation (ddof 0) over non-NaN samples, ``(order+1, r)``."""
        return self._quiet(np.nanstd, self.derivatives, axis=0)

    @cached_property
    def quantiles(self) -> np.ndarray:
        """Quantiles at ``quantile_levels`` (linear interpolation), ``(5, order+1, r)``."""
        return self._quiet(np.nanquantile, self.derivatives, np.asarray(self.quantile_levels), axis=0)

    def summary_dict(self) -> dict:
        """Statistics as plain lists (JSON-ready)."""
        return {
            "ensemble": self.ensemble, "shape": list(self.shape), "num": self.num, "order": self.order,
            "direction": self.direction, "dtype": str(self.dtype),
            "quantile_levels": list(self.quantile_levels),
            "mean": self.mean.tolist(), "std": self.std.tolist(), "quantiles": self.quantiles.tolist(),
            "num_nan": self.num_nan.tolist(),
        }

    def _selection(self, orders, indices):
        """Checked derivative orders (``0..order``) and singular-value indices of the result.

        The indices select rows of the result arrays and follow numpy's indexing:
        ``-r <= k < r``, negative counting from the smallest (``-1``: sigma_min).
        """
        orders = [static_int(j, "order", low=0, high=self.order, high_name="the result's order") for j in orders]
        indices = [static_int(k, "index", low=-self.r, high=self.r - 1, high_name="r - 1") % self.r
                   for k in indices]
        return orders, indices

    def summary(self, orders: Optional[Sequence[int]] = None, indices: Optional[Sequence[int]] = None) -> str:
        """A text table: one row per (order j, index k) with mean, std and quantiles.

        Args:
          orders: derivative orders to show (default all).
          indices: singular-value indices to show (default all; negative counts
            from the smallest).
        """
        orders, indices = self._selection(range(self.order + 1) if orders is None else orders,
                                          range(self.r) if indices is None else indices)
        qs = [f"q{int(round(100 * q)):02d}" for q in self.quantile_levels]
        head = ["j", "k", "mean", "std"] + qs + ["nan"]
        rows = []
        for j in orders:
            for k in indices:
                vals = [self.mean[j, k], self.std[j, k]] + list(self.quantiles[:, j, k])
                rows.append([str(j), str(k)] + [f"{v: .4e}" for v in vals] + [str(int(self.num_nan[j, k]))])
        widths = [max(len(h), *(len(row[c]) for row in rows)) for c, h in enumerate(head)]
        fmt = "  ".join(f"{{:>{w}}}" for w in widths)
        m, n = self.shape
        title = (f"D^j sigma_k over {self.num} samples: ensemble={self.ensemble} {m}x{n}, "
                 f"direction={self.direction}, dtype={self.dtype}")
        lines = [title, fmt.format(*head), fmt.format(*["-" * w for w in widths])]
        lines += [fmt.format(*row) for row in rows]
        return "\n".join(lines)

    # -- persistence -----------------------------------------------------------

    def save(self, path) -> str:
        """Write the result to ``.npz`` (no pickle).

        Stored: ``derivatives``, the key data and PRNG implementation name, shape,
        ensemble, direction (name and fixed array), dtype -- all that
        :meth:`load` needs to regenerate ``matrices`` and ``directions``.

        Returns:
          the path written (``.npz`` appended if missing, like ``np.savez``).
        """
        path = os.fspath(path)
        if not path.endswith(".npz"):
            path += ".npz"
        fixed = self.fixed_direction if self.fixed_direction is not None else np.zeros((0, 0), self.dtype)
        np.savez(
            path,
            format_version=np.asarray(_FORMAT_VERSION),
            derivatives=self.derivatives,
            key_data=np.asarray(jax.random.key_data(self.key)),
            key_impl=np.asarray(str(jax.random.key_impl(self.key))),
            shape=np.asarray(self.shape, np.int64),
            ensemble=np.asarray(self.ensemble),
            direction=np.asarray(self.direction),
            fixed_direction=fixed,
            dtype=np.asarray(str(self.dtype)),
        )
        return path

    @classmethod
    def load(cls, path) -> "SensitivityResult":
        """Read a result written by :meth:`save` (``allow_pickle=False``)."""
        with np.load(os.fspath(path), allow_pickle=False) as z:
            missing = {"derivatives", "key_data", "key_impl", "shape", "ensemble", "direction",
                       "fixed_direction", "dtype"} - set(z.files)
            if missing:
                raise ValueError(f"{path} is not a saved SensitivityResult (missing {sorted(missing)})")
            version = int(z["format_version"]) if "format_version" in z.files else 1
            if version > _FORMAT_VERSION:
                raise ValueError(f"{path} was written by a newer jaxsvd (format {version})")
            key = jax.random.wrap_key_data(jnp.asarray(z["key_data"]), impl=str(z["key_impl"]))
            direction = str(z["direction"])
            return cls(z["derivatives"], key=key, shape=tuple(int(d) for d in z["shape"]),
                       ensemble=str(z["ensemble"]), direction=direction,
                       fixed_direction=z["fixed_direction"] if direction == "fixed" else None,
                       dtype=str(z["dtype"]))

    # -- plots -----------------------------------------------------------------

    def plot(self, orders: Sequence[int] = (2,), indices: Sequence[int] = (0, -1), *, bins: int = 60,
             clip: Optional[float] = 0.01, path=None, title: Optional[str] = None):
        """Histograms of ``D^j sigma_k`` for the chosen orders j (rows) and indices k (columns).

        Matplotlib is imported only here (the figure is built without pyplot, so
        no display is needed).

        Args:
          orders: derivative orders j to plot.
          indices: singular-value indices k (0 = largest, -1 = smallest).
          bins: histogram bins.
          clip: drop this fraction of samples from each tail before binning
            (heavy tails near small gaps otherwise squeeze the histogram); None
            keeps all.  The clipped range is noted in each panel.
          path: if given, save the figure there as PNG.
          title: figure title (default: ensemble, shape, num).

        Returns:
          the ``matplotlib.figure.Figure``.
        """
        try:
            from matplotlib.figure import Figure
        except ImportError as e:  # pragma: no cover - optional dependency
            raise ImportError("SensitivityResult.plot needs matplotlib: pip install 'jaxsvd[plot]'") from e
        orders, indices = list(orders), list(indices)
        orders, indices = self._selection(orders, indices)
        fig = Figure(figsize=(3.6 * len(indices), 2.8 * len(orders)), layout="constrained")
        axes = fig.subplots(len(orders), len(indices), squeeze=False)
        for a, j in enumerate(orders):
            for b, k in enumerate(indices):
                kk = k % self.r
                ax = axes[a][b]
                x = self.derivatives[:, j, kk]
                x = x[np.isfinite(x)]
                note = ""
                if clip and x.size:
                    lo, hi = np.quantile(x, [clip, 1 - clip])
                    x = x[(x >= lo) & (x <= hi)]
                    note = f" (central {100 * (1 - 2 * clip):.0f}%)"
                ax.hist(x, bins=bins, color="C0" if j % 2 == 0 else "C1", alpha=0.85)
                name = {0: "max", self.r - 1: "min"}.get(kk, str(kk + 1))
                ax.set_title(f"$D^{{{j}}}\\sigma_{{{name}}}$" + note, fontsize=9)
                ax.tick_params(labelsize=7)
        m, n = self.shape
        fig.suptitle(title or f"{self.ensemble} {m}x{n}, {self.num} samples, direction {self.direction}",
                     fontsize=10)
        if path is not None:
            fig.savefig(os.fspath(path), dpi=110)
        return fig


__all__ = ["ENSEMBLES", "DIRECTIONS", "QUANTILE_LEVELS", "SensitivityResult", "sample", "sensitivity"]
