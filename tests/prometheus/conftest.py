"""The suite that needs Debian's `prometheus` package (`promtool` and the server itself).

Not part of the default `python -m pytest` (pyproject.toml ignores this folder), since a new
user's machine may not have the package; `.ci/run` installs it and runs
`python -m pytest tests/prometheus`. Without the package these tests fail, naming it: they
are never skipped.
"""

from __future__ import annotations

import shutil

import pytest


@pytest.fixture(scope="session")
def promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool is missing: install Debian's prometheus package (apt-get install prometheus)"
    return found


@pytest.fixture(scope="session")
def prometheus_server() -> str:
    found = shutil.which("prometheus")
    assert found, "prometheus is missing: install Debian's prometheus package (apt-get install prometheus)"
    return found
