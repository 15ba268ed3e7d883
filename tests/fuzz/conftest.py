"""Hypothesis settings of the fuzz properties: derandomised (the same cases every run), no
example database, no deadline (the harness's time limit takes its place)."""

from hypothesis import HealthCheck, settings

settings.register_profile(
    "fuzz",
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)
settings.load_profile("fuzz")
