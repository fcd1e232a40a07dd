"""Lowering of each supported TFLite op to a call of an Octo C kernel.

One ``Lowering`` per op kind: ``check`` validates (clear ConvertError naming the
op), ``macs`` counts nominal multiply-accumulates (padding taps included),
``scratch`` returns the kernel's scratch bytes, ``alias`` says whether the
output may share the input's buffer, ``emit`` writes the C: constant arrays
(weights, requantization tables, parameter structs) and the kernel call.
All parameter math is in converter/qmath.py and mirrors TFLM's Prepare().
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from converter import qmath
from converter.ir import ConvertError, Graph, Op, Tensor


@dataclass
class EmitCtx:
    """Collects C declarations; gives kernels pointers into the arena."""

    graph: Graph
    tensor_offset: dict[int, int]
    scratch_offset: dict[int, int]
    decls: list[str] = field(default_factory=list)

    def array(self, name: str, ctype: str, values: np.ndarray, per_line: int = 16) -> str:
        flat = np.asarray(values).reshape(-1)
        if flat.size == 0:
            flat = np.zeros(1, flat.dtype)
        rows = [", ".join(str(int(v)) for v in flat[i : i + per_line]) for i in range(0, flat.size, per_line)]
        body = ",\n    ".join(rows)
        self.decls.append(f"static const {ctype} {name}[{flat.size}] __attribute__((aligned(4))) = {{\n    {body}\n}};")
        return name

    def struct(self, ctype: str, name: str, fields: dict[str, object]) -> str:
        inits = ", ".join(f".{k} = {v}" for k, v in fields.items())
        self.decls.append(f"static const {ctype} {name} = {{{inits}}};")
        return name

    def dims(self, name: str, shape: tuple[int, ...]) -> str:
        n, h, w, c = to_nhwc(shape)
        return self.struct("octo_dims_t", name, {"n": n, "h": h, "w": w, "c": c})

    def ptr(self, tensor: int, ctype: str = "int8_t") -> str:
        return f"(({ctype} *)(arena + {self.tensor_offset[tensor]}u))"

    def scratch(self, op_index: int, ctype: str = "int16_t") -> str:
        return f"(({ctype} *)(arena + {self.scratch_offset[op_index]}u))"


def to_nhwc(shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    if len(shape) == 4:
        return shape[0], shape[1], shape[2], shape[3]
    if len(shape) == 3:
        return shape[0], 1, shape[1], shape[2]
    if len(shape) == 2:
        return shape[0], 1, 1, shape[1]
    if len(shape) == 1:
        return 1, 1, 1, shape[0]
    return 1, 1, 1, 1


def act_tensor(g: Graph, op: Op, ti: int, role: str) -> Tensor:
    """An int8 per-tensor-quantized activation tensor, or a clear error."""
    if ti < 0:
        raise ConvertError(f"{op.label(g)}: missing {role} tensor")
    t = g.tensors[ti]
    if t.dtype != "int8":
        raise ConvertError(f"{op.label(g)}: {role} tensor {t.name!r} is {t.dtype}; Octo runs full-integer INT8 "
                           "models only (convert with an int8 representative dataset and int8 input/output)")
    if t.scale is None or t.scale.size != 1:
        raise ConvertError(f"{op.label(g)}: {role} tensor {t.name!r} lacks per-tensor quantization parameters")
    return t


def const_tensor(g: Graph, op: Op, ti: int, role: str, dtype: str) -> Tensor:
    if ti < 0:
        raise ConvertError(f"{op.label(g)}: missing {role} tensor")
    t = g.tensors[ti]
    if not t.is_const:
        raise ConvertError(f"{op.label(g)}: {role} tensor {t.name!r} must be a constant")
    if t.dtype != dtype:
        raise ConvertError(f"{op.label(g)}: {role} tensor {t.name!r} is {t.dtype}, expected {dtype} "
                           "(hybrid or float models are not supported: quantize to full INT8)")
    return t


def tflite_padding(padding: str, in_size: int, filt: int, stride: int, dilation: int, out_size: int) -> int:
    """Leading padding as TFLite's ComputePaddingWithOffset (same formula for SAME and VALID)."""
    eff = (filt - 1) * dilation + 1
    total = max((out_size - 1) * stride + eff - in_size, 0)
    return total // 2


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


@dataclass(frozen=True)
class Lowering:
    check: Callable[[Graph, Op], None]
    macs: Callable[[Graph, Op], int]
    emit: Callable[[EmitCtx, Graph, Op], str]
    scratch: Callable[[Graph, Op], int] = lambda g, op: 0
    alias: Callable[[Graph, Op], int | None] = lambda g, op: None


LOWERINGS: dict[str, Lowering] = {
    "CONV_2D": Lowering(_conv_check, _conv_macs, _conv_emit),
}


def lowering_for(g: Graph, op: Op) -> Lowering:
    from converter.ir import SUPPORTED_OPS  # noqa: PLC0415

    low = LOWERINGS.get(op.kind)
    if low is None:
        supported = ", ".join(SUPPORTED_OPS)
        if op.kind in SUPPORTED_OPS:
            raise ConvertError(f"{op.label(g)}: {op.kind} is on Octo's list but has no kernel in this build")
        raise ConvertError(f"{op.label(g)}: unsupported op {op.kind}. Supported: {supported}. "
                           "Replace the layer or express it with supported ops.")
    return low
