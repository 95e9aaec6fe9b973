"""The attack and fault table of issue 14: each row a test named after the behaviour
that must hold. The sandbox fixtures are the integration tests' own."""

from tests.integration.conftest import *  # noqa: F403
