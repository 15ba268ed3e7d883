"""MarkovFBM: optimal omega against closed forms and quadrature, gradients in H, sample
covariances against the exact processes, and bad input."""

import math

import numpy as np
import pytest
import torch
from scipy import integrate, special

from neuralsde.noise import MarkovFBM
from neuralsde.noise._gamma import dgammainc_da, exp_gammaincc, gammainc, gammaincc

F64 = torch.float64


# ----------------------------------------------------------------- incomplete gamma
@pytest.mark.parametrize("x", [1e-3, 0.05, 1.0, 7.5, 20.0, 39.0, 41.0, 80.0, 400.0])
@pytest.mark.parametrize("a", [0.3, 0.8, 1.2, 1.9, 2.4])
def test_dgammainc_da_matches_central_differences_of_scipy(a, x):
    h = 1e-6
    # Differentiate whichever of P, Q = 1 - P is small, so rounding does not swamp the FD.
    if special.gammainc(a, x) < 0.5:
        fd = (special.gammainc(a + h, x) - special.gammainc(a - h, x)) / (2 * h)
    else:
        fd = -(special.gammaincc(a + h, x) - special.gammaincc(a - h, x)) / (2 * h)
    got = float(dgammainc_da(torch.tensor(a, dtype=F64), torch.tensor(x, dtype=F64)))
    assert got == pytest.approx(fd, rel=1e-6, abs=1e-12)


def test_gammainc_passes_gradcheck_in_both_arguments():
    a = torch.tensor([0.4, 1.3, 2.2], dtype=F64, requires_grad=True)
    x = torch.tensor([0.7, 5.0, 50.0], dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(gammainc, (a, x))
    assert torch.autograd.gradcheck(gammaincc, (a, x))


@pytest.mark.parametrize("x", [0.05, 3.0, 39.0, 41.0, 300.0])
def test_exp_gammaincc_matches_scipy_and_is_smooth_across_branches(x):
    a = 1.2
    want = math.exp(x) * special.gammaincc(a, x)
    got = float(exp_gammaincc(torch.tensor(a, dtype=F64), torch.tensor(x, dtype=F64)))
    assert got == pytest.approx(want, rel=1e-10)


# ----------------------------------------------------------------- optimal omega
@pytest.mark.parametrize("hurst, expected", [(0.7, 1.3e-4), (0.9, 5.9e-5), (0.3, 7.8e-3)])
def test_type2_relative_error_reproduces_daems_values_within_5_percent(hurst, expected):
    err = float(MarkovFBM(hurst=hurst, K=5, gamma_max=20.0, T=1.0).relative_error())
    assert err == pytest.approx(expected, rel=0.05)


def test_type1_b_matches_design_check_values_and_quadrature_to_1e8():
    H, T = 0.75, 1.0
    fbm = MarkovFBM(hurst=H, K=5, gamma_max=20.0, kind="I", T=T)
    b = fbm.b().numpy()
    np.testing.assert_allclose(b, [0.36313, 0.31208, 0.19738, 0.052703, 0.00036513], rtol=5e-5)
    a = H + 0.5

    def cov(t, g):  # Cov(B^H_t, Y(t) - Y(0)) from the MvN kernel, by quadrature
        inside = integrate.quad(lambda s: (t - s) ** (a - 1) * np.exp(-g * (t - s)), 0, t)[0]
        past = integrate.quad(
            lambda v: ((t + v) ** (a - 1) - v ** (a - 1)) * np.exp(-g * v) * np.expm1(-g * t),
            0,
            np.inf,
            limit=200,
        )[0]
        return (inside + past) / special.gamma(a)

    for gk, bk in zip(fbm.gammas().numpy(), b, strict=True):
        quad = integrate.quad(lambda t, gk=gk: cov(t, gk), 0, T, epsabs=1e-12)[0]
        assert abs(bk - quad) < 1e-8


def test_type2_b_and_A_match_quadrature():
    H, T = 0.7, 1.0
    fbm = MarkovFBM(hurst=H, K=5, gamma_max=20.0, T=T)
    g = fbm.gammas().numpy()
    a = H + 0.5
    for gk, bk in zip(g, fbm.b().numpy(), strict=True):
        # Cov(B^H_t, Y_k(t)) = Gamma(a)^-1 int_0^t u^(a-1) e^(-g u) du
        quad = integrate.dblquad(
            lambda u, t, gk=gk: u ** (a - 1) * np.exp(-gk * u) / special.gamma(a),
            0,
            T,
            0,
            lambda t: t,
        )[0]
        assert bk == pytest.approx(quad, abs=1e-8)
    A = fbm.A().numpy()
    for i, j in [(0, 0), (1, 3), (4, 4)]:
        s = g[i] + g[j]
        quad = integrate.quad(lambda t, s=s: -np.expm1(-s * t) / s, 0, T)[0]
        assert A[i, j] == pytest.approx(quad, rel=1e-10)


def test_gammas_are_geometric_between_inverse_gamma_max_and_gamma_max():
    g = MarkovFBM(K=6, gamma_max=50.0).gammas()
    assert float(g[0]) == pytest.approx(1 / 50.0)
    assert float(g[-1]) == pytest.approx(50.0)
    ratios = g[1:] / g[:-1]
    torch.testing.assert_close(ratios, torch.full_like(ratios, 50.0 ** (2 / 5)))


@pytest.mark.parametrize("kind", ["II", "I"])
@pytest.mark.parametrize("hurst", [0.3, 0.7])
def test_domega_dhurst_matches_central_differences_to_1e5(kind, hurst):
    fbm = MarkovFBM(K=5, gamma_max=20.0, kind=kind)
    H = torch.tensor(hurst, dtype=F64, requires_grad=True)
    jac = torch.autograd.functional.jacobian(fbm.omega, H)
    h = 1e-5
    with torch.no_grad():
        fd = (
            fbm.omega(torch.tensor(hurst + h, dtype=F64))
            - fbm.omega(torch.tensor(hurst - h, dtype=F64))
        ) / (2 * h)
    rel = float((jac - fd).norm() / fd.norm())
    assert rel < 1e-5


def test_learnable_hurst_receives_a_gradient_through_omega():
    fbm = MarkovFBM(hurst=0.6, learn_hurst=True)
    assert float(fbm.hurst.detach()) == pytest.approx(0.6)
    fbm.omega().sum().backward()
    assert fbm.raw_hurst.grad is not None and torch.isfinite(fbm.raw_hurst.grad)
    assert fbm.raw_hurst.grad != 0


# ----------------------------------------------------------------- samples
def _max_standardised_cov_error(paths, target):
    """Max over (s, t) of |empirical cov - target| / its Gaussian standard error."""
    x = paths.double().numpy().T  # (batch, L)
    n = x.shape[0]
    emp = np.cov(x, rowvar=False)
    var = np.diag(target)
    se = np.sqrt((np.outer(var, var) + target**2) / n)
    return float(np.max(np.abs(emp - target) / se))


TIMES = torch.tensor([0.0, 0.1, 0.25, 0.5, 0.75, 1.0], dtype=F64)


def test_type2_samples_match_riemann_liouville_covariance():
    fbm = MarkovFBM(hurst=0.7, K=5, gamma_max=20.0, kind="II")
    paths = fbm.sample(TIMES, 20000, generator=torch.Generator().manual_seed(0), dtype=F64)
    target = fbm.target_cov(TIMES[1:], TIMES[1:])
    # 15 distinct entries: 4 standard errors bounds each with family-wise level ~1e-3.
    assert _max_standardised_cov_error(paths[1:], target) < 4.0
    assert float(paths[0].abs().max()) == 0.0


def test_type1_samples_match_their_exact_covariance():
    fbm = MarkovFBM(hurst=0.7, K=5, gamma_max=20.0, kind="I")
    paths = fbm.sample(TIMES, 20000, generator=torch.Generator().manual_seed(1), dtype=F64)
    target = fbm.cov(TIMES[1:], TIMES[1:]).numpy()
    assert _max_standardised_cov_error(paths[1:], target) < 4.0


def test_type1_k5_covariance_is_mvn_up_to_a_variance_scale():
    # K=5, gamma_max=20 misses ~10% of the MvN variance (slowest speed 1/20; relative L2 error
    # 0.098); normalised by a least-squares scale the covariance shape agrees to 0.01.
    fbm = MarkovFBM(hurst=0.7, K=5, gamma_max=20.0, kind="I")
    t = TIMES[1:]
    approx, exact = fbm.cov(t, t).numpy(), fbm.target_cov(t, t)
    scale = (approx * exact).sum() / (exact * exact).sum()
    assert 0.85 < scale < 0.95
    assert np.abs(approx / scale - exact).max() < 0.01
    assert float(fbm.relative_error()) == pytest.approx(0.0979, rel=0.01)


def test_type1_samples_match_mandelbrot_van_ness_covariance_when_resolved():
    fbm = MarkovFBM(hurst=0.7, K=10, gamma_max=1e4, kind="I")
    paths = fbm.sample(TIMES, 20000, generator=torch.Generator().manual_seed(2), dtype=F64)
    target = fbm.target_cov(TIMES[1:], TIMES[1:])
    assert _max_standardised_cov_error(paths[1:], target) < 4.0


def test_mvn_covariance_normalisation_matches_its_kernel_integral():
    from neuralsde.noise import fbm_cov

    H = 0.7
    a = H + 0.5
    kernel = (
        integrate.quad(lambda s: (1 - s) ** (2 * a - 2), 0, 1)[0]
        + integrate.quad(lambda v: ((1 + v) ** (a - 1) - v ** (a - 1)) ** 2, 0, np.inf)[0]
    )
    assert fbm_cov([1.0], [1.0], H)[0, 0] == pytest.approx(kernel / special.gamma(a) ** 2, rel=1e-6)


@pytest.mark.parametrize("kind", ["II", "I"])
def test_hurst_half_recovers_brownian_motion(kind):
    fbm = MarkovFBM(hurst=0.5, K=5, gamma_max=20.0, kind=kind)
    paths = fbm.sample(TIMES, 20000, generator=torch.Generator().manual_seed(3), dtype=F64)
    t = TIMES[1:].numpy()
    bm_cov = np.minimum(t[:, None], t[None, :])
    if kind == "II":  # exact up to 2e-11 relative L2 error
        assert float(fbm.relative_error()) < 1e-9
        np.testing.assert_allclose(fbm.cov(t, t).numpy(), bm_cov, atol=1e-4)
        assert _max_standardised_cov_error(paths[1:], bm_cov) < 4.0
    else:  # type I at gamma_max=20 is within 2% of Brownian motion
        np.testing.assert_allclose(fbm.cov(t, t).numpy(), bm_cov, rtol=0.02)
    increments = np.diff(paths[1:].numpy(), axis=0).T
    corr = np.corrcoef(increments, rowvar=False)
    off = corr[~np.eye(len(corr), dtype=bool)]
    assert np.abs(off).max() < 4.5 / math.sqrt(20000) + (0.02 if kind == "I" else 0.0)


def test_same_generator_seed_gives_same_samples():
    fbm = MarkovFBM(hurst=0.3, kind="I")
    a = fbm.sample(TIMES, 4, generator=torch.Generator().manual_seed(7))
    b = fbm.sample(TIMES, 4, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(a, b)


# ----------------------------------------------------------------- bad input
@pytest.mark.parametrize("hurst", [0.0, 1.0, -0.2, 1.5])
def test_hurst_outside_unit_interval_is_rejected(hurst):
    with pytest.raises(ValueError, match=r"hurst must lie strictly inside \(0, 1\); got"):
        MarkovFBM(hurst=hurst)


def test_non_numeric_hurst_is_a_type_error():
    with pytest.raises(TypeError, match="hurst must be a float"):
        MarkovFBM(hurst="0.7")


@pytest.mark.parametrize("K", [1, 0, -3])
def test_fewer_than_two_ou_processes_is_rejected(K):
    with pytest.raises(ValueError, match=rf"K must be >= 2 .*got K={K}"):
        MarkovFBM(K=K)


def test_unknown_kind_and_bad_gamma_max_are_rejected():
    with pytest.raises(ValueError, match="kind must be one of"):
        MarkovFBM(kind="III")
    with pytest.raises(ValueError, match="gamma_max must be a number > 1"):
        MarkovFBM(gamma_max=0.5)


@pytest.mark.parametrize("dt", [0.025, 0.1])
def test_step_too_large_for_fastest_ou_is_rejected(dt):
    fbm = MarkovFBM(gamma_max=20.0)
    with pytest.raises(ValueError, match=r"gamma_max \* dt must be < 0.5; got gamma_max=20.0"):
        fbm.check_step(dt)
    fbm.check_step(0.0249)


def test_sample_rejects_unsorted_times():
    with pytest.raises(ValueError, match="strictly increasing"):
        MarkovFBM().sample(torch.tensor([0.0, 0.5, 0.2]), 3)
