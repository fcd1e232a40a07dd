"""PAD / PADV2 lowering (4-D NHWC or lower rank, right-aligned).

As TFLM's PadPrepare/PadEval: paddings come from a constant int32 [rank, 2]
tensor; the fill value is the output zero point for PAD and the constant input
for PADV2 (which must share the output's quantization); bytes are copied raw.
"""

from __future__ import annotations

import numpy as np

from converter import qmath
from converter.ir import ConvertError, Graph, Op
from converter.lower.add import extend_4d
from converter.ops import EmitCtx, Lowering, act_tensor, const_tensor


def _paddings(g: Graph, op: Op) -> np.ndarray:
    a = g.tensors[op.inputs[0]]
    pt = const_tensor(g, op, op.inputs[1] if len(op.inputs) > 1 else -1, "paddings", "int32")
    assert pt.data is not None
    pads = np.asarray(pt.data, np.int64)
    if pads.shape != (len(a.shape), 2):
        raise ConvertError(f"{op.label(g)}: {op.kind} paddings have shape {pads.shape}, expected "
                           f"({len(a.shape)}, 2) for a {len(a.shape)}-D input")
    return pads


def _pad_value(g: Graph, op: Op) -> int:
    o = g.tensors[op.outputs[0]]
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        cv = const_tensor(g, op, op.inputs[2], "constant value", "int8")
        assert cv.data is not None
        return int(cv.data.reshape(-1)[0])
    return o.qparams()[1]


def _check(g: Graph, op: Op) -> None:
    if len(op.inputs) not in (2, 3) or len(op.outputs) != 1:
        raise ConvertError(f"{op.label(g)}: {op.kind} needs 2 or 3 inputs and 1 output")
    a = act_tensor(g, op, op.inputs[0], "input")
    o = act_tensor(g, op, op.outputs[0], "output")
    if a.is_const:
        raise ConvertError(f"{op.label(g)}: {op.kind} of a constant tensor should have been folded by the "
                           "TFLite converter")
    if len(a.shape) > 4:
        raise ConvertError(f"{op.label(g)}: {op.kind} input has {len(a.shape)} dimensions; Octo supports up to 4")
    if len(o.shape) != len(a.shape):
        raise ConvertError(f"{op.label(g)}: {op.kind} changes the rank from {len(a.shape)} to {len(o.shape)}")
    pads = _paddings(g, op)
    if np.any(pads < 0):
        raise ConvertError(f"{op.label(g)}: {op.kind} has negative paddings {pads.tolist()}")
    expect = tuple(int(d + p0 + p1) for d, (p0, p1) in zip(a.shape, pads, strict=True))
    if expect != tuple(o.shape):
        raise ConvertError(f"{op.label(g)}: {op.kind} output shape {o.shape} is not the input {a.shape} "
                           f"padded by {pads.tolist()}")
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        cv = const_tensor(g, op, op.inputs[2], "constant value", "int8")
        if cv.size != 1:
            raise ConvertError(f"{op.label(g)}: {op.kind} constant value must be a scalar, got {cv.shape}")
        if cv.scale is None or cv.scale.size != 1 or cv.qparams()[1] != o.qparams()[1] or \
                float(cv.qparams()[0]) != float(o.qparams()[0]):
            raise ConvertError(f"{op.label(g)}: {op.kind} constant value must have the output's scale and zero "
                               "point (as TFLM requires)")
    else:
        zp = o.qparams()[1]
        if not qmath.INT8_MIN <= zp <= qmath.INT8_MAX:
            raise ConvertError(f"{op.label(g)}: {op.kind} output zero point {zp} is outside int8")


def _macs(g: Graph, op: Op) -> int:
    return 0


def _emit(ctx: EmitCtx, g: Graph, op: Op) -> str:
    p = f"l{op.index}"
    a, o = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    pads = _paddings(g, op)
    lead = 4 - len(a.shape)
    before = [0] * lead + [int(x) for x in pads[:, 0]]
    after = [0] * lead + [int(x) for x in pads[:, 1]]
    fields = {"before": "{" + ", ".join(map(str, before)) + "}", "after": "{" + ", ".join(map(str, after)) + "}",
              "pad_value": _pad_value(g, op)}
    params = ctx.struct("octo_pad_params_t", f"{p}_params", fields)
    din = ctx.struct("octo_dims_t", f"{p}_in_dims", dict(zip("nhwc", extend_4d(a.shape), strict=True)))  # type: ignore[arg-type]
    dout = ctx.struct("octo_dims_t", f"{p}_out_dims", dict(zip("nhwc", extend_4d(o.shape), strict=True)))  # type: ignore[arg-type]
    return f"octo_pad_s8(&{params}, &{din}, {ctx.ptr(a.index)}, &{dout}, {ctx.ptr(o.index)})"


_PAD = Lowering(_check, _macs, _emit)
LOWERINGS = {"PAD": _PAD, "PADV2": _PAD}
