"""FULLY_CONNECTED lowering.

Semantics as TFLM's FullyConnectedEval for int8 (reference_integer_ops::FullyConnected /
FullyConnectedPerChannel): the input of any rank is read flat as [batches, accum_depth]
with batches = output elements / output depth (keep_num_dims only changes the output
shape, not the bytes). Requantization is per output channel when the filter has one
scale per row (what current TFLite converters emit), per tensor otherwise; the two
compute the real multiplier differently (see qmath.fc_per_tensor_multiplier).
"""

from __future__ import annotations

import numpy as np

from converter import qmath
from converter.ir import ConvertError, Graph, Op
from converter.lower.conv import (
    conv_packed_tables,
    emit_requant_arrays,
    emit_wpack,
    emit_wpack8,
    packed_scratch,
    pad_bias8,
    weight_bytes,
)
from converter.ops import EmitCtx, Lowering, act_tensor, check_activation, const_tensor


def _geometry(g: Graph, op: Op) -> tuple[int, int, int]:
    """(batches, accum_depth, out_depth)."""
    f, o = g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
    out_depth = o.shape[-1] if o.shape else 1
    return o.size // max(out_depth, 1), f.shape[-1], out_depth


def _check(g: Graph, op: Op) -> None:
    a = act_tensor(g, op, op.inputs[0], "input")
    f = const_tensor(g, op, op.inputs[1], "filter", "int8")
    o = act_tensor(g, op, op.outputs[0], "output")
    lbl = op.label(g)
    if len(f.shape) != 2:
        raise ConvertError(f"{lbl}: filter must be 2-D [out, in], got shape {f.shape}")
    if int(op.options.get("weights_format", 0)) != 0:
        raise ConvertError(f"{lbl}: shuffled FULLY_CONNECTED weights are not supported (weights_format "
                           f"{op.options.get('weights_format')}); convert with the default weights format")
    if not o.shape:
        raise ConvertError(f"{lbl}: output has no shape")
    batches, depth, out_depth = _geometry(g, op)
    if out_depth != f.shape[0]:
        raise ConvertError(f"{lbl}: output depth {out_depth} differs from the filter's {f.shape[0]} rows")
    if a.size != batches * depth:
        raise ConvertError(f"{lbl}: input {a.shape} does not flatten to [{batches}, {depth}] "
                           f"(output {o.shape}, filter {f.shape})")
    has_bias = len(op.inputs) > 2 and op.inputs[2] >= 0
    if has_bias:
        b = const_tensor(g, op, op.inputs[2], "bias", "int32")
        if b.size != out_depth:
            raise ConvertError(f"{lbl}: bias has {b.size} values for {out_depth} outputs")
    if f.scale is None or f.scale.size not in (1, out_depth):
        raise ConvertError(f"{lbl}: filter quantization must be per-tensor or per output channel")
    if f.per_channel:
        if f.quant_dim != 0:
            raise ConvertError(f"{lbl}: per-channel filter quantization must be along dimension 0, not {f.quant_dim}")
        if f.zero_point is not None and np.any(f.zero_point != 0):
            raise ConvertError(f"{lbl}: per-channel filter zero points must be 0 (symmetric INT8 weights)")
    else:
        # TFLM's GetQuantizedConvolutionMultipler refuses a bias scale far from input_scale * filter_scale.
        in_s, out_s = a.qparams()[0], o.qparams()[0]
        product = float(np.float32(in_s)) * float(f.scale[0])
        bias_t = g.tensors[op.inputs[2]] if has_bias else None
        if bias_t is not None:
            bias_scale = float(bias_t.scale[0]) if bias_t.scale is not None and bias_t.scale.size else 0.0
            if abs(product - bias_scale) / float(np.float32(out_s)) > 0.02:
                raise ConvertError(f"{lbl}: bias scale {bias_scale:g} is not input scale x filter scale "
                                   f"({product:g}); TFLM rejects this model")
    check_activation(g, op, o)


def _macs(g: Graph, op: Op) -> int:
    """batches x out_depth x accum_depth."""
    batches, depth, out_depth = _geometry(g, op)
    return batches * depth * out_depth


def _packable(g: Graph, op: Op) -> bool:
    """One input row and symmetric weights: the fast path, octo_conv_s8_packed on a 1x1 image."""
    f = g.tensors[op.inputs[1]]
    symmetric = f.zero_point is None or not np.any(f.zero_point != 0)
    return _geometry(g, op)[0] == 1 and symmetric


def _scratch(g: Graph, op: Op) -> int:
    return packed_scratch(op, 1, 1, _geometry(g, op)[1], 1) if _packable(g, op) else 0


def _emit_packed(ctx: EmitCtx, g: Graph, op: Op, mult: np.ndarray, shift: np.ndarray, act: tuple[int, int]) -> str:
    p = f"l{op.index}"
    a, f, o = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
    _, depth, out_depth = _geometry(g, op)
    in_zp, out_zp = a.qparams()[1], o.qparams()[1]
    has_bias = len(op.inputs) > 2 and op.inputs[2] >= 0
    bias = g.tensors[op.inputs[2]].data if has_bias else None
    assert f.data is not None
    wpack, bias_full = conv_packed_tables(f.data.reshape(out_depth, 1, 1, depth), bias, -in_zp)
    params = ctx.struct("octo_conv_params_t", f"{p}_params", {
        "input_offset": -in_zp, "output_offset": out_zp, "stride_h": 1, "stride_w": 1, "pad_h": 0, "pad_w": 0,
        "dilation_h": 1, "dilation_w": 1, "act_min": act[0], "act_max": act[1]})
    rq = emit_requant_arrays(ctx, p, np.broadcast_to(mult, (out_depth,)), np.broadcast_to(shift, (out_depth,)))
    w4 = f.data.reshape(out_depth, 1, 1, depth)
    wide = weight_bytes(op) == 2
    wp = emit_wpack(ctx, f"{p}_wpack", wpack, w4) if wide else emit_wpack8(ctx, f"{p}_wpack", w4, 1)
    bf = ctx.array(f"{p}_bias_full", "int32_t", bias_full if wide else pad_bias8(bias_full))
    din = ctx.struct("octo_dims_t", f"{p}_in_dims", {"n": 1, "h": 1, "w": 1, "c": depth})
    dfl = ctx.struct("octo_dims_t", f"{p}_filter_dims", {"n": out_depth, "h": 1, "w": 1, "c": depth})
    dout = ctx.struct("octo_dims_t", f"{p}_out_dims", {"n": 1, "h": 1, "w": 1, "c": out_depth})
    fn = "octo_conv_s8_packed" if wide else "octo_conv_s8_packed8"
    return (f"{fn}(&{params}, &{rq}, &{din}, {ctx.ptr(op.inputs[0])}, &{dfl}, {wp}, {bf}, "
            f"{ctx.scratch(op.index, 'int8_t')}, &{dout}, {ctx.ptr(op.outputs[0])})")


def _emit(ctx: EmitCtx, g: Graph, op: Op) -> str:
    p = f"l{op.index}"
    a, f, o = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
    assert f.data is not None and f.scale is not None
    batches, depth, out_depth = _geometry(g, op)
    in_scale, in_zp = a.qparams()
    out_scale, out_zp = o.qparams()
    act_min, act_max = qmath.activation_range(str(op.options.get("activation", "NONE")), out_scale, out_zp)
    if f.per_channel:
        mult, shift = qmath.conv_multipliers(in_scale, f.scale, out_scale, out_depth)
        filter_offset = 0
    else:
        m, s = qmath.fc_per_tensor_multiplier(in_scale, float(f.scale[0]), out_scale)
        mult, shift = np.array([m], np.int32), np.array([s], np.int32)
        filter_offset = -int(f.zero_point[0]) if f.zero_point is not None else 0
    if _packable(g, op):
        return _emit_packed(ctx, g, op, mult, shift, (act_min, act_max))
    params = ctx.struct("octo_fc_params_t", f"{p}_params", {
        "input_offset": -in_zp, "filter_offset": filter_offset, "output_offset": out_zp,
        "act_min": act_min, "act_max": act_max, "per_channel": int(f.per_channel)})
    mult_arr = ctx.array(f"{p}_mult", "int32_t", mult)
    shift_arr = ctx.array(f"{p}_shift", "int32_t", shift)
    rq = ctx.struct("octo_requant_t", f"{p}_rq", {"multiplier": mult_arr, "shift": shift_arr})
    w = ctx.array(f"{p}_filter", "int8_t", f.data)
    has_bias = len(op.inputs) > 2 and op.inputs[2] >= 0
    b = ctx.array(f"{p}_bias", "int32_t", g.tensors[op.inputs[2]].data) if has_bias else "NULL"  # type: ignore[arg-type]
    din = ctx.struct("octo_dims_t", f"{p}_in_dims", {"n": batches, "h": 1, "w": 1, "c": depth})
    dfl = ctx.struct("octo_dims_t", f"{p}_filter_dims", {"n": out_depth, "h": 1, "w": 1, "c": depth})
    dout = ctx.struct("octo_dims_t", f"{p}_out_dims", {"n": batches, "h": 1, "w": 1, "c": out_depth})
    return (f"octo_fully_connected_s8(&{params}, &{rq}, &{din}, {ctx.ptr(op.inputs[0])}, &{dfl}, {w}, {b}, "
            f"&{dout}, {ctx.ptr(op.outputs[0])})")


def _lag(g: Graph, op: Op) -> int | None:
    """The packed path copies the whole input row into its patch before writing any output."""
    return 0 if _packable(g, op) else None


LOWERINGS = {"FULLY_CONNECTED": Lowering(_check, _macs, _emit, scratch=_scratch, inplace_lag=_lag)}
