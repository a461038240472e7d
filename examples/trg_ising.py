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

Run:  python -u examples/trg_ising.py [--chi 8] [--steps 20] [--num 21] [--plot out.png]
      [--no-compare] [--jet-chi 4] [--jet-steps 8]
(--no-compare skips the jnp / broadening routes.)  The defaults take about 2 minutes
on 2 CPU cores, most of it compiling; the exit status is 1 if a check misses
(E within 1e-8 and C within 1e-6 relative of differences of the same TRG, jet
likewise).  Measured numbers: docs/tensor_networks.md.

A "Very slow compile?" line on stderr is XLA's own alarm (a C++ log line, not a Python warning), printed when one
compilation runs past a fixed wall-clock time: the hessian program through
``truncated_split`` compiles in ~20 s on a quiet machine (docs/tensor_networks.md,
"Cost"), longer on a busy one.  It is harmless and changes no result.  It is not
silenced here: the usual switch for XLA's C++ logs, ``TF_CPP_MIN_LOG_LEVEL=3``, would
hide every other error XLA logs too.
"""

from __future__ import annotations

import os

# One BLAS thread: XLA's CPU SVD calls LAPACK (OpenBLAS), whose worker threads
# wait for each other at every call; on a busy 2-core machine a 64 x 64 SVD then
# takes ~0.1 s instead of ~1 ms (measured), and this program makes thousands.
# Must be set before numpy / jax load OpenBLAS.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.experimental.jet import jet  # noqa: E402

import jaxsvd  # noqa: E402

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


def _derivs(fun, reverse_twice=False):
    """One temperature: beta -> (f, f', f''), f' by jax.grad, f'' by jax.hessian
    (forward over reverse), or by grad of grad for a custom_vjp route.  One scalar
    program, called once per temperature (see ``_over``)."""
    second = jax.grad(jax.grad(fun)) if reverse_twice else jax.hessian(fun)
    return jax.jit(lambda b: (fun(b), jax.grad(fun)(b), second(b)))


def _timed_compile(fn, *args):
    """(compiled, (wall s, CPU s of this process)): CPU time is the fairer measure on a shared machine."""
    t0, c0 = time.perf_counter(), time.process_time()
    compiled = fn.lower(*args).compile()
    return compiled, (time.perf_counter() - t0, time.process_time() - c0)


def _over(compiled, betas):
    """Evaluate a compiled one-temperature program at every beta (a Python loop: the
    sweep costs a few ms per temperature once compiled, and a vmapped program over
    the temperatures compiles slower -- and, with jax 0.10.2 on CPU, its hessian
    deadlocked in XLA's runtime at 20 steps, see docs/tensor_networks.md)."""
    outs = [compiled(jnp.asarray(b, jnp.float64)) for b in betas]
    return [np.array([float(o[i]) for o in outs]) for i in range(len(outs[0]))]


def fd_step(beta: float) -> float:
    """The difference step: smaller near T_c, where the finite-chi TRG's f'' has a
    narrow peak (its Taylor series converges slowly there)."""
    return 2e-4 if abs(beta - BETA_C) < 0.05 else 2e-3


def differences(f_one, beta: float, h: float):
    """f', f'', f''' of a scalar function at beta by central differences, Richardson
    extrapolated: five-point stencils (error h^4) for f', f'' and the three-point
    one (error h^2) for f''' at steps h and h/2, combined to cancel the leading
    term; returns the three and the size of that correction (an error bound for
    the unextrapolated value at h/2, and a generous one for the extrapolation)."""
    offs = (-2, -1, -0.5, 0, 0.5, 1, 2)
    v = dict(zip(offs, (float(f_one(jnp.asarray(beta + o * h, jnp.float64))) for o in offs), strict=True))

    def stencils(g, step):  # g(j) = f(beta + j * step)
        d1 = (g(-2) - 8 * g(-1) + 8 * g(1) - g(2)) / (12 * step)
        d2 = (-g(-2) + 16 * g(-1) - 30 * g(0) + 16 * g(1) - g(2)) / (12 * step ** 2)
        return d1, d2

    coarse = stencils(lambda j: v[j], h)
    fine = stencils(lambda j: v[j / 2], h / 2)
    d3c = (v[2] - 2 * v[1] + 2 * v[-1] - v[-2]) / (2 * h ** 3)
    d3f = (v[1] - 2 * v[0.5] + 2 * v[-0.5] - v[-1]) / (2 * (h / 2) ** 3)
    d1 = (16 * fine[0] - coarse[0]) / 15
    d2 = (16 * fine[1] - coarse[1]) / 15
    d3 = (4 * d3f - d3c) / 3
    err = (abs(fine[0] - coarse[0]) / 15, abs(fine[1] - coarse[1]) / 15, abs(d3f - d3c) / 3)
    return (d1, d2, d3), err


def _onsager_curves(betas):
    """Onsager's energy and specific heat on a fine grid (closed form, no quadrature)."""
    from scipy import special

    def energy(b):
        th = np.tanh(2 * b)
        kk = special.ellipk((2 * np.sinh(2 * b) / np.cosh(2 * b) ** 2) ** 2)
        return -(1 / th) * (1 + (2 / np.pi) * (2 * th ** 2 - 1) * kk)

    h = 1e-5
    return energy(betas), -betas ** 2 * (energy(betas + h) - energy(betas - h)) / (2 * h)


def main(argv=None) -> int:
    """Run the sweep and the checks, print the tables; 0 if every check passes, else 1."""
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
    betas = np.concatenate([table_betas, sweep])
    n0 = len(table_betas)
    b_arg = jnp.asarray(0.3, jnp.float64)

    t_start, c_start = time.perf_counter(), time.process_time()
    ks = schedule(chi, steps)
    print(f"TRG of the 2D Ising model: chi = {chi}, {steps} steps (2^{steps} sites), float64; "
          f"kept dimensions {ks[0]} ... {ks[-1]}")
    print("compiling f, grad and hessian of one temperature (~20-30 s; XLA may log \"Very slow compile?\": "
          "harmless, see the module docstring) ...", flush=True)
    ours = lambda b: log_z(b, ks, split_jaxsvd)  # noqa: E731
    fn, t_ours = _timed_compile(_derivs(ours), b_arg)
    print(f"compile (f, grad, hessian of one temperature) through jaxsvd.truncated_split: {t_ours[0]:.1f} s "
          f"({t_ours[1]:.1f} s CPU)", flush=True)
    f, d1, d2 = _over(fn, betas)
    energy, heat = -d1, betas ** 2 * d2
    comp = {}
    if not args.no_compare:
        for name, split in (("jnp", split_jnp), ("broadened", split_broadened)):
            fun = lambda b, split=split: log_z(b, ks, split)  # noqa: E731
            g, tc = _timed_compile(_derivs(fun, reverse_twice=name == "broadened"), b_arg)
            comp[name] = _over(g, betas) + [tc]
            how = "hessian" if name == "jnp" else "grad of grad (custom_vjp)"
            print(f"compile (f, grad, {how}) through {name}: {tc[0]:.1f} s ({tc[1]:.1f} s CPU)", flush=True)
        tj = comp["jnp"][3]
        print(f"compile ratio jaxsvd / jnp: {t_ours[0] / tj[0]:.1f} (wall), {t_ours[1] / tj[1]:.1f} (CPU)")

    # references: Onsager, and differences of the same TRG (forward only)
    f_one = jax.jit(ours)
    fds = [differences(f_one, float(b), fd_step(float(b))) for b in table_betas]
    exact = np.array([onsager(float(b)) for b in table_betas])

    print()
    print(f"{'beta':>6} {'lnZ/N TRG':>11} {'-Onsager':>8} | {'E=-f` grad':>12} {'-Onsager':>8} {'-FD':>8}"
          f" {'(FD err)':>8} | {'C hessian':>9} {'C Onsager':>9} {'rel. FD':>8} {'(FD err)':>8}")
    rows = []
    for i, b in enumerate(table_betas):
        (e1, e2, _), (u1, u2, _) = fds[i]
        row = dict(beta=b, f=f[i], f_ons=exact[i, 0], e=energy[i], e_ons=exact[i, 1], e_fd=abs(d1[i] - e1),
                   e_fd_err=u1, c=heat[i], c_ons=exact[i, 2], c_fd=abs(d2[i] - e2) / abs(e2),
                   c_fd_err=u2 / abs(e2), h=fd_step(float(b)))
        rows.append(row)
        print(f"{b:6.4f} {f[i]:11.8f} {abs(f[i] - exact[i, 0]):8.1e} | {energy[i]:12.8f} "
              f"{abs(energy[i] - exact[i, 1]):8.1e} {row['e_fd']:8.1e} ({u1:6.0e}) | {heat[i]:9.6f} "
              f"{exact[i, 2]:9.6f} {row['c_fd']:8.1e} ({row['c_fd_err']:6.0e})")
    print("FD: Richardson-extrapolated five-point central differences of the same TRG, step "
          f"h = {fd_step(0.1):g} ({fd_step(BETA_C):g} within 0.05 of beta_c); (FD err): size of the "
          "extrapolation's correction")
    if comp:
        print(f"\n{'beta':>6} | {'E jnp':>11} {'C jnp':>9} | {'E broadened':>12} {'-E jaxsvd':>9} | "
              f"{'C broadened':>11} {'rel. to C jaxsvd':>16}")
        cj, cb = comp["jnp"], comp["broadened"]
        for i, b in enumerate(table_betas):
            eb, hb = -cb[1][i], b * b * cb[2][i]
            print(f"{b:6.4f} | {-cj[1][i]:11.8f} {b * b * cj[2][i]:9.6f} | {eb:12.8f} {abs(eb - energy[i]):9.1e} | "
                  f"{hb:11.6f} {abs(hb - heat[i]) / abs(heat[i]):16.1e}")

    # Taylor mode: f', f'', f''' at one temperature by jet (unrolled: no jet rule for scan)
    b0 = 0.4
    kj = schedule(args.jet_chi, args.jet_steps)
    fj = lambda b: log_z(b, kj, scan=False)  # noqa: E731
    one, zero = jnp.ones((), jnp.float64), jnp.zeros((), jnp.float64)
    jet3 = jax.jit(lambda b: jet(fj, (b,), ((one, zero, zero),)))
    jet3, t_jet = _timed_compile(jet3, b_arg)
    _, ys = jet3(jnp.asarray(b0, jnp.float64))
    ys = [float(y) for y in ys]
    jd, ju = differences(jax.jit(fj), b0, 2e-3)  # small chi: smooth at 0.4, a larger step has less rounding
    jrel = [abs(y - d) / abs(d) for y, d in zip(ys, jd, strict=True)]
    print(f"\njet (chi = {args.jet_chi}, {args.jet_steps} steps unrolled, beta = {b0}; compile {t_jet[0]:.1f} s):")
    for name, y, d, r, u in zip(("f'", "f''", "f'''"), ys, jd, jrel, ju, strict=True):
        print(f"  {name:4} = {y:.10f}   differences {d:.10f}   rel. {r:.1e}  (FD err {u / abs(d):.0e})")
    # the verification: E and C against differences of the same TRG (the bounds), jet likewise
    misses = [f"beta = {r['beta']}: |E - FD| = {r['e_fd']:.1e} > 1e-8" for r in rows if not r["e_fd"] <= 1e-8]
    misses += [f"beta = {r['beta']}: |C - FD|/C = {r['c_fd']:.1e} > 1e-6" for r in rows if not r["c_fd"] <= 1e-6]
    misses += [f"jet {name}: rel. {r:.1e} > {tol:g}" for name, r, tol in zip(("f'", "f''", "f'''"), jrel,
                                                                             (1e-8, 1e-6, 1e-4), strict=True)
               if not r <= tol]
    print("verified: E = -f' within 1e-8 and C = beta^2 f'' within 1e-6 (rel.) of differences of the same TRG, "
          "jet likewise" if not misses else "NOT verified: " + "; ".join(misses))
    print(f"total {time.perf_counter() - t_start:.1f} s wall, {time.process_time() - c_start:.1f} s CPU "
          "(this process)")

    if args.plot:
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            print("matplotlib is not installed: no figure")
            return 1 if misses else 0
        temps = 1 / betas[n0:]
        fine = np.linspace(0.25, 0.65, 300)
        fine = fine[np.abs(fine - BETA_C) > 1e-4]
        e_ex, c_ex = _onsager_curves(fine)
        fig, ax = plt.subplots(1, 2, figsize=(9, 3.6))
        ax[0].plot(1 / fine, e_ex, "k-", lw=1, label="Onsager")
        ax[0].plot(temps, energy[n0:], "o", ms=4, label=f"TRG chi={chi}, jax.grad")
        ax[0].set_xlabel("T"), ax[0].set_ylabel("energy per site"), ax[0].legend()
        ax[1].plot(1 / fine, c_ex, "k-", lw=1, label="Onsager")
        ax[1].plot(temps, heat[n0:], "o", ms=4, label=f"TRG chi={chi}, jax.hessian")
        if comp:
            ax[1].plot(temps, betas[n0:] ** 2 * comp["broadened"][2][n0:], "x", ms=5,
                       label="broadened SVD (eps=1e-12)")
        ax[1].set_ylim(0, 1.25 * max(np.nanmax(heat[n0:]), 2.0))
        ax[1].axvline(1 / BETA_C, color="grey", lw=0.5)
        ax[1].set_xlabel("T"), ax[1].set_ylabel("specific heat per site"), ax[1].legend()
        fig.tight_layout()
        fig.savefig(args.plot, dpi=90)
        plt.close(fig)
        print(f"figure: {args.plot}")
    return 1 if misses else 0


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)  # progress shows at once, through a pipe too
    raise SystemExit(main())
