"""CONV_2D lowering (and the parameter helpers DEPTHWISE_CONV_2D shares)."""

from __future__ import annotations

import numpy as np

from converter import qmath
from converter.ir import ConvertError, Graph, Op
from converter.ops import EmitCtx, Lowering, act_tensor, const_tensor, tflite_padding


def _conv_check(g: Graph, op: Op) -> None:
    a = act_tensor(g, op, op.inputs[0], "input")
    f = const_tensor(g, op, op.inputs[1], "filter", "int8")
    o = act_tensor(g, op, op.outputs[0], "output")
    if len(a.shape) != 4 or len(f.shape) != 4 or len(o.shape) != 4:
        raise ConvertError(f"{op.label(g)}: CONV_2D needs 4-D input, filter and output")
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        b = const_tensor(g, op, op.inputs[2], "bias", "int32")
        if b.size != f.shape[0]:
            raise ConvertError(f"{op.label(g)}: bias has {b.size} values for {f.shape[0]} output channels")
    if f.scale is None or f.scale.size not in (1, f.shape[0]):
        raise ConvertError(f"{op.label(g)}: filter quantization must be per-tensor or per output channel")
    if f.zero_point is not None and np.any(f.zero_point != 0):
        raise ConvertError(f"{op.label(g)}: filter zero points must be 0 (symmetric INT8 weights)")
    if a.shape[3] % f.shape[3] != 0:
        raise ConvertError(f"{op.label(g)}: input channels {a.shape[3]} not a multiple of filter depth {f.shape[3]}")
    qmath.activation_range(str(op.options.get("activation", "NONE")), *o.qparams())


def _conv_macs(g: Graph, op: Op) -> int:
    f = g.tensors[op.inputs[1]]
    o = g.tensors[op.outputs[0]]
    return int(np.prod(o.shape)) * f.shape[1] * f.shape[2] * f.shape[3]


def conv_common_params(g: Graph, op: Op, filter_hw: tuple[int, int]) -> dict[str, object]:
    """octo_conv_params_t fields shared by CONV_2D and DEPTHWISE_CONV_2D."""
    a, o = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    in_zp = a.qparams()[1]
    out_scale, out_zp = o.qparams()
    opt = op.options
    sh, sw = int(opt["stride_h"]), int(opt["stride_w"])
    dh, dw = int(opt.get("dilation_h", 1)), int(opt.get("dilation_w", 1))
    pad = str(opt["padding"])
    act_min, act_max = qmath.activation_range(str(opt.get("activation", "NONE")), out_scale, out_zp)
    return {
        "input_offset": -in_zp,
        "output_offset": out_zp,
        "stride_h": sh,
        "stride_w": sw,
        "pad_h": tflite_padding(pad, a.shape[1], filter_hw[0], sh, dh, o.shape[1]),
        "pad_w": tflite_padding(pad, a.shape[2], filter_hw[1], sw, dw, o.shape[2]),
        "dilation_h": dh,
        "dilation_w": dw,
        "act_min": act_min,
        "act_max": act_max,
    }


def emit_requant(ctx: EmitCtx, prefix: str, g: Graph, op: Op, channels: int) -> str:
    a, f, o = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
    assert f.scale is not None
    mult, shift = qmath.conv_multipliers(a.qparams()[0], f.scale, o.qparams()[0], channels)
    m = ctx.array(f"{prefix}_mult", "int32_t", mult)
    s = ctx.array(f"{prefix}_shift", "int32_t", shift)
    return ctx.struct("octo_requant_t", f"{prefix}_rq", {"multiplier": m, "shift": s})


def _conv_emit(ctx: EmitCtx, g: Graph, op: Op) -> str:
    p = f"l{op.index}"
    f = g.tensors[op.inputs[1]]
    assert f.data is not None
    params = ctx.struct("octo_conv_params_t", f"{p}_params", conv_common_params(g, op, (f.shape[1], f.shape[2])))
    rq = emit_requant(ctx, p, g, op, f.shape[0])
    w = ctx.array(f"{p}_filter", "int8_t", f.data)
    has_bias = len(op.inputs) > 2 and op.inputs[2] >= 0
    b = ctx.array(f"{p}_bias", "int32_t", g.tensors[op.inputs[2]].data) if has_bias else "NULL"  # type: ignore[arg-type]
    din = ctx.dims(f"{p}_in_dims", g.tensors[op.inputs[0]].shape)
    dfl = ctx.dims(f"{p}_filter_dims", f.shape)
    dout = ctx.dims(f"{p}_out_dims", g.tensors[op.outputs[0]].shape)
    return (f"octo_conv_s8(&{params}, &{rq}, &{din}, {ctx.ptr(op.inputs[0])}, &{dfl}, {w}, {b}, &{dout}, "
            f"{ctx.ptr(op.outputs[0])})")


LOWERINGS = {"CONV_2D": Lowering(_conv_check, _conv_macs, _conv_emit)}
