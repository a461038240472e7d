"""Chunk checkpoints for long Monte Carlo runs (``sensitivity(..., checkpoint=DIR)``).

Layout of ``DIR``::

    manifest.json                       the run's identity and the format version
    chunk-<start>-<sha256[:16]>.npy     derivatives of samples start .. start+len-1

Durability.  A chunk is written to a temporary file in ``DIR``, flushed and
``fsync``-ed, then renamed into place (atomic on POSIX) and the directory is
``fsync``-ed, so a kill at any moment (``kill -9`` included) leaves either the
whole chunk or none of it under its final name.  The manifest is written the
same way, once, before the first chunk.

Integrity.  A chunk's name carries the first 16 hex digits of the SHA-256 of its
file.  On resume every chunk file is re-hashed: a torn, truncated or otherwise
altered file does not match its name and is deleted and recomputed, never read
as data.  So is a chunk whose array has the wrong shape or dtype.

Identity.  The manifest holds every argument that changes the numbers (key data
and implementation, shape, num, ensemble, direction and the fixed direction's
hash, order, dtype) and the chunk layout (the effective chunk size).  A
``DIR`` written by a run with other arguments raises ``ValueError`` naming the
first difference; the directory is never mixed between runs.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tempfile

import numpy as np

FORMAT = "jaxsvd.montecarlo.checkpoint"
VERSION = 1
_CHUNK = re.compile(r"^chunk-(\d{12})-([0-9a-f]{16})\.npy$")


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_write(directory: str, name: str, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, os.path.join(directory, name))
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(arr), allow_pickle=False)
    return buf.getvalue()


class ChunkStore:
    """The chunks of one run in ``directory`` (created if missing).

    Args:
      directory: the checkpoint directory.
      identity: JSON-serialisable dict of everything that fixes the numbers and
        the chunk layout.
      row_shape, dtype: each chunk is an array ``(len, *row_shape)`` of ``dtype``.

    Raises:
      ValueError: the directory holds another run's manifest, an unreadable
        manifest, or a file of a newer format.
      OSError: the directory cannot be created or written (a clear message).
    """

    def __init__(self, directory, identity: dict, row_shape: tuple, dtype):
        self.dir = os.fspath(directory)
        self.row_shape, self.dtype = tuple(row_shape), np.dtype(dtype)
        try:
            os.makedirs(self.dir, exist_ok=True)
        except OSError as e:
            raise OSError(f"checkpoint directory {self.dir!r} cannot be created: {e}") from e
        if not os.access(self.dir, os.W_OK):
            raise OSError(f"checkpoint directory {self.dir!r} is not writable")
        manifest = {"format": FORMAT, "version": VERSION, "run": identity}
        path = os.path.join(self.dir, "manifest.json")
        if os.path.exists(path):
            try:
                with open(path) as f:
                    old = json.load(f)
            except (OSError, ValueError) as e:
                raise ValueError(f"{path} is not a jaxsvd checkpoint manifest ({e})") from e
            if not isinstance(old, dict) or old.get("format") != FORMAT:
                raise ValueError(f"{path} is not a jaxsvd checkpoint manifest")
            if int(old.get("version", 0)) > VERSION:
                raise ValueError(f"{path} was written by a newer jaxsvd (checkpoint format {old['version']})")
            if old.get("run") != identity:
                theirs = old.get("run") or {}
                diff = next((k for k in sorted(set(identity) | set(theirs)) if identity.get(k) != theirs.get(k)),
                            "?")
                raise ValueError(f"checkpoint directory {self.dir!r} belongs to another run: {diff} is "
                                 f"{theirs.get(diff)!r} there and {identity.get(diff)!r} here; use a new "
                                 "directory (or delete this one)")
        else:
            _atomic_write(self.dir, "manifest.json", json.dumps(manifest, indent=1, sort_keys=True).encode())
        self._index: dict = {}  # start -> file names (one directory scan, not one per chunk)
        for name in os.listdir(self.dir):
            m = _CHUNK.match(name)
            if m:
                self._index.setdefault(int(m.group(1)), []).append((name, m.group(2)))

    def load(self, start: int, length: int):
        """The verified chunk at ``start`` (``(length, *row_shape)``), or None.

        Files that fail verification are deleted (they are recomputed)."""
        found = None
        for name, digest in self._index.pop(start, []):
            path = os.path.join(self.dir, name)
            try:
                with open(path, "rb") as f:
                    data = f.read()
                ok = hashlib.sha256(data).hexdigest()[:16] == digest
                if ok:
                    arr = np.load(io.BytesIO(data), allow_pickle=False)
                    ok = arr.shape == (length,) + self.row_shape and arr.dtype == self.dtype
            except (OSError, ValueError):
                ok = False
            if ok and found is None:
                found = arr
            else:
                try:
                    os.unlink(path)
                except OSError:
                    pass
        return found

    def save(self, start: int, arr: np.ndarray) -> None:
        data = _npy_bytes(np.asarray(arr, self.dtype))
        digest = hashlib.sha256(data).hexdigest()[:16]
        _atomic_write(self.dir, f"chunk-{start:012d}-{digest}.npy", data)


def array_digest(arr) -> str:
    """SHA-256 of an array's dtype, shape and bytes (for the manifest)."""
    arr = np.ascontiguousarray(arr)
    h = hashlib.sha256(f"{arr.dtype.str}{arr.shape}".encode())
    h.update(arr.tobytes())
    return h.hexdigest()
