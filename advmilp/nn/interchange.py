"""Bring your own network: import Keras/ONNX models, export ONNX and VNN-COMP benchmarks.

Import accepts any feed-forward chain of dense layers with ReLU or LeakyReLU (plus Flatten/Reshape,
Identity/Dropout and a final Softmax, which is ignored: the MILP works on the logits).
Consecutive affine maps (MatMul then Add, Gemm then a constant Add, elementwise Sub/Mul/Div
by constants, two dense layers without a ReLU between them) are composed into one dense
layer, so the result is always ``act(W a + b)`` layers (act = relu or leaky_relu) with a linear
(or ReLU) last layer.
Anything else is refused with a `NetworkError` naming the offending layer or node.

Export writes a plain ONNX model (Gemm + Relu/LeakyRelu, float32); VNN-COMP benchmark folders
(ONNX + VNN-LIB) are written by `advmilp.spec.vnnlib.export_vnnlib`.

Keras and onnx are imported inside the functions that need them, never at module level.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from advmilp.errors import NetworkError
from advmilp.nn.network import Network, load_network

KERAS_SKIPPED = ("InputLayer", "Flatten", "Reshape", "Dropout")
ONNX_SUPPORTED = "advmilp handles dense ReLU networks (Gemm/MatMul+Add, Relu, LeakyRelu, Flatten)"
KERAS_LEAKY_DEFAULT = 0.2     # keras.activations.leaky_relu's default negative slope (Keras 3)


class _Chain:
    """Collects affine maps and activations on a flat vector into dense layers (consecutive affine
    maps, e.g. a Gemm without activation, fold into one)."""

    def __init__(self, n: int):
        self.n, self.W, self.b = n, None, None
        self.weights, self.biases, self.acts, self.slopes = [], [], [], []

    def affine(self, W: np.ndarray, b: np.ndarray) -> None:
        W, b = np.asarray(W, np.float64), np.asarray(b, np.float64).reshape(-1)
        if self.W is None:
            self.W, self.b = W, b
        else:
            self.W, self.b = W @ self.W, W @ self.b + b
        self.n = W.shape[0]

    def close(self, activation: str, slope: float | None = None) -> None:
        self.weights.append(self.W)
        self.biases.append(self.b)
        self.acts.append(activation)
        self.slopes.append(slope)
        self.W = self.b = None

    def activate(self, activation: str = "relu", slope: float | None = None) -> None:
        if self.W is None:
            if activation == "relu" and self.acts and self.acts[-1] == "relu":
                return  # relu(relu(x)) == relu(x)
            self.affine(np.eye(self.n), np.zeros(self.n))
        self.close(activation, slope)

    def to_network(self, metadata: dict, what: str) -> Network:
        if self.W is not None:
            self.close("linear")
        if not self.weights:
            raise NetworkError(f"{what}: no dense layers found")
        try:
            return Network.from_arrays(self.weights, self.biases, self.acts, metadata, self.slopes)
        except NetworkError as exc:
            raise NetworkError(f"{what}: {exc}") from exc


def _imported_metadata(path: Path, fmt: str) -> dict:
    return {"architecture": path.stem, "source": str(path), "format": fmt}


# ---- Keras ----------------------------------------------------------------------------------
def _keras_activation(layer, name: str, kind: str, last: bool) -> str:
    if name in ("relu", "linear", "leaky_relu") or (name == "softmax" and last):
        return "linear" if name == "softmax" else name
    if name == "softmax":
        raise NetworkError(f"layer {layer.name!r} ({kind}): softmax is only ignored as the final layer")
    raise NetworkError(f"layer {layer.name!r} ({kind}) has activation {name!r}; "
                       "only relu, leaky_relu and linear are supported")


def _keras_apply(chain: _Chain, act: str) -> None:
    if act == "relu":
        chain.activate("relu")
    elif act == "leaky_relu":
        chain.activate("leaky_relu", KERAS_LEAKY_DEFAULT)


def _check_keras_chain(model, layers) -> None:
    """Refuse functional models whose layers do not form one chain from input to output."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise NetworkError(f"the Keras model needs one input and one output "
                           f"(has {len(model.inputs)} and {len(model.outputs)})")
    current = id(model.inputs[0])
    for layer in layers:
        if type(layer).__name__ == "InputLayer":
            continue
        nodes = getattr(layer, "_inbound_nodes", [])
        inputs = [id(t) for t in nodes[0].input_tensors] if len(nodes) == 1 else []
        if inputs != [current]:
            raise NetworkError(f"layer {layer.name!r} ({type(layer).__name__}) is not on a single chain "
                               "(residual, parallel or shared layers are not supported)")
        current = id(nodes[0].output_tensors[0])


def convert_keras(model, metadata: dict | None = None) -> Network:
    """A Keras model object (Sequential or a functional chain) → `Network`."""
    layers = list(getattr(model, "layers", []))
    if not getattr(model, "inputs", None):
        raise NetworkError("the Keras model is not built (it has no Input)")
    if type(model).__name__ != "Sequential":
        _check_keras_chain(model, layers)
    chain = _Chain(int(np.prod(model.inputs[0].shape[1:])))
    for i, layer in enumerate(layers):
        kind, last = type(layer).__name__, i == len(layers) - 1
        if kind in KERAS_SKIPPED:
            continue
        if kind == "Dense":
            if len(layer.input.shape) != 2:
                raise NetworkError(f"layer {layer.name!r} (Dense) acts on a {len(layer.input.shape) - 1}-d "
                                   "tensor; add a Flatten before it")
            act = _keras_activation(layer, getattr(layer.activation, "__name__", "?"), kind, last)
            w = layer.get_weights()
            chain.affine(w[0].T, w[1] if len(w) > 1 else np.zeros(w[0].shape[1]))
            _keras_apply(chain, act)
        elif kind == "Activation":
            _keras_apply(chain, _keras_activation(layer, getattr(layer.activation, "__name__", "?"), kind, last))
        elif kind == "ReLU" and not layer.max_value and not layer.negative_slope and not layer.threshold:
            chain.activate("relu")
        elif kind == "LeakyReLU":
            chain.activate("leaky_relu", float(getattr(layer, "negative_slope", getattr(layer, "alpha", 0.3))))
        elif kind == "Softmax" and last:
            continue
        else:
            why = " (fold it into the Dense weights first)" if kind == "BatchNormalization" else ""
            raise NetworkError(f"layer {layer.name!r} ({kind}) is not supported{why}: "
                               "advmilp handles dense ReLU networks (Dense, ReLU, LeakyReLU, Flatten, Dropout)")
    return chain.to_network(dict(metadata or {}), "Keras model")


def load_keras(path: str | os.PathLike) -> Network:
    """A `Network` from a ``.keras`` or ``.h5`` file (needs keras; imported here only)."""
    path = Path(path)
    if not path.is_file():
        raise NetworkError(f"{path}: Keras model file not found")
    try:
        import keras
    except ImportError as exc:
        raise NetworkError(f"{path}: reading Keras models needs keras (pip install 'advmilp[train]')") from exc
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as exc:  # keras raises many types for bad files
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NetworkError(f"{path}: cannot read Keras model ({reason})") from exc
    return convert_keras(model, _imported_metadata(path, "keras"))


# ---- ONNX -----------------------------------------------------------------------------------
def _import_onnx():
    try:
        import onnx
        import onnx.numpy_helper
    except ImportError as exc:
        raise NetworkError("ONNX support needs the onnx package (pip install 'advmilp[onnx]')") from exc
    return onnx


def _node_label(node) -> str:
    return f"node {node.name or node.output[0]!r} ({node.op_type})"


def _reshaped(shape: tuple, target, node) -> tuple:
    target = [shape[i] if d == 0 and i < len(shape) else int(d) for i, d in enumerate(target)]
    try:
        return np.empty(shape, dtype=np.int8).reshape(target).shape
    except ValueError as exc:
        raise NetworkError(f"{_node_label(node)}: cannot reshape {shape} to {tuple(target)}") from exc


def _onnx_step(node, x: str, consts: dict, shape: tuple, chain: _Chain, onnx) -> tuple:
    """Apply one node to the chain; return the new per-batch shape of the dynamic tensor."""
    op, label = node.op_type, _node_label(node)
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    static = [consts[name] for name in node.input if name in consts]
    flat = int(np.prod(shape))
    if op in ("Gemm", "MatMul"):
        if node.input[0] != x or not static or len(shape) < 1 or flat != shape[-1]:
            raise NetworkError(f"{label}: needs a flat input vector times a constant matrix (input shape {shape})")
        B = static[0].astype(np.float64)
        if B.ndim != 2:
            raise NetworkError(f"{label}: weight of shape {B.shape} is not a matrix")
        if op == "Gemm":
            if attrs.get("transA", 0):
                raise NetworkError(f"{label}: transA=1 is not supported")
            W = attrs.get("alpha", 1.0) * (B if attrs.get("transB", 0) else B.T)
            C = static[1] if len(static) > 1 else np.zeros(W.shape[0])
            b = attrs.get("beta", 1.0) * np.broadcast_to(C.astype(np.float64).reshape(-1), (W.shape[0],))
        else:
            W, b = B.T, np.zeros(B.shape[1])
        if W.shape[1] != flat:
            raise NetworkError(f"{label}: weight shape {B.shape} does not fit an input of size {flat}")
        chain.affine(W, b)
        return shape[:-1] + (W.shape[0],)
    if op in ("Add", "Sub", "Mul", "Div"):
        if len(static) != 1:
            raise NetworkError(f"{label}: needs the input and one constant")
        c = static[0].astype(np.float64)
        if np.broadcast_shapes(shape, c.shape) != shape:
            raise NetworkError(f"{label}: constant of shape {c.shape} changes the shape {shape}")
        c = np.broadcast_to(c, shape).reshape(-1)
        first = node.input[0] == x
        if op == "Div" and (not first or not np.all(c)):
            raise NetworkError(f"{label}: only division of the input by a nonzero constant is affine")
        if op in ("Add", "Sub"):
            sign = -1.0 if op == "Sub" else 1.0
            scale, shift = (np.ones(flat), sign * c) if first else (np.full(flat, sign), c)
        else:
            scale, shift = (c if op == "Mul" else 1.0 / c), np.zeros(flat)
        chain.affine(np.diag(scale), shift)
        return shape
    if op == "Relu":
        chain.activate("relu")
        return shape
    if op == "LeakyRelu":
        chain.activate("leaky_relu", float(attrs.get("alpha", 0.01)))
        return shape
    if op in ("Identity", "Dropout"):
        return shape
    if op == "Flatten":
        axis = attrs.get("axis", 1)
        axis = axis + len(shape) if axis < 0 else axis
        return (int(np.prod(shape[:axis])), int(np.prod(shape[axis:])))
    if op == "Reshape":
        target = static[0] if static else attrs.get("shape")
        return _reshaped(shape, target.astype(np.int64).reshape(-1).tolist() if static else target, node)
    if op in ("Softmax", "LogSoftmax"):
        raise NetworkError(f"{label}: softmax is only ignored as the node producing the graph output")
    raise NetworkError(f"{label} is not supported: {ONNX_SUPPORTED}")


def convert_onnx(model, metadata: dict | None = None) -> Network:
    """An ``onnx.ModelProto`` → `Network`, following the single chain from input to output."""
    onnx = _import_onnx()
    graph = model.graph
    consts = {t.name: onnx.numpy_helper.to_array(t) for t in graph.initializer}
    inputs = [v for v in graph.input if v.name not in consts]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise NetworkError(f"the ONNX graph needs one input and one output (has {len(inputs)} and {len(graph.output)})")
    dims = inputs[0].type.tensor_type.shape.dim
    if not dims or not all(d.HasField("dim_value") for d in dims[1:]):
        raise NetworkError(f"ONNX input {inputs[0].name!r}: shape must be known except the batch dimension")
    shape = tuple(d.dim_value if d.HasField("dim_value") else 1 for d in dims)
    if len(shape) > 1 and shape[0] != 1 and dims[0].HasField("dim_value"):
        raise NetworkError(f"ONNX input {inputs[0].name!r} has a fixed batch size {shape[0]} (need 1 or symbolic)")
    x, output = inputs[0].name, graph.output[0].name
    chain = _Chain(int(np.prod(shape)))
    for node in graph.node:
        label = _node_label(node)
        if node.op_type == "Constant":
            value = onnx.helper.get_attribute_value(node.attribute[0])
            consts[node.output[0]] = (onnx.numpy_helper.to_array(value) if isinstance(value, onnx.TensorProto)
                                      else np.asarray(value))
            continue
        dynamic = [name for name in node.input if name and name not in consts]
        if node.op_type in ("Softmax", "LogSoftmax") and node.output[0] == output and dynamic == [x]:
            output = x  # ranking-preserving: the MILP works on the logits
            break
        if len(dynamic) > 1:
            raise NetworkError(f"{label} has {len(dynamic)} dynamic inputs (residual/branching graphs are not supported)")
        if dynamic != [x]:
            raise NetworkError(f"{label} does not continue the chain from the graph input (branching is not supported)")
        shape = _onnx_step(node, x, consts, shape, chain, onnx)
        x = node.output[0]
    if x != output:
        raise NetworkError(f"ONNX chain ends at {x!r}, not at the graph output {output!r}")
    if int(np.prod(shape)) != chain.n:
        raise NetworkError(f"ONNX output shape {shape} is not a flat vector")
    return chain.to_network(dict(metadata or {}), "ONNX model")


def load_onnx(path: str | os.PathLike) -> Network:
    """A `Network` from an ``.onnx`` file (onnx's numpy helpers only; no onnxruntime)."""
    path = Path(path)
    if not path.is_file():
        raise NetworkError(f"{path}: ONNX file not found")
    onnx = _import_onnx()
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # protobuf DecodeError and friends
        raise NetworkError(f"{path}: cannot read ONNX model ({type(exc).__name__}: {exc})") from exc
    return convert_onnx(model, _imported_metadata(path, "onnx"))


def load_any(path_or_name: str | os.PathLike, models_dir: str | os.PathLike | None = None) -> Network:
    """Dispatch by suffix: .npz, .onnx, .keras/.h5, .json (a tree ensemble); anything else is a shipped
    name: a tree ensemble's (``forest-d6-n10``: ``<models>/trees/forest-d6-n10.json``, `TreeArch`) or a
    network's (`load_network`)."""
    path = Path(path_or_name)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        net = Network.load(path)
        net.metadata.setdefault("architecture", path.stem)
        return net
    if suffix == ".onnx":
        return load_onnx(path)
    if suffix in (".keras", ".h5"):
        return load_keras(path)
    if suffix == ".json":   # a tree ensemble (advmilp.nn.trees): metadata .json beside its arrays
        from advmilp.nn.trees import TreeEnsemble

        return TreeEnsemble.load(path)
    from advmilp.nn.architectures import is_tree_arch

    if is_tree_arch(str(path_or_name)) and not path.is_file():
        from advmilp.nn.network import default_models_dir
        from advmilp.nn.trees import TreeArch

        name = TreeArch.parse(str(path_or_name)).name
        file = (Path(models_dir) if models_dir else default_models_dir()) / "trees" / f"{name}.json"
        if not file.is_file():
            raise NetworkError(f"{file}: no trained tree ensemble {name} (run 'advmilp train --arch {name}')")
        return load_any(file)
    return load_network(str(path_or_name), models_dir)


# ---- export ---------------------------------------------------------------------------------
def export_onnx(network: Network, path: str | os.PathLike, opset: int = 13) -> Path:
    """Write ``network`` as ONNX: input "input" float32 [N, n0], Gemm (transB=1) + Relu, output "logits".

    Weights are stored as float32 (what verifiers expect); networks trained in float32, like
    the shipped ones, round-trip exactly.  metadata_props carry the float64 content hash.
    """
    onnx = _import_onnx()
    helper, path = onnx.helper, Path(path)
    inits, nodes, x = [], [], "input"
    for k, layer in enumerate(network.layers):
        inits += [onnx.numpy_helper.from_array(layer.W.astype(np.float32), f"W{k}"),
                  onnx.numpy_helper.from_array(layer.b.astype(np.float32), f"b{k}")]
        last, linear = k == len(network.layers) - 1, layer.activation == "linear"
        z = "logits" if last and linear else f"z{k}"
        nodes.append(helper.make_node("Gemm", [x, f"W{k}", f"b{k}"], [z], name=f"gemm{k}", transB=1))
        if linear:
            x = z
        else:
            x = "logits" if last else f"a{k}"
            if layer.activation == "relu":
                nodes.append(helper.make_node("Relu", [z], [x], name=f"relu{k}"))
            else:
                nodes.append(helper.make_node("LeakyRelu", [z], [x], name=f"leaky{k}", alpha=float(layer.slope)))
    graph = helper.make_graph(
        nodes, network.name, [helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, ["N", network.n_inputs])],
        [helper.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, ["N", network.n_outputs])], inits)
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="advmilp",
                              ir_version=helper.find_min_ir_version_for(opsets))
    helper.set_model_props(model, {"advmilp_sha256": network.content_hash(), "architecture": network.name})
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path
