"""Levin-Nave TRG of the 2D Ising model, differentiated through its truncated SVDs:
ln Z per site, the energy (jax.grad) and the specific heat (jax.hessian, jet) over
a temperature sweep through T_c, against Onsager's exact solution.

The tensor of the Ising model is Z2 symmetric, so the spectra of every split are
exactly tied in pairs.  The split S1 = U_k diag(sqrt(s_k)), S3 = diag(sqrt(s_k)) Vh_k
is not unique at such ties -- only the network is, under the bond gauge
S1 -> S1 Q, S3 -> Q^T S3 -- so:

  * ``jnp.linalg.svd`` + slicing: NaN (its rule divides by s_i^2 - s_j^2 = 0);
  * Lorentzian broadening (the community's fix, 1/x -> x / (x^2 + eps)): finite,
    biased by eps near ties, reverse mode only;
  * ``jaxsvd.truncated_split``: exact derivatives of every bond-invariant
    contraction in every mode, ties inside the kept space included.

Onsager (for H = -sum_<ij> s_i s_j, k_B = 1):  ln Z / N = ln(2 cosh 2b)
+ (1/2pi) int_0^pi ln[(1 + sqrt(1 - kappa^2 sin^2 t)) / 2] dt, kappa = 2 sinh 2b / cosh^2 2b
(by quadrature here); the energy by Onsager's closed form with the complete elliptic
integral K of modulus kappa, the specific heat C = -beta^2 dE/dbeta by differences of it.

Run:  python examples/trg_ising.py [--chi 8] [--steps 20] [--num 21] [--plot out.png]
      [--no-compare]   (skip the jnp / broadening routes)
"""

from __future__ import annotations

import argparse
import math
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental.jet import jet

import jaxsvd

jax.config.update("jax_enable_x64", True)

BETA_C = 0.5 * math.log(1 + math.sqrt(2))  # 0.44069


# ---------------------------------------------------------------------------
# Onsager's exact solution
# ---------------------------------------------------------------------------


def onsager(beta: float):
    """(ln Z / N, energy per site, specific heat per site) of the infinite lattice."""
    from scipy import integrate, special

    c2, s2 = math.cosh(2 * beta), math.sinh(2 * beta)
    kap = 2 * s2 / c2 ** 2
    integrand = lambda t: math.log(0.5 * (1 + math.sqrt(max(1 - kap ** 2 * math.sin(t) ** 2, 0.0))))  # noqa: E731
    f = math.log(2 * c2) + integrate.quad(integrand, 0, math.pi, limit=400, points=[math.pi / 2])[0] / (2 * math.pi)

    def energy(b):
        th = math.tanh(2 * b)
        kk = special.ellipk((2 * math.sinh(2 * b) / math.cosh(2 * b) ** 2) ** 2)
        return -(1 / th) * (1 + (2 / math.pi) * (2 * th ** 2 - 1) * kk)

    h = 1e-5  # C = -beta^2 dE/dbeta from the closed-form energy (smooth away from beta_c)
    heat = -beta ** 2 * (energy(beta + h) - energy(beta - h)) / (2 * h)
    return f, energy(beta), heat


# ---------------------------------------------------------------------------
# the splits
# ---------------------------------------------------------------------------


def split_jaxsvd(mat, k):
    return jaxsvd.truncated_split(mat, k)


def split_jnp(mat, k):
    u, s, vt = jnp.linalg.svd(mat, full_matrices=False)
    sq = jnp.sqrt(s[:k])
    return u[:, :k] * sq[None, :], sq[:, None] * vt[:k]


LORENTZ_EPS = 1e-12


@jax.custom_vjp
def _svd_broadened(a):
    return tuple(jnp.linalg.svd(a, full_matrices=False))


def _svd_broadened_fwd(a):
    out = _svd_broadened(a)
    return out, out


def _svd_broadened_bwd(res, cts):
    # the reverse rule of a square full-rank SVD with F_ij = 1/(s_j^2 - s_i^2)
    # broadened to x / (x^2 + eps) (Liao et al., PRX 9, 031041 (2019))
    u, s, vt = res
    gu, gs, gvt = cts
    v, gv = vt.T, gvt.T
    x = s[None, :] ** 2 - s[:, None] ** 2
    f = x / (x ** 2 + LORENTZ_EPS)
    j = f * (u.T @ gu - gu.T @ u)
    k = f * (v.T @ gv - gv.T @ v)
    inner = j * s[None, :] + jnp.diag(gs) + s[:, None] * k
    return (u @ inner @ vt,)


_svd_broadened.defvjp(_svd_broadened_fwd, _svd_broadened_bwd)


def split_broadened(mat, k):
    u, s, vt = _svd_broadened(mat)
    sq = jnp.sqrt(s[:k])
    return u[:, :k] * sq[None, :], sq[:, None] * vt[:k]


# ---------------------------------------------------------------------------
# TRG
# ---------------------------------------------------------------------------


def initial_tensor(beta):
    """T[l, u, r, d] = sum_s M_sl M_su M_sr M_sd with M M^T = exp(beta s s')."""
    ch, sh = jnp.sqrt(jnp.cosh(beta)), jnp.sqrt(jnp.sinh(beta))
    m = jnp.stack([jnp.stack([ch, sh]), jnp.stack([ch, -sh])])
    return jnp.einsum("si,sj,sk,sl->ijkl", m, m, m, m)


def trg_step(t, ks, split):
    """One Levin-Nave step: split each tensor two ways (checkerboard), contract the
    four halves around a plaquette.  t (D1, D2, D1, D2) -> (k1, k2, k1, k2), legs
    (left, up, right, down); ks = (k1, k2) the kept bond dimensions of the two splits."""
    d1, d2 = t.shape[:2]
    k1, k2 = ks
    f1, f3 = split(t.reshape(d1 * d2, d1 * d2), k1)  # (l u)(r d)
    f2, f4 = split(t.transpose(1, 2, 3, 0).reshape(d1 * d2, d1 * d2), k2)  # (u r)(d l)
    f1, f3 = f1.reshape(d1, d2, k1), f3.reshape(k1, d1, d2)
    f2, f4 = f2.reshape(d2, d1, k2), f4.reshape(k2, d2, d1)
    return jnp.einsum("lab,uca,ecr,bed->lurd", f3, f4, f1, f2, precision=jax.lax.Precision.HIGHEST)


def _normalise(t):
    c = jnp.sqrt(jnp.sum(t * t))
    return t / c, jnp.log(c)


def schedule(chi: int, steps: int, beta: float = BETA_C):
    """The static kept dimensions (k1, k2) of every step: min(chi, rank).  The first
    steps' matrices are rank deficient by structure (rank 2 of 4 at the start): keeping
    a zero singular value would make the split non-differentiable (sigma_k = 0, NaN),
    so the cut goes at the numerical rank, found once by a plain forward pass."""
    t = np.asarray(_normalise(initial_tensor(jnp.asarray(beta)))[0])
    ks = []
    for _ in range(steps):
        d1, d2 = t.shape[:2]
        mats = (t.reshape(d1 * d2, d1 * d2), t.transpose(1, 2, 3, 0).reshape(d1 * d2, d1 * d2))
        k = []
        for mat in mats:
            s = np.linalg.svd(mat, compute_uv=False)
            k.append(int(min(chi, np.sum(s > 1e-10 * s[0]))))
        ks.append(tuple(k))
        t = np.asarray(_normalise(trg_step(jnp.asarray(t), ks[-1], split_jnp))[0])
    return tuple(ks)


def log_z(beta, ks, split=split_jaxsvd, scan=True):
    """ln Z per site of the infinite lattice by len(ks) TRG steps (2^steps sites);
    the steps at the final bond dimension run as one lax.scan (compiled once) unless
    ``scan=False`` (jet has no rule for scan)."""
    t, lc = _normalise(initial_tensor(beta))
    f, n = lc, 0
    steps = len(ks)
    # unrolled up to the first step whose input already has the final dimensions
    i0 = next(i for i in range(steps) if all(x == ks[-1] for x in ks[i:]))
    first = min(i0 + 1, steps) if scan else steps
    for n in range(1, first + 1):  # growing bond dimension: unrolled
        t, lc = _normalise(trg_step(t, ks[n - 1], split))
        f = f + lc / 2.0 ** n
    w = 0.5 ** first

    def body(carry, _):
        t, f, w = carry
        t, lc = _normalise(trg_step(t, ks[-1], split))
        return (t, f + lc * w / 2, w / 2), None

    if steps > first:
        (t, f, w), _ = jax.lax.scan(body, (t, f, jnp.asarray(w, f.dtype)), None, length=steps - first)
    return f + w * jnp.log(jnp.abs(jnp.einsum("ijij->", t)))


# ---------------------------------------------------------------------------
# the sweep
# ---------------------------------------------------------------------------


def _derivs(fun):
    """beta -> (f, f', f''): f' by jax.grad, f'' by jax.hessian (forward over reverse)."""
    return jax.jit(jax.vmap(lambda b: (fun(b), jax.grad(fun)(b), jax.hessian(fun)(b))))


def _timed_compile(fn, *args):
    t0 = time.perf_counter()
    compiled = fn.lower(*args).compile()
    return compiled, time.perf_counter() - t0


def _differences(fun, betas, h=5e-4):
    """f' and f'' of the same TRG by 5-point central differences (h^4 error)."""
    f = jax.jit(jax.vmap(fun))
    vals = [np.asarray(f(betas + j * h)) for j in (-2, -1, 0, 1, 2)]
    d1 = (vals[0] - 8 * vals[1] + 8 * vals[3] - vals[4]) / (12 * h)
    d2 = (-vals[0] + 16 * vals[1] - 30 * vals[2] + 16 * vals[3] - vals[4]) / (12 * h * h)
    return d1, d2


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--chi", type=int, default=8)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--num", type=int, default=21, help="temperatures in the sweep (plus the table's)")
    p.add_argument("--plot", default=None, help="write the figure here (needs matplotlib)")
    p.add_argument("--no-compare", action="store_true", help="skip the jnp and broadening routes")
    p.add_argument("--jet-chi", type=int, default=4, help="chi of the (unrolled) jet check")
    p.add_argument("--jet-steps", type=int, default=8)
    args = p.parse_args(argv)
    chi, steps = args.chi, args.steps
    table_betas = np.array([0.1, 0.3, 0.4407, 0.5, 1.0])
    sweep = np.linspace(0.25, 0.65, args.num)
    betas = jnp.asarray(np.concatenate([table_betas, sweep]))

    t_start = time.perf_counter()
    ks = schedule(chi, steps)
    ours = lambda b: log_z(b, ks, split_jaxsvd)  # noqa: E731
    fn, t_ours = _timed_compile(_derivs(ours), betas)
    f, d1, d2 = (np.asarray(x) for x in fn(betas))
    fd1, fd2 = _differences(ours, betas)
    exact = np.array([onsager(float(b)) for b in betas])
    energy, heat = -d1, np.asarray(betas) ** 2 * d2

    print(f"TRG of the 2D Ising model: chi = {chi}, {steps} steps (2^{steps} sites), float64")
    print(f"compile (f, grad, hessian; vmapped over {len(betas)} temperatures): jaxsvd {t_ours:.1f} s")
    rows = []
    comp = {}
    if not args.no_compare:
        for name, split in (("jnp", split_jnp), ("broadened", split_broadened)):
            fun = lambda b, split=split: log_z(b, ks, split)  # noqa: E731
            if name == "jnp":
                g = jax.jit(jax.vmap(lambda b, fun=fun: (jax.grad(fun)(b), jax.hessian(fun)(b))))
            else:  # custom_vjp: reverse over reverse
                g = jax.jit(jax.vmap(lambda b, fun=fun: (jax.grad(fun)(b), jax.grad(jax.grad(fun))(b))))
            g, tc = _timed_compile(g, betas)
            comp[name] = [np.asarray(x) for x in g(betas)] + [tc]
            print(f"compile (grad, second derivative) through {name}: {tc:.1f} s")
    print()
    hdr = (f"{'beta':>7} {'lnZ/N TRG':>12} {'Onsager':>12} | {'E jaxsvd':>12} {'E Onsager':>12} {'|E-FD|':>8} |"
           f" {'C jaxsvd':>10} {'C Onsager':>10} {'|C-FD|/C':>9}")
    if comp:
        hdr += f" | {'E jnp':>8} {'E broad.':>10} {'C broad.':>10}"
    print(hdr)
    for i, b in enumerate(np.asarray(betas)[: len(table_betas)]):
        line = (f"{b:7.4f} {f[i]:12.9f} {exact[i, 0]:12.9f} | {energy[i]:12.9f} {exact[i, 1]:12.9f} "
                f"{abs(d1[i] - fd1[i]):8.1e} | {heat[i]:10.6f} {exact[i, 2]:10.6f} "
                f"{abs(d2[i] - fd2[i]) / max(abs(d2[i]), 1e-300):9.1e}")
        if comp:
            line += (f" | {-comp['jnp'][0][i]:8.4f} {-comp['broadened'][0][i]:10.6f}"
                     f" {b * b * comp['broadened'][1][i]:10.6f}")
        print(line)
        rows.append((b, f[i], exact[i, 0], energy[i], exact[i, 1], abs(d1[i] - fd1[i]), heat[i], exact[i, 2],
                     abs(d2[i] - fd2[i]) / max(abs(d2[i]), 1e-300)))

    # Taylor mode: f, f', f'', f''' at one temperature by jet (unrolled: no jet rule for scan)
    b0 = 0.4
    kj = schedule(args.jet_chi, args.jet_steps)
    fj = lambda b: log_z(b, kj, scan=False)  # noqa: E731
    t0 = time.perf_counter()
    one = jnp.ones((), jnp.float64)
    zero = jnp.zeros((), jnp.float64)
    y0, ys = jet(fj, (jnp.asarray(b0),), ((one, zero, zero),))
    t_jet = time.perf_counter() - t0
    j1, j2 = _differences(fj, jnp.asarray([b0]))
    e1 = abs(float(ys[0]) - j1[0])
    e2 = abs(float(ys[1]) - j2[0]) / abs(j2[0])
    print(f"\njet (chi = {args.jet_chi}, {args.jet_steps} steps, unrolled, beta = {b0}): "
          f"f' = {float(ys[0]):.12f} ({e1:.1e} from differences), f'' = {float(ys[1]):.10f} "
          f"({e2:.1e} rel.), f''' = {float(ys[2]):.8f}; {t_jet:.1f} s")
    print(f"total {time.perf_counter() - t_start:.1f} s")

    if args.plot:
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            print("matplotlib is not installed: no figure")
            return 0
        n0 = len(table_betas)
        temps = 1 / np.asarray(betas)[n0:]
        fine = np.linspace(0.25, 0.65, 400)
        ex = np.array([onsager(float(b)) for b in fine])
        fig, ax = plt.subplots(1, 2, figsize=(10, 4))
        ax[0].plot(1 / fine, ex[:, 1], "k-", label="Onsager")
        ax[0].plot(temps, energy[n0:], "o", label=f"TRG chi={chi}, jax.grad")
        ax[0].set_xlabel("T"), ax[0].set_ylabel("energy per site"), ax[0].legend()
        ax[1].plot(1 / fine, ex[:, 2], "k-", label="Onsager")
        ax[1].plot(temps, heat[n0:], "o", label=f"TRG chi={chi}, jax.hessian")
        if comp:
            ax[1].plot(temps, np.asarray(betas)[n0:] ** 2 * comp["broadened"][1][n0:], "x",
                       label="broadened SVD (eps=1e-12)")
        ax[1].axvline(1 / BETA_C, color="grey", lw=0.5)
        ax[1].set_xlabel("T"), ax[1].set_ylabel("specific heat per site"), ax[1].legend()
        fig.tight_layout()
        fig.savefig(args.plot, dpi=120)
        print(f"figure: {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
