"""`Network`: a feed-forward stack of dense layers, evaluated in float64 with numpy.

Conventions (thesis §3.1.1): layer k (k = 1..K) computes ``a^k = act(W^k a^(k-1) + b^k)``
with ``W^k`` of shape (n_k, n_(k-1)).  Hidden layers use ReLU; the output layer is linear
(the networks are trained with softmax cross-entropy on the logits).

On disk a network is ``NAME.npz`` (arrays ``W0, b0, W1, b1, ...``) beside ``NAME.json``
(metadata: architecture, layer sizes, activations, training settings, test accuracy and
the sha256 content hash of the weights).  No TensorFlow import happens here (Keras models are
converted by `advmilp.nn.interchange.convert_keras`).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from advmilp.errors import NetworkError
from advmilp.paths import default_dir
from advmilp.nn.activations import Activation, make_activation

MODELS_ENV = "ADVMILP_MODELS"


@dataclass(frozen=True)
class Layer:
    W: np.ndarray  # (n_out, n_in), float64
    b: np.ndarray  # (n_out,), float64
    activation: str = "relu"
    slope: float | None = None     # negative slope of leaky_relu (None for the others)

    def __post_init__(self):
        object.__setattr__(self, "act", make_activation(self.activation, self.slope))
        if self.activation == "leaky_relu":
            object.__setattr__(self, "slope", self.act.slope)
        elif self.slope is not None:
            raise NetworkError(f"a negative slope is for leaky_relu layers only (layer is {self.activation})")
        if self.W.ndim != 2 or self.b.shape != (self.W.shape[0],):
            raise NetworkError(f"layer shapes do not match: W {self.W.shape}, b {self.b.shape}")
        if not (np.all(np.isfinite(self.W)) and np.all(np.isfinite(self.b))):
            raise NetworkError("the weights contain NaN or infinite values")

    act: Activation = field(init=False, repr=False, compare=False, default=None)


@dataclass(frozen=True)
class Network:
    layers: tuple[Layer, ...]
    metadata: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def from_arrays(cls, weights: list, biases: list, activations: list[str] | None = None,
                    metadata: dict | None = None, slopes: list[float | None] | None = None) -> "Network":
        n = len(weights)
        if activations is None:
            activations = ["relu"] * (n - 1) + ["linear"]
        slopes = slopes if slopes is not None else [None] * n
        layers = tuple(
            Layer(np.asarray(W, dtype=np.float64), np.asarray(b, dtype=np.float64).reshape(-1), act, slope)
            for W, b, act, slope in zip(weights, biases, activations, slopes)
        )
        for prev, nxt in zip(layers, layers[1:]):
            if nxt.W.shape[1] != prev.W.shape[0]:
                raise NetworkError(f"layer sizes do not chain: {prev.W.shape} then {nxt.W.shape}")
        return cls(layers=layers, metadata=dict(metadata or {}))

    # ---- shape --------------------------------------------------------------------
    @property
    def sizes(self) -> list[int]:
        """Layer sizes, input first: e.g. [784, 8, 8, 8, 10]."""
        return [self.layers[0].W.shape[1]] + [layer.W.shape[0] for layer in self.layers]

    @property
    def hidden_units(self) -> int:
        """How many units the hidden layers hold in all (every layer but the output)."""
        return sum(self.sizes[1:-1])

    @property
    def n_inputs(self) -> int:
        return self.sizes[0]

    @property
    def n_outputs(self) -> int:
        return self.sizes[-1]

    @property
    def n_parameters(self) -> int:
        return int(sum(layer.W.size + layer.b.size for layer in self.layers))

    @property
    def name(self) -> str:
        return str(self.metadata.get("architecture", "network"))

    # ---- evaluation -----------------------------------------------------------------
    def preactivations(self, x: np.ndarray, dtype=np.float64) -> list[np.ndarray]:
        """``W^k a^(k-1) + b^k`` for every layer k, for a batch x of shape (N, n0) or (n0,)."""
        a = np.asarray(x, dtype=dtype)
        out = []
        for layer in self.layers:
            pre = a @ layer.W.astype(dtype).T + layer.b.astype(dtype)
            out.append(pre)
            a = layer.act(pre)
        return out

    def forward(self, x: np.ndarray, dtype=np.float64) -> np.ndarray:
        """Network output (logits) for a batch (N, n0) or a single input (n0,)."""
        return self.preactivations(x, dtype)[-1]

    def input_gradient(self, x: np.ndarray, c: np.ndarray) -> np.ndarray:
        """Gradient of ``c · forward(x)`` with respect to the input x (one point; or a batch (N, n0) with
        one row of c per point), by the chain rule through each hidden activation's slope at x (a
        vector–Jacobian product: O(n²) per layer)."""
        pres = self.preactivations(np.asarray(x, dtype=np.float64))
        v = np.asarray(c, dtype=np.float64)
        for k in range(len(self.layers) - 1, 0, -1):
            v = v @ self.layers[k].W
            v = v * np.where(pres[k - 1] >= 0, 1.0, self.layers[k - 1].act.slope)
        return v @ self.layers[0].W

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.argmax(self.forward(x), axis=-1)

    def accuracy(self, images: np.ndarray, labels: np.ndarray) -> float:
        return float(np.mean(self.predict(images) == labels))

    # ---- identity ---------------------------------------------------------------------
    def content_hash(self) -> str:
        """sha256 of shapes, activations and float64 weights: the network's identity."""
        h = hashlib.sha256()
        for layer in self.layers:
            act = layer.activation if layer.slope is None else f"{layer.activation}:{layer.slope!r}"
            h.update(f"{layer.W.shape}|{act}|".encode())
            h.update(np.ascontiguousarray(layer.W, dtype="<f8").tobytes())
            h.update(np.ascontiguousarray(layer.b, dtype="<f8").tobytes())
        return h.hexdigest()

    def short_hash(self) -> str:
        return self.content_hash()[:12]

    # ---- persistence --------------------------------------------------------------------
    def save(self, path: str | os.PathLike, metadata: dict | None = None) -> Path:
        """Write ``path`` (.npz) and its ``.json`` metadata; returns the npz path."""
        path = Path(path).with_suffix(".npz")
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {}
        for k, layer in enumerate(self.layers):
            arrays[f"W{k}"] = layer.W
            arrays[f"b{k}"] = layer.b
        meta = dict(self.metadata)
        meta.update(metadata or {})
        meta["layer_sizes"] = self.sizes
        meta["activations"] = [layer.activation for layer in self.layers]
        meta.pop("negative_slopes", None)
        if any(layer.slope is not None for layer in self.layers):
            meta["negative_slopes"] = [layer.slope for layer in self.layers]
        meta["parameters"] = self.n_parameters
        meta["sha256"] = self.content_hash()
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
        path.with_suffix(".json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Network":
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(".npz")
        if not path.is_file():
            raise NetworkError(f"{path}: network file not found")
        meta_path = path.with_suffix(".json")
        meta = {}
        if meta_path.is_file():
            try:
                meta = json.loads(meta_path.read_text())
            except json.JSONDecodeError as exc:
                raise NetworkError(f"{meta_path}: invalid JSON ({exc})") from exc
        try:
            with np.load(path) as data:
                n = len([k for k in data.files if k.startswith("W")])
                weights = [data[f"W{k}"] for k in range(n)]
                biases = [data[f"b{k}"] for k in range(n)]
        except Exception as exc:  # zip/npz corruption surfaces as many types
            raise NetworkError(f"{path}: cannot read network weights ({exc})") from exc
        if n == 0:
            raise NetworkError(f"{path}: no layers (expected arrays W0, b0, ...)")
        try:
            net = cls.from_arrays(weights, biases, meta.get("activations"), meta, meta.get("negative_slopes"))
        except NetworkError as exc:
            raise NetworkError(f"{path}: {exc}") from exc
        stored = meta.get("sha256")
        if stored and stored != net.content_hash():
            raise NetworkError(f"{path}: weights do not match the sha256 in {meta_path.name} (corrupted or edited)")
        return net


def default_models_dir() -> Path:
    """``ADVMILP_MODELS``, else the repository's ``models/`` beside the package, else ./models."""
    return default_dir(MODELS_ENV, "models")


def load_network(name_or_path: str, models_dir: str | os.PathLike | None = None) -> Network:
    """A shipped network by architecture name (``dnn1``) or any ``.npz`` path."""
    candidate = Path(name_or_path)
    if candidate.suffix == ".npz" or candidate.is_file():
        return Network.load(candidate)
    from advmilp.nn.architectures import find_architecture, unknown_architecture  # no TensorFlow there

    arch = find_architecture(name_or_path)
    if arch is None:
        raise NetworkError(unknown_architecture(name_or_path, ", or a model file: .npz, .onnx, .keras"))
    root = Path(models_dir) if models_dir else default_models_dir()
    path = root / f"{arch.weights_name}.npz"
    if not path.is_file():
        raise NetworkError(f"{path}: no trained weights for {arch.name} (run 'advmilp train --arch {arch.name}')")
    return Network.load(path)
