"""ADD lowering: int8 elementwise add with right-aligned (numpy) broadcasting up to 4-D.

Parameters mirror TFLM's CalculateOpDataAdd (qmath.add_params); the kernel
implements reference_integer_ops::AddFunc. Either input may be a constant int8
tensor (it becomes a flash array).
"""

from __future__ import annotations

from converter import qmath
from converter.ir import ConvertError, Graph, Op, Tensor
from converter.ops import EmitCtx, Lowering, act_tensor


def extend_4d(shape: tuple[int, ...]) -> tuple[int, int, int, int] | None:
    """Right-align a shape to 4-D as TFLite's RuntimeShape::ExtendedShape (leading 1s); None if rank > 4
    with a non-1 leading dimension."""
    dims = list(shape)
    while len(dims) > 4 and dims[0] == 1:
        dims.pop(0)
    if len(dims) > 4:
        return None
    dims = [1] * (4 - len(dims)) + dims
    return dims[0], dims[1], dims[2], dims[3]


def _tensor_ref(ctx: EmitCtx, t: Tensor, name: str) -> str:
    if t.is_const:
        assert t.data is not None
        return ctx.array(name, "int8_t", t.data)
    return ctx.ptr(t.index)


def _dims(ctx: EmitCtx, name: str, shape: tuple[int, int, int, int]) -> str:
    n, h, w, c = shape
    return ctx.struct("octo_dims_t", name, {"n": n, "h": h, "w": w, "c": c})


def _check(g: Graph, op: Op) -> None:
    if len(op.inputs) != 2 or len(op.outputs) != 1:
        raise ConvertError(f"{op.label(g)}: ADD needs exactly 2 inputs and 1 output")
    a = act_tensor(g, op, op.inputs[0], "input 1")
    b = act_tensor(g, op, op.inputs[1], "input 2")
    o = act_tensor(g, op, op.outputs[0], "output")
    if o.is_const:
        raise ConvertError(f"{op.label(g)}: ADD output must not be a constant")
    if a.is_const and b.is_const:
        raise ConvertError(f"{op.label(g)}: ADD of two constants should have been folded by the TFLite converter")
    oe = extend_4d(o.shape)
    if oe is None:
        raise ConvertError(f"{op.label(g)}: ADD output {o.shape} has more than 4 dimensions; Octo supports up to 4")
    for role, t in (("input 1", a), ("input 2", b)):
        te = extend_4d(t.shape)
        if te is None:
            raise ConvertError(f"{op.label(g)}: ADD {role} {t.shape} has more than 4 dimensions")
        if any(d not in (od, 1) for d, od in zip(te, oe, strict=True)):
            raise ConvertError(f"{op.label(g)}: ADD {role} shape {t.shape} does not broadcast to the output "
                               f"shape {o.shape} (each dimension must match or be 1)")
        zp = t.qparams()[1]
        if not qmath.INT8_MIN <= zp <= qmath.INT8_MAX:
            raise ConvertError(f"{op.label(g)}: ADD {role} zero point {zp} is outside int8")
    expect = tuple(max(x, y) for x, y in zip(extend_4d(a.shape), extend_4d(b.shape), strict=True))  # type: ignore[arg-type]
    if expect != oe:
        raise ConvertError(f"{op.label(g)}: ADD output shape {o.shape} is not the broadcast of {a.shape} and "
                           f"{b.shape}")
    act = str(op.options.get("activation", "NONE"))
    try:
        qmath.activation_range(act, *o.qparams())
        qmath.add_params(a.qparams()[0], b.qparams()[0], o.qparams()[0])
    except ConvertError as exc:
        raise ConvertError(f"{op.label(g)}: ADD cannot be lowered ({exc}); supported fused activations: "
                           "NONE, RELU, RELU6, RELU_N1_TO_1") from None


def _macs(g: Graph, op: Op) -> int:
    """One rescale-and-add per output element."""
    return g.tensors[op.outputs[0]].size


def _emit(ctx: EmitCtx, g: Graph, op: Op) -> str:
    p = f"l{op.index}"
    a, b, o = (g.tensors[i] for i in (op.inputs[0], op.inputs[1], op.outputs[0]))
    out_scale, out_zp = o.qparams()
    act_min, act_max = qmath.activation_range(str(op.options.get("activation", "NONE")), out_scale, out_zp)
    q = qmath.add_params(a.qparams()[0], b.qparams()[0], out_scale)
    fields = {
        "input1_offset": -a.qparams()[1],
        "input1_multiplier": q["input1_multiplier"],
        "input1_shift": q["input1_shift"],
        "input2_offset": -b.qparams()[1],
        "input2_multiplier": q["input2_multiplier"],
        "input2_shift": q["input2_shift"],
        "left_shift": q["left_shift"],
        "output_multiplier": q["output_multiplier"],
        "output_shift": q["output_shift"],
        "output_offset": out_zp,
        "act_min": act_min,
        "act_max": act_max,
    }
    params = ctx.struct("octo_add_params_t", f"{p}_params", fields)
    d1 = _dims(ctx, f"{p}_in1_dims", extend_4d(a.shape))  # type: ignore[arg-type]
    d2 = _dims(ctx, f"{p}_in2_dims", extend_4d(b.shape))  # type: ignore[arg-type]
    do = _dims(ctx, f"{p}_out_dims", extend_4d(o.shape))  # type: ignore[arg-type]
    x1 = _tensor_ref(ctx, a, f"{p}_in1")
    x2 = _tensor_ref(ctx, b, f"{p}_in2")
    return f"octo_add_s8(&{params}, &{d1}, {x1}, &{d2}, {x2}, &{do}, {ctx.ptr(o.index)})"


LOWERINGS = {"ADD": Lowering(_check, _macs, _emit)}
