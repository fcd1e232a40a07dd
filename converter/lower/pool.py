"""AVERAGE_POOL_2D and MAX_POOL_2D lowering.

Semantics as TFLM's reference_integer_ops::AveragePool / MaxPool: the window is clipped
to the image (padding taps are neither averaged nor maxed), the average rounds half away
from zero, the fused activation clamps. Neither kernel requantizes: TFLite ties the
output quantization to the input's, and check() insists on it.
"""

from __future__ import annotations

from converter import qmath
from converter.ir import ConvertError, Graph, Op
from converter.ops import EmitCtx, Lowering, act_tensor, check_activation, spatial_lag, tflite_padding


def _check(g: Graph, op: Op) -> None:
    a = act_tensor(g, op, op.inputs[0], "input")
    o = act_tensor(g, op, op.outputs[0], "output")
    lbl = op.label(g)
    if len(a.shape) != 4 or len(o.shape) != 4:
        raise ConvertError(f"{lbl}: {op.kind} needs 4-D input and output")
    if a.shape[0] != o.shape[0] or a.shape[3] != o.shape[3]:
        raise ConvertError(f"{lbl}: input {a.shape} and output {o.shape} differ in batch or channels")
    for key in ("stride_h", "stride_w", "filter_h", "filter_w"):
        if int(op.options.get(key, 0)) < 1:
            raise ConvertError(f"{lbl}: {key} must be >= 1, got {op.options.get(key)}")
    (in_s, in_zp), (out_s, out_zp) = a.qparams(), o.qparams()
    if in_zp != out_zp or abs(in_s - out_s) > 1e-6:  # the tolerance of TFLite's own pooling Prepare
        raise ConvertError(f"{lbl}: input quantization {a.qparams()} differs from output {o.qparams()}; "
                           f"{op.kind} does not requantize (re-export with TFLite's converter)")
    check_activation(g, op, o)
    if op.kind != "AVERAGE_POOL_2D":
        return
    p = _params(g, op)  # an average over zero taps is undefined (TFLM fails at Eval); a max of none is -128
    for oy in range(o.shape[1]):
        iy = oy * p["stride_h"] - p["pad_h"]
        if iy + p["filter_h"] <= 0 or iy >= a.shape[1]:
            raise ConvertError(f"{lbl}: output row {oy} has a window entirely in the padding")
    for ox in range(o.shape[2]):
        ix = ox * p["stride_w"] - p["pad_w"]
        if ix + p["filter_w"] <= 0 or ix >= a.shape[2]:
            raise ConvertError(f"{lbl}: output column {ox} has a window entirely in the padding")


def _params(g: Graph, op: Op) -> dict[str, int]:
    a, o = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    opt = op.options
    sh, sw = int(opt["stride_h"]), int(opt["stride_w"])
    fh, fw = int(opt["filter_h"]), int(opt["filter_w"])
    pad = str(opt["padding"])
    act_min, act_max = qmath.activation_range(str(opt.get("activation", "NONE")), *o.qparams())
    return {"stride_h": sh, "stride_w": sw,
            "pad_h": tflite_padding(pad, a.shape[1], fh, sh, 1, o.shape[1]),
            "pad_w": tflite_padding(pad, a.shape[2], fw, sw, 1, o.shape[2]),
            "filter_h": fh, "filter_w": fw, "act_min": act_min, "act_max": act_max}


def _macs(g: Graph, op: Op) -> int:
    """Pools have no multiplies: counts output elements x filter_h x filter_w (window taps read, padding included)."""
    o = g.tensors[op.outputs[0]]
    return o.size * int(op.options["filter_h"]) * int(op.options["filter_w"])


def _emitter(kernel: str, ptype: str):
    def emit(ctx: EmitCtx, g: Graph, op: Op) -> str:
        p = f"l{op.index}"
        params = ctx.struct(ptype, f"{p}_params", _params(g, op))
        din = ctx.dims(f"{p}_in_dims", g.tensors[op.inputs[0]].shape)
        dout = ctx.dims(f"{p}_out_dims", g.tensors[op.outputs[0]].shape)
        return f"{kernel}(&{params}, &{din}, {ctx.ptr(op.inputs[0])}, &{dout}, {ctx.ptr(op.outputs[0])})"
    return emit


def _lag(g: Graph, op: Op) -> int | None:
    """Both kernels run output pixels in raster order, channels innermost, batch 1."""
    if g.tensors[op.inputs[0]].shape[0] != 1:
        return None
    p = _params(g, op)
    return spatial_lag(g, op, (p["stride_h"], p["stride_w"]), (p["pad_h"], p["pad_w"]), False)


LOWERINGS = {
    "AVERAGE_POOL_2D": Lowering(_check, _macs, _emitter("octo_avgpool_s8", "octo_pool_params_t"), inplace_lag=_lag),
    "MAX_POOL_2D": Lowering(_check, _macs, _emitter("octo_maxpool_s8", "octo_pool_params_t"), inplace_lag=_lag),
}
