"""The thesis networks (Table 1) and the lab notebook's network: sizes and training settings.

Pure data, no TensorFlow: every module may import it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Architecture:
    name: str
    hidden: tuple[int, ...]
    optimizer: str          # "sgd" or "adam"
    epochs: int
    learning_rate: float
    batch_size: int
    thesis_accuracy: float  # Table 1 (notebook: its reported test accuracy)
    source: str

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
