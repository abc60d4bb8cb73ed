import os
import sys

# Make the checkout importable without installation (CI installs anyway).
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from hypothesis import HealthCheck, settings  # noqa: E402

# CI is deterministic (the same examples every run: a red CI names a change, not a dice roll);
# "dev" and "thorough" draw new examples each run and are where hypothesis explores
settings.register_profile("ci", max_examples=40, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


def pytest_sessionstart(session):
    """Drop the judges' per-day material from days no run will read again (disk stays bounded)."""
    if hasattr(session.config, "workerinput"):
        return  # the controller prunes once; workers start after it
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools"))
    import daycache  # tools/ is not a package; imported here, after its path is set
    daycache.prune("/var/tmp", prefix="nuwa-")
    daycache.prune("/var/tmp/nuwa-trees")
