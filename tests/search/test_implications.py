"""Phase implications between first-layer units with equal weight rows (`search.implications`)."""

import numpy as np

from advmilp.nn.activations import ACTIVE, FREE, INACTIVE
from advmilp.search.implications import first_layer_implications


def test_chains_by_hand():
    # units 0, 2, 3 share the row (1, -1) with biases 0.5, -1, 0.5; unit 1 is alone
    W = np.array([[1.0, -1.0], [2.0, 0.0], [1.0, -1.0], [1.0, -1.0]])
    b = np.array([0.5, 0.0, -1.0, 0.5])
    imp = first_layer_implications(W, b)
    assert set(imp.above) == {0, 2, 3}
    assert sorted(imp.above[2]) == [0, 3] and list(imp.below[2]) == []
    assert sorted(imp.below[0]) == [2, 3] and list(imp.above[0]) == [3]     # equal bias: both ways

    ph = np.array([ACTIVE, FREE, FREE, FREE], dtype=np.int8)    # unit 2 active (x1 − x2 ≥ 1) ⇒ 0 and 3
    ph[2] = ACTIVE
    assert list(imp.propagate(ph.copy(), 2)) == [ACTIVE, FREE, ACTIVE, ACTIVE]
    ph = np.array([FREE, FREE, FREE, FREE], dtype=np.int8)
    ph[0] = INACTIVE                                            # x1 − x2 ≤ −0.5 ⇒ 2 and 3 inactive
    assert list(imp.propagate(ph, 0)) == [INACTIVE, FREE, INACTIVE, INACTIVE]
    ph = np.array([FREE, FREE, INACTIVE, ACTIVE], dtype=np.int8)
    assert list(imp.propagate(ph, 2)) == [FREE, FREE, INACTIVE, ACTIVE]   # nothing below unit 2; 3 kept
    assert list(imp.propagate(np.array([FREE, ACTIVE, FREE, FREE], np.int8), 1)) == [FREE, ACTIVE, FREE, FREE]


def test_implied_phases_hold_on_sampled_inputs():
    rng = np.random.default_rng(0)
    row = rng.normal(size=5)
    W = np.vstack([row, rng.normal(size=5), row, row, rng.normal(size=5)])
    b = rng.normal(size=5)
    imp = first_layer_implications(W, b)
    x = rng.uniform(-2, 2, size=(5000, 5))
    pre = x @ W.T + b
    for u in imp.above:
        on = pre[:, u] >= 0
        assert (pre[on][:, imp.above[u]] >= 0).all()
        assert (pre[~on][:, imp.below[u]] < 0).all()


def test_no_equal_rows_no_chains():
    rng = np.random.default_rng(1)
    assert first_layer_implications(rng.normal(size=(6, 4)), rng.normal(size=6)).empty


def test_chain_hull_holds_on_the_curve_and_cuts_what_the_triangles_allow():
    from advmilp.search.implications import chain_hull

    c = np.array([0.5, -0.5])                  # y1 = relu(z + 0.5), y2 = relu(z − 0.5), z in [−1, 1]
    A, d = chain_hull(c, -1.0, 1.0)
    assert A.shape == (4, 3)
    z = np.linspace(-1, 1, 2001)
    pts = np.column_stack([z, np.maximum(z + 0.5, 0), np.maximum(z - 0.5, 0)])
    assert (pts @ A.T <= d + 1e-12).all()
    # each unit's triangle allows, at z = 0: y1 in [0.5, 0.75] (up to its chord) and y2 in [0, 0.25]; the
    # hull has y1 ≤ 2/3 + y2/3 and y2 ≤ y1/3, so it cuts y1 on its chord with y2 = 0, and y1 on its lower
    # line with y2 on its chord; the two chords together lie on the hull (the end points' midpoint)
    for cut in ([0.0, 0.75, 0.0], [0.0, 0.5, 0.25]):
        assert ((A @ np.array(cut)) > d + 0.05).any()
    assert ((A @ np.array([0.0, 0.75, 0.25])) <= d + 1e-12).all()
    # the hull's vertices are on the curve, and its facets touch them
    for t in (-1.0, -0.5, 0.5, 1.0):
        v = np.array([t, max(t + 0.5, 0), max(t - 0.5, 0)])
        assert np.isclose((A @ v - d).max(), 0.0, atol=1e-12)


def test_chain_hull_random_chains_hold_on_sampled_points():
    from advmilp.search.implications import chain_hull

    rng = np.random.default_rng(2)
    for _ in range(30):
        k = int(rng.integers(1, 11))
        c = rng.uniform(-1.0, 1.0, size=k)
        A, d = chain_hull(c, -1.2, 1.3)
        z = rng.uniform(-1.2, 1.3, size=4000)
        pts = np.column_stack([z, np.maximum(z[:, None] + c[None, :], 0)])
        assert (pts @ A.T <= d + 1e-9 * np.abs(d).max(initial=1.0)).all()


def test_shared_bounds_give_each_chain_its_common_range():
    W = np.array([[1.0, 2.0], [1.0, 2.0], [0.0, 1.0]])
    imp = first_layer_implications(W, np.zeros(3))
    const = np.array([0.5, -1.0, 0.0])
    # z = pre − const: unit 0 says z in [−2.5, 0.5], unit 1 z in [−1, 2]: both get z in [−1, 0.5]
    lo, hi = imp.shared_bounds(np.array([-2.0, -2.0, -3.0]), np.array([1.0, 1.0, 3.0]), const)
    assert np.allclose(lo, [-0.5, -2.0, -3.0]) and np.allclose(hi, [1.0, -0.5, 3.0])   # unit 1 now inactive
