"""Bring your own network: import Keras/ONNX models, export ONNX and VNN-COMP benchmarks.

Import accepts any feed-forward chain of dense layers with ReLU or LeakyReLU (plus Flatten/Reshape,
Identity/Dropout and a final Softmax, which is ignored: the MILP works on the logits).
Consecutive affine maps (MatMul then Add, Gemm then a constant Add, elementwise Sub/Mul/Div
by constants, two dense layers without a ReLU between them) are composed into one dense
layer, so the result is always ``act(W a + b)`` layers (act = relu or leaky_relu) with a linear
(or ReLU) last layer.
Anything else is refused with a `NetworkError` naming the offending layer or node.

Export writes a plain ONNX model (Gemm + Relu/LeakyRelu, float32) and VNN-COMP style benchmark folders
(``onnx/``, ``vnnlib/``, ``instances.csv``).  ``parse_vnnlib`` reads back exactly the
VNN-LIB subset written here.  A property is kept in disjunctive normal form: a tuple of
disjuncts, each a tuple of pairs ``(i, j)`` meaning ``Y_i >= Y_j``; the property holds (a
counterexample exists) if every pair of some disjunct holds.

Keras and onnx are imported inside the functions that need them, never at module level.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from advmilp.errors import AdvmilpError, NetworkError
from advmilp.nn.network import Network, load_network

KERAS_SKIPPED = ("InputLayer", "Flatten", "Reshape", "Dropout")
ONNX_SUPPORTED = "advmilp handles dense ReLU networks (Gemm/MatMul+Add, Relu, LeakyRelu, Flatten)"
KERAS_LEAKY_DEFAULT = 0.2     # keras.activations.leaky_relu's default negative slope (Keras 3)
NORMS = ("linf", "l1")


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
    """Dispatch by suffix: .npz, .onnx, .keras/.h5; anything else is a shipped network name."""
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


def build_property(label: int, n_outputs: int, target: int | None = None) -> tuple:
    """The counterexample property in DNF (see the module docstring)."""
    if target is None:
        return tuple(((j, label),) for j in range(n_outputs) if j != label)
    return (tuple((target, j) for j in range(n_outputs) if j != target),)


def _number(v: float) -> str:
    """Plain decimal (no exponent) that reads back to the same float64."""
    return np.format_float_positional(float(v), unique=True, trim="0")


def _format_vnnlib(lb, ub, prop, n_outputs: int, comments: list[str]) -> str:
    lines = [f"; {c}" for c in comments]
    lines += [f"(declare-const X_{i} Real)" for i in range(len(lb))] + [""]
    lines += [f"(declare-const Y_{j} Real)" for j in range(n_outputs)] + [""]
    for i, (lo, hi) in enumerate(zip(lb, ub)):
        lines += [f"(assert (<= X_{i} {_number(hi)}))", f"(assert (>= X_{i} {_number(lo)}))"]
    lines.append("")
    if len(prop) == 1:
        lines += [f"(assert (>= Y_{i} Y_{j}))" for i, j in prop[0]]
    else:
        ands = " ".join("(and " + " ".join(f"(>= Y_{i} Y_{j})" for i, j in d) + ")" for d in prop)
        lines.append(f"(assert (or {ands}))")
    return "\n".join(lines) + "\n"


def export_vnnlib(network: Network, out_dir: str | os.PathLike, images, labels, indices, epsilon: float,
                  norm: str = "linf", targets=None, timeout: float = 300) -> list[tuple[str, str, str]]:
    """Write a VNN-COMP benchmark folder; returns the instance rows written.

    ``images``/``labels`` are a whole split and ``indices`` pick from it.  Each instance is
    the L∞ ball of radius ``epsilon`` around the image, intersected with [0, 1].  The
    property is the negation of robustness, as in VNN-COMP: untargeted, some Y_j >= Y_label
    (j ≠ label); targeted at t (``targets`` an int or one per index), Y_t >= Y_j for every
    j ≠ t, i.e. t is the (weak) argmax, as advmilp's targeted attacks require (the thesis'
    ratio 1.2 is not encoded).  Files: ``onnx/<name>.onnx``,
    ``vnnlib/<name>_<index>_<norm>_<eps>[_t<target>].vnnlib``, and ``instances.csv``
    (merged with any rows already there).  VNN-LIB input sets are boxes, so ``l1`` is refused.
    """
    if norm not in NORMS:
        raise AdvmilpError(f"unknown norm {norm!r} (choose from {', '.join(NORMS)})")
    if norm == "l1":
        raise AdvmilpError("VNN-LIB input sets are boxes (one interval per input); an L1 ball is not a box, "
                           "so it cannot be exported — use norm linf, or advmilp's own L1 attacks")
    if not epsilon > 0:
        raise AdvmilpError(f"epsilon must be positive, got {epsilon}")
    instances = _select_instances(network, np.asarray(images, np.float64), np.asarray(labels), list(indices), targets)
    out, name, sha = Path(out_dir), network.name, network.content_hash()
    onnx_rel = f"onnx/{name}.onnx"
    export_onnx(network, out / onnx_rel)
    (out / "vnnlib").mkdir(parents=True, exist_ok=True)
    rows = []
    for index, x, label, target in instances:
        lb, ub = np.clip(x - epsilon, 0.0, 1.0), np.clip(x + epsilon, 0.0, 1.0)
        stem = f"{name}_{index}_{norm}_{epsilon:g}" + ("" if target is None else f"_t{target}")
        comments = [f"advmilp: {name} (sha256 {sha}), image {index}, label {label}, "
                    f"{'untargeted' if target is None else f'target {target}'}, {norm} epsilon {epsilon:g}",
                    f"network prediction at the centre: {int(network.predict(x))}"]
        prop = build_property(label, network.n_outputs, target)
        (out / "vnnlib" / f"{stem}.vnnlib").write_text(_format_vnnlib(lb, ub, prop, network.n_outputs, comments))
        rows.append((onnx_rel, f"vnnlib/{stem}.vnnlib", f"{timeout:g}"))
    csv = out / "instances.csv"
    old = [tuple(line.split(",")) for line in csv.read_text().splitlines() if line] if csv.is_file() else []
    csv.write_text("".join(",".join(row) + "\n" for row in dict.fromkeys(old + rows)))
    return rows


def _select_instances(network: Network, images, labels, indices: list, targets) -> list[tuple]:
    """Validate everything before writing: ``[(index, image, label, target or None), ...]``."""
    if images.ndim != 2 or images.shape[1] != network.n_inputs:
        raise AdvmilpError(f"images have shape {images.shape}; the network expects (N, {network.n_inputs})")
    if targets is not None and not np.ndim(targets):
        targets = [targets] * len(indices)
    if targets is not None and len(targets) != len(indices):
        raise AdvmilpError(f"{len(targets)} targets given for {len(indices)} images")
    instances = []
    for n, index in enumerate(indices):
        if not 0 <= index < len(images):
            raise AdvmilpError(f"image index {index} is out of range (0..{len(images) - 1})")
        x, label = images[index], int(labels[index])
        if x.min() < 0 or x.max() > 1:
            raise AdvmilpError(f"image {index}: pixel values must lie in [0, 1]")
        target = None if targets is None else int(targets[n])
        if target is not None and not (0 <= target < network.n_outputs and target != label):
            raise AdvmilpError(f"target {target} for image {index} (label {label}) is invalid")
        instances.append((int(index), x, label, target))
    return instances


# ---- VNN-LIB parsing (the subset written above) -------------------------------------------------
def _parse_sexprs(text: str) -> list:
    tokens = re.findall(r"\(|\)|[^\s()]+", re.sub(r";[^\n]*", "", text))
    stack, top = [], []
    for tok in tokens:
        if tok == "(":
            stack.append([])
        elif tok == ")":
            if not stack:
                raise AdvmilpError("unbalanced parentheses")
            done = stack.pop()
            (stack[-1] if stack else top).append(done)
        else:
            (stack[-1] if stack else top).append(tok)
    if stack:
        raise AdvmilpError("unbalanced parentheses")
    return top


def _output_atom(expr) -> tuple[int, int]:
    """``(>= Y_i Y_j)`` or ``(<= Y_j Y_i)`` → ``(i, j)``."""
    if len(expr) == 3 and expr[0] in (">=", "<=") and all(str(e).startswith("Y_") for e in expr[1:]):
        i, j = int(expr[1][2:]), int(expr[2][2:])
        return (i, j) if expr[0] == ">=" else (j, i)
    raise AdvmilpError(f"unsupported output constraint {expr}")


def parse_vnnlib(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, tuple]:
    """``(lb, ub, property)`` from a VNN-LIB file of the subset `export_vnnlib` writes."""
    path = Path(path)
    try:
        exprs = _parse_sexprs(path.read_text())
    except OSError as exc:
        raise AdvmilpError(f"{path}: cannot read ({exc.strerror})") from exc
    except AdvmilpError as exc:
        raise AdvmilpError(f"{path}: {exc}") from exc
    conjunction, disjuncts = [], None
    try:
        n_x = sum(1 for e in exprs if e[0] == "declare-const" and e[1].startswith("X_"))
        lb, ub = np.full(n_x, np.nan), np.full(n_x, np.nan)
        for e in exprs:
            if e[0] != "assert":
                continue
            body = e[1]
            if body[0] in ("<=", ">=") and body[1].startswith("X_"):
                (ub if body[0] == "<=" else lb)[int(body[1][2:])] = float(body[2])
            elif body[0] == "or":
                if any(d[0] != "and" for d in body[1:]):
                    raise AdvmilpError("(or ...) must contain (and ...) terms")
                disjuncts = tuple(tuple(_output_atom(a) for a in d[1:]) for d in body[1:])
            else:
                conjunction.append(_output_atom(body))
    except (IndexError, ValueError, TypeError, AttributeError) as exc:
        raise AdvmilpError(f"{path}: not in the supported VNN-LIB subset ({exc})") from exc
    except AdvmilpError as exc:
        raise AdvmilpError(f"{path}: {exc}") from exc
    if np.isnan(lb).any() or np.isnan(ub).any():
        raise AdvmilpError(f"{path}: some inputs have no lower or upper bound")
    if disjuncts is not None and conjunction:
        raise AdvmilpError(f"{path}: mixing (or ...) with top-level output constraints is not supported")
    return lb, ub, disjuncts if disjuncts is not None else (tuple(conjunction),)
