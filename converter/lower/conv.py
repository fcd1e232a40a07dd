"""CONV_2D lowering (and the parameter helpers DEPTHWISE_CONV_2D shares)."""

from __future__ import annotations

import numpy as np

from converter import qmath
from converter.ir import ConvertError, Graph, Op
from converter.ops import EmitCtx, Lowering, act_tensor, check_activation, const_tensor, spatial_lag, tflite_padding


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
    check_activation(g, op, o)


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
    return emit_requant_arrays(ctx, prefix, mult, shift)


def emit_requant_arrays(ctx: EmitCtx, prefix: str, mult: np.ndarray, shift: np.ndarray) -> str:
    """octo_requant_t with the merged-rounding table when every shift allows it."""
    fields = {"multiplier": ctx.array(f"{prefix}_mult", "int32_t", mult),
              "shift": ctx.array(f"{prefix}_shift", "int32_t", shift)}
    table = qmath.merged_requant_table(shift)
    if table is not None:
        fields["merged"] = ctx.array(f"{prefix}_rq_merged", "int32_t", table)
    return ctx.struct("octo_requant_t", f"{prefix}_rq", fields)


PACK_PERM = np.array([0, 2, 1, 3])
OC_BLOCK = 4


def pack_rows_oc4(rows: np.ndarray) -> np.ndarray:
    """int8 weight rows [OC, R, L] -> int16 [ceil(OC/4), R, 4*L] in the kernels' block layout.

    Output channels go in blocks of four (the last block zero-padded). Within a
    block row, each group of four row elements holds, per channel j = 0..3, the
    weights [w0 w2 w1 w3] (SXTB16 lane order): 16 int16 per group. The row's last
    L % 4 elements follow plainly, four channels per element. Mirrors
    octo_conv_s8_packed.c (wpos()).
    """
    oc, r, length = rows.shape
    blocks = -(-oc // OC_BLOCK)
    padded = np.zeros((blocks * OC_BLOCK, r, length), np.int16)
    padded[:oc] = rows
    # [blocks, 4, R, L] -> [blocks, R, L, 4]
    per = padded.reshape(blocks, OC_BLOCK, r, length).transpose(0, 2, 3, 1)
    full = length // 4 * 4
    out = np.zeros((blocks, r, length * OC_BLOCK), np.int16)
    if full:
        g = per[:, :, :full, :].reshape(blocks, r, full // 4, 4, OC_BLOCK)  # [.., group, elem, oc]
        g = g[:, :, :, PACK_PERM, :].transpose(0, 1, 2, 4, 3)             # [.., group, oc, elem']
        out[:, :, : full * OC_BLOCK] = g.reshape(blocks, r, full * OC_BLOCK)
    out[:, :, full * OC_BLOCK :] = per[:, :, full:, :].reshape(blocks, r, (length - full) * OC_BLOCK)
    return out


def patch_len(kh: int, kw: int, c: int) -> int:
    """Receptive-field bytes per output pixel, rounded up to whole groups of four."""
    return (kh * kw * c + 3) // 4 * 4


def conv_packed_tables(w: np.ndarray, bias: np.ndarray | None, input_offset: int) -> tuple[np.ndarray, np.ndarray]:
    """(wpack int16 [ceil(OC/4), 1, 4*L], bias_full int32 [OC]) for octo_conv_s8_packed.

    A pixel's whole receptive field (kh*kw*C, zero-padded to L, a multiple of 4)
    is one packed row. bias_full = bias + input_offset * sum of the channel's weights:
    the kernel fills padding taps with the input zero point, whose offset-added value
    is 0, exactly what TFLM's skipped taps contribute.
    """
    oc, kh, kw, c = w.shape
    length = patch_len(kh, kw, c)
    rows = np.zeros((oc, 1, length), np.int64)
    rows[:, 0, : kh * kw * c] = w.reshape(oc, -1)
    b = np.zeros(oc, np.int64) if bias is None else bias.astype(np.int64)
    bias_full = b + input_offset * rows.sum(axis=(1, 2))
    if np.abs(bias_full).max(initial=0) >= 2**31:
        raise ConvertError("conv bias plus folded input offset overflows int32")
    return pack_rows_oc4(rows), bias_full.astype(np.int32)


def mve_rows(w: np.ndarray) -> np.ndarray:
    """int8 [ceil(OC/4)*4, L]: the MVE (Helium) layout of the packed weights, one plain row per output channel
    (the receptive field in [kh][kw][C] order, zero-padded to L = patch_len), zero rows up to a whole block of
    four. Mirrors dot4_mve in octo_conv_s8_packed.c."""
    oc = w.shape[0]
    length = patch_len(*w.shape[1:])
    out = np.zeros((-(-oc // OC_BLOCK) * OC_BLOCK, length), np.int8)
    out[:oc, : w[0].size] = w.reshape(oc, -1)
    return out


MVE_IF = "#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)"

WEIGHT_BYTES = "weight_bytes"
"""Op option set by converter.flash: 2 = the int16 DSP layout (octo_conv_s8_packed); absent or 1 = the default
1-byte layout (octo_conv_s8_packed8)."""


def weight_bytes(op: Op) -> int:
    return 2 if int(op.options.get(WEIGHT_BYTES, 1)) == 2 else 1


def patch_len8(kh: int, kw: int, c: int) -> int:
    """The 1-byte layout's receptive field bytes: whole pairs of groups of four (octo_conv_s8_packed8_patch_len)."""
    return (kh * kw * c + 7) // 8 * 8


def packed_scratch(op: Op, kh: int, kw: int, c: int, pixels: int) -> int:
    """Scratch bytes of the packed kernel in the op's layout: the patch, and for 1-byte weights its int16 copy
    (two of each when the image has more than one output pixel: octo_conv_s8_packed8 takes them in pairs)."""
    if weight_bytes(op) == 2:
        return patch_len(kh, kw, c)
    return (6 if pixels > 1 else 3) * patch_len8(kh, kw, c)


def pack8_rows(w: np.ndarray, pixels: int) -> np.ndarray:
    """int8 [ceil(OC/4)*4 * L8]: the 1-byte layout of octo_conv_s8_packed8. Output channels in blocks of two
    (an image of more than one output pixel, taken two pixels at a time: dot_pair) or four (one pixel, a dense
    layer: dot_pixel8), zero channels up to a multiple of four; per group of four receptive-field bytes, each
    channel of the block has its four weights in order, one word (SXTB16 gives [w0 w2], SXTB16 ROR 8
    [w1 w3]). Mirrors octo_conv_s8_packed.c."""
    oc = w.shape[0]
    length = patch_len8(*w.shape[1:])
    oc4 = -(-oc // OC_BLOCK) * OC_BLOCK
    per = 2 if pixels > 1 else OC_BLOCK
    rows = np.zeros((oc4, length), np.int8)
    rows[:oc, : w[0].size] = w.reshape(oc, -1)
    return rows.reshape(oc4 // per, per, length // 4, 4).transpose(0, 2, 1, 3).reshape(-1)


def pad_bias8(bias_full: np.ndarray) -> np.ndarray:
    """bias_full of octo_conv_s8_packed8: zeros up to a multiple of four channels."""
    out = np.zeros(-(-bias_full.size // OC_BLOCK) * OC_BLOCK, np.int32)
    out[: bias_full.size] = bias_full
    return out


def emit_wpack(ctx: EmitCtx, name: str, wpack: np.ndarray, w: np.ndarray) -> str:
    """The packed weights of octo_conv_s8_packed, as a pointer argument: the int16 DSP layout, or on a core with
    Helium (the same condition as OCTO_HAVE_MVE in octo_dsp.h) the int8 rows of mve_rows(w), half the flash."""
    ctx.decls.append(MVE_IF)
    ctx.array(name, "int8_t", mve_rows(w))
    ctx.decls.append("#else")
    ctx.array(name, "int16_t", wpack)
    ctx.decls.append("#endif")
    return f"(const int16_t *){name}"


def emit_wpack8(ctx: EmitCtx, name: str, w: np.ndarray, pixels: int) -> str:
    """The weights of octo_conv_s8_packed8: pack8_rows(w), or with Helium the int8 rows of mve_rows(w)."""
    ctx.decls.append(MVE_IF)
    ctx.array(name, "int8_t", mve_rows(w))
    ctx.decls.append("#else")
    ctx.array(name, "int8_t", pack8_rows(w, pixels))
    ctx.decls.append("#endif")
    return name


def _conv_scratch(g: Graph, op: Op) -> int:
    f = g.tensors[op.inputs[1]]
    o = g.tensors[op.outputs[0]]
    return packed_scratch(op, f.shape[1], f.shape[2], f.shape[3], o.shape[1] * o.shape[2]) if _packable(g, op) else 0


def _packable(g: Graph, op: Op) -> bool:
    f = g.tensors[op.inputs[1]]
    a = g.tensors[op.inputs[0]]
    return (int(op.options.get("dilation_h", 1)) == 1 and int(op.options.get("dilation_w", 1)) == 1
            and a.shape[0] == 1 and a.shape[3] == f.shape[3])


def _conv_emit(ctx: EmitCtx, g: Graph, op: Op) -> str:
    p = f"l{op.index}"
    f = g.tensors[op.inputs[1]]
    assert f.data is not None
    common = conv_common_params(g, op, (f.shape[1], f.shape[2]))
    params = ctx.struct("octo_conv_params_t", f"{p}_params", common)
    rq = emit_requant(ctx, p, g, op, f.shape[0])
    has_bias = len(op.inputs) > 2 and op.inputs[2] >= 0
    bias = g.tensors[op.inputs[2]].data if has_bias else None
    din = ctx.dims(f"{p}_in_dims", g.tensors[op.inputs[0]].shape)
    dfl = ctx.dims(f"{p}_filter_dims", f.shape)
    dout = ctx.dims(f"{p}_out_dims", g.tensors[op.outputs[0]].shape)
    if _packable(g, op):
        wpack, bias_full = conv_packed_tables(f.data, bias, int(common["input_offset"]))  # type: ignore[arg-type]
        bf_name = f"{p}_bias_full"
        if weight_bytes(op) == 1:
            o = g.tensors[op.outputs[0]]
            wp = emit_wpack8(ctx, f"{p}_wpack", f.data, o.shape[1] * o.shape[2])
            bf = ctx.array(bf_name, "int32_t", pad_bias8(bias_full))
            return (f"octo_conv_s8_packed8(&{params}, &{rq}, &{din}, {ctx.ptr(op.inputs[0])}, &{dfl}, {wp}, {bf}, "
                    f"{ctx.scratch(op.index, 'int8_t')}, &{dout}, {ctx.ptr(op.outputs[0])})")
        wp = emit_wpack(ctx, f"{p}_wpack", wpack, f.data)
        bf = ctx.array(bf_name, "int32_t", bias_full)
        return (f"octo_conv_s8_packed(&{params}, &{rq}, &{din}, {ctx.ptr(op.inputs[0])}, &{dfl}, {wp}, {bf}, "
                f"{ctx.scratch(op.index, 'int8_t')}, &{dout}, {ctx.ptr(op.outputs[0])})")
    w = ctx.array(f"{p}_filter", "int8_t", f.data)
    b = ctx.array(f"{p}_bias", "int32_t", bias) if bias is not None else "NULL"
    return (f"octo_conv_s8(&{params}, &{rq}, &{din}, {ctx.ptr(op.inputs[0])}, &{dfl}, {w}, {b}, &{dout}, "
            f"{ctx.ptr(op.outputs[0])})")


def _conv_lag(g: Graph, op: Op) -> int | None:
    """The packed kernel gathers each pixel's receptive field before writing it."""
    if not _packable(g, op):
        return None
    f = g.tensors[op.inputs[1]]
    c = conv_common_params(g, op, (f.shape[1], f.shape[2]))
    return spatial_lag(g, op, (int(c["stride_h"]), int(c["stride_w"])), (int(c["pad_h"]), int(c["pad_w"])), True)


LOWERINGS = {"CONV_2D": Lowering(_conv_check, _conv_macs, _conv_emit, scratch=_conv_scratch, inplace_lag=_conv_lag)}
