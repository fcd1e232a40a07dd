"""IR -> static C model (no interpreter) + arena plan.

Output files (deterministic: same model, same bytes):
  model.c               weights, parameters, the layer sequence, g_octo_model
  octo_model_config.h   OCTO_ARENA_BYTES for the firmware/host driver
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from converter.ir import ConvertError, Graph
from converter.ops import EmitCtx, lowering_for
from converter.planner import Plan, plan_best

OCTO_VERSION = "0.1.0"


@dataclass(frozen=True)
class LayerInfo:
    index: int
    name: str              # Keras layer name where recoverable, else "<op>_<index>"
    tensor: str            # the TFLite output tensor name
    op: str
    macs: int
    params: int            # constant elements (weights + biases)
    weight_bytes: int      # bytes of constants in flash for this layer
    input_shapes: list[tuple[int, ...]]
    output_shape: tuple[int, ...]
    output_bytes: int
    scratch_bytes: int

    def as_dict(self) -> dict[str, object]:
        return {
            "index": self.index, "name": self.name, "tensor": self.tensor, "op": self.op, "macs": self.macs,
            "params": self.params,
            "weight_bytes": self.weight_bytes, "input_shapes": [list(s) for s in self.input_shapes],
            "output_shape": list(self.output_shape), "output_bytes": self.output_bytes,
            "scratch_bytes": self.scratch_bytes,
        }


@dataclass
class CompiledModel:
    graph: Graph
    plan: Plan
    layers: list[LayerInfo]
    files: dict[str, str]
    fingerprint: int = 0

    @property
    def arena_bytes(self) -> int:
        return self.plan.arena_bytes

    @property
    def weight_bytes(self) -> int:
        return sum(layer.weight_bytes for layer in self.layers)


_PRIMARY = re.compile(r"^(convolution|depthwise|MatMul|BiasAdd|AvgPool|MaxPool|Mean|Add|add|Pad|Reshape|Softmax)")


def layer_name(tensor_name: str, fallback: str) -> str:
    """Keras layer name from a TFLite tensor name.

    'm_1/relu1_1/Relu;m_1/conv1_1/convolution' -> 'conv1' (the part naming the op's main
    computation wins over fused activations and folded BatchNorm); names without a layer path -> fallback.
    """
    parts = [c.split("/") for c in tensor_name.split(";") if "/" in c]
    parts = [p for p in parts if len(p) < 2 or p[-2] != "batchnorm"] or parts  # a folded BN's add is not the op
    chosen = next((p for p in parts if _PRIMARY.match(p[-1])), parts[0] if parts else None)
    if chosen is None or len(chosen) < 2:
        return fallback
    return re.sub(r"_\d+$", "", chosen[-2]) or fallback


def _c_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def validate_graph(g: Graph) -> None:
    if len(g.inputs) != 1 or len(g.outputs) != 1:
        raise ConvertError(f"model has {len(g.inputs)} inputs and {len(g.outputs)} outputs; Octo supports one of each")
    for role, t in (("input", g.input), ("output", g.output)):
        if t.dtype != "int8":
            raise ConvertError(f"model {role} {t.name!r} is {t.dtype}; Octo needs int8 input and output "
                               "(full-integer quantization with inference_input_type/output_type = int8)")
        if t.scale is None or t.scale.size != 1:
            raise ConvertError(f"model {role} {t.name!r} has no quantization parameters")
        if t.shape and t.shape[0] != 1:
            raise ConvertError(f"model {role} has batch size {t.shape[0]}; Octo runs batch 1")
    if not g.ops:
        raise ConvertError("model has no operators")


def compile_graph(g: Graph, source_name: str = "model", fingerprint: int = 0,
                  wide: set[int] | None = None) -> CompiledModel:
    """fingerprint: CRC-32 of the .tflite bytes, stored in the model so a board can prove what it runs.
    wide: ops whose packed weights take the 2-byte layout (converter/flash.py); the others take 1 byte."""
    from converter.lower.conv import WEIGHT_BYTES  # noqa: PLC0415
    from converter.rewrite import rewrite_graph  # noqa: PLC0415

    g = rewrite_graph(g)
    validate_graph(g)
    for op in g.ops:
        op.options.pop(WEIGHT_BYTES, None)
        if wide and op.index in wide:
            op.options[WEIGHT_BYTES] = 2
    lowerings = []
    for op in g.ops:
        low = lowering_for(g, op)
        try:
            low.check(g, op)
        except ConvertError as exc:
            msg = str(exc)
            raise ConvertError(msg if msg.startswith("op ") else f"{op.label(g)}: {msg}") from None
        except (ValueError, KeyError, IndexError, TypeError, OverflowError) as exc:
            # Parameters no valid converter writes (e.g. a damaged file): say where.
            raise ConvertError(f"{op.label(g)}: invalid parameters ({type(exc).__name__}: {exc}); "
                               "the file may be corrupt") from None
        lowerings.append(low)

    producers: dict[int, int] = {}
    consumers: dict[int, list[int]] = {}
    for op in g.ops:
        for t in op.outputs:
            producers[t] = op.index
        for t in op.inputs:
            if t >= 0 and not g.tensors[t].is_const:
                consumers.setdefault(t, []).append(op.index)
    act = {t.index: t.nbytes for t in g.tensors if not t.is_const and (t.index in producers or t.index in g.inputs)}
    aliases: dict[int, int] = {}
    scratch: dict[int, int] = {}
    for op, low in zip(g.ops, lowerings, strict=True):
        src = low.alias(g, op)
        if src is not None:
            aliases[op.outputs[0]] = src
        scratch[op.index] = low.scratch(g, op)
    lagged = _inplace_candidates(g, lowerings, consumers)
    plan = plan_best(len(g.ops), act, producers, consumers, g.inputs, g.outputs, aliases, scratch, lagged)

    ctx = EmitCtx(g, plan.tensor_offset, plan.scratch_offset)
    calls: list[str] = []
    layers: list[LayerInfo] = []
    for op, low in zip(g.ops, lowerings, strict=True):
        n_before = len(ctx.decls)
        calls.append(low.emit(ctx, g, op))
        consts = [g.tensors[t] for t in op.inputs if t >= 0 and g.tensors[t].is_const]
        out = g.tensors[op.outputs[0]]
        layers.append(LayerInfo(
            index=op.index, name=layer_name(out.name, f"{op.kind.lower()}_{op.index}"), tensor=out.name,
            op=op.kind, macs=low.macs(g, op),
            params=int(sum(t.size for t in consts)), weight_bytes=_decl_bytes(ctx.decls[n_before:]),
            input_shapes=[g.tensors[t].shape for t in op.inputs if t >= 0 and not g.tensors[t].is_const],
            output_shape=out.shape, output_bytes=out.nbytes, scratch_bytes=scratch[op.index]))

    files = {"model.c": _model_c(g, source_name, plan, ctx, calls, layers, fingerprint),
             "octo_model_config.h": _config_h(source_name, plan)}
    return CompiledModel(g, plan, layers, files, fingerprint)


def _inplace_candidates(g: Graph, lowerings: list, consumers: dict[int, list[int]]) -> dict[int, tuple[int, int]]:
    """Inputs that may share their op's output buffer (converter/inplace.py): the op must be the
    input's last reader, and the input must not be the graph input (callers may run the model
    again on the same input). The planner still refuses any sharing that would collide."""
    lagged: dict[int, tuple[int, int]] = {}
    for op, low in zip(g.ops, lowerings, strict=True):
        lag = low.inplace_lag(g, op)
        if lag is None or not op.inputs or not op.outputs:
            continue
        t_in = op.inputs[0]
        if t_in in g.inputs or t_in in g.outputs or max(consumers.get(t_in, [op.index])) != op.index:
            continue
        lagged[t_in] = (op.outputs[0], lag)
    return lagged


def _decl_bytes(decls: list[str]) -> int:
    """Flash bytes of the constant arrays in a layer's declarations."""
    sizes = {"int8_t": 1, "uint8_t": 1, "int16_t": 2, "int32_t": 4}
    total = 0
    mve_only = False  # the Helium variant of an array (conv.emit_wpack): the DSP/portable one is counted
    for d in decls:
        if d.startswith("#"):
            mve_only = d.startswith("#if defined(__ARM_FEATURE_MVE)")
            continue
        if mve_only:
            continue
        head = d.split("=", 1)[0]
        parts = head.split()
        if len(parts) >= 4 and "[" in head:
            ctype = parts[2]
            count = int(head[head.index("[") + 1 : head.index("]")])
            total += sizes.get(ctype, 4) * count
    return total


def _c_float(x: float) -> str:
    """A C float literal that parses back to exactly this float32 value."""
    return f"{float(np.float32(x))!r}f"


def _banner(source_name: str) -> str:
    return f"/* generated by octo convert (Octo {OCTO_VERSION}) from {source_name} - do not edit */\n"


def _config_h(source_name: str, plan: Plan) -> str:
    return (_banner(source_name) + "#ifndef OCTO_MODEL_CONFIG_H\n#define OCTO_MODEL_CONFIG_H\n"
            f"#define OCTO_ARENA_BYTES {max(plan.arena_bytes, 16)}u\n#endif\n")


def _model_c(g: Graph, source_name: str, plan: Plan, ctx: EmitCtx, calls: list[str],
             layers: list[LayerInfo], fingerprint: int) -> str:
    in_t, out_t = g.input, g.output
    in_scale, in_zp = in_t.qparams()
    out_scale, out_zp = out_t.qparams()
    lines = [_banner(source_name), "#include <stddef.h>", "#include <stdint.h>", "",
             '#include "octo/octo_kernels.h"', '#include "octo/octo_model.h"', "", *ctx.decls, ""]
    lines.append(f"static const octo_layer_info_t k_layers[{len(layers)}] = {{")
    for layer in layers:
        lines.append(f"    {{{_c_string(layer.name)}, {_c_string(layer.op)}, {layer.macs}u}},")
    lines += ["};", "", "static int invoke(uint8_t *arena, octo_layer_hook_fn hook, void *ctx) {", "    int st;"]
    for i, call in enumerate(calls):
        lines += [f"    st = {call};", "    if (st != OCTO_OK) {", "        return st;", "    }",
                  "    if (hook != NULL) {", f"        hook(ctx, {i}u);", "    }"]
    lines += ["    return OCTO_OK;", "}", ""]
    lines += [
        "const octo_model_t g_octo_model = {",
        f"    .name = {_c_string(g.name or source_name)},",
        f"    .fingerprint = 0x{fingerprint:08x}u,",
        f"    .arena_bytes = {max(plan.arena_bytes, 16)}u,",
        f"    .input_offset = {plan.tensor_offset[in_t.index]}u,",
        f"    .input_bytes = {in_t.nbytes}u,",
        f"    .output_offset = {plan.tensor_offset[out_t.index]}u,",
        f"    .output_bytes = {out_t.nbytes}u,",
        f"    .input_scale = {_c_float(in_scale)},",
        f"    .input_zero_point = {in_zp},",
        f"    .output_scale = {_c_float(out_scale)},",
        f"    .output_zero_point = {out_zp},",
        f"    .n_layers = {len(layers)}u,",
        "    .layers = k_layers,",
        "    .invoke = invoke,",
        "};",
        "",
    ]
    return "\n".join(lines)
