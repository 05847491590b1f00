"""Fixtures of the loss tests: tiny teachers saved once per test run."""

import pytest
from method_lists import ARCHS
from tiny_models import save_teacher


@pytest.fixture(scope="session")
def teachers(tmp_path_factory):
    """(config file, weights) of a tiny random teacher per meta-architecture."""
    d = str(tmp_path_factory.mktemp("teachers"))
    return {arch: save_teacher(d, arch)[:2] for arch in ARCHS}
