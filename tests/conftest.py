import os
import sys

# Make the checkout importable without installation (CI installs anyway).
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

import debian_tree  # noqa: E402

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


@pytest.fixture
def tmp_path(tmp_path):
    """pytest's ``tmp_path``, with the tree copies made in it (``debian_tree.copy_tree``: overlay
    mounts) unmounted before pytest removes it."""
    yield tmp_path
    debian_tree.release_copies(str(tmp_path))


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session):
    """Every tree copy still mounted (those of module- and session-wide fixtures) is unmounted
    before pytest removes the base directory they live in."""
    debian_tree.release_copies()
