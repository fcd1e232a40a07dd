"""Trained float weights -> INT8 .tflite (the export half of `octo export`).

The converted model's IR is rebuilt as a float Keras model (same ops, same order, layers named
after the original ones), the trained weights are put in, and the model is quantized again with
converter/quantize.py: every activation scale and per-channel weight scale is re-derived from the
trained weights, so the requantization parameters follow the weights. Weight layouts are TFLite's:
conv [OC,KH,KW,C], depthwise [1,KH,KW,C*mult], fully connected [O,D], bias [OC].
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from converter.ir import ConvertError, Graph, Op, Tensor

TRAINABLE_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
KERAS_OPS = (*TRAINABLE_OPS, "MAX_POOL_2D", "AVERAGE_POOL_2D", "MEAN", "RESHAPE", "PAD", "PADV2", "ADD", "SOFTMAX")
_ACTIVATIONS = {"NONE": None, "RELU": "relu", "RELU6": "relu6"}

Weights = Mapping[int, tuple[np.ndarray, np.ndarray]]


def _dequantize(t: Tensor) -> np.ndarray:
    """Constant int8 (per-tensor or per-channel along quant_dim) or float32 tensor -> float32."""
    assert t.data is not None
    if t.dtype == "float32" or t.scale is None:
        return np.asarray(t.data, np.float32)
    shape = [1] * t.data.ndim
    if t.scale.size > 1:
        shape[t.quant_dim] = t.scale.size
    zp = np.zeros(1, np.int64) if t.zero_point is None else t.zero_point
    q = t.data.astype(np.float64) - zp.reshape(shape if zp.size > 1 else [1] * t.data.ndim)
    return (q * t.scale.astype(np.float64).reshape(shape)).astype(np.float32)


def _float_weights(g: Graph, op: Op) -> tuple[np.ndarray, np.ndarray]:
    w_t = g.tensors[op.inputs[1]] if len(op.inputs) > 1 and op.inputs[1] >= 0 else None
    if w_t is None or not w_t.is_const:
        raise ConvertError(f"{op.label(g)}: weights are not a constant tensor; export needs constant weights")
    w = _dequantize(w_t)
    n_out = w.shape[-1] if op.kind == "DEPTHWISE_CONV_2D" else w.shape[0]
    b_t = g.tensors[op.inputs[2]] if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
    if b_t is None or b_t.data is None:
        return w, np.zeros(n_out, np.float32)
    if b_t.dtype == "float32":
        return w, np.asarray(b_t.data, np.float32).reshape(n_out)
    in_scale = g.tensors[op.inputs[0]].qparams()[0]
    w_scale = np.broadcast_to(np.asarray(w_t.scale, np.float64).reshape(-1), (n_out,))
    b = b_t.data.astype(np.float64).reshape(n_out) * in_scale * w_scale
    return w, b.astype(np.float32)


def graph_float_weights(g: Graph) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """{op index: (float weights, float bias)} for every conv, depthwise and fully connected op."""
    return {op.index: _float_weights(g, op) for op in g.ops if op.kind in TRAINABLE_OPS}


def _check_weights(g: Graph, weights: Weights) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """The given weights merged over the graph's own, after checking indices and shapes."""
    merged = graph_float_weights(g)
    trainable = ", ".join(f"{i} ({g.ops[i].kind})" for i in merged) or "none"
    for idx, pair in weights.items():
        if idx not in merged:
            what = f"op {idx} ({g.ops[idx].kind})" if 0 <= idx < len(g.ops) else f"op index {idx}"
            raise ConvertError(f"weights given for {what}, which is not a trainable op of the model; "
                               f"trainable ops are {trainable}")
        op = g.ops[idx]
        w, b = (np.asarray(a, np.float32) for a in pair)
        for role, got, want in (("weights", w, merged[idx][0]), ("bias", b, merged[idx][1])):
            if got.shape != want.shape:
                raise ConvertError(f"{op.label(g)}: {role} have shape {got.shape}, the model needs {want.shape} "
                                   "(TFLite layout: conv [OC,KH,KW,C], depthwise [1,KH,KW,C*mult], FC [O,D])")
            if not np.all(np.isfinite(got)):
                raise ConvertError(f"{op.label(g)}: {role} contain NaN or infinity; the training diverged")
        merged[idx] = (w, b)
    return merged


def _activation(g: Graph, op: Op) -> str | None:
    act = str(op.options.get("activation", "NONE"))
    if act not in _ACTIVATIONS:
        raise ConvertError(f"{op.label(g)}: fused activation {act} cannot be exported (NONE, RELU, RELU6)")
    return _ACTIVATIONS[act]


def _layer_names(g: Graph) -> dict[int, str]:
    """A unique Keras layer name per op, from its output tensor's name (codegen.layer_name)."""
    from converter.codegen import layer_name  # noqa: PLC0415

    names: dict[int, str] = {}
    used: set[str] = set()
    for op in g.ops:
        fallback = op.kind.lower()
        name = re.sub(r"[^A-Za-z0-9_]", "_", layer_name(g.tensors[op.outputs[0]].name, fallback))
        if name in used:
            name = f"{name}_op{op.index}"
        used.add(name)
        names[op.index] = name
    return names


def _model_name(g: Graph) -> str:
    """'digits_cnn_1/conv1_1/...' -> 'digits_cnn' (the original Keras model's name), else 'octo_export'."""
    for t in g.tensors:
        first = t.name.split(";")[0]
        if "/" in first:
            return re.sub(r"_\d+$", "", first.split("/")[0]) or "octo_export"
    return "octo_export"


def _const(g: Graph, op: Op, pos: int, role: str) -> np.ndarray:
    t = g.tensors[op.inputs[pos]] if len(op.inputs) > pos and op.inputs[pos] >= 0 else None
    if t is None or t.data is None:
        raise ConvertError(f"{op.label(g)}: {role} must be a constant tensor")
    return np.asarray(t.data)


def _build_layer(g: Graph, op: Op, name: str, x: Any, wb: tuple[np.ndarray, np.ndarray] | None,
                 others: list[Any]) -> Any:
    """The Keras layer(s) for one IR op applied to x; returns the output tensor."""
    import keras  # noqa: PLC0415
    from keras import layers  # noqa: PLC0415

    o = g.tensors[op.outputs[0]]
    opt = op.options
    if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        assert wb is not None
        w, b = wb
        common = {"strides": (int(opt.get("stride_h", 1)), int(opt.get("stride_w", 1))),
                  "padding": str(opt.get("padding", "VALID")).lower(),
                  "dilation_rate": (int(opt.get("dilation_h", 1)), int(opt.get("dilation_w", 1))),
                  "activation": _activation(g, op), "use_bias": True, "name": name}
        if op.kind == "CONV_2D":
            layer = layers.Conv2D(w.shape[0], w.shape[1:3], **common)
            kernel = w.transpose(1, 2, 3, 0)
        else:
            c = int(x.shape[-1])
            mult = w.shape[3] // c
            layer = layers.DepthwiseConv2D(w.shape[1:3], depth_multiplier=mult, **common)
            kernel = w.reshape(w.shape[1], w.shape[2], c, mult)
        y = layer(x)
        layer.set_weights([kernel, b])
        return y
    if op.kind == "FULLY_CONNECTED":
        assert wb is not None
        w, b = wb
        if len(x.shape) > 2 and not (opt.get("keep_num_dims") and int(x.shape[-1]) == w.shape[1]):
            x = layers.Reshape((w.shape[1],), name=f"{name}_flatten")(x)  # NHWC row-major, as TFLite
        layer = layers.Dense(w.shape[0], activation=_activation(g, op), name=name)
        y = layer(x)
        layer.set_weights([w.T, b])
        return y
    if op.kind in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
        cls = layers.MaxPooling2D if op.kind == "MAX_POOL_2D" else layers.AveragePooling2D
        y = cls((int(opt["filter_h"]), int(opt["filter_w"])), strides=(int(opt["stride_h"]), int(opt["stride_w"])),
                padding=str(opt["padding"]).lower(), name=name)(x)
        act = _activation(g, op)
        return layers.Activation(act, name=f"{name}_act")(y) if act else y
    if op.kind == "MEAN":
        axes = sorted({int(a) % 4 for a in _const(g, op, 1, "MEAN axes").reshape(-1)})
        if len(x.shape) != 4 or axes != [1, 2]:
            raise ConvertError(f"{op.label(g)}: only the spatial MEAN (axes [1, 2] of NHWC) can be exported, "
                               f"got axes {axes}")
        return layers.GlobalAveragePooling2D(keepdims=len(o.shape) == 4, name=name)(x)
    if op.kind == "RESHAPE":
        return layers.Reshape(tuple(o.shape[1:]), name=name)(x)
    if op.kind in ("PAD", "PADV2"):
        pads = _const(g, op, 1, "paddings").astype(int).tolist()
        value = 0.0
        if op.kind == "PADV2" and len(op.inputs) > 2 and op.inputs[2] >= 0:
            s, zp = o.qparams()
            value = (float(_const(g, op, 2, "constant value").reshape(-1)[0]) - zp) * s
        if len(pads) == 4 and pads[0] == [0, 0] and pads[3] == [0, 0] and value == 0.0:
            return layers.ZeroPadding2D((tuple(pads[1]), tuple(pads[2])), name=name)(x)
        return layers.Lambda(lambda t: keras.ops.pad(t, pads, constant_values=value), name=name)(x)
    if op.kind == "ADD":
        y = layers.Add(name=name)([x, *others])
        act = _activation(g, op)
        return layers.Activation(act, name=f"{name}_act")(y) if act else y
    if op.kind == "SOFTMAX":
        if float(opt.get("beta", 1.0)) != 1.0:
            raise ConvertError(f"{op.label(g)}: SOFTMAX with beta {opt.get('beta')} cannot be exported (beta 1 only)")
        return layers.Softmax(name=name)(x)
    raise ConvertError(f"{op.label(g)}: {op.kind} cannot be exported; supported: {', '.join(KERAS_OPS)}")


def keras_from_graph(g: Graph, weights: Weights) -> Any:
    """A float keras.Model (static batch 1) with the IR's ops, holding `weights` (else the IR's own)."""
    import keras  # noqa: PLC0415

    if len(g.inputs) != 1:
        raise ConvertError(f"{g.name!r} has {len(g.inputs)} inputs; export supports one")
    for op in g.ops:
        if op.kind not in KERAS_OPS:
            raise ConvertError(f"{op.label(g)}: {op.kind} cannot be exported; supported: {', '.join(KERAS_OPS)}")
    merged = _check_weights(g, weights)
    names = _layer_names(g)
    in_name = re.sub(r"^serving_default_|:\d+$", "", g.input.name)
    inp = keras.Input(tuple(g.input.shape[1:]), batch_size=1, name=re.sub(r"[^A-Za-z0-9_]", "_", in_name) or "input")
    values: dict[int, Any] = {g.inputs[0]: inp}
    for op in g.ops:
        n_act = 2 if op.kind == "ADD" else 1
        acts = []
        for ti in op.inputs[:n_act]:
            if ti not in values:
                raise ConvertError(f"{op.label(g)}: input tensor {g.tensors[ti].name!r} is not computed by an "
                                   "earlier op (constant activations cannot be exported)")
            acts.append(values[ti])
        values[op.outputs[0]] = _build_layer(g, op, names[op.index], acts[0], merged.get(op.index), acts[1:])
    return keras.Model(inp, [values[i] for i in g.outputs] if len(g.outputs) > 1 else values[g.outputs[0]],
                       name=_model_name(g))


def keras_tail(g: Graph, split_op: int, weights: Weights | None = None, *, logits: bool = True) -> Any:
    """The cloud half of split learning: a float keras.Model (any batch size) from the output of op
    `split_op` (NHWC, per sample as in the IR) through the rest of a chain, holding `weights` (else the
    IR's own). logits=True leaves out a final SOFTMAX (the loss takes logits)."""
    import keras  # noqa: PLC0415

    ops = [op for op in g.ops if op.index > split_op]
    if not 0 <= split_op < len(g.ops) or not ops:
        raise ConvertError(f"op {split_op} is not followed by any op: nothing left for the cloud")
    if logits and ops[-1].kind == "SOFTMAX":
        ops = ops[:-1]
    for op in ops:
        if op.kind not in KERAS_OPS:
            raise ConvertError(f"{op.label(g)}: {op.kind} cannot run in the cloud half; supported: "
                               f"{', '.join(KERAS_OPS)}")
    merged = _check_weights(g, weights or {})
    names = _layer_names(g)
    cut = g.ops[split_op].outputs[0]
    inp = keras.Input(tuple(int(v) for v in g.tensors[cut].shape[1:]), name="split_features")
    values: dict[int, Any] = {cut: inp}
    for op in ops:
        n_act = 2 if op.kind == "ADD" else 1
        acts = []
        for ti in op.inputs[:n_act]:
            if ti not in values:
                raise ConvertError(f"{op.label(g)}: reads tensor {g.tensors[ti].name!r}, which the cloud half does "
                                   "not compute (a skip connection across the split point)")
            acts.append(values[ti])
        values[op.outputs[0]] = _build_layer(g, op, names[op.index], acts[0], merged.get(op.index), acts[1:])
    return keras.Model(inp, values[ops[-1].outputs[0]], name=f"{_model_name(g)}_cloud")


def _kinds(g: Graph) -> list[str]:
    return ["PAD" if op.kind == "PADV2" else op.kind for op in g.ops]


def export_tflite(model_dir: Path, weights: Weights, calib_x: np.ndarray, out: Path) -> dict[str, Any]:
    """Re-quantize model_dir/model.tflite with trained float weights and write the INT8 .tflite to `out`."""
    from converter.quantize import quantize_keras  # noqa: PLC0415
    from converter.tflite_reader import parse_tflite, read_tflite  # noqa: PLC0415

    src = Path(model_dir) / "model.tflite"
    if not src.is_file():
        raise ConvertError(f"{model_dir} has no model.tflite: pass the folder written by `octo convert ... -o DIR`")
    g = read_tflite(src)
    model = keras_from_graph(g, weights)
    data = quantize_keras(model, np.asarray(calib_x, np.float32))
    new = parse_tflite(data, str(out))
    if _kinds(new) != _kinds(g):
        raise ConvertError(f"re-quantized model has ops {_kinds(new)}, the original {src} has {_kinds(g)}; "
                           "the export cannot keep this model's structure")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    scale, zp = new.input.qparams()
    return {"path": str(out), "bytes": len(data), "ops": len(new.ops), "input_scale": scale,
            "input_zero_point": zp}
