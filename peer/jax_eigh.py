"""pytest plugin: JAX's own eigh tests (tests/eigh_test.py, class ``EighTest``) run
against ``jaxsvd.eigh`` / ``jaxsvd.eigvalsh``.

Load it with ``-p jax_eigh`` (this folder on ``PYTHONPATH``) on a copy of JAX's
``tests/eigh_test.py`` from the installed tag; see peer/README.md.  It keeps
only the tests of ``EighTest`` (``LaxLinalgEighTest`` calls ``lax.linalg``
directly) and points the module's ``jnp.linalg.eigh`` and ``eigvalsh`` at
jaxsvd's, leaving ``jax.numpy`` itself untouched.
"""

from __future__ import annotations

import types

import jax.numpy as jnp

import jaxsvd


def _patched_jnp():
    linalg = types.SimpleNamespace(**{k: getattr(jnp.linalg, k) for k in dir(jnp.linalg) if not k.startswith("__")})
    linalg.eigh = jaxsvd.eigh
    linalg.eigvalsh = jaxsvd.eigvalsh
    ns = types.SimpleNamespace(**{k: getattr(jnp, k) for k in dir(jnp) if not k.startswith("__")})
    ns.linalg = linalg
    return ns


def pytest_collection_modifyitems(session, config, items):
    keep, drop, done = [], [], set()
    for item in items:
        cls = getattr(item, "cls", None)
        if cls is None or cls.__name__ != "EighTest":
            drop.append(item)
            continue
        mod = item.module
        if mod not in done:
            mod.jnp = _patched_jnp()
            done.add(mod)
        keep.append(item)
    items[:] = keep
    config.hook.pytest_deselected(items=drop)
