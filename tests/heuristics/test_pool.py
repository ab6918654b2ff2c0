"""The heuristic's image pool (`heuristics.pool`): pixels made on demand are the very values the float64
loader gives, the block-wise outputs equal one forward pass over the whole pool (to rounding: BLAS may sum
a block in another order), and the pool starts are the same from a pool and from the plain array."""

from __future__ import annotations

import numpy as np
import pytest

from advmilp.heuristics import pool as pool_module
from advmilp.heuristics.pool import ImagePool
from advmilp.heuristics.primal import pool_starts
from advmilp.nn.network import load_network
from advmilp.spec.problems import ProblemSpec, criteria, input_box
from tests.nets import mnist_dir, random_net


def test_pixels_are_codes_over_the_divisor_and_outputs_span_every_block(monkeypatch):
    monkeypatch.setattr(pool_module, "BLOCK", 7)        # several blocks and a short last one (50 = 7·7 + 1)
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 256, size=(50, 6), dtype=np.uint8)
    pool = ImagePool(codes, 255.0)
    assert len(pool) == 50 and pool.shape == (50, 6)
    assert pool.pixels([3, 0]).tolist() == (codes[[3, 0]] / 255.0).tolist()
    net = random_net([6, 5, 3], seed=1)
    # equal to one pass over all rows up to BLAS' blocking (its sums may run in another order)
    assert np.allclose(pool.outputs(net), net.forward(codes / 255.0), rtol=0, atol=1e-12)
    assert pool.outputs(net) is pool.outputs(net)       # kept per network


def test_an_array_is_a_pool_of_its_pixels():
    x = np.random.default_rng(1).random((9, 4))
    pool = ImagePool.of(x)
    assert np.array_equal(pool.pixels(), x) and ImagePool.of(pool) is pool
    with pytest.raises(ValueError):
        ImagePool(np.zeros(4))


def test_the_mnist_pool_is_the_float_training_set_and_starts_are_unchanged():
    root = mnist_dir()
    if root is None:
        pytest.skip("MNIST not found (set ADVMILP_DATA)")
    from advmilp.data.mnist import load_split
    from advmilp.methods.registry import POOL_SIZE, load_pool

    pool = load_pool(root)
    floats = load_split("train", root, rows=slice(0, POOL_SIZE)).images
    rows = np.array([0, 17, 4242, POOL_SIZE - 1])
    assert np.array_equal(pool.pixels(rows), floats[rows])
    net = load_network("dnn1")
    assert np.allclose(pool.outputs(net), net.forward(floats), rtol=0, atol=1e-12)
    x_bar = load_split("test", root, rows=slice(0, 1)).images[0]
    spec = ProblemSpec(kind="targeted", ratio=1.2)
    x_lb, x_ub = input_box(spec, 784, x_bar)
    criterion = criteria(spec, 7, 10)[0]
    a = pool_starts(net, x_bar, criterion, spec.margin, pool, x_lb, x_ub)
    b = pool_starts(net, x_bar, criterion, spec.margin, floats, x_lb, x_ub)
    assert len(a) == len(b) > 0 and all(np.array_equal(p, q) for p, q in zip(a, b))


def test_outputs_are_kept_on_disk_per_network_and_a_bad_file_is_recomputed(tmp_path):
    rng = np.random.default_rng(2)
    codes = rng.integers(0, 256, size=(30, 6), dtype=np.uint8)
    net, other = random_net([6, 5, 3], seed=1), random_net([6, 4, 3], seed=2)
    first = ImagePool(codes, 255.0, tmp_path, "k1")
    out = first.outputs(net)
    path = first.cache_file(net.content_hash())
    assert path.is_file() and np.array_equal(np.load(path), out)
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".tmp"] == []
    # a new process' pool with the same key reads the file: (zeroed codes would give other outputs)
    again = ImagePool(np.zeros_like(codes), 255.0, tmp_path, "k1")
    assert np.array_equal(again.outputs(net), out)
    assert not np.array_equal(again.outputs(other), other.forward(codes / 255.0))   # per network
    # another key, no cache: computed
    assert np.allclose(ImagePool(codes, 255.0, tmp_path, "k2").outputs(net), out, rtol=0, atol=1e-12)
    assert ImagePool(codes, 255.0).cache_file(net.content_hash()) is None
    # a truncated or misshapen file is recomputed and replaced
    path.write_bytes(path.read_bytes()[:40])
    assert np.allclose(ImagePool(codes, 255.0, tmp_path, "k1").outputs(net), out, rtol=0, atol=1e-12)
    np.save(path, np.zeros((3, 3)))
    assert np.allclose(ImagePool(codes, 255.0, tmp_path, "k1").outputs(net), out, rtol=0, atol=1e-12)
    assert np.load(path).shape == (30, 3)


def test_a_cache_that_cannot_be_written_is_skipped(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    codes = np.random.default_rng(3).integers(0, 256, size=(5, 6), dtype=np.uint8)
    net = random_net([6, 5, 3], seed=1)
    pool = ImagePool(codes, 255.0, blocker / "cache", "k")
    assert np.allclose(pool.outputs(net), net.forward(codes / 255.0), rtol=0, atol=1e-12)


def test_pool_starts_bisect_to_the_boundary_of_the_nearest_images_that_meet_the_criterion():
    # one linear unit y0 = x0 + x1, y1 = 1 (a ReLU net whose hidden unit stays active on [0, 1]²), criterion
    # y0 ≥ 1 (G = [1, 0], h = 1): from x̄ = 0 towards c the boundary is at t = 1 / (c0 + c1)
    from advmilp.spec.problems import Criterion

    net = random_net([2, 1, 2], seed=0)
    net.layers[0].W[:] = [[1.0, 1.0]]
    net.layers[0].b[:] = 0.0
    net.layers[1].W[:] = [[1.0], [0.0]]
    net.layers[1].b[:] = [0.0, 1.0]
    crit = Criterion(winner=0, G=np.array([[1.0, 0.0]]), h=np.array([1.0]))
    images = np.array([[0.9, 0.9], [0.2, 0.3], [1.0, 0.5], [0.8, 0.8], [1.0, 1.0]])   # row 1 does not meet it
    x_bar = np.zeros(2)
    starts = pool_starts(net, x_bar, crit, 0.0, images, np.zeros(2), np.ones(2), n_candidates=3, steps=40)
    # the three nearest that meet it, nearest first: [1, .5] (L1 1.5), [.8, .8] (1.6), [.9, .9] (1.8)
    assert len(starts) == 3
    for x, c in zip(starts, ([1.0, 0.5], [0.8, 0.8], [0.9, 0.9])):
        t = 1.0 / sum(c)
        assert x == pytest.approx(t * np.array(c), abs=1e-9)
        assert crit.slack(net.forward(x)) > 0           # on the criterion's side, by bisection's last step
