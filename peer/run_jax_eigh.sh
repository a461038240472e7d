#!/usr/bin/env bash
# JAX's EighTest (tests/eigh_test.py at the installed jax tag) with jnp.linalg.eigh /
# eigvalsh pointed at jaxsvd's.  Usage: peer/run_jax_eigh.sh PATH/TO/eigh_test.py [pytest args]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
src="$1"; shift
work="$(mktemp -d)"
cp "$src" "$work/eigh_test.py"
cd "$work"
JAX_ENABLE_X64="${JAX_ENABLE_X64:-1}" PYTHONPATH="$here:${PYTHONPATH:-}" \
  python -m pytest -q -p jax_eigh -p no:cacheprovider eigh_test.py "$@"
