"""Configs that name files: ${VAR} expansion, paths relative to the config, and per-network image
lists from an index CSV (`images.indices_file`), as configs/fj_replication.yaml uses (issue 16)."""

import numpy as np
import pytest

from advmilp.data.mnist import Split
from advmilp.errors import ConfigError
from advmilp.experiments.config import apply_overrides, load_config, parse_config
from advmilp.experiments.runner import expand, images_per_network

from tests.nets import REPO

INDEX = """# a comment line, as in the replication's index
dnn,idx,label
A,0,1
A,2,3
A,3,4
B,1,2
B,3,4
"""
# test split of 5 images; labels 1..5 shifted so that the CSV's labels are right
SPLIT = Split(np.arange(5 * 4, dtype=float).reshape(5, 4), np.array([1, 2, 3, 4, 5]))


class FakeNet:
    """Predicts ``preds[i]`` for image i (looked up by the image's first pixel)."""

    def __init__(self, name, preds):
        self.name, self._p = name, np.asarray(preds)

    def predict(self, x):
        return self._p[(np.asarray(x)[:, 0] // 4).astype(int)]

    def short_hash(self):
        return "h" + self.name


A_OK, B_OK = FakeNet("netA", [1, 2, 3, 4, 5]), FakeNet("netB", [1, 2, 3, 4, 5])


def write(folder, text, name="c.yaml"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    return folder / name


def file_config(tmp_path, images_extra="", index=INDEX):
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "data" / "index.csv").write_text(index)
    return load_config(write(tmp_path / "cfg", "name: t\nimages:\n  indices_file: ../data/index.csv\n"
                                               "  column: idx\n" + images_extra))


PER_NET = "  match: {dnn: {netA: A, netB: B}}\n"


def test_each_network_gets_its_own_rows_in_file_order(tmp_path):
    c = file_config(tmp_path, PER_NET)
    assert images_per_network(c, [A_OK, B_OK], SPLIT) == {"hnetA": [0, 2, 3], "hnetB": [1, 3]}
    # the k-th image of every network, then the (k+1)-th; a shorter list simply ends
    insts = expand(c, [A_OK, B_OK], images_per_network(c, [A_OK, B_OK], SPLIT))
    assert [(i.network, i.image_index) for i in insts] == [("netA", 0), ("netB", 1), ("netA", 2), ("netB", 3),
                                                           ("netA", 3)]


def test_a_plain_match_value_applies_to_every_network_and_count_caps_each_list(tmp_path):
    c = file_config(tmp_path, "  match: {dnn: A}\n  count: 2\n")
    assert images_per_network(c, [A_OK, B_OK], SPLIT) == {"hnetA": [0, 2], "hnetB": [0, 2]}
    c = file_config(tmp_path, PER_NET)
    assert c.images.count is None   # no count: every matching row
    assert images_per_network(apply_overrides(c, images=1), [A_OK, B_OK], SPLIT) == {"hnetA": [0], "hnetB": [1]}


def test_rows_our_forward_pass_misclassifies_are_refused_by_name(tmp_path):
    c = file_config(tmp_path, PER_NET)
    wrong_on_3 = FakeNet("netA", [1, 2, 3, 0, 5])
    with pytest.raises(ConfigError) as err:
        images_per_network(c, [wrong_on_3, B_OK], SPLIT)
    msg = str(err.value)
    assert "1 row(s) for netA" in msg and "image 3 (label 4, predicted 0)" in msg and "\n" not in msg
    c = file_config(tmp_path, PER_NET + "  correctly_classified: false\n")
    assert images_per_network(c, [wrong_on_3, B_OK], SPLIT)["hnetA"] == [0, 2, 3]


def test_a_label_column_that_disagrees_with_mnist_is_refused(tmp_path):
    c = file_config(tmp_path, PER_NET + "  label_column: label\n", index=INDEX.replace("A,2,3", "A,2,7"))
    with pytest.raises(ConfigError, match=r"disagree with the MNIST labels: image 2 \(label 7, MNIST label 3\)"):
        images_per_network(c, [A_OK, B_OK], SPLIT)
    c = file_config(tmp_path, PER_NET + "  label_column: label\n")
    assert images_per_network(c, [A_OK, B_OK], SPLIT)["hnetA"] == [0, 2, 3]


@pytest.mark.parametrize("extra, index, words", [
    ("  match: {dnn: {netA: A}}\n", INDEX, ["images.match.dnn has no entry for network 'netB'"]),
    ("  match: {dnn: C}\n", INDEX, ["no rows for network 'netA'"]),
    (PER_NET, INDEX + "A,9,1\n", ["out of range (0..4) for netA: [9]"]),
    (PER_NET, INDEX + "A,2,3\n", ["image 2 is listed twice for netA"]),
])
def test_bad_rows_for_a_network_are_one_line(tmp_path, extra, index, words):
    c = file_config(tmp_path, extra, index=index)
    with pytest.raises(ConfigError) as err:
        images_per_network(c, [A_OK, B_OK], SPLIT)
    assert "\n" not in str(err.value) and all(w in str(err.value) for w in words)


@pytest.mark.parametrize("images, index, words", [
    ("  indices_file: ../data/nope.csv\n  column: idx\n", INDEX, ["images.indices_file", "nope.csv: file not found"]),
    ("  indices_file: ../data/index.csv\n", INDEX, ["needs images.column", "columns: dnn, idx, label"]),
    ("  indices_file: ../data/index.csv\n  column: index\n", INDEX, ["images.column: no column 'index'"]),
    ("  indices_file: ../data/index.csv\n  column: idx\n  match: {arch: A}\n", INDEX,
     ["images.match: no column 'arch'"]),
    ("  indices_file: ../data/index.csv\n  column: idx\n  label_column: y\n", INDEX, ["no column 'y'"]),
    ("  indices_file: ../data/index.csv\n  column: dnn\n", INDEX, ["dnn 'A' is not an image index"]),
    ("  indices_file: ../data/index.csv\n  column: idx\n  indices: [1]\n", INDEX, ["drop images.indices"]),
    ("  column: idx\n", INDEX, ["images.column applies only with images.indices_file"]),
    ("  indices_file: ../data/index.csv\n  column: idx\n  match: [dnn]\n", INDEX, ["images.match must map"]),
    ("  indices_file: ../data/index.csv\n  column: idx\n  match: {dnn: {}}\n", INDEX, ["images.match.dnn is an empty mapping"]),
    ("  indices_file: ../data/index.csv\n  column: idx\n  match: {dnn: [A]}\n", INDEX, ["images.match.dnn must be"]),
    ("  indices_file: ../data/index.csv\n  column: idx\n  colum: idx\n", INDEX, ["unknown key 'images.colum'"]),
    ("  indices_file: ../data/index.csv\n  column: idx\n", "# only a comment\n", ["no header line"]),
    ("  indices_file: ${ADVMILP_TEST_UNSET_VAR}/index.csv\n  column: idx\n", INDEX,
     ["images.indices_file uses ${ADVMILP_TEST_UNSET_VAR}, which is not set"]),
    ("  indices_file: ${ADVMILP_TEST_UNSET_VAR/index.csv\n  column: idx\n", INDEX, ["${NAME:-default}"]),
])
def test_config_errors_are_one_line_naming_the_key(tmp_path, monkeypatch, images, index, words):
    monkeypatch.delenv("ADVMILP_TEST_UNSET_VAR", raising=False)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "index.csv").write_text(index)
    path = write(tmp_path / "cfg", "name: t\nimages:\n" + images)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    msg = str(err.value)
    assert msg.startswith(str(path)) and "\n" not in msg and all(w in msg for w in words), msg


def test_paths_expand_variables_and_are_relative_to_the_config_folder(tmp_path, monkeypatch):
    (tmp_path / "ext" / "sub").mkdir(parents=True)
    (tmp_path / "ext" / "sub" / "index.csv").write_text(INDEX)
    text = ("name: t\nnetworks: ['${ADVMILP_TEST_EXT:-../ext}/sub/n.onnx', dnn1]\n"
            "images: {indices_file: '${ADVMILP_TEST_EXT:-../ext}/sub/index.csv', column: idx}\n")
    path = write(tmp_path / "cfg", text)
    monkeypatch.chdir(REPO)   # the working directory plays no part
    monkeypatch.delenv("ADVMILP_TEST_EXT", raising=False)
    c = load_config(path)
    assert c.networks == (str(tmp_path / "ext" / "sub" / "n.onnx"), "dnn1")
    assert c.images.indices_file == str(tmp_path / "ext" / "sub" / "index.csv")
    monkeypatch.setenv("ADVMILP_TEST_EXT", str(tmp_path / "ext"))
    assert load_config(path).networks[0] == str(tmp_path / "ext" / "sub" / "n.onnx")
    monkeypatch.setenv("ADVMILP_TEST_EXT", "elsewhere")   # a relative value: from the config's folder too
    (tmp_path / "cfg" / "elsewhere" / "sub").mkdir(parents=True)
    (tmp_path / "cfg" / "elsewhere" / "sub" / "index.csv").write_text(INDEX)
    assert load_config(path).networks[0] == str(tmp_path / "cfg" / "elsewhere" / "sub" / "n.onnx")
    # parse_config without a file: relative paths stay relative to the working directory
    assert parse_config({"name": "t", "networks": ["a/n.onnx"]}).networks == ("a/n.onnx",)


FJ = REPO.parent / "shared" / "external" / "fj_replication_tim25432"


@pytest.mark.skipif(not FJ.is_dir(), reason="../shared/external (CPLEX replication) not present")
def test_the_replication_config_gives_each_network_its_own_100_images(mnist_test, monkeypatch):
    """Our forward pass classifies every one of the replication's images correctly (else refused)."""
    import csv

    from advmilp.nn.interchange import load_any

    monkeypatch.delenv("ADVMILP_EXTERNAL", raising=False)
    c = load_config(REPO / "configs" / "fj_replication.yaml")
    nets = [load_any(n) for n in c.networks]
    assert [n.name.split("_")[0] for n in nets] == ["DNN1", "DNN2", "DNN3", "DNN4", "DNN5"]
    lists = images_per_network(c, nets, mnist_test)
    with open(FJ / "testdata_index.csv") as f:
        rows = list(csv.DictReader(line for line in f if not line.startswith("#")))
    for net in nets:
        want = [int(r["mnist_test_idx"]) for r in rows if r["dnn"] == net.name.split("_")[0]]
        assert lists[net.short_hash()] == want and len(want) == 100
    assert c.problem.ratio == 1.2 and c.solver.time_limit == 300 and c.methods == ("tight",)
