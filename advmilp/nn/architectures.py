"""The thesis networks (Table 1), the lab notebook's network and the robustness study's grid:
sizes and training settings.

Pure data, no TensorFlow: every module may import it.  `find_architecture` is the one lookup of a
name: a fixed entry of `ARCHITECTURES`, or a study network named ``mlp-w<width>-d<depth>-p<dropout %>``
(``mlp-w16-d2-p25``: two hidden layers of 16 ReLUs, dropout 0.25 after each), whose weights live in
``models/study/``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Architecture:
    name: str
    hidden: tuple[int, ...]
    optimizer: str          # "sgd" or "adam"
    epochs: int
    learning_rate: float
    batch_size: int
    thesis_accuracy: float | None  # Table 1 (notebook: its reported test accuracy; study: none)
    source: str
    dropout: float = 0.0    # rate of the Dropout layer after every hidden layer (training only)
    folder: str = ""        # sub-folder of the models directory holding its weights

    @property
    def weights_name(self) -> str:
        """The weights file's path relative to the models directory, without suffix."""
        return f"{self.folder}/{self.name}" if self.folder else self.name

    @property
    def sizes(self) -> list[int]:
        return [784, *self.hidden, 10]

    @property
    def n_parameters(self) -> int:
        s = self.sizes
        return sum(s[i] * s[i + 1] + s[i + 1] for i in range(len(s) - 1))


ARCHITECTURES: dict[str, Architecture] = {
    a.name: a
    for a in (
        Architecture("dnn1", (8, 8, 8), "sgd", 50, 0.01, 32, 0.93, "thesis Table 1"),
        Architecture("dnn2", (8, 8, 8, 8, 8, 8), "sgd", 50, 0.01, 32, 0.91, "thesis Table 1"),
        Architecture("dnn3", (20, 10, 8, 8), "sgd", 50, 0.01, 32, 0.96, "thesis Table 1"),
        Architecture("dnn4", (20, 10, 8, 8, 8), "sgd", 50, 0.01, 32, 0.95, "thesis Table 1"),
        Architecture("dnn5", (20, 20, 10, 10, 10), "sgd", 50, 0.01, 32, 0.96, "thesis Table 1"),
        Architecture("notebook", (48, 27), "adam", 5, 0.001, 32, 0.9698, "lab notebook §1.2"),
    )
}

THESIS_NETWORKS = ("dnn1", "dnn2", "dnn3", "dnn4", "dnn5")


# ---- the robustness study (issue 19): width x depth x dropout --------------------------------------
STUDY_WIDTHS = (8, 16, 32, 64)
STUDY_DEPTHS = (1, 2, 3)
STUDY_DROPOUTS = (0.0, 0.25, 0.5)
STUDY_FOLDER = "study"
STUDY_PATTERN = re.compile(r"mlp-w([1-9][0-9]*)-d([1-9][0-9]*)-p([0-9]{1,2})")
STUDY_LIMITS = {"width": 9999, "depth": 9}   # the largest width and depth a study name may say
# every study network is trained alike: Adam 1e-3, 10 epochs, batch 64, so the grid varies only
# width, depth and dropout
STUDY_TRAINING = dict(optimizer="adam", epochs=10, learning_rate=0.001, batch_size=64)


def study_rule(key: str, value) -> str | None:
    """What a study grid's ``width``, ``depth`` or ``dropout`` must be, if ``value`` is not that; else None
    (the one statement of the grid's ranges: names, configs)."""
    if key == "dropout":
        ok = 0 <= value < 1 and abs(round(value * 100) - value * 100) < 1e-9
        return None if ok else "a whole percentage in [0, 1)"
    return None if 1 <= value <= STUDY_LIMITS[key] else f"a whole number in 1..{STUDY_LIMITS[key]}"


def study_name(width: int, depth: int, dropout: float) -> str:
    for key, value in (("width", width), ("depth", depth), ("dropout", dropout)):
        rule = study_rule(key, value)
        if rule:
            raise ValueError(f"{key} {value} is not {rule}")
    return f"mlp-w{width}-d{depth}-p{round(dropout * 100)}"


def study_names(widths=STUDY_WIDTHS, depths=STUDY_DEPTHS, dropouts=STUDY_DROPOUTS) -> list[str]:
    """The grid's network names, width-major (then depth, then dropout)."""
    return [study_name(w, d, p) for w in widths for d in depths for p in dropouts]


def find_architecture(name: str) -> Architecture | None:
    """The architecture called ``name`` (case-insensitive), or None if there is none."""
    key = name.lower()
    if key in ARCHITECTURES:
        return ARCHITECTURES[key]
    m = STUDY_PATTERN.fullmatch(key)
    if not m:
        return None
    width, depth, percent = map(int, m.groups())
    if study_rule("width", width) or study_rule("depth", depth):
        return None
    return Architecture(key, (width,) * depth, thesis_accuracy=None, source="robustness study",
                        dropout=percent / 100, folder=STUDY_FOLDER, **STUDY_TRAINING)


def architecture_choices(also: str = "") -> str:
    """The names `find_architecture` knows, for messages; ``also`` adds choices."""
    return (f"choose from {', '.join(ARCHITECTURES)}, "
            f"a study network mlp-w<width>-d<depth>-p<dropout %> such as mlp-w16-d2-p25{also}")


def unknown_architecture(name: str, also: str = "") -> str:
    """The one-line message for a name `find_architecture` does not know; ``also`` adds choices."""
    return f"unknown architecture {name!r} ({architecture_choices(also)})"


# ---- tree ensembles (advmilp.nn.trees): only the names, so telling a name apart costs no import ------
TREE_KINDS = ("tree", "forest", "gbt")


def is_tree_arch(name: str) -> bool:
    """Whether ``name`` names a tree ensemble (``tree-d8``, ``forest-d8-n20``, ``gbt-d4-n10``; parsed and
    checked by `advmilp.nn.trees.TreeArch.parse`)."""
    return bool(name) and name.lower().split("-")[0] in TREE_KINDS
