"""SOFTMAX lowering: int8 in, int8 out (scale 1/256, zero point -128) over the last dimension.

Parameters as TFLM's CalculateSoftmaxParams (qmath.softmax_params); the kernel
is TFLM's reference int8 softmax with gemmlowp fixed-point exp and reciprocal.
"""

from __future__ import annotations

import numpy as np

from converter import qmath
from converter.ir import ConvertError, Graph, Op
from converter.ops import EmitCtx, Lowering, act_tensor


def _check(g: Graph, op: Op) -> None:
    if len(op.inputs) != 1 or len(op.outputs) != 1:
        raise ConvertError(f"{op.label(g)}: SOFTMAX needs exactly 1 input and 1 output")
    a = act_tensor(g, op, op.inputs[0], "input")
    o = act_tensor(g, op, op.outputs[0], "output")
    if a.is_const:
        raise ConvertError(f"{op.label(g)}: SOFTMAX of a constant tensor should have been folded by the "
                           "TFLite converter")
    if not a.shape or tuple(a.shape) != tuple(o.shape):
        raise ConvertError(f"{op.label(g)}: SOFTMAX input {a.shape} and output {o.shape} must have one, "
                           "non-scalar shape")
    out_scale, out_zp = o.qparams()
    if out_zp != -128 or np.float32(out_scale) != np.float32(1.0 / 256):
        raise ConvertError(f"{op.label(g)}: SOFTMAX int8 output must have scale 1/256 and zero point -128 "
                           f"(got {out_scale}, {out_zp}); re-quantize with TFLite's converter")
    try:
        qmath.softmax_params(float(op.options.get("beta", 1.0)), a.qparams()[0])  # type: ignore[arg-type]
    except ConvertError as exc:
        raise ConvertError(f"{op.label(g)}: SOFTMAX cannot be lowered ({exc})") from None


def _macs(g: Graph, op: Op) -> int:
    """One exp per input element (counted as one operation)."""
    return g.tensors[op.inputs[0]].size


def _emit(ctx: EmitCtx, g: Graph, op: Op) -> str:
    p = f"l{op.index}"
    a, o = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    params = ctx.struct("octo_softmax_params_t", f"{p}_params",
                        qmath.softmax_params(float(op.options.get("beta", 1.0)), a.qparams()[0]))  # type: ignore[arg-type]
    depth = a.shape[-1]
    rows = a.size // depth if depth else 0
    return f"octo_softmax_s8(&{params}, {rows}, {depth}, {ctx.ptr(a.index)}, {ctx.ptr(o.index)})"


LOWERINGS = {"SOFTMAX": Lowering(_check, _macs, _emit)}
