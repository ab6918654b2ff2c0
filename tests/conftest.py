"""Shared fixtures (the plain helpers they use are in `tests/nets.py`)."""

from __future__ import annotations

import numpy as np
import pytest

from advmilp.nn.network import Network
from tests.nets import mnist_dir


@pytest.fixture(scope="session")
def mnist_test():
    root = mnist_dir()
    if root is None:
        pytest.skip("MNIST not found (set ADVMILP_DATA)")
    from advmilp.data.mnist import load_split

    return load_split("test", root)


@pytest.fixture
def identity_net() -> Network:
    """2 inputs → 2 ReLU units (identity) → 2 linear outputs (identity)."""
    I = np.eye(2)
    return Network.from_arrays([I, I], [np.zeros(2), np.zeros(2)], metadata={"architecture": "identity"})


@pytest.fixture
def threshold_net() -> Network:
    """h = relu(x0 − 0.5); y0 = 0.5 (bias only), y1 = 4h.  x1 is ignored."""
    W1 = np.array([[1.0, 0.0]])
    b1 = np.array([-0.5])
    W2 = np.array([[0.0], [4.0]])
    b2 = np.array([0.5, 0.0])
    return Network.from_arrays([W1, W2], [b1, b2], metadata={"architecture": "threshold"})


