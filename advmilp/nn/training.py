"""Keras training of the thesis networks.  The only module that imports TensorFlow.

TensorFlow is imported inside the functions, so importing this module is cheap and
``advmilp`` works without TensorFlow installed for everything but ``advmilp train``.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np

from advmilp.nn.architectures import Architecture, find_architecture, unknown_architecture
from advmilp.data.mnist import Split, load_split
from advmilp.errors import AdvmilpError
from advmilp.nn.interchange import convert_keras
from advmilp.nn.network import Network


def import_tensorflow():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow as tf  # noqa: F401
        import keras
    except ImportError as exc:
        raise AdvmilpError(
            "training needs TensorFlow: pip install 'advmilp[train]' (or tensorflow-cpu)"
        ) from exc
    return tf, keras


def build_model(arch: Architecture, keras):
    layers = [keras.Input(shape=(784,))]
    for n in arch.hidden:
        layers.append(keras.layers.Dense(n, activation="relu"))
        if arch.dropout:
            layers.append(keras.layers.Dropout(arch.dropout))
    layers.append(keras.layers.Dense(10, activation=None))
    return keras.Sequential(layers, name=arch.name)


def make_optimizer(arch: Architecture, keras):
    if arch.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=arch.learning_rate)
    if arch.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate=arch.learning_rate)
    raise AdvmilpError(f"unknown optimizer {arch.optimizer!r}")


def train(arch_name: str, seed: int = 0, epochs: int | None = None, data_dir=None,
          train_subset: int | None = None, threads: int | None = None,
          log: Callable[[str], None] = print,
          train_split: Split | None = None, test_split: Split | None = None) -> Network:
    """Train one architecture; return the `Network` with full metadata.

    The recorded ``test_accuracy`` is computed by `Network.forward` in float64 on the
    10,000 test images, so loading the shipped weights reproduces it exactly.
    """
    arch = find_architecture(arch_name)
    if arch is None:
        raise AdvmilpError(unknown_architecture(arch_name))
    if epochs is not None:
        arch = replace(arch, epochs=epochs)
    tf, keras = import_tensorflow()
    if threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:  # TensorFlow already initialised in this process: keep its threads
            log(f"note: TensorFlow is already initialised; --threads {threads} ignored")
    keras.utils.set_random_seed(seed)
    train_split = train_split or load_split("train", data_dir)
    test_split = test_split or load_split("test", data_dir)
    x, y = train_split.images.astype(np.float32), train_split.labels
    if train_subset:
        x, y = x[:train_subset], y[:train_subset]

    model = build_model(arch, keras)
    model.compile(optimizer=make_optimizer(arch, keras),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])

    class EpochLine(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            log(f"{arch.name} epoch {epoch + 1:>3}/{arch.epochs}  loss {logs.get('loss', float('nan')):.4f}"
                f"  train acc {logs.get('accuracy', float('nan')):.4f}")

    start = time.perf_counter()
    model.fit(x, y, epochs=arch.epochs, batch_size=arch.batch_size, shuffle=True,
              verbose=0, callbacks=[EpochLine()])
    elapsed = time.perf_counter() - start

    metadata = {
        "architecture": arch.name,
        "hidden_layers": list(arch.hidden),
        "dropout": arch.dropout,
        "seed": seed,
        "epochs": arch.epochs,
        "optimizer": arch.optimizer,
        "learning_rate": arch.learning_rate,
        "batch_size": arch.batch_size,
        "loss": "softmax cross-entropy on linear outputs",
        "train_images": int(len(y)),
        "training_time_s": round(elapsed, 2),
        "tensorflow_version": tf.__version__,
        "keras_version": keras.__version__,
        "host": platform.node(),
    }
    if arch.thesis_accuracy is not None:
        metadata["thesis_accuracy"] = arch.thesis_accuracy
    net = convert_keras(model, metadata)
    acc = net.accuracy(test_split.images, test_split.labels)
    net.metadata["test_accuracy"] = acc
    thesis = f" (thesis {arch.thesis_accuracy:.2f})" if arch.thesis_accuracy is not None else ""
    log(f"{arch.name}: test accuracy {acc:.4f}{thesis}, trained in {elapsed:.1f} s")
    return net


def train_and_save(arch_name: str, out_dir: str | os.PathLike, **kwargs) -> Path:
    net = train(arch_name, **kwargs)
    arch = find_architecture(arch_name)
    return net.save(Path(out_dir) / f"{arch.weights_name}.npz")
