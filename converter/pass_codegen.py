"""IR + learned gates -> pass_model.c: the model as a PASS chain (firmware/include/octo/octo_pass.h).

A PASS model keeps every tensor between frames (each layer's output is its output cache), so instead of the
dense model's shared arena it gets one static block, laid out here:

    per tensor (the input, then each layer's output)   its int8 bytes
    per gated layer                                     the effective-input cache E (input bytes), the gate map
    per layer                                           the output mask (out h*w bytes)
    shared                                              the largest conv gather scratch

Kernel parameters come from the same lowerings as model.c (converter/lower/), so a PASS layer and the
dense layer run the same kernel on the same constants. Only chains of patch-local layers qualify:
CONV_2D on the packed path, MAX_POOL_2D and AVERAGE_POOL_2D, each reading the previous layer's output.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from converter.ir import ConvertError, Graph
from converter.lower.conv import WEIGHT_BYTES
from converter.ops import EmitCtx, lowering_for, to_nhwc

PASS_KINDS = {"CONV_2D": "OCTO_PASS_CONV", "MAX_POOL_2D": "OCTO_PASS_MAXPOOL", "AVERAGE_POOL_2D": "OCTO_PASS_AVGPOOL"}
GATES_VERSION = 1
NEVER_CUT = 1001  # cut_permille that never triggers


@dataclass
class PassLayer:
    index: int
    name: str
    op: str
    macs: int
    in_shape: tuple[int, int, int]    # h, w, c
    out_shape: tuple[int, int, int]
    gate: dict[str, Any] | None
    grid: tuple[int, int] = (0, 0)    # gated: patch rows, columns

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"index": self.index, "name": self.name, "op": self.op, "macs": self.macs,
                             "input_shape": list(self.in_shape), "output_shape": list(self.out_shape),
                             "gated": self.gate is not None}
        if self.gate is not None:
            d.update(patch=self.gate["patch"], sample=self.gate["sample"], grid=list(self.grid))
        return d


@dataclass
class PassPlan:
    layers: list[PassLayer]
    state_bytes: int
    regions: dict[str, int] = field(default_factory=dict)  # bytes by kind: tensors, caches, masks, maps, scratch
    cut_permille: int = NEVER_CUT

    def as_dict(self) -> dict[str, Any]:
        return {"state_bytes": self.state_bytes, "regions": self.regions, "cut_permille": self.cut_permille,
                "layers": [layer.as_dict() for layer in self.layers]}


def _align(n: int, a: int = 4) -> int:
    return (n + a - 1) // a * a


def check_chain(g: Graph) -> None:
    """The graph must be one chain of patch-local ops from the input to the output."""
    prev = g.inputs[0]
    for op in g.ops:
        if op.kind not in PASS_KINDS:
            raise ConvertError(f"{op.label(g)}: {op.kind} is not patch-local; PASS runs models made only of "
                               f"{', '.join(PASS_KINDS)} (fully connected, global pooling, reshape and softmax "
                               "layers mix every pixel: drop them or move them to the host)")
        acts = [t for t in op.inputs if t >= 0 and not g.tensors[t].is_const]
        if acts != [prev]:
            raise ConvertError(f"{op.label(g)}: reads {acts}, not only the previous layer's output; PASS needs "
                               "a plain chain (no branches or skip connections)")
        if len(g.tensors[prev].shape) != 4 or g.tensors[prev].shape[0] != 1:
            raise ConvertError(f"{op.label(g)}: PASS needs 4-D batch-1 tensors")
        if op.kind == "CONV_2D":
            f = g.tensors[op.inputs[1]]
            if (int(op.options.get("dilation_h", 1)), int(op.options.get("dilation_w", 1))) != (1, 1) \
                    or f.shape[3] != g.tensors[prev].shape[3]:
                raise ConvertError(f"{op.label(g)}: dilated or grouped convolutions are not supported by PASS")
        prev = op.outputs[0]
    if prev != g.outputs[0]:
        raise ConvertError("the model's output is not the last layer's output; PASS needs a plain chain")


def default_patch(g: Graph, op_index: int, base: int = 4) -> int:
    """P = base at the model input, scaled with the layer's resolution (the same image area), at least 2."""
    h_in = g.tensors[g.inputs[0]].shape[1]
    h = g.tensors[g.ops[op_index].inputs[0]].shape[1]
    return max(2, base * h // h_in)


def _arg_list(call: str) -> list[str]:
    """'kernel(a, b(c, d), e)' -> ['a', 'b(c, d)', 'e']."""
    inner = call[call.index("(") + 1 : call.rindex(")")]
    args, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            args.append(cur.strip())
            cur = ""
            continue
        depth += ch in "(["
        depth -= ch in ")]"
        cur += ch
    args.append(cur.strip())
    return args


def compile_pass(g: Graph, gates: dict[str, Any], source_name: str = "model",
                 fingerprint: int = 0) -> tuple[str, PassPlan]:
    """(pass_model.c text, plan). gates: the output of host_tools/video/gates.py (layers keyed by op index)."""
    from converter.codegen import _banner, _c_float, _c_string, layer_name, validate_graph  # noqa: PLC0415
    from converter.rewrite import rewrite_graph  # noqa: PLC0415

    g = rewrite_graph(g)
    validate_graph(g)
    check_chain(g)
    if gates.get("version") != GATES_VERSION:
        raise ConvertError(f"gates file version {gates.get('version')!r}; this Octo reads version {GATES_VERSION}")
    by_op: dict[int, dict[str, Any]] = {}
    for gate in gates.get("layers", []):
        i = int(gate["op"])
        if not 0 <= i < len(g.ops) or g.ops[i].kind != "CONV_2D":
            raise ConvertError(f"gate for op {i}: the model has no CONV_2D at that index (gates trained for "
                               "another model?)")
        for key in ("patch", "sample", "a_mean", "a_max", "threshold"):
            if key not in gate:
                raise ConvertError(f"gate for op {i} lacks {key!r}")
        if int(gate["patch"]) < 1 or int(gate["sample"]) < 1:
            raise ConvertError(f"gate for op {i}: patch and sample must be >= 1")
        by_op[i] = gate
    names = {op.index: layer_name(g.tensors[op.outputs[0]].name, f"{op.kind.lower()}_{op.index}") for op in g.ops}
    for i, gate in by_op.items():
        if gate.get("name") not in (None, names[i]):
            raise ConvertError(f"gate for op {i} was trained for layer {gate['name']!r}, but op {i} is "
                               f"{names[i]!r}: gates from another model?")

    # Layout: tensors first (input, then each output), then caches/maps, masks, scratch.
    offsets: dict[int, int] = {}
    pos = 0
    regions = {"tensors": 0, "caches": 0, "gate_maps": 0, "masks": 0, "scratch": 0}

    def take(nbytes: int, kind: str) -> int:
        nonlocal pos
        off = pos
        pos += _align(nbytes)
        regions[kind] += _align(nbytes)
        return off

    offsets[g.inputs[0]] = take(g.tensors[g.inputs[0]].nbytes, "tensors")
    for op in g.ops:
        offsets[op.outputs[0]] = take(g.tensors[op.outputs[0]].nbytes, "tensors")
    lowerings = [lowering_for(g, op) for op in g.ops]
    for op, low in zip(g.ops, lowerings, strict=True):
        low.check(g, op)
        if op.kind == "CONV_2D":  # PASS recomputes boxes with octo_conv_s8_packed_box: the int16 layout
            op.options[WEIGHT_BYTES] = 2
    scratch_bytes = max([low.scratch(g, op) for op, low in zip(g.ops, lowerings, strict=True)] + [0])
    cache_off: dict[int, int] = {}
    map_off: dict[int, int] = {}
    layers: list[PassLayer] = []
    for op, low in zip(g.ops, lowerings, strict=True):
        _, ih, iw, ic = to_nhwc(g.tensors[op.inputs[0]].shape)
        _, oh, ow, oc = to_nhwc(g.tensors[op.outputs[0]].shape)
        gate = by_op.get(op.index)
        layer = PassLayer(op.index, layer_name(g.tensors[op.outputs[0]].name, f"{op.kind.lower()}_{op.index}"),
                          op.kind, low.macs(g, op), (ih, iw, ic), (oh, ow, oc), gate)
        if gate is not None:
            p = int(gate["patch"])
            layer.grid = (-(-ih // p), -(-iw // p))
            cache_off[op.index] = take(ih * iw * ic, "caches")
            map_off[op.index] = take(layer.grid[0] * layer.grid[1], "gate_maps")
        layers.append(layer)
    mask_off = {op.index: take(layers[k].out_shape[0] * layers[k].out_shape[1], "masks")
                for k, op in enumerate(g.ops)}
    scratch_off = take(scratch_bytes, "scratch") if scratch_bytes else 0
    state = max(pos, 16)

    ctx = EmitCtx(g, offsets, {op.index: scratch_off for op in g.ops})
    calls = [low.emit(ctx, g, op) for op, low in zip(g.ops, lowerings, strict=True)]

    def mem(off: int, ctype: str = "int8_t") -> str:
        return f"(({ctype} *)(s_pass_mem + {off}u))"

    lines = [_banner(source_name), "#include <stddef.h>", "#include <stdint.h>", "",
             '#include "octo/octo_kernels.h"', '#include "octo/octo_pass.h"', "",
             f"static uint8_t s_pass_mem[{state}u] __attribute__((aligned(16)));", "", *ctx.decls, ""]
    for layer in layers:
        if layer.gate is None:
            continue
        gt = layer.gate
        threshold = int(gt["threshold"])
        if not -(2**63) <= threshold < 2**63:
            raise ConvertError(f"gate for op {layer.index}: threshold {threshold} does not fit int64")
        lines.append(f"static const octo_pass_gate_t k_gate{layer.index} = {{.patch = {int(gt['patch'])}u, "
                     f".sample = {int(gt['sample'])}u, .a_mean = {int(gt['a_mean'])}, .a_max = {int(gt['a_max'])}, "
                     f".threshold = INT64_C({threshold})}};")
    lines.append("")
    lines.append(f"static const octo_layer_info_t k_info[{len(layers)}] = {{")
    lines += [f"    {{{_c_string(ly.name)}, {_c_string(ly.op)}, {ly.macs}u}}," for ly in layers]
    lines += ["};", "", f"static const octo_pass_layer_t k_layers[{len(layers)}] = {{"]
    for op, layer, call in zip(g.ops, layers, calls, strict=True):
        a = _arg_list(call)
        fields = {"kind": PASS_KINDS[op.kind],
                  "gate": f"&k_gate{op.index}" if layer.gate is not None else "NULL",
                  "in": mem(offsets[op.inputs[0]]), "out": mem(offsets[op.outputs[0]]),
                  "cache": mem(cache_off[op.index]) if layer.gate is not None else "NULL",
                  "out_mask": mem(mask_off[op.index], "uint8_t"),
                  "gate_map": mem(map_off[op.index], "uint8_t") if layer.gate is not None else "NULL"}
        if op.kind == "CONV_2D":
            if not call.startswith("octo_conv_s8_packed("):
                raise ConvertError(f"{op.label(g)}: this convolution has no packed kernel; PASS needs one")
            fields.update(params=a[0], rq=a[1], in_dims=a[2], filter_dims=a[4], wpack=a[5], bias_full=a[6],
                          out_dims=a[8], scratch=mem(scratch_off))
        else:
            fields.update(params=a[0], in_dims=a[1], out_dims=a[3], rq="NULL", filter_dims="NULL", wpack="NULL",
                          bias_full="NULL", scratch="NULL")
        order = ["kind", "gate", "params", "rq", "in_dims", "filter_dims", "wpack", "bias_full", "out_dims", "in",
                 "out", "cache", "out_mask", "gate_map", "scratch"]
        lines.append("    {" + ", ".join(f".{k} = {fields[k]}" for k in order) + "},")
    lines += ["};", ""]
    out_t = g.output
    out_scale, out_zp = out_t.qparams()
    cut = int(gates.get("cut_permille", NEVER_CUT))
    if not 0 <= cut <= NEVER_CUT:
        raise ConvertError(f"cut_permille {cut} outside 0..{NEVER_CUT}")
    lines += [
        "const octo_pass_model_t g_octo_pass_model = {",
        f"    .n_layers = {len(layers)}u,",
        "    .layers = k_layers,",
        f"    .input = {mem(offsets[g.inputs[0]])},",
        f"    .input_bytes = {g.input.nbytes}u,",
        f"    .output = {mem(offsets[out_t.index])},",
        f"    .output_bytes = {out_t.nbytes}u,",
        f"    .cut_permille = {cut}u,",
        f"    .state_bytes = {state}u,",
        f"    .name = {_c_string(g.name or source_name)},",
        f"    .fingerprint = 0x{fingerprint:08x}u,",
        "    .info = k_info,",
        f"    .output_scale = {_c_float(out_scale)},",
        f"    .output_zero_point = {out_zp},",
        "};",
        "",
    ]
    text = "\n".join(lines)
    if re.search(r"\barena\b", text):  # every pointer must be into s_pass_mem
        raise ConvertError("internal: a PASS layer still points into the dense arena")
    return text, PassPlan(layers, state, regions, cut)


def _sampled(n: int, p: int, s: int) -> int:
    """Sampled rows (or columns) over all patches along a side of n pixels (edge patches clipped)."""
    return sum(-(-min(p, n - o) // s) for o in range(0, n, p))


def gate_summary(plan: PassPlan) -> list[dict[str, Any]]:
    """Per gated layer: patch, grid, and the gate's elements read per patch vs the layer's dense MACs there."""
    rows = []
    for ly in plan.layers:
        if ly.gate is None:
            continue
        p, s = int(ly.gate["patch"]), int(ly.gate["sample"])
        ih, iw, ic = ly.in_shape

        elements = _sampled(ih, p, s) * _sampled(iw, p, s) * ic
        rows.append({"name": ly.name, "patch": p, "sample": s, "grid": list(ly.grid),
                     "gate_elements_per_frame": elements,
                     "gate_cost_vs_dense_macs": round(elements / max(ly.macs, 1), 5)})
    return rows
