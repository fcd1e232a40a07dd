"""MEAN lowering: the int8 global-average-pool case (axes {1, 2} of a 4-D NHWC input).

Semantics as TFLM's int8 MEAN (reduce_common.cc -> reference integer Mean): sum of
(input - input_zero_point) over H x W in int32, MultiplyByQuantizedMultiplier with
in_scale / out_scale and the 1/(H*W) folded into the multiplier (qmath.mean_multiplier),
plus the output zero point, clamped to int8. Verified against the TFLM runtime for
keep_dims true and false and for equal and different input/output quantization: one
code path covers all four.
"""

from __future__ import annotations

import numpy as np

from converter import qmath
from converter.ir import ConvertError, Graph, Op
from converter.ops import EmitCtx, Lowering, act_tensor


def _axes(g: Graph, op: Op) -> list[int]:
    lbl = op.label(g)
    if len(op.inputs) < 2 or op.inputs[1] < 0:
        raise ConvertError(f"{lbl}: MEAN needs an axis tensor")
    ax = g.tensors[op.inputs[1]]
    if ax.data is None or ax.dtype != "int32":
        raise ConvertError(f"{lbl}: MEAN axes must be a constant int32 tensor")
    return [int(v) for v in np.asarray(ax.data).reshape(-1)]


def _check(g: Graph, op: Op) -> None:
    a = act_tensor(g, op, op.inputs[0], "input")
    o = act_tensor(g, op, op.outputs[0], "output")
    lbl = op.label(g)
    if len(a.shape) != 4:
        raise ConvertError(f"{lbl}: MEAN is supported on 4-D NHWC inputs only (global average pooling); "
                           f"input has shape {a.shape}")
    axes = _axes(g, op)
    resolved = sorted({x + 4 if x < 0 else x for x in axes})
    if resolved != [1, 2] or len(axes) != 2:
        raise ConvertError(f"{lbl}: MEAN over axes {axes} is not supported; Octo supports the global average "
                           "pool, axes [1, 2] (height and width) of a 4-D NHWC tensor")
    n, _, _, c = a.shape
    if o.size != n * c or (o.shape[-1] if o.shape else 1) != c:
        raise ConvertError(f"{lbl}: output shape {o.shape} is not [{n}, {c}] or [{n}, 1, 1, {c}]")
    try:
        qmath.mean_multiplier(a.qparams()[0], o.qparams()[0], a.shape[1] * a.shape[2])
    except ConvertError as exc:
        raise ConvertError(f"{lbl}: {exc}") from None


def _macs(g: Graph, op: Op) -> int:
    """No multiplies: counts the input elements summed (H x W per output)."""
    return g.tensors[op.inputs[0]].size


def _emit(ctx: EmitCtx, g: Graph, op: Op) -> str:
    p = f"l{op.index}"
    a, o = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    (in_s, in_zp), (out_s, out_zp) = a.qparams(), o.qparams()
    mult, shift = qmath.mean_multiplier(in_s, out_s, a.shape[1] * a.shape[2])
    params = ctx.struct("octo_mean_params_t", f"{p}_params", {
        "input_offset": -in_zp, "output_offset": out_zp, "multiplier": mult, "shift": shift})
    din = ctx.dims(f"{p}_in_dims", a.shape)
    dout = ctx.struct("octo_dims_t", f"{p}_out_dims", {"n": a.shape[0], "h": 1, "w": 1, "c": a.shape[3]})
    return f"octo_mean_s8(&{params}, &{din}, {ctx.ptr(op.inputs[0])}, &{dout}, {ctx.ptr(op.outputs[0])})"


LOWERINGS = {"MEAN": Lowering(_check, _macs, _emit)}
