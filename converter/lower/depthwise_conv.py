"""DEPTHWISE_CONV_2D lowering.

Semantics as TFLM's reference_integer_ops::DepthwiseConvPerChannel: output channel
oc = ic * depth_multiplier + m reads input channel ic; filter [1, kh, kw, out_c];
per-channel (multiplier, shift) from PopulateConvolutionQuantizationParams, exactly
as CONV_2D (shared helpers in converter/lower/conv.py).
"""

from __future__ import annotations

import numpy as np

from converter.ir import ConvertError, Graph, Op
from converter.lower.conv import conv_common_params, emit_requant
from converter.ops import EmitCtx, Lowering, act_tensor, check_activation, const_tensor, spatial_lag


def _check(g: Graph, op: Op) -> None:
    a = act_tensor(g, op, op.inputs[0], "input")
    f = const_tensor(g, op, op.inputs[1], "filter", "int8")
    o = act_tensor(g, op, op.outputs[0], "output")
    lbl = op.label(g)
    if len(a.shape) != 4 or len(f.shape) != 4 or len(o.shape) != 4:
        raise ConvertError(f"{lbl}: DEPTHWISE_CONV_2D needs 4-D input, filter and output")
    out_c = f.shape[3]
    if f.shape[0] != 1 or o.shape[3] != out_c:
        raise ConvertError(f"{lbl}: filter shape {f.shape} must be [1, kh, kw, {o.shape[3]}]")
    if a.shape[0] != o.shape[0]:
        raise ConvertError(f"{lbl}: input batch {a.shape[0]} differs from output batch {o.shape[0]}")
    if a.shape[3] == 0 or out_c % a.shape[3] != 0:
        raise ConvertError(f"{lbl}: output channels {out_c} are not a multiple of input channels {a.shape[3]}")
    mult = out_c // a.shape[3]
    if int(op.options.get("depth_multiplier", mult)) != mult:
        raise ConvertError(f"{lbl}: depth_multiplier option {op.options.get('depth_multiplier')} disagrees with "
                           f"the shapes ({a.shape[3]} -> {out_c} channels, multiplier {mult})")
    for key in ("stride_h", "stride_w", "dilation_h", "dilation_w"):
        if int(op.options.get(key, 1)) < 1:
            raise ConvertError(f"{lbl}: {key} must be >= 1, got {op.options.get(key)}")
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        b = const_tensor(g, op, op.inputs[2], "bias", "int32")
        if b.size != out_c:
            raise ConvertError(f"{lbl}: bias has {b.size} values for {out_c} output channels")
    if f.scale is None or f.scale.size not in (1, out_c):
        raise ConvertError(f"{lbl}: filter quantization must be per-tensor or per output channel")
    if f.per_channel and f.quant_dim != 3:
        raise ConvertError(f"{lbl}: per-channel filter quantization must be along dimension 3, not {f.quant_dim}")
    if f.zero_point is not None and np.any(f.zero_point != 0):
        raise ConvertError(f"{lbl}: filter zero points must be 0 (symmetric INT8 weights)")
    check_activation(g, op, o)


def _macs(g: Graph, op: Op) -> int:
    """Output elements x kh x kw (padding taps included)."""
    f = g.tensors[op.inputs[1]]
    o = g.tensors[op.outputs[0]]
    return int(np.prod(o.shape)) * f.shape[1] * f.shape[2]


def _packable(g: Graph, op: Op) -> bool:
    a, f = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]]
    return (f.shape[3] == a.shape[3] and a.shape[3] % 4 == 0 and a.shape[0] == 1
            and int(op.options.get("dilation_h", 1)) == 1 and int(op.options.get("dilation_w", 1)) == 1)


def dw_bias_full(w: np.ndarray, bias: np.ndarray | None, input_offset: int) -> np.ndarray:
    """bias_full int32 [C] of the fast kernel: the bias plus the input offset times each channel's weight sum."""
    _, kh, kw, c = w.shape
    taps = w.reshape(kh * kw, c).astype(np.int64)
    b = np.zeros(c, np.int64) if bias is None else bias.astype(np.int64)
    bias_full = b + input_offset * taps.sum(axis=0)
    if np.abs(bias_full).max(initial=0) >= 2**31:
        raise ConvertError("depthwise bias plus folded input offset overflows int32")
    return bias_full.astype(np.int32)


def _scratch(g: Graph, op: Op) -> int:
    """The fast kernel's weights widened to int16 once per call (DSP and portable paths)."""
    f = g.tensors[op.inputs[1]]
    return 2 * f.shape[1] * f.shape[2] * f.shape[3] if _packable(g, op) else 0


def _emit(ctx: EmitCtx, g: Graph, op: Op) -> str:
    p = f"l{op.index}"
    a, f, o = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
    assert f.data is not None
    fields = conv_common_params(g, op, (f.shape[1], f.shape[2]))
    fields = {"input_offset": fields.pop("input_offset"), "output_offset": fields.pop("output_offset"),
              "depth_multiplier": f.shape[3] // a.shape[3], **fields}
    params = ctx.struct("octo_dw_conv_params_t", f"{p}_params", fields)
    rq = emit_requant(ctx, p, g, op, f.shape[3])
    has_bias = len(op.inputs) > 2 and op.inputs[2] >= 0
    if _packable(g, op):
        bias = g.tensors[op.inputs[2]].data if has_bias else None
        bias_full = dw_bias_full(f.data, bias, int(fields["input_offset"]))
        wp = ctx.array(f"{p}_filter", "int8_t", f.data)  # 1 byte per weight, TFLite's order, on every core
        bf = ctx.array(f"{p}_bias_full", "int32_t", bias_full)
        din = ctx.dims(f"{p}_in_dims", a.shape)
        dfl = ctx.dims(f"{p}_filter_dims", f.shape)
        dout = ctx.dims(f"{p}_out_dims", o.shape)
        return (f"octo_depthwise_conv_s8_packed(&{params}, &{rq}, &{din}, {ctx.ptr(op.inputs[0])}, &{dfl}, {wp}, "
                f"{bf}, {ctx.scratch(op.index)}, &{dout}, {ctx.ptr(op.outputs[0])})")
    w = ctx.array(f"{p}_filter", "int8_t", f.data)
    b = ctx.array(f"{p}_bias", "int32_t", g.tensors[op.inputs[2]].data) if has_bias else "NULL"  # type: ignore[arg-type]
    din = ctx.dims(f"{p}_in_dims", a.shape)
    dfl = ctx.dims(f"{p}_filter_dims", f.shape)
    dout = ctx.dims(f"{p}_out_dims", o.shape)
    return (f"octo_depthwise_conv_s8(&{params}, &{rq}, &{din}, {ctx.ptr(op.inputs[0])}, &{dfl}, {w}, {b}, "
            f"&{dout}, {ctx.ptr(op.outputs[0])})")


def _lag(g: Graph, op: Op) -> int | None:
    """The packed kernel writes a pixel's channel groups while still reading that pixel's taps."""
    if not _packable(g, op):
        return None
    f = g.tensors[op.inputs[1]]
    c = conv_common_params(g, op, (f.shape[1], f.shape[2]))
    return spatial_lag(g, op, (int(c["stride_h"]), int(c["stride_w"])), (int(c["pad_h"]), int(c["pad_w"])), False)


LOWERINGS = {"DEPTHWISE_CONV_2D": Lowering(_check, _macs, _emit, scratch=_scratch, inplace_lag=_lag)}
