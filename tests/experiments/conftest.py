"""Fixtures of the batch tests (the plain helpers are in `tests/experiments/batch.py`)."""

import pytest

from tests.experiments.batch import tiny_net_file


@pytest.fixture
def tiny_models(tmp_path):
    """A small random 784-6-5-10 network saved as a .npz 'architecture'."""
    return tiny_net_file(tmp_path / "models" / "tiny.npz")
