"""Spectral normalisation in a training loop: sigma_1 of every layer from a
warm-started ``jaxsvd.svds``, side by side with one power-iteration step per
update (the approach of flax's ``SpectralNorm`` and of Miyato et al. 2018).

    python examples/spectral_normalization.py [--steps 300] [--widths 64,256,256,256,10]

An MLP (default 64-256-256-256-10, float32, synthetic teacher labels) is trained
with adam; each layer's weight enters the network as W / sigma_1(W).  Two ways
to get sigma_1 inside the jitted training step:

* ``svds``: ``jaxsvd.svds(W, 1, v0=v)`` started from the previous step's right
  singular vector ``v`` (the carried state; W moved by one optimizer step, so a
  few passes over W reach ``tol``).  Converged to ``tol`` (1e-7 relative in
  float32); the gradient through sigma_1 is the exact u_1 v_1^T whatever the start.
* ``power``: one power-iteration step per update from the carried u, with u and
  v held constant in the gradient (sigma ~ u^T W v, gradient u v^T): cheap, but
  the estimate lags behind W and its gradient points in the wrong direction
  when u, v have not converged.

Printed: compile time of the training step (wall and CPU), median step time, the relative
error of the sigma_1 each route used (against LAPACK in float64 on the current
W, at the logged steps) and of its gradient u_1 v_1^T (at the end).

The optimizer is optax's adam when optax is installed, else the few lines of
adam below (the same update).  Runs in about a minute on two CPU cores.
"""

from __future__ import annotations

import argparse
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import jaxsvd

try:  # optional
    import optax
except ImportError:  # pragma: no cover - depends on the environment
    optax = None


# ---------------------------------------------------------------------------
# the two ways to get sigma_1 (each returns sigma and the new carried state)
# ---------------------------------------------------------------------------


def sigma_svds(w, v):
    """sigma_1(W) from svds, warm-started at the carried right vector v (n,)."""
    res = jaxsvd.svds(w, 1, v0=v)
    return res.S[0], lax_stop(res.Vh[0])


def sigma_power(w, u):
    """One power-iteration step from the carried left vector u (m,), flax-style:
    sigma = u^T W v with u, v treated as constants in the gradient."""
    v = normalize(w.T @ u)
    u = normalize(w @ v)
    u, v = lax_stop(u), lax_stop(v)
    return u @ (w @ v), u


def normalize(x):
    return x / (jnp.linalg.norm(x) + 1e-12)


def lax_stop(x):
    return jax.lax.stop_gradient(x)


# ---------------------------------------------------------------------------
# model, data, optimizer
# ---------------------------------------------------------------------------


def init_params(key, widths):
    keys = jax.random.split(key, len(widths) - 1)
    return [(jax.random.normal(k, (o, i), jnp.float32) * float(np.sqrt(2.0 / i)), jnp.zeros((o,), jnp.float32))
            for k, i, o in zip(keys, widths[:-1], widths[1:], strict=True)]


def forward(params, sigmas, x):
    for li, ((w, b), s) in enumerate(zip(params, sigmas, strict=True)):
        x = x @ (w / s).T + b[None, :]
        if li < len(params) - 1:
            x = jax.nn.relu(x)
    return x


def make_data(key, n, widths):
    kx, kt = jax.random.split(key)
    x = jax.random.normal(kx, (n, widths[0]), jnp.float32)
    teacher = init_params(kt, widths)
    logits = forward(teacher, [jnp.float32(1.0)] * len(teacher), x)
    return x, jnp.argmax(logits, axis=-1)


def adam(lr, b1=0.9, b2=0.999, eps=1e-8):
    """(init, update) like optax.adam (bias-corrected first and second moments)."""
    if optax is not None:
        opt = optax.adam(lr)
        return opt.init, lambda g, st, p: opt.update(g, st, p)

    def init(p):
        z = jax.tree.map(jnp.zeros_like, p)
        return (z, z, jnp.zeros((), jnp.int32))

    def update(g, st, p=None):
        m, v, t = st
        t = t + 1
        m = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, m, g)
        v = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, v, g)
        c1, c2 = 1 - b1 ** t.astype(jnp.float32), 1 - b2 ** t.astype(jnp.float32)
        upd = jax.tree.map(lambda m, v: -lr * (m / c1) / (jnp.sqrt(v / c2) + eps), m, v)
        return upd, (m, v, t)

    return init, update


def make_step(sigma_fn, opt_update):
    def loss(params, state, x, y):
        out = [sigma_fn(w, s) for (w, _), s in zip(params, state, strict=True)]
        sigmas = [o[0] for o in out]
        logits = forward(params, sigmas, x)
        ll = jnp.mean(jax.nn.logsumexp(logits, axis=-1) - jnp.take_along_axis(logits, y[:, None], axis=-1)[:, 0])
        return ll, ([o[1] for o in out], jnp.stack(sigmas))

    @jax.jit
    def step(params, opt_state, state, x, y):
        (ll, (state, sigmas)), g = jax.value_and_grad(loss, has_aux=True)(params, state, x, y)
        upd, opt_state = opt_update(g, opt_state, params)
        params = jax.tree.map(lambda p, u: p + u, params, upd)
        return params, opt_state, state, ll, sigmas

    return step


# ---------------------------------------------------------------------------
# the comparison
# ---------------------------------------------------------------------------


def exact_sigma(w):
    return float(np.linalg.svd(np.asarray(w, np.float64), compute_uv=False)[0])


def grad_errors(params, state, sigma_fn):
    """Relative error of d sigma/dW (per layer) against u_1 v_1^T (LAPACK, float64)."""
    grads = jax.jit(lambda ws, st: [jax.grad(lambda w: sigma_fn(w, s)[0])(w) for w, s in zip(ws, st, strict=True)])(
        [w for w, _ in params], state)
    errs = []
    for (w, _), g in zip(params, grads, strict=True):
        g = np.asarray(g, np.float64)
        u, _, vt = np.linalg.svd(np.asarray(w, np.float64))
        ref = np.outer(u[:, 0], vt[0])
        errs.append(np.linalg.norm(g - ref) / np.linalg.norm(ref))
    return max(errs)


def run(name, sigma_fn, state0, params0, data, args):
    x, y = data
    opt_init, opt_update = adam(args.lr)
    step = make_step(sigma_fn, opt_update)
    params, opt_state, state = params0, opt_init(params0), state0
    batch = args.batch
    xb, yb = x[:batch], y[:batch]
    t0, c0 = time.perf_counter(), time.process_time()
    compiled = step.lower(params, opt_state, state, xb, yb).compile()
    t_compile, c_compile = time.perf_counter() - t0, time.process_time() - c0
    times, sig_err = [], []
    nb = x.shape[0] // batch
    for i in range(args.steps):
        j = i % nb
        xb, yb = x[j * batch:(j + 1) * batch], y[j * batch:(j + 1) * batch]
        t0 = time.perf_counter()
        new = jax.block_until_ready(compiled(params, opt_state, state, xb, yb))
        times.append(time.perf_counter() - t0)
        if i % args.log_every == 0 or i == args.steps - 1:  # sigma used at this step vs the truth for this W
            sig = np.asarray(new[4])
            sig_err.append(max(abs(s - exact_sigma(w)) / exact_sigma(w) for s, (w, _) in
                               zip(sig, params, strict=True)))
        params, opt_state, state, ll = new[0], new[1], new[2], new[3]
    # accuracy of the trained network, normalised by the exact sigma_1 (the same metric for both)
    logits = forward(params, [jnp.float32(exact_sigma(w)) for w, _ in params], x)
    acc = float(jnp.mean(jnp.argmax(logits, -1) == y))
    return dict(name=name, compile=t_compile, compile_cpu=c_compile, step=float(np.median(times)),
                sig_med=float(np.median(sig_err)), sig_max=float(np.max(sig_err)), grad=grad_errors(params, state, sigma_fn), loss=float(ll), acc=acc)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--widths", default="64,256,256,256,10")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--samples", type=int, default=2048)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--log-every", type=int, default=25)
    args = p.parse_args(argv)
    widths = [int(w) for w in args.widths.split(",")]
    key = jax.random.key(0)
    kp, kd, ku = jax.random.split(key, 3)
    params0 = init_params(kp, widths)
    data = make_data(kd, args.samples, widths)
    # carried states: svds a right vector per layer, power iteration a left one
    v0 = [normalize(jnp.ones((w.shape[1],), jnp.float32)) for w, _ in params0]
    u0 = [normalize(jax.random.normal(k, (w.shape[0],), jnp.float32))
          for k, (w, _) in zip(jax.random.split(ku, len(params0)), params0, strict=True)]
    print(f"MLP {'-'.join(map(str, widths))}, float32, {args.steps} adam steps (batch {args.batch}), "
          f"optimizer: {'optax.adam' if optax is not None else 'adam (built in)'}")
    rows = [run("svds(W, 1, v0=v) warm", sigma_svds, v0, params0, data, args),
            run("1 power step (flax)", sigma_power, u0, params0, data, args)]
    head = (f"{'sigma_1 from':24s} {'compile [s]':>11s} {'(CPU [s])':>9s} {'step [ms]':>9s} {'sigma err med':>13s} "
            f"{'sigma err max':>13s} {'grad err':>9s} {'loss':>7s} {'acc':>5s}")
    print(head)
    for r in rows:
        print(f"{r['name']:24s} {r['compile']:11.2f} {r['compile_cpu']:9.2f} {1e3 * r['step']:9.2f} "
              f"{r['sig_med']:13.2e} {r['sig_max']:13.2e} {r['grad']:9.2e} {r['loss']:7.3f} {r['acc']:5.2f}")
    print("compile: wall and process CPU seconds of the jitted training step (CPU time is robust to a "
          "loaded machine); step: median wall time")
    print("sigma err: |sigma used - sigma_1(W)| / sigma_1(W), worst layer, over the logged steps; "
          "grad err: |d sigma/dW - u_1 v_1^T| / |u_1 v_1^T| after training (LAPACK float64 references)")
    return rows


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)  # progress shows at once, through a pipe too
    main()
