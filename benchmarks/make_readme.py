"""Rebuild benchmarks/README.md from the result tables in benchmarks/results/*.md."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent

SECTIONS = [
    (
        "Solver core vs torchsde (issue #2)",
        "solver_vs_torchsde",
        "`python benchmarks/solver_vs_torchsde.py`: batch 256, state 32, MLP drift and diffusion "
        "of width 64 (2 hidden layers), 100 Euler steps on [0, 1], float32, CPU, 1 torch thread; "
        "torchsde with its default Brownian source. Forward is timed under `no_grad`; "
        "forward + backward includes the graph and `.backward()`. The overhead row compares "
        "`solve` with 100 bare `f_and_g` calls, timed in alternation.",
    ),
    (
        "Reversible adjoint memory (issue #2)",
        "memory_reversible",
        "`python benchmarks/memory_reversible.py`: growth of the peak resident set of a fresh "
        "process over one forward + backward pass (neural SDE, batch 1024, state 32, float64, "
        "reversible Heun).",
    ),
    (
        "Adaptive steps: embedded-error PI controller vs step doubling (issue #12)",
        "adaptive_steps",
        "`python benchmarks/adaptive_steps.py`: drift and diffusion evaluations needed for the "
        "same strong error at the final time (batch 256, float64, one torchsde Brownian interval "
        "per problem shared by every run, tolerances swept from 1e-1 to 1e-5, read off each "
        "curve by log-log interpolation). Step doubling spends three steps per attempt and keeps "
        "the two half steps, so where even steps are best it costs 3 method steps for every 2 "
        "of the PI controller at the same accuracy: the ratio sits near 1.5, above it only by "
        "the rejections the PI controller avoids.",
    ),
    (
        "Latent SDE: one grid per series vs the union grid (issue #12)",
        "latent_series_grids",
        "`python benchmarks/latent_series_grids.py`: `latent_irregular_fit.py` (OU, 32 series "
        "x 100 irregular times, 50% of the points dropped and held out with the last 10% of the "
        "span, 100 epochs, 1 thread) with every series on its own times (the default) and with "
        "`--union` (a mini-batch on the union of its series' times, the pre-#12 grid). With "
        "shared times each series' own grid is the union grid, so the two fits are the same "
        "(tests check the ELBOs agree to round-off); with times of their own, the union of a "
        "batch of B series has B times as many stamps.",
    ),
    (
        "Stable neural SDEs on seven UEA/UCR sets (issue #13)",
        "stable_uea7_summary",
        "`python benchmarks/stable_uea.py --stage tune grid` (and `--grid-variant defaults`, "
        "`--stage ablation`): missing rates 0, 0.3, 0.5 and 0.7 (points dropped per channel, "
        "seeded), 70/15/15 stratified splits, test split used for nothing else; 2-core VM, one "
        "thread per run, seeds 0-2 unless `n` says otherwise. `defaults` is `SDEClassifier("
        "kind=...)` with no other setting (the `adamw` protocol: AdamW at lr 1e-2, patience 20, "
        "batches of 16 on these five sets; the batch rule of issue #14 gives ItalyPowerDemand "
        "64, see the batch-size section and its current-defaults headline); OSULeaf and ACSF1 "
        "(427 and 1,460 steps per series) were not run under the defaults. `tuned` is the "
        "Optuna search under the `adamw` protocol (`results/stable_uea7_tuning.json`: 20 trials "
        "of 10 epochs per set and model on the seed-0 validation split at rate 0, successive "
        "halving), trained fully; it covers BasicMotions and ArrowHead at rates 0 and 0.7 "
        "(3 seeds) and, for seed 0, the cells that finished. `tuned, reference protocol` is "
        "the search and training with the reference code's protocol (Adam, StepLR, N/2 batch) "
        "on all seven sets. The screen below is the validation evidence the defaults were "
        "chosen on; per-data-set tables, the ablation on BasicMotions and ArrowHead and the "
        "tuned configurations are in `results/stable_uea7.md`.",
    ),
    (
        "Stable neural SDEs: the default batch size (issue #14)",
        "stable_uea7_batch",
        "`python benchmarks/stable_uea_batch.py` (the runs it reads are listed in its "
        "docstring). The reference's N/2 rule lost on validation on the three smaller sets, "
        "where it leaves two to four steps per epoch, and won on ItalyPowerDemand; the largest "
        "batch that leaves at least 8 steps per epoch keeps 16 on the small sets and took "
        "ItalyPowerDemand from 0.864 to 0.943 mean validation accuracy, twice as fast. It is "
        'the default of `schedule="adamw"`.',
    ),
    (
        "Stable neural SDEs: one epoch vs torchsde (issue #4)",
        "stable_epoch_vs_torchsde",
        "`python benchmarks/stable_epoch_vs_torchsde.py --epochs 5`: LNSDE classifier in the "
        "reference architecture (the estimator's default encoder and head), BasicMotions "
        "training split at missing rate 0.3 (56 series), batch 16, hidden 32, 99 Euler steps, "
        "CPU, 1 thread. `neuralsde.solve` tabulates X(t), the drift's first layer and sigma(t) "
        "on the step grid once per solve; the hand-written loop evaluates the model without "
        "those tables and is slower than `solve`. The 5x target against reference-style "
        "training is not reached: the profile below shows what bounds it.",
    ),
    (
        "Stable neural SDEs: where an epoch's time goes (issue #13)",
        "stable_epoch_profile",
        "`python benchmarks/stable_epoch_vs_torchsde.py --epochs 5 --profile`: the epoch above "
        "under `torch.profiler`. Per solver step the model runs a handful of small matrix "
        "products (batch 16, width 32) forward and twice as many backward; the epoch is a few "
        "thousand such operators, each costing about as much in dispatch as in arithmetic, and "
        "torchsde's own loop adds its overhead on top of the same operators. That is the bound "
        "on the speed-up an integrator can show here.",
    ),
    (
        "Stable neural SDEs: one epoch vs torchsde on an H100 (issue #4)",
        "stable_epoch_vs_torchsde_cuda",
        "`python benchmarks/stable_epoch_vs_torchsde.py --device cuda`, same settings (run "
        "before the hand-written-loop row was added).",
    ),
    (
        "Stable neural SDEs on UEA/UCR data (issue #4)",
        "stable_uea",
        "`python benchmarks/stable_uea.py --jobs 2`: missing-rate protocol, 70/15/15 splits, 5 "
        "seeds, the same settings for every model (hidden 32, lr 1e-2, batch 16, at most 100 "
        "epochs, patience 20), test split used for nothing else; 2-core VM. Earlier runs, the "
        "protocol details and the reading against the issue's targets are in "
        "`results/stable_uea_report.md`.",
    ),
    (
        "Stable neural SDEs: validation sweep of training settings (issue #4)",
        "stable_uea_val_sweep",
        "`python benchmarks/stable_uea_sweep.py --jobs 16 --head linear` (16-core CPU host) and "
        "`--configs base --head mlp --jobs 2` (2-core VM). With the linear read-out used before "
        "2026-11-22, no training setting lifts LSDE/LNSDE/GSDE at missing rate 0.7 to within 10 "
        "points of rate 0, and the defaults (`base`) have the best mean validation accuracy. "
        "The read-out did: one hidden layer on tanh(z_T), as in Oh, Lim & Kim's classifiers, "
        "takes the mean validation accuracy from 0.842 to 0.903 (LSDE and LNSDE at rate 0.7: "
        "0.78 and 0.75 to 0.92 and 0.93). It is now the default head; the UEA tables above use it.",
    ),
    (
        "Latent SDE training step vs torchsde (issue #5)",
        "latent_vs_torchsde",
        "`python benchmarks/latent_vs_torchsde.py --iters 6 --batch 32 128 256 1024`. "
        "torchsde's example trains at batch 1024; there both sides spend their time in the same "
        "matrix products (in a neuralsde iteration, matrix products take about 70% and the GRU "
        "encoder alone 28%), so the per-step overhead that neuralsde removes matters less and the "
        "speed-up falls to 1.6-1.9x.",
    ),
    ("Latent SDE adjoint memory (issue #5)", "latent_adjoint_memory", ""),
    ("Latent SDE on irregular OU data (issue #5)", "latent_irregular_fit_ou", ""),
    (
        "Hurst index recovery (issues #5 and #20)",
        "hurst_recovery",
        "`python benchmarks/hurst_recovery.py`: one configuration on the benchmark data and on "
        "fOU data with other parameters. The posterior is the backward filter "
        '(`posterior="backward_filter"`, the default with fractional noise): a Gaussian '
        "filter of the linearised prior runs back from the last observation and every Euler "
        "increment is drawn from the prior's, tilted by it, so the posterior sees all later "
        "observations and, for a linear prior, its ELBO is the Euler chain's exact "
        "log-likelihood for every draw (`tests/test_latent_filtered.py`). After the Adam epochs "
        "the fit ends with an L-BFGS polish (`polish='auto'`: half as many evaluations of the "
        "whole training set's ELBO, noise draws held fixed; `neuralsde.train.polish`). Without "
        "it the fast case (theta 3, sigma 0.5, H = 0.7) stopped at 0.548: the exact Kalman "
        "likelihood of the same Markov approximation peaks there at H = 0.70 (theta 3.04; 16 "
        "nats above H = 0.55), but H and the drift network's mean reversion move together along "
        "a ridge (at the fitted drift, theta ~1.35, the ELBO over H peaks at 0.55) that Adam "
        "crawls along (300 epochs: 0.582, still rising); 50 L-BFGS evaluations reach 0.646. "
        "The polish also moves the H = 0.3 estimates down, towards the approximation's own "
        "maximum-likelihood value (0.20 on the benchmark data, next section): what is left of "
        "the error there is the Markov approximation's (K = 5, gamma_max = 20), not the fit's. "
        "Before the polish the neural posterior gave 0.449 / 0.642 and `latent_dim=4` "
        "0.341 / 0.548 on the benchmark data (`--compare` reruns them).",
    ),
    (
        "Hurst index under the exact likelihood of the Markov approximation (issue #5, diagnostic)",
        "hurst_exact_likelihood",
        "`python benchmarks/hurst_exact_likelihood.py`: the same data as the Hurst recovery, "
        "fitted by the exact Kalman likelihood of the linear fOU model with the latent SDE's "
        "MarkovFBM noise (no networks, no variational posterior). It separates the error of the "
        "approximation from the error of variational training.",
    ),
    (
        "Diffusion samplers (issues #6, #15)",
        "diffusion_samplers",
        "`python benchmarks/diffusion_samplers.py`: every sampler and schedule at 5, 10, 20 and "
        "50 score evaluations with the exact score of a Gaussian mixture and with trained "
        "scores, Gotta Go Fast against Euler, and the loop against k-diffusion's.",
    ),
    ("Diffusion on time-series windows (issue #6)", "diffusion_trajectories", ""),
    (
        "Darcy fields, 32 x 32, EDM and DiffusionPDE's protocol (issue #20)",
        "diffusion_darcy_32",
        "`python benchmarks/diffusion_darcy.py --checkpoint models/darcy_score_32.pt --fields "
        "100 --samples 16 --steps 100 --tune --tune-fields 8 --residual-grid 0.1 0.3 "
        "--store-settings`: the EDM-preconditioned model trained on the CPU "
        "(`models/darcy_score_32.md`), EDM's Heun sampler on the Karras schedule, 100 steps "
        "(DiffusionPDE: 2,000); guidance weights chosen with one draw on 8 validation fields "
        "(seed 777), never on the 100 test fields (seed 12345), and stored in the checkpoint as "
        "the defaults of `DarcyFields.sample` / `.estimate`. The estimate averages 16 draws "
        "per field (`DarcyFields.estimate`); DiffusionPDE scores one draw, shown in the last "
        "column. With PDE guidance (residual weight 0.3) one of the 1,600 test draws "
        "diverged at step 84, which ends that row; with one draw per field it had given "
        "0.123 / 0.234 against 0.124 / 0.234 without (the previous run). The checkpoint "
        "therefore stores residual weight 0. "
        "A first run with the residual grid 0.1 / 0.3 / 1 / 3 / 10 chose 1 on the validation "
        "fields (3 and 10 diverged there) and diverged on the test fields, so the grid was "
        "capped at 0.3. The interpolate-then-solve baseline is weaker at 32 x 32 (31 observed "
        "nodes) than at 64 x 64 (123).",
    ),
    (
        "Darcy fields, 64 x 64, the earlier VP model (issue #6)",
        "diffusion_darcy_64",
        "Kept for comparison: the noise-prediction model trained on a GPU in 7 minutes, "
        "sampled with DPM-Solver++(2M); the earlier protocol (obs. guidance, residual for t < "
        "0.2).",
    ),
    ("Change points (issue #7)", "changepoint", ""),
    (
        "Hostile input: fuzzing every public entry point (issue #19)",
        "fuzz_tally",
        "`python benchmarks/fuzz_tally.py [--tree OLD --label before]`: the properties of "
        "`tests/fuzz` (slow profile) run in tally mode; per property, the cases that gave an "
        "obscure error (A), a silently wrong result (B), a hang or runaway allocation (C), "
        "executed untrusted data (D), or behaved (E: a right result, or a clear error naming "
        "the argument). `before` is the tree at 524a980, before issue 19's fixes, measured by "
        "the same properties; each case ran under a 20 s and 3 GiB limit.",
    ),
    (
        "Diffusion: log-densities along the sampling path (issue #17)",
        "diffusion_density",
        "`python benchmarks/diffusion_density.py`: `sample(..., return_logp=True)` (the Itô "
        "density estimator of SuperDiff, Euler-Maruyama) against `log_likelihood` (the "
        "probability-flow ODE, adaptive Heun, rtol = atol = 1e-5) on the same 1,000 final "
        "samples, for exact scores; error against the exact `log p_eps`.",
    ),
    (
        "Diffusion: superposing trained models, OR and AND (issue #17)",
        "diffusion_superpose",
        "`python benchmarks/diffusion_superpose.py`: two score models trained on disjoint "
        "halves of the 2-D test mixture (components 1-2 and 3), combined with OR "
        "(`superpose(..., bias=log masses)`), against the whole mixture; two trained on "
        "N((-1, 0), I/2) and N((1, 0), I/2), combined with AND, against their exact product.",
    ),
    (
        "Diffusion: the flow view, MMD against eps(t) (issue #17)",
        "diffusion_flows",
        "`python benchmarks/diffusion_flows.py`: flow matching (`train_velocity`) on two moons "
        "with the linear and trigonometric interpolants; `sample_flow` with several diffusion "
        "coefficients eps(t) at 20 and 100 network evaluations.",
    ),
    (
        "Diffusion: SDEdit on trajectories (issue #16)",
        "diffusion_sdedit",
        "`python benchmarks/diffusion_sdedit.py`: a score model of OU windows (as in "
        "`diffusion_trajectories.py`) edits 200 piecewise-linear sketches at t0 = 0.2 ... 0.8 "
        "(`neuralsde.diffusion.editing.edit`) and regenerates the middle third of held-out "
        "windows with a mask.",
    ),
    (
        "Diffusion: restoration with a mean-reverting SDE, IR-SDE and MRS (issue #16)",
        "diffusion_restoration",
        "`python benchmarks/diffusion_restoration.py`: OU and stochastic-Lorenz windows of 32 "
        "points degraded two ways, restored by a `MeanRevertingSDE` score model conditioned on "
        "the degraded window (`neuralsde.diffusion.restoration`); IR-SDE is the reverse SDE, "
        "MRS the samplers' exponential integrators on the same VP-type form.",
    ),
    (
        "Diffusion: exact inversion (issue #16)",
        "diffusion_inversion",
        "`python benchmarks/diffusion_inversion.py`: `sample(invert(x0))` round trips.",
    ),
    (
        "Change points: several changes and changes near the ends (issue #20)",
        "changepoint_multi",
        "`python benchmarks/changepoint_multi.py`: the detector's ruptures searches with the "
        "SDE segment cost (`predict(search=...)`, `neuralsde.changepoint.cost.SDECost`) "
        "against its peak picking and ruptures' own costs.",
    ),
    (
        "A real seasonal series with a change near its end (issue #20)",
        "changepoint_seasonal",
        "`python benchmarks/changepoint_seasonal.py`: UK driver deaths (monthly, 192 points, "
        "seat-belt law 23 points from the end) at every method's default penalty, the detector "
        "with and without `seasonal_period=12` against ruptures' Pelt and Binseg.",
    ),
    (
        "Imputation against the Kalman smoother and linear interpolation (issue #20)",
        "imputation_vs_baselines",
        "`python benchmarks/imputation_vs_baselines.py`: OU and stochastic-Lorenz windows at "
        "30/50/70% missing: diffusion imputation, the latent SDE posterior, statsmodels' "
        "Kalman smoother and linear interpolation; the diffusion model's samples and the "
        "latent SDE's prior against held-out windows.",
    ),
    (
        "Forecasts of real gappy series against statsmodels (issue #20)",
        "forecast_vs_statespace",
        "`python benchmarks/forecast_vs_statespace.py`: Mauna Loa CO2 (weekly), the Nile "
        "(annual) and El Nino 1+2 SST (monthly), held out over their last 15% with 30% of the "
        "training points removed; `LatentSDEForecaster` (defaults, the season length given "
        "where there is one) against statsmodels' `UnobservedComponents` and `SARIMAX` and "
        "the seasonal-naive forecast. Four latent variants (Brownian / fractional noise, "
        "without / with `trend=True`) are all shown; no variant is chosen per series. Each "
        "variant with the trend beats the best statsmodels model on two of the three series "
        "(CO2 and El Nino; the Nile, which has no trend, is better served without it, as "
        "statsmodels' local level beats its local linear trend there). The fractional rows "
        "of CO2 and El Nino were fitted before backward-filter fits ended with the L-BFGS "
        "polish (`polish='auto'`, the Hurst section); the Nile's fractional rows are re-fitted "
        "with it and lose: CRPS 104.4 / 107.9 (without / with trend) against 75.6 / 105.9 "
        "before, the polish taking H from 0.20 to 0.12 and the 90% intervals to coverage 1.00. "
        "The Brownian rows, which carry the comparison, have no polish.",
    ),
    (
        "Chunked forecasting with dask (issue #18)",
        "dask_scaling",
        "`python benchmarks/dask_scaling.py`: a `LatentSDEForecaster` (defaults, 10 epochs on "
        "200 series) forecasts 20,000 Ornstein-Uhlenbeck sensors (24 shared irregular times, "
        "25% missing) at 8 future times with 20 posterior samples each: in memory in one "
        "process (torch's 2 threads), and from a dask-backed array chunked by 500 series on a "
        "`dask.distributed` LocalCluster of 1 and 2 worker processes (one thread each) on this "
        "2-core machine. The dask results equal the in-memory ones (max |diff| 0 in this run). "
        "Before the worker's malloc thresholds were raised (`neuralsde/data/chunks.py`), the "
        "same run gave 35 series/s on 1 worker and 63 on 2 (2,000 series): dask's "
        "`MALLOC_TRIM_THRESHOLD_` made torch spend half its time in the kernel.\n\n"
        "**Extrapolation to 64 workers.** Measured here: a chunk of 500 series costs 4.0 s on "
        "one worker core (8 ms per series), and the driver's serial part (the pass that reads "
        "every chunk's time stamps, the one-series probe that shapes the result, building the "
        "graph) 1.8-2.0 s; two workers on two cores reach 1.99x. On 64 one-core workers: "
        "(1) 20,000 series are 2.5 s of compute per worker, so the serial 2 s is close to half "
        "the run (Amdahl: about 35x one worker), and chunks of 500 give only 40 tasks for 64 "
        "workers: use about 4 chunks per worker (80 series each). (2) At 1,000,000 series the "
        "compute (125 s per worker) dwarfs the serial part and scaling is near linear until "
        "the client: `.compute()` gathers about 1.9 KB per series (1.9 GB), so write the "
        "result from the workers with `to_zarr`. (3) The stamps pass reads the input a second "
        "time; on storage-bound data that halves throughput. (4) dask's scheduler spends about "
        "1 ms per task (its documented overhead): keep tasks under about 10^4 (chunks of "
        "1,000+ series at 10^7 series). (5) The model travels inside each task (125 KB here); "
        "a model of hundreds of MB would dominate the traffic and should be scattered once "
        "instead.",
    ),
]


def main() -> None:
    out = [
        "# Benchmarks",
        "",
        "Each script runs neuralsde and its peers side by side in one process and writes",
        "`results/<name>.json` and `results/<name>.md`; `python benchmarks/make_readme.py`",
        "collects the tables below. Machine: the project's 2-core CPU box (shared with other",
        "jobs while some of these ran: ratios are timed in alternation so load hits both sides).",
        "",
    ]
    for title, name, note in SECTIONS:
        table = HERE / "results" / f"{name}.md"
        if not table.exists():
            table = HERE / f"{name}_results.md"
        if not table.exists():
            continue
        out += [f"## {title}", ""]
        if note:
            out += [note, ""]
        text = table.read_text().strip()
        # demote headings inside the tables
        text = "\n".join("#" + line if line.startswith("#") else line for line in text.splitlines())
        out += [text, ""]
    (HERE / "README.md").write_text("\n".join(out))


if __name__ == "__main__":
    main()
