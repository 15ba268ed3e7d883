"""``LatentSDEChangeDetector``: change points as peaks of a likelihood-ratio score between
latent neural SDEs fitted on the windows before and after each candidate time.

Method (after Ryzhikov, Hushchyn & Derkach, IEEE Access 2023, "Latent neural SDEs for change
point detection"):

1. Map the series to a latent state ``z`` (``LinearLatentMap``: standardise + whitened PCA).
2. For every window of ``window`` consecutive observations fit an SDE
   ``dz = W_k^T phi(z, h) dt + diag(sigma_k) dW`` (``WindowSDE``: shared neural drift features
   ``phi`` of the state and of the last increment ``h``, per-window drift coefficients and
   diffusion), all windows in one batch, by the Euler-Maruyama transition likelihood on the
   observation grid (gaps may vary; transitions touching an imputed value are masked). The
   per-window parameters are solved in closed form inside the loss, so the window models are
   exact maximum-likelihood fits and their number of parameters (``dof``) is known.
3. Score a candidate ``tau`` (first index of the right window). ``estimator="glr"``
   (default): the generalised log-likelihood ratio of "the left (L) and right (R) windows follow
   their own SDEs" against "one SDE (P) fitted on both",

   ``S(tau) = max(l_L(D_L) + l_R(D_R) - l_P(D_L u D_R),  l_step - l_P + c)``,

   with ``l`` the maximised Euler transition log-likelihood. Each window keeps its own
   diffusion, so volatility changes count: with different diffusions the path measures are
   mutually singular and the continuous Girsanov ratio does not exist, so the transition
   densities on the observed grid (the finite-grid, ELBO-equivalent form) are used. Under no
   change ``2 S`` is asymptotically chi-square with ``WindowSDE.dof`` degrees of freedom, which
   fixes the default penalty. The second term is the level-only alternative (drift slopes
   shared by the whole series, a drift intercept that steps at ``tau``: a 1-dof-per-channel
   test, far more powerful for a shift of an OU mean), shifted by ``c`` so that both tests
   share one chi-square threshold (a Bonferroni max-combination). The level alternative's
   drift is linear in ``[z, h]`` whatever ``features`` is, and its shared slopes are
   estimated robustly to the change points themselves (``_level_glr``): the median of the
   per-window slopes over the windows whose state variance is not inflated (at most 3 times
   the median window's) by a level shift inside them; without this selection, windows that
   straddle a shift pull the slopes towards a unit root and the level test loses most of its
   power against a slow OU's mean shift.
   ``estimator="symmetric"``: the Jeffreys-type statistic
   ``sum_{L} log p_L / p_R + sum_{R} log p_R / p_L`` (left and right models cross-evaluated;
   heavy-tailed when the windows visit different states). ``estimator="girsanov"``: the same
   with the two diffusions pooled and the discretised Girsanov ratio
   ``int (f_L - f_R)^T (g g^T)^-1 dz - 1/2 int (f_L^T (g g^T)^-1 f_L - f_R^T (g g^T)^-1 f_R) dt``
   (drift changes only); it equals the transition ratio when the diffusions are equal.
4. Pick peaks separated by at least ``min_distance`` (default: ``window``) whose score exceeds a
   penalty, or the ``n_bkps`` highest ones.
"""

from __future__ import annotations

import numpy as np
import torch
import xarray as xr
from sklearn.exceptions import NotFittedError

from neuralsde.changepoint._input import Series, series_from_batch
from neuralsde.changepoint.dynamics import (
    WindowSDE,
    fit_heads,
    fit_windows,
    profile_sigma,
    train_features,
)
from neuralsde.changepoint.latent_map import transitions
from neuralsde.changepoint.likelihood import euler_log_density, girsanov_log_ratio
from neuralsde.changepoint.peaks import pick_peaks
from neuralsde.data import IrregularBatch
from neuralsde.data.scaling import remove_season
from neuralsde.estimators.base import NeuralSDEEstimator
from neuralsde.estimators.chunked import chunked_predict, is_chunked

ESTIMATORS = ("glr", "symmetric", "girsanov")
SEARCHES = ("peaks", "binseg", "bottomup", "pelt")

# Family-wise false-alarm level of the default penalty: half the chi-square(dof) quantile at
# AUTO_PEN_ALPHA / (number of candidates) (Bonferroni over all candidates, conservative for the
# asymptotic law, which compensates the small-window inflation of the GLR). Checked on
# stationary OU paths: tests/test_changepoint_slow.py (no breakpoint in >= 9/10 seeds).
AUTO_PEN_ALPHA = 0.01

# window="auto": a quarter of the series (so that two windows fit on either side of a change in
# its middle), capped at AUTO_WINDOW_MAX observations: the power of the window tests depends on
# the number of observations per window, not on n, while a longer window only blurs the
# resolution (changes closer than a window are merged). One rule for every data set in
# benchmarks/changepoint.py.
AUTO_WINDOW_MAX = 150


class LatentSDEChangeDetector(NeuralSDEEstimator):
    """Change-point detection by likelihood ratios of latent neural SDEs (ruptures-like API).

    Parameters: ``window`` (observations on each side of a candidate, or ``"auto"``:
    ``min(150, n // 4)`` for a series of ``n`` observed times, the rule the benchmark applies to
    every data set; the fitted one is ``window_``), ``latent_dim`` (the latent state size, at
    most the number of channels), ``features``/``hidden`` (learned drift
    features and MLP width; ``features=0`` gives linear window SDEs and needs no training),
    ``epochs``/``lr``/``ridge`` (Adam on the shared features, trained on non-overlapping blocks
    of ``block`` windows), ``estimator`` (``"glr"``, ``"symmetric"`` or ``"girsanov"``),
    ``pen`` (the default penalty used by ``predict()`` with no argument: ``"auto"``, a float,
    or None to require one), ``min_distance`` (peak separation; default ``window``),
    ``seasonal_period`` (the season's length in the series' time units, or a
    ``pandas.Timedelta``/string such as ``"365.25D"`` for dates; None: no season) with
    ``harmonics``: the scores and the cost then see the series less its least-squares seasonal
    mean (``seasonal_``; ``series_`` holds the adjusted values), so that a periodic mean is
    not taken for dynamics; ``random_state``, ``progress`` (tqdm bar).

    Which configuration: linear window SDEs (``features=0``, the default) detect changes of
    level, volatility, mean-reversion speed and fractional-noise memory (benchmark: F1 >= the
    best ruptures baseline on all four synthetic families); a change in the *shape* of a
    repeated pattern (GunPoint segmentation) needs the learned features (``features=2``:
    top change 987 against the annotated 900; the linear model puts it at 1249 with a score
    below its penalty). ``features=2`` also passes the four families (mean F1 0.95).

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> x = np.concatenate([rng.normal(0, 1, 150), rng.normal(0, 3, 150)])
        >>> det = LatentSDEChangeDetector(window=40, epochs=60, random_state=0).fit(x)
        >>> bkps = det.predict(n_bkps=1)
        >>> abs(bkps[0] - 150) <= 15, bkps[-1]
        (True, 300)
    """

    def __init__(
        self,
        window: int | str = 50,
        latent_dim: int = 4,
        features: int = 0,
        hidden: int = 16,
        epochs: int = 100,
        lr: float = 0.01,
        ridge: float = 1e-3,
        block: int = 4,
        estimator: str = "glr",
        pen: float | str | None = "auto",
        min_distance: int | None = None,
        seasonal_period=None,
        harmonics: int = 3,
        random_state: int | None = None,
        progress: bool = False,
    ):
        self.window = window
        self.latent_dim = latent_dim
        self.features = features
        self.hidden = hidden
        self.epochs = epochs
        self.lr = lr
        self.ridge = ridge
        self.block = block
        self.estimator = estimator
        self.pen = pen
        self.min_distance = min_distance
        self.seasonal_period = seasonal_period
        self.harmonics = harmonics
        self.random_state = random_state
        self.progress = progress

    # ------------------------------------------------------------------ validation
    def _check_params(self, n: int) -> int:
        """Validate the parameters for a series of ``n`` observed times; return the window."""
        window = self.window
        if isinstance(window, str):
            if window != "auto":
                raise ValueError(f"window must be an integer or 'auto'; got {window!r}")
            window = min(AUTO_WINDOW_MAX, n // 4)
            if window < 3:
                raise ValueError(
                    f"signal has {n} observed times, but window='auto' needs a series of at "
                    f"least 12"
                )
        for name, low in (
            ("window", 1),
            ("latent_dim", 1),
            ("features", 0),
            ("hidden", 1),
            ("epochs", 0),
            ("block", 1),
        ):
            v = window if name == "window" else getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < low:
                raise ValueError(f"{name} must be an integer >= {low}; got {v!r}")
        if window < 3:
            raise ValueError(f"window must be >= 3 observations; got window={window}")
        if 2 * window > n:
            raise ValueError(
                f"window={window} is too large for signal, a series of {n} observed times; "
                f"expected window <= {n // 2} (two windows must fit)"
            )
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"estimator must be one of {ESTIMATORS}; got {self.estimator!r}")
        if not (self.pen is None or self.pen == "auto" or isinstance(self.pen, (int, float))):
            raise TypeError(f"pen must be 'auto', a number or None; got {self.pen!r}")
        md = self.min_distance
        if md is not None and (
            not isinstance(md, (int, np.integer)) or isinstance(md, bool) or md < 1
        ):
            raise ValueError(f"min_distance must be an integer >= 1 or None; got {md!r}")
        ridge = self.ridge
        if (
            isinstance(ridge, bool)
            or not isinstance(ridge, (int, float))
            or not (np.isfinite(ridge) and ridge >= 0)
        ):
            raise ValueError(f"ridge must be a finite number >= 0; got {ridge!r}")
        return int(window)

    # ------------------------------------------------------------------ fit
    def fit(self, signal, times=None, y=None) -> LatentSDEChangeDetector:
        """Fit the window SDEs and compute ``score_``.

        ``signal``: one series: an ``(n,)`` or ``(n, channel)`` array (NaN = missing), a pandas
        Series or wide DataFrame (the index is the time axis), an xarray DataArray with a
        ``time`` dimension, or any form :meth:`IrregularBatch.coerce` reads holding one series.
        ``times``: optional ``(n,)`` increasing time stamps of an array (numbers or dates;
        irregular grids welcome). ``y`` is ignored (scikit-learn's signature).
        """
        batch = IrregularBatch.coerce(signal, "signal", times=times, single=True)
        series = series_from_batch(batch, "signal")
        period = self._season(batch)
        self.seasonal_ = None
        if period is not None:  # the scores see the series less its seasonal mean
            values, self.seasonal_ = remove_season(series.times, series.values, period,
                                                   self.harmonics)  # fmt: skip
            series = Series(series.times, values, series.coord, series.channels)
        n = len(series.times)
        w = self._check_params(n)
        self.window_ = w
        self.series_ = series
        self.n_samples_ = n

        tr = transitions(series.times, series.values, self.latent_dim)
        self.latent_map_ = tr.latent_map
        zt, dz, dt, valid, h = tr.z, tr.dz, tr.dt, tr.valid, tr.h

        # window k covers observations k..k+w-1, i.e. transitions k..k+w-2
        idx = torch.arange(n - w + 1).unsqueeze(1) + torch.arange(w - 1)
        zw, hw, dzw, dtw, ww = zt[:-1][idx], h[idx], dz[idx], dt[idx], valid[idx]

        # the shared features learn on non-overlapping blocks of `block` windows
        block = min(n - 1, self.block * w)
        bidx = torch.arange(0, n - block, block).unsqueeze(1) + torch.arange(block)
        with torch.random.fork_rng():
            if self.random_state is not None:
                torch.manual_seed(self.random_state)
            sde = WindowSDE(idx.shape[0], zt.shape[1], self.features, self.hidden)
            self.loss_curve_ = train_features(
                sde,
                zt[:-1][bidx],
                h[bidx],
                dz[bidx],
                dt[bidx],
                valid[bidx],
                self.epochs,
                self.lr,
                self.ridge,
                self.progress,
            )
        fit_windows(sde, zw, hw, dzw, dtw, ww, self.ridge)
        self.dynamics_ = sde
        self.dof_ = int(sde.dof)

        with torch.no_grad():
            tau = torch.arange(w, n - w + 1)
            if self.estimator == "glr":
                own = self._window_loglik(sde, zw, hw, dzw, dtw, ww)
                # pooled windows: transitions tau-w .. tau+w-2 without the crossing one tau-1
                pidx = (tau - w).unsqueeze(1) + torch.arange(2 * w - 1)
                pw = valid[pidx].clone()
                pw[:, w - 1] = 0.0
                args = (zt[:-1][pidx], h[pidx], dz[pidx], dt[pidx], pw)
                phi = sde.features(*args[:2])
                pooled = self._loglik(phi, args[2], args[3], pw)
                full = own[tau - w] + own[tau] - pooled
                level = self._level_glr(sde, zw, hw, dzw, dtw, ww, args, pw)
                d = zt.shape[1]
                shift = self._chi2_pen(sde.dof, n) - self._chi2_pen(d, n)
                stat = torch.maximum(full, level + shift)
                self.score_components_ = {"full": full.numpy(), "level": level.numpy()}
            else:
                left, right = tau - w, tau
                stat = self._log_ratio(sde, zw, hw, dzw, dtw, ww, left, right)
                stat = stat + self._log_ratio(sde, zw, hw, dzw, dtw, ww, right, left)
        score = np.full(n, np.nan)
        score[tau.numpy()] = stat.double().numpy()
        self.score_ = self._score_array(score, series.coord, w)
        return self

    def _loglik(self, phi, dz, dt, weight) -> torch.Tensor:
        """Maximum Euler log-likelihood of each row for drift ``W^T phi``: ``(rows,)``."""
        f = phi @ fit_heads(phi, dz, dt, weight, self.ridge)
        sig = profile_sigma(dz - f * dt.unsqueeze(-1), dt, weight)
        return (weight * euler_log_density(dz, f, sig.unsqueeze(1), dt)).sum(1)

    def _level_glr(self, sde, zw, hw, dzw, dtw, ww, pooled_args, pw) -> torch.Tensor:
        """Level-only GLR per candidate: drift ``a + W^T [z, h]`` with slopes ``W`` shared by the
        whole series and the intercept ``a`` free on each side of ``tau``, against one
        intercept; diffusion pooled and profiled. The level alternative uses the linear part of
        the features only, also with learned features: their extra slopes are estimated far
        less precisely from short windows and would drown a level shift in noise (this makes
        ``features=2`` as good as ``features=0`` on the mean family). One degree of freedom
        per channel:
        ``S = sum_c N / 2 log(RSS_one / RSS_two)``. ``W`` is the median of the per-window
        least-squares slopes, jackknife bias-corrected, over the windows whose sample variance
        of the state is not inflated (stored as ``level_slopes_``): a window that
        straddles a level shift ``delta`` has its state variance inflated by about
        ``delta^2 p (1 - p)`` (``p`` the fraction after the shift) and its slope pulled towards a
        unit root, so windows whose variance exceeds 3 times the median window's are left out.
        In a stationary series almost no window is that far out, so the median stays unbiased
        (keeping only the low-variance half would bias the slopes towards strong mean
        reversion, as low sample variance and a steep fitted slope go together, and make the
        level test over-reject).
        """
        lin = slice(1, 1 + 2 * zw.shape[-1])  # [z, h]: the linear part of the features
        x = sde.features(zw, hw)[..., lin]
        half = x.shape[1] // 2

        def split(a):
            return torch.cat([a[:, :half], a[:, half : 2 * half]], 0)

        # per-window least squares, bias-corrected by the split-panel jackknife (Dhaene &
        # Jochmans 2015: short windows overstate mean reversion by O(1/window)), then the median
        # over windows: robust to the windows that straddle a change, where a level shift would
        # otherwise pull every pooled slope estimate towards a unit root
        phi = torch.cat([torch.ones_like(x[..., :1]), x], -1)
        full = fit_heads(phi, dzw, dtw, ww, self.ridge)[:, 1:]
        parts = fit_heads(split(phi), split(dzw), split(dtw), split(ww), self.ridge)[:, 1:]
        k = full.shape[0]
        jackknifed = 2 * full - 0.5 * (parts[:k] + parts[k:])
        spread = (ww.unsqueeze(-1) * (zw - zw.mean(1, keepdim=True)).square()).sum((1, 2))
        spread = spread / ww.sum(1).clamp_min(1.0)
        slopes = jackknifed[spread <= 3.0 * spread.median()].median(0).values
        self.level_slopes_ = slopes
        z, h, dz, dt = pooled_args[:4]
        r = dz - (sde.features(z, h)[..., lin] @ slopes) * dt.unsqueeze(-1)
        w = self.window_
        side = torch.zeros_like(pw)
        side[:, w:] = 1.0

        def rss(mask):
            m = (pw * mask).unsqueeze(-1)
            a = (m * r).sum(1, keepdim=True) / (m * dt.unsqueeze(-1)).sum(1, keepdim=True)
            return (m * (r - a * dt.unsqueeze(-1)).square() / dt.unsqueeze(-1)).sum(1)

        two = rss(side) + rss(1.0 - side)
        one = rss(torch.ones_like(pw))
        return (0.5 * pw.sum(1, keepdim=True) * torch.log(one / two.clamp_min(1e-30))).sum(1)

    def _chi2_pen(self, dof: int, n: int) -> float:
        """Half the chi-square(dof) quantile at ``AUTO_PEN_ALPHA / n_candidates`` (Bonferroni)."""
        from scipy.stats import chi2

        return 0.5 * float(chi2.isf(AUTO_PEN_ALPHA / (n - 2 * self.window_ + 1), dof))

    @staticmethod
    def _window_loglik(sde, zw, hw, dzw, dtw, ww) -> torch.Tensor:
        """Euler log-likelihood of each window under its own fitted SDE: ``(windows,)``."""
        k = torch.arange(zw.shape[0])
        f = sde.drift(zw, hw, k)
        return (ww * euler_log_density(dzw, f, sde.log_sigma.exp().unsqueeze(1), dtw)).sum(1)

    def _log_ratio(self, sde, zw, hw, dzw, dtw, ww, own, other) -> torch.Tensor:
        """``sum_i log p_own(transition_i) - log p_other(transition_i)`` over window ``own``."""
        z, h, dz, dt, wt = zw[own], hw[own], dzw[own], dtw[own], ww[own]
        f_own, f_oth = sde.drift(z, h, own), sde.drift(z, h, other)
        s_own, s_oth = sde.log_sigma[own].exp(), sde.log_sigma[other].exp()
        if self.estimator == "symmetric":
            lr = euler_log_density(dz, f_own, s_own.unsqueeze(1), dt) - euler_log_density(
                dz, f_oth, s_oth.unsqueeze(1), dt
            )
        else:
            pooled = ((s_own.square() + s_oth.square()) / 2).sqrt()
            lr = girsanov_log_ratio(dz, f_own, f_oth, pooled.unsqueeze(1), dt)
        return (wt * lr).sum(1)

    # ------------------------------------------------------------------ predict
    def default_pen(self) -> float:
        """The ``"auto"`` penalty: ``AUTO_PEN_PER_DOF * dof * log(number of windows)``, with
        ``dof`` the free parameters of one window SDE (``WindowSDE.dof``)."""
        self._check_fitted()
        scale = 1.0 if self.estimator == "glr" else 4.0
        return scale * self._chi2_pen(self.dof_, self.n_samples_)

    def _check_fitted(self) -> None:
        if not hasattr(self, "score_"):
            raise NotFittedError("LatentSDEChangeDetector is not fitted yet; call fit(signal)")

    def predict(self, pen: float | None = None, n_bkps: int | None = None,
                search: str = "peaks") -> list[int]:  # fmt: skip
        """Breakpoints in the ruptures convention: sorted indices (first index of each new
        segment, counted in observed samples), the last being ``n``.

        Exactly one of ``pen`` (a score threshold, nats) and ``n_bkps`` may be given; with
        neither, the detector's ``pen`` (``"auto"`` -> ``default_pen()``) is used, and if that
        is None a ValueError asks for one.

        ``search``: ``"peaks"`` (default): peaks of ``score_`` at least ``min_distance`` apart;
        ``"binseg"``, ``"bottomup"`` or ``"pelt"``: ruptures' search with the fitted SDEs'
        segment likelihood as its cost (:meth:`cost`; segments down to its ``min_size``, so
        changes near the ends are found), with ``pen`` in nats per breakpoint (``"auto"``:
        :meth:`SDECost.default_pen`); ``"pelt"`` takes ``pen`` only. With several changes
        the searches beat peak picking, whose windows blur changes closer than a window.
        """
        self._check_fitted()
        if search not in SEARCHES:
            raise ValueError(f"search must be one of {SEARCHES}; got {search!r}")
        if pen is not None and n_bkps is not None:
            raise ValueError(
                f"give either pen or n_bkps, not both; got pen={pen!r}, n_bkps={n_bkps!r}"
            )
        if n_bkps is not None and (
            not isinstance(n_bkps, (int, np.integer)) or isinstance(n_bkps, bool) or n_bkps < 0
        ):
            raise ValueError(f"n_bkps must be a non-negative integer; got {n_bkps!r}")
        if pen is None and n_bkps is None:
            if self.pen is None:
                raise ValueError(
                    "one of pen or n_bkps is required (the detector was built with pen=None); "
                    "got neither"
                )
            pen = "auto" if self.pen == "auto" else float(self.pen)
        if search != "peaks":
            return self._search(search, pen, n_bkps)
        if pen == "auto":
            pen = self.default_pen()
        if pen is not None and not np.isfinite(pen):
            raise ValueError(f"pen must be a finite number; got {pen!r}")
        dist = self.window_ if self.min_distance is None else int(self.min_distance)
        peaks = pick_peaks(self.score_.values, dist, pen=pen, n_bkps=n_bkps)
        self.pen_ = pen
        self.bkps_ = [*peaks, self.n_samples_]
        return list(self.bkps_)

    def cost(self):
        """The fitted SDEs' segment likelihood as a ruptures cost (:class:`SDECost`), fitted on
        this detector's series: its latent size, ridge, time stamps and (``features > 0``)
        learned drift features."""
        from neuralsde.changepoint.cost import SDECost

        self._check_fitted()
        feats = self.dynamics_.features if self.features > 0 else None
        cost = SDECost(self.latent_dim, self.ridge, times=self.series_.times, features=feats)
        return cost.fit(self.series_.values)

    def _search(self, search, pen, n_bkps) -> list[int]:
        """:meth:`predict` with a ruptures search; ``pen``: a number, ``"auto"`` or None."""
        import ruptures as rpt

        if search == "pelt" and n_bkps is not None:
            raise ValueError("search='pelt' takes pen, not n_bkps; use 'binseg' or 'bottomup'")
        cost = self.cost()
        if pen == "auto":
            pen = cost.default_pen(AUTO_PEN_ALPHA)
        if pen is not None and not np.isfinite(pen):
            raise ValueError(f"pen must be a finite number; got {pen!r}")
        algo = {"binseg": rpt.Binseg, "bottomup": rpt.BottomUp, "pelt": rpt.Pelt}[search]
        fitted = algo(custom_cost=cost, jump=1).fit(cost.signal)
        try:
            bkps = fitted.predict(pen=pen) if n_bkps is None else fitted.predict(n_bkps=n_bkps)
        except rpt.exceptions.BadSegmentationParameters:
            raise ValueError(
                f"n_bkps={n_bkps} segments of at least {cost.min_size} observations do not fit "
                f"in {self.n_samples_}"
            ) from None
        self.pen_ = pen
        self.bkps_ = [int(b) for b in bkps]
        return list(self.bkps_)

    def fit_predict(self, signal, times=None, pen=None, n_bkps=None, search="peaks"):
        """``fit(signal, times).predict(pen, n_bkps, search)``: the breakpoints of one
        series.

        For many series, pass an xarray object with a ``series`` dimension (in memory, or
        dask-backed and chunked along ``series``: then computed lazily, chunk by chunk, on
        dask's workers). Each series gets its own fit (a clone of this detector, seeded with
        ``random_state``) and the result is a boolean ``DataArray (series, time)`` on the
        object's time coordinate, True where a new segment begins.

        Example:
            >>> import numpy as np, xarray as xr
            >>> rng = np.random.default_rng(0)
            >>> x = np.concatenate([rng.normal(0, 1, (3, 150)), rng.normal(0, 3, (3, 150))], 1)
            >>> fleet = xr.DataArray(x, dims=("series", "time"))
            >>> det = LatentSDEChangeDetector(window=40, random_state=0)
            >>> starts = det.fit_predict(fleet, n_bkps=1)
            >>> starts.dims, [int(np.flatnonzero(row)[0]) for row in starts.values]
            (('series', 'time'), [150, 150, 150])
        """
        if _fleet(signal):
            if times is not None:
                raise ValueError("times: an xarray fleet carries its times in its time "
                                 "coordinate; pass times=None")  # fmt: skip
            if is_chunked(signal):
                return chunked_predict(self, signal, "changes", name="signal", stamps=False,
                                       pen=pen, n_bkps=n_bkps, search=search)  # fmt: skip
            return self._predict_block("changes", signal, None, pen=pen, n_bkps=n_bkps,
                                       search=search)  # fmt: skip
        return self.fit(signal, times).predict(pen=pen, n_bkps=n_bkps, search=search)

    def _predict_block(self, kind, X, stamps, pen=None, n_bkps=None, search="peaks"):
        """Change starts ``(series, time)`` of every series of ``X`` (:meth:`fit_predict`)."""
        from sklearn.base import clone
        from tqdm.auto import tqdm

        dim = "time"
        if dim not in X.dims:
            raise ValueError(f"signal has dims {tuple(X.dims)}; a fleet needs a {dim!r} "
                             f"dimension")  # fmt: skip
        coord = np.asarray(X[dim].values) if dim in X.coords else np.arange(X.sizes[dim])
        out = np.zeros((X.sizes["series"], len(coord)), dtype=bool)
        labels = X["series"].values if "series" in X.coords else np.arange(X.sizes["series"])
        for i in tqdm(range(len(labels)), desc="change points", disable=not self.progress):
            det = clone(self).set_params(progress=False)
            one = X.isel(series=i)
            if "series" in one.coords:
                one = one.drop_vars("series")
            bkps = det.fit(one).predict(pen=pen, n_bkps=n_bkps, search=search)
            out[i, np.searchsorted(coord, det.to_times(bkps))] = True
        return xr.DataArray(out, dims=("series", dim), coords={"series": labels, dim: coord},
                            name="change_start")  # fmt: skip

    def to_times(self, bkps) -> np.ndarray:
        """The user's time stamps (datetime64 for datetime data) at which the segments of
        ``bkps`` (ruptures indices; the final ``n`` is left out) begin.

        Example:
            >>> import numpy as np, pandas as pd
            >>> rng = np.random.default_rng(0)
            >>> s = pd.Series(np.r_[rng.normal(0, 1, 150), rng.normal(0, 3, 150)],
            ...               index=pd.date_range("2024-01-01", periods=300, freq="h"))
            >>> det = LatentSDEChangeDetector(window=40, random_state=0).fit(s)
            >>> det.to_times(det.predict(n_bkps=1)).dtype.kind
            'M'
        """
        self._check_fitted()
        idx = [int(b) for b in bkps if int(b) < self.n_samples_]
        return np.asarray(self.series_.coord)[idx]

    # ------------------------------------------------------------------ persistence
    _fitted_json = ("window_", "n_samples_", "dof_", "seasonal_")
    _fitted_extra = ("series",)
    _modules = ()
    _fitted_marker = "score_"

    def _fitted_state(self):
        state, tensors = super()._fitted_state()
        s = self.series_
        coord = np.asarray(s.coord)
        dated = np.issubdtype(coord.dtype, np.datetime64)
        state["series"] = {"channels": s.channels, "coord_dtype": str(coord.dtype),
                           "estimator": self.score_.attrs.get("estimator")}  # fmt: skip
        tensors["score"] = torch.as_tensor(self.score_.values)
        tensors["times"] = torch.as_tensor(s.times)
        tensors["values"] = torch.as_tensor(s.values)
        tensors["coord"] = torch.as_tensor(
            coord.astype("datetime64[ns]").astype(np.int64) if dated else coord.astype(float)
        )
        return state, tensors

    def _restore(self, state, tensors):
        info = state.pop("series")
        super()._restore(state, {})
        kind = np.dtype(info["coord_dtype"])
        coord = tensors["coord"].numpy()
        coord = coord.astype("datetime64[ns]").astype(kind) if kind.kind == "M" else coord
        self.series_ = Series(times=tensors["times"].numpy(), values=tensors["values"].numpy(),
                              coord=coord, channels=info["channels"])  # fmt: skip
        self.score_ = self._score_array(tensors["score"].numpy(), coord, self.window_)

    def _build_modules(self):
        """No module is saved: ``predict`` needs the score alone (``dynamics_`` and
        ``latent_map_`` exist after ``fit`` only)."""

    def _score_array(self, score, coord, window):
        return xr.DataArray(
            score, dims=("time",), coords={"time": coord}, name="score",
            attrs={"long_name": "log-likelihood ratio of the left/right window SDEs",
                   "units": "nats", "estimator": self.estimator, "window": window},
        )  # fmt: skip

    # ------------------------------------------------------------------ plot
    def plot(self, bkps=None, true_bkps=None, axes=None):
        """Plot the signal with the breakpoints ``bkps`` (solid; default: ``predict()`` with
        the detector's own penalty) and ``true_bkps`` (dashed) above the score.

        Both are ruptures-style indices (the final ``n`` may be included). Returns the
        matplotlib figure.
        """
        import matplotlib.pyplot as plt

        self._check_fitted()
        pen = None
        if bkps is None:
            bkps, pen = self.predict(), self.pen_
        bkps = list(bkps)
        if axes is None:
            fig, axes = plt.subplots(2, 1, sharex=True, figsize=(9, 4.5), height_ratios=[2, 1])
        else:
            fig = axes[0].figure
        x = np.asarray(self.series_.coord)
        if not (np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.datetime64)):
            x = np.arange(self.n_samples_)
        axes[0].plot(x, self.series_.values, lw=0.8)
        axes[0].set_ylabel("signal")
        axes[1].plot(x, self.score_.values, color="k", lw=1)
        axes[1].set_ylabel("score (nats)")
        axes[1].set_xlabel("time")
        if pen is not None:
            axes[1].axhline(pen, color="tab:red", lw=0.8, ls=":", label="penalty")
        for b in bkps:
            if b < self.n_samples_:
                for ax in axes:
                    ax.axvline(x[b], color="tab:red", lw=1.2)
        for b in [] if true_bkps is None else list(true_bkps):
            if b < self.n_samples_:
                for ax in axes:
                    ax.axvline(x[b], color="tab:green", lw=1.2, ls="--")
        axes[0].set_title("LatentSDEChangeDetector: detected (red), true (green dashed)")
        fig.tight_layout()
        return fig


def _fleet(signal) -> bool:
    """Whether ``signal`` is an xarray object of many series (a ``series`` dimension)."""
    return type(signal).__module__.startswith("xarray") and "series" in signal.dims
