"""Fixtures, and a model store of the tests' own (helpers the tests share live in tests/helpers.py)."""

import os
import tempfile
from pathlib import Path

import pytest

from tabpipe.data.schema import Schema
from tests.helpers import TOY, make_project


def pytest_configure(config: pytest.Config) -> None:
    """BentoML reads BENTOML_HOME once per process: keep the tests' model store out of ~/bentoml."""
    os.environ["BENTOML_HOME"] = tempfile.mkdtemp(prefix="tabpipe-bentoml-")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A fresh git repository holding a copy of the project, committed, with no outputs yet."""
    return make_project(tmp_path / "repo")


@pytest.fixture
def toy() -> Schema:
    return TOY
