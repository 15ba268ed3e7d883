"""SDE transforms: logqp's KL channel and reverse-time SDEs against closed forms."""

import math

import pytest
import torch

from neuralsde import SDE, logqp, reverse, solve
from neuralsde.examples import OU

F64 = torch.float64


class Zero(SDE):
    def __init__(self, sigma):
        super().__init__("diagonal", "ito")
        self.sigma = sigma

    def f(self, t, y):
        return torch.zeros_like(y)

    def g(self, t, y):
        return torch.full_like(y, self.sigma)


def test_logqp_kl_channel_matches_closed_form_for_ou_against_brownian_prior():
    # Posterior dy = -theta y dt + s dW, prior dy = s dW: KL rate 0.5 theta^2 y^2 / s^2, so
    # E kl(T) = 0.5 theta^2 / s^2 int_0^T (m_t^2 + v_t) dt with OU moments m_t, v_t.
    theta, s, y0, T = 1.5, 0.6, 1.0, 1.0
    post = OU(theta=theta, mu=0.0, sigma=s)
    n = 8000
    x0 = torch.cat([torch.full((n, 1), y0, dtype=F64), torch.zeros(n, 1, dtype=F64)], 1)
    ts = torch.tensor([0.0, T], dtype=F64)
    ys = solve(logqp(post, Zero(s)), x0, ts, method="srk", dt=2**-7,
               generator=torch.Generator().manual_seed(0))  # fmt: skip
    kl = ys[-1, :, 1]
    grid = torch.linspace(0, T, 4001, dtype=F64)
    second = torch.tensor([post.mean(y0, t) ** 2 + post.var(t) for t in grid.tolist()])
    exact = 0.5 * theta**2 / s**2 * torch.trapezoid(second, grid).item()
    se = kl.std().item() / math.sqrt(n)
    assert abs(kl.mean().item() - exact) < 4 * se + 2e-3 * exact, (kl.mean().item(), exact)


def test_logqp_rejects_general_noise():
    with pytest.raises(ValueError, match="logqp needs diagonal or scalar noise"):
        logqp(OU(noise_type="general"), OU(noise_type="general"))


@pytest.mark.parametrize("probability_flow", [False, True])
def test_reverse_of_ou_recovers_the_initial_gaussian(probability_flow):
    # Forward OU from N(m0, s0^2): p_t = N(m0 e^{-theta t}, s0^2 e^{-2 theta t} + v_t) with the
    # exact score -(x - mu_t) / var_t. The reverse SDE / probability-flow ODE started from p_T
    # must end at N(m0, s0^2): mean and variance within 4 standard errors (+ O(dt) bias).
    theta, sigma, m0, s0, T = 1.0, 0.8, 1.5, 0.3, 1.0
    fwd = OU(theta=theta, mu=0.0, sigma=sigma)

    def mu(t):
        return m0 * torch.exp(-theta * t)

    def var(t):
        e = torch.exp(-2 * theta * t)
        return s0**2 * e + sigma**2 * (1 - e) / (2 * theta)

    def score(x, t):
        t = t.unsqueeze(-1)
        return -(x - mu(t)) / var(t)

    n = 8000
    gen = torch.Generator().manual_seed(3)
    tT = torch.tensor(T, dtype=F64)
    xT = mu(tT) + var(tT).sqrt() * torch.randn(n, 1, dtype=F64, generator=gen)
    rev = reverse(fwd, score, T=T, probability_flow=probability_flow)
    method = "heun" if probability_flow else "euler"
    if probability_flow:
        rev.sde_type = "stratonovich"  # zero noise: an ODE, Heun is second order
    x0 = solve(rev, xT, torch.tensor([0.0, T], dtype=F64), method=method, dt=2**-8,
               generator=gen)[-1, :, 0]  # fmt: skip
    assert abs(x0.mean().item() - m0) < 4 * s0 / math.sqrt(n) + 5e-3
    assert abs(x0.var().item() - s0**2) < 4 * s0**2 * math.sqrt(2 / n) + 5e-3


class _Linear(SDE):
    """dz = a z dt + s dW (diagonal), the wrapped SDE of the composition tests."""

    def __init__(self, a=-0.5, s=0.8):
        super().__init__("diagonal", "ito")
        self.a, self.s = a, s

    def f(self, t, z):
        return self.a * z

    def g(self, t, z):
        return torch.full_like(z, self.s)


class _OldFractionalPosterior(SDE):
    """The pre-#12 formulation, kept here as the reference: one monolithic SDE of state
    ``[z, Y, kl]`` with the control added to every ``dY_k`` and ``0.5 |u|^2`` integrated in the
    last channel (``fractional(sde, noise, control=u, kl=True)``)."""

    noise_type = "general"

    def __init__(self, base, noise, control):
        super().__init__(sde_type=base.sde_type)
        self.base, self.noise, self.control = base, noise, control

    def f_and_g(self, t, y):
        D, K = y.shape[1] // (self.noise.K + 1), self.noise.K
        z, Y = y[:, :D], y[:, D : D * (K + 1)].unflatten(-1, (D, K))
        w, gam = self.noise.omega().to(y), self.noise.gammas().to(y)
        u = self.control(t, z, Y)
        dY = -gam * Y + u.unsqueeze(-1)
        s = self.base.g(t, z)
        fz = self.base.f(t, z) + s * (dY * w).sum(-1)
        drift = torch.cat([fz, dY.flatten(1), 0.5 * (u**2).sum(-1, keepdim=True)], -1)
        eye = torch.eye(D, dtype=y.dtype).repeat_interleave(K, dim=0).expand(y.shape[0], -1, -1)
        g = torch.cat([torch.diag_embed(s * w.sum()), eye, y.new_zeros(y.shape[0], 1, D)], 1)
        return drift, g

    def f(self, t, y):
        return self.f_and_g(t, y)[0]

    def g(self, t, y):
        return self.f_and_g(t, y)[1]


def test_logqp_of_fractional_posterior_and_prior_is_the_old_monolithic_fractional_posterior():
    """``logqp(fractional(controlled(prior, u)), fractional(prior))`` (the control lifted to
    the driving Brownian motion of the OU channels) integrates the same path and the same single
    KL channel as the pre-#12 ``fractional(prior, control=u, kl=True)``, to round-off."""
    from neuralsde import controlled
    from neuralsde.core.brownian import BrownianPath
    from neuralsde.noise import MarkovFBM, fractional

    noise = MarkovFBM(hurst=0.7, K=4).double()
    prior = _Linear()

    def u(t, z, args, f, g):  # reads the wrapped state and the wrapped SDE's drift
        return torch.tanh(z) - 0.3 * f

    sde = logqp(fractional(controlled(prior, u), noise), fractional(prior, noise))
    old = _OldFractionalPosterior(prior, noise, lambda t, z, Y: torch.tanh(z) - 0.3 * prior.f(t, z))
    y0 = sde.augment(torch.linspace(-1, 1, 6, dtype=F64).view(3, 2))
    assert y0.shape == (3, 2 * 5 + 1)  # [z, Y, kl]: one KL channel
    ts = torch.tensor([0.0, 0.5, 1.0], dtype=F64)
    bm = BrownianPath(0.0, 1.0, 256, (3, 2), generator=torch.Generator().manual_seed(0))
    new_ys = solve(sde, y0, ts, dt=1 / 64, bm=bm)
    old_ys = solve(old, y0, ts, dt=1 / 64, bm=bm)
    torch.testing.assert_close(new_ys, old_ys, rtol=1e-12, atol=1e-12)
    parts = sde.split(new_ys)
    assert parts._fields == ("state", "ou", "kl")
    assert parts.ou.shape == (3, 3, 2, 4) and bool((parts.kl[-1] > 0).all())


def test_fractional_latent_elbo_equals_the_old_monolithic_posterior_to_round_off(monkeypatch):
    """The latent SDE's ELBO through ``logqp(controlled(fractional(prior), u), ...)`` equals
    the ELBO with the pre-#12 monolithic posterior on a fixed Brownian path."""
    from neuralsde.models.latent import LatentSDE, PosteriorControl
    from neuralsde.noise import MarkovFBM

    torch.manual_seed(0)
    model = LatentSDE(2, latent_dim=2, context_dim=4, hidden=8, dt=0.02,
                      noise=MarkovFBM(hurst=0.6, K=3)).double()  # fmt: skip
    g = torch.Generator().manual_seed(1)
    times = torch.rand(3, 6, generator=g, dtype=F64).sort(-1).values
    values = torch.randn(3, 6, 2, generator=g, dtype=F64)
    new = model.elbo(times, values, generator=torch.Generator().manual_seed(2))

    real = model.posterior_sde

    def old_posterior_sde():
        sde = real()  # its augment/split and the control's precompute are reused
        frac = sde.prior
        control = PosteriorControl(model, frac)

        class Old(_OldFractionalPosterior):
            batched_time = True

            def precompute(self, grid, args):
                return control.precompute(grid, args)

            def f_and_g(self, t, y, args):
                self.control = lambda t, z, Y: control(t, torch.cat([z, Y.flatten(1)], -1),
                                                       args, None, None)  # fmt: skip
                return super().f_and_g(t, y)

            def f(self, t, y, args):
                return self.f_and_g(t, y, args)[0]

            def g(self, t, y, args):
                return self.f_and_g(t, y, args)[1]

        old = Old(model.prior_sde, model.noise, None)
        old.augment, old.split = sde.augment, sde.split
        return old

    monkeypatch.setattr(model, "posterior_sde", old_posterior_sde)
    ref = model.elbo(times, values, generator=torch.Generator().manual_seed(2))
    for key in ("elbo", "loglik", "kl0", "kl_path"):
        torch.testing.assert_close(new[key], ref[key], rtol=1e-12, atol=1e-12)
