"""Hypothesis properties for every public entry point (issue 19): ``solve``, the data layer,
the estimators, save/load, ``train.fit``, the detector, ``sample`` and ``log_likelihood``.

Each case runs under a time and a memory limit (:mod:`.harness`), so a hang or a runaway
allocation fails its case instead of the run, and must either return a right result or raise
a clear error naming the user's argument. Profiles: ``ci`` (the default, 500+ cases in about
a minute on 2 cores) and ``slow`` (ten times more: ``NEURALSDE_FUZZ_PROFILE=slow``, set by
``python3 dev.py test --all``). ``benchmarks/fuzz_tally.py`` counts the outcome classes.
"""
