"""Test-wide settings: hypothesis profiles (``make test`` vs ``make test-thorough``)."""

import os

from hypothesis import HealthCheck, settings

settings.register_profile("default", max_examples=60, deadline=None)
settings.register_profile(
    "thorough", max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("CRMSYNC_HYPOTHESIS_PROFILE", "default"))
