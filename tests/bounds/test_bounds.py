"""Bounds contain every sampled activation; tighter methods are never looser; the cache."""

import time

import numpy as np
import pytest

from advmilp.bounds.compute import (compute_bounds, get_bounds, interval_bounds, save_bounds,
                            tighten_bounds)
from advmilp.nn.network import load_network

from tests.nets import SHIPPED, random_net


def sample_inputs(n_in, rng, n=10000):
    """Uniform points, binary corners and sparse points of the unit box."""
    return np.vstack([rng.random((n // 2, n_in)),
                      (rng.random((n // 4, n_in)) < 0.5).astype(float),
                      rng.random((n - n // 2 - n // 4, n_in)) * (rng.random((1, n_in)) < 0.2)])


def test_interval_bounds_by_hand(threshold_net, identity_net):
    b = interval_bounds(threshold_net)
    np.testing.assert_allclose(b.lower[0], [-0.5])
    np.testing.assert_allclose(b.upper[0], [0.5])
    np.testing.assert_allclose(b.lower[1], [0.5, 0.0])
    np.testing.assert_allclose(b.upper[1], [0.5, 2.0])
    assert b.stable_counts() == [(0, 0, 1), (0, 2, 0)]
    b = interval_bounds(identity_net, 0.5, 1.0)
    assert b.stable_counts()[0] == (0, 2, 0)


def test_tightened_bounds_by_hand():
    # h1 = relu(x0), h2 = relu(−x0 + 1) = relu(1 − x0); y = h1 + h2 = 1 exactly on [0, 1].
    from advmilp.nn.network import Network

    net = Network.from_arrays([[[1.0], [-1.0]], [[1.0, 1.0]]], [[0.0, 1.0], [0.0]])
    basic = interval_bounds(net)
    assert basic.lower[1][0] == pytest.approx(0.0) and basic.upper[1][0] == pytest.approx(2.0)
    tight = tighten_bounds(net, "improved")
    assert tight.lower[1][0] == pytest.approx(1.0, abs=1e-4)
    assert tight.upper[1][0] == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("method", ["basic", "improved", "weak"])
def test_random_network_bounds_contain_samples(method):
    net = random_net([12, 8, 6, 5, 3], seed=7)
    rng = np.random.default_rng(0)
    bounds = compute_bounds(net, method, time_limit=1.0)
    x = sample_inputs(12, rng)
    assert bounds.contains(net.preactivations(x))
    basic = interval_bounds(net)
    for lo, up, blo, bup in zip(bounds.lower, bounds.upper, basic.lower, basic.upper):
        assert np.all(lo >= blo - 1e-12) and np.all(up <= bup + 1e-12)


def test_improved_is_tighter_somewhere():
    net = random_net([12, 8, 6, 5, 3], seed=7)
    basic, improved = interval_bounds(net), compute_bounds(net, "improved")
    widths_b = sum(float(np.sum(u - l)) for l, u in zip(basic.lower[1:], basic.upper[1:]))
    widths_i = sum(float(np.sum(u - l)) for l, u in zip(improved.lower[1:], improved.upper[1:]))
    assert widths_i < widths_b


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_bounds_contain_random_and_real_activations(name, mnist_test, tmp_path):
    net = load_network(name)
    rng = np.random.default_rng(1)
    x = np.vstack([sample_inputs(784, rng), mnist_test.images[:1000]])
    pre = net.preactivations(x)
    basic = compute_bounds(net, "basic")
    assert basic.contains(pre)
    for method, tl in (("improved", None), ("weak", 1.0)):
        bounds, hit = get_bounds(net, method, tl)   # shipped cache under results/bounds
        assert bounds.method == method
        assert bounds.contains(pre), f"{name} {method} bounds miss a sampled activation"
        for lo, up, blo, bup in zip(bounds.lower, bounds.upper, basic.lower, basic.upper):
            assert np.all(lo >= blo - 1e-12) and np.all(up <= bup + 1e-12)


def test_cache_hit_and_corruption(tmp_path):
    net = random_net([10, 6, 4, 3], seed=11)
    b1, hit1 = get_bounds(net, "weak", 0.5, cache_dir=tmp_path)
    assert not hit1
    t = time.perf_counter()
    b2, hit2 = get_bounds(net, "weak", 0.5, cache_dir=tmp_path)
    assert hit2 and time.perf_counter() - t < 1.0
    for a, b in zip(b1.upper, b2.upper):
        np.testing.assert_array_equal(a, b)
    # a different time limit is a different cache entry
    _, hit3 = get_bounds(net, "weak", 0.25, cache_dir=tmp_path)
    assert not hit3
    # corrupt the file: detected, warned, recomputed
    path = next(tmp_path.glob("*-weak-tl0.5.npz"))
    path.write_bytes(path.read_bytes()[:100])
    warnings = []
    b4, hit4 = get_bounds(net, "weak", 0.5, cache_dir=tmp_path, warn=warnings.append)
    assert not hit4 and warnings and "recomputing" in warnings[0]
    # tampered values with a stale checksum: detected too
    b4.upper[0] = b4.upper[0] - 1.0
    import json
    with np.load(path) as data:
        meta = json.loads(str(data["meta"]))
    save_bounds(b4, path)
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["meta"] = np.array(json.dumps(meta))   # old checksum, new values
    np.savez(path, **arrays)
    warnings.clear()
    _, hit5 = get_bounds(net, "weak", 0.5, cache_dir=tmp_path, warn=warnings.append)
    assert not hit5 and "checksum" in warnings[0]


def test_cache_of_another_network_is_refused(tmp_path):
    a, b = random_net([10, 6, 3], seed=1), random_net([10, 6, 3], seed=2)
    get_bounds(a, "improved", cache_dir=tmp_path)
    src = next(tmp_path.glob("*.npz"))
    from advmilp.bounds.compute import cache_key
    src.rename(tmp_path / f"{cache_key(b, 'improved', None)}.npz")
    warnings = []
    _, hit = get_bounds(b, "improved", cache_dir=tmp_path, warn=warnings.append)
    assert not hit and "network hash" in warnings[0]
