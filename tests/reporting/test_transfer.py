"""advmilp.reporting.transfer: hand-built perturbations on 2-input networks with known fooling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from advmilp.errors import AdvmilpError
from advmilp.nn.network import Network
from advmilp.reporting import transfer as tr
from advmilp.spec.rows import COLUMNS, make_row

# identity net: prediction = argmax(x0, x1)
IMAGES = np.array([[0.6, 0.4], [0.3, 0.5], [0.9, 0.1], [0.45, 0.4]])


def _identity() -> Network:
    I = np.eye(2)
    return Network.from_arrays([I, I], [np.zeros(2), np.zeros(2)], metadata={"architecture": "identity"})


def _edge() -> Network:
    """h = relu(x0 − 1) is 0 on the pixel range; y0 = 10 h, y1 = 0.5: always class 1 inside [0, 1]^2,
    class 0 only if x0 > 1.05 — which clipping to [0, 1] forbids."""
    return Network.from_arrays([np.array([[1.0, 0.0]]), np.array([[10.0], [0.0]])],
                               [np.array([-1.0]), np.array([0.0, 0.5])], metadata={"architecture": "edge"})


def _delta(d, image_index=99, target=1, x_bar=(0.6, 0.4), network="identity") -> tr.Delta:
    return tr.Delta(network, image_index, target, "l1", np.array(d, dtype=float), np.array(x_bar))


def test_apply_clips_to_the_pixel_range():
    out = tr.apply(np.array([0.5, -0.5]), np.array([[0.8, 0.2], [0.1, 0.9]]))
    assert out.tolist() == [[1.0, 0.0], [0.6, 0.4]]


def test_rates_of_a_hand_built_delta():
    net = _identity()
    clean = net.predict(IMAGES)                       # 0, 1, 0, 0
    r = tr.rates(net, np.array([-0.2, 0.2]), np.array([0.6, 0.4]), IMAGES, clean, target=1)
    # x + δ: [.4,.6] -> 1 (changed), [.1,.7] -> 1 (same), [.7,.3] -> 0 (same), [.25,.6] -> 1 (changed)
    assert r["fooled"] == pytest.approx(2 / 4)
    assert r["to_target"] == pytest.approx(2 / 3)     # images 0, 2, 3 were not already class 1
    assert r["same_fooled"] == 1.0 and r["same_target"] == 1.0
    assert np.isnan(r["control_fooled"])


def test_untargeted_delta_has_no_target_rate():
    net = _identity()
    r = tr.rates(net, np.array([-0.2, 0.2]), np.array([0.6, 0.4]), IMAGES, net.predict(IMAGES), target=None)
    assert np.isnan(r["to_target"]) and np.isnan(r["same_target"]) and r["fooled"] == pytest.approx(0.5)


def test_clipping_decides_the_prediction():
    net = _edge()
    x = np.array([[0.8, 0.0]])
    assert net.predict(x + np.array([[0.5, 0.0]]))[0] == 0        # unclipped, x0 = 1.3 would fool it
    r = tr.rates(net, np.array([0.5, 0.0]), np.array([0.9, 0.0]), x, net.predict(x), target=0)
    assert r["fooled"] == 0.0 and r["to_target"] == 0.0 and r["same_fooled"] == 0.0


def test_table_leaves_the_own_image_out_and_uses_a_same_size_control():
    nets = {"identity": _identity(), "edge": _edge()}
    d = _delta([-0.2, 0.2], image_index=0, x_bar=IMAGES[0])
    t = tr.transfer_table([d], nets, IMAGES)
    assert list(t["to"]) == ["identity", "edge"] and list(t["images"]) == [3, 3]
    ident = t[t["to"] == "identity"].iloc[0]
    assert ident["fooled"] == pytest.approx(1 / 3)      # of images 1..3 only image 3 changes
    assert ident["l1"] == pytest.approx(0.4)
    edge = t[t["to"] == "edge"].iloc[0]
    assert edge["fooled"] == 0.0 and edge["same_fooled"] == 0.0
    # a δ with equal values is its own shuffle: the control equals the rate
    same = tr.transfer_table([_delta([0.3, 0.3], image_index=7)], {"identity": _identity()}, IMAGES)
    assert same["control_fooled"].iloc[0] == same["fooled"].iloc[0]


def test_summary_averages_per_pair_in_percent():
    nets = {"identity": _identity()}
    per = tr.transfer_table([_delta([-0.2, 0.2]), _delta([0.0, 0.0], target=None)], nets, IMAGES)
    s = tr.summarise(per)
    assert len(s) == 1 and s["deltas"].iloc[0] == 2
    assert s["fooled_pct"].iloc[0] == pytest.approx(100 * (0.5 + 0.0) / 2)
    assert s["to_target_pct"].iloc[0] == pytest.approx(100 * 2 / 3)     # only the targeted δ has one
    assert s["same_fooled_pct"].iloc[0] == pytest.approx(50.0)
    text = tr.format_summary(s)
    assert text["network"].iloc[0] == "identity -> identity"


def _run(tmp_path, net, rows_and_witnesses):
    run = tmp_path / "run"
    (run / "witnesses").mkdir(parents=True)
    rows = []
    for i, (row, w) in enumerate(rows_and_witnesses):
        if w is not None:
            np.save(run / "witnesses" / f"w{i}.npy", w)
            row = {**row, "witness": f"witnesses/w{i}.npy"}
        rows.append(row)
    pd.DataFrame(rows, columns=COLUMNS).to_csv(run / "instances.csv", index=False)
    return run


def _row(net, image, verified=True, target=1):
    return make_row(network=net.name, network_hash=net.short_hash(), method="tight", bounds="basic",
                    problem="targeted ratio 1.2", image_index=image, status="optimal", objective=0.4,
                    verified=verified, target=target)


def test_deltas_from_run_reads_verified_witnesses(tmp_path):
    net = _identity()
    run = _run(tmp_path, net, [(_row(net, 0), np.array([0.4, 0.6])), (_row(net, 2, verified=False), np.array([0, 1.0])),
                               (_row(net, 3), None)])
    (d,) = tr.deltas_from_run(run, net, IMAGES)
    assert d.image_index == 0 and d.target == 1 and d.norm == "l1"
    assert d.delta == pytest.approx([-0.2, 0.2]) and d.x_bar.tolist() == [0.6, 0.4]


def test_deltas_from_run_refuses_another_network_and_a_missing_witness(tmp_path):
    net = _identity()
    run = _run(tmp_path, net, [(_row(net, 0), np.array([0.4, 0.6]))])
    with pytest.raises(AdvmilpError, match="no rows of edge"):
        tr.deltas_from_run(run, _edge(), IMAGES)
    (run / "witnesses" / "w0.npy").unlink()
    with pytest.raises(AdvmilpError, match="does not exist"):
        tr.deltas_from_run(run, net, IMAGES)
