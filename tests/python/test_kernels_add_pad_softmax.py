"""ADD, RESHAPE, PAD/PADV2, SOFTMAX and the dilated-conv rewrite: generated C equals TFLM bit for bit.

Keras cases go through tests.modelcheck.assert_bit_exact (TFLite's quantizer picks
the scales). Cases that need exact control of scales, zero points, beta or
structured inputs are single-op .tflite files written here with the flatbuffers
builder, run on chosen int8 inputs through the same host build (ASan + UBSan)
and TFLM.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from converter.codegen import CompiledModel
from converter.hostbuild import build_host_runner, kernel_sources, run_host
from converter.ir import ConvertError
from converter.ops import all_lowerings
from converter.quantize import quantize_keras
from converter.tflite_reader import parse_tflite
from converter.tflm import tflm_interpreter, tflm_run
from host_tools.paths import firmware_dir
from tests.modelcheck import assert_bit_exact, assert_tflite_bit_exact, compile_to_dir


# -- a minimal .tflite writer (one subgraph; tensors and ops given as plain data) -------------------------
def _tflite(tensors: list[dict[str, Any]], ops: list[tuple[str, list[int], list[int], dict[str, Any]]],
            inputs: list[int], outputs: list[int]) -> bytes:
    """tensors: dict(shape, dtype, scale=None, zp=0, data=None); ops: (kind, inputs, outputs, options)."""
    import flatbuffers
    import tflite

    b = flatbuffers.Builder(1024)

    def ivec(values: Any, dtype: Any = np.int32) -> int:
        return b.CreateNumpyVector(np.asarray(values, dtype).reshape(-1))

    def tables(offsets: list[int]) -> int:
        b.StartVector(4, len(offsets), 4)
        for o in reversed(offsets):
            b.PrependUOffsetTRelative(o)
        return b.EndVector()

    ttype = {"int8": tflite.TensorType.INT8, "int32": tflite.TensorType.INT32}
    buffers: list[bytes] = [b""]
    t_offs = []
    for i, t in enumerate(tensors):
        name, shape = b.CreateString(f"t{i}"), ivec(t["shape"])
        quant = None
        if t.get("scale") is not None:
            sc, zp = ivec([t["scale"]], np.float32), ivec([t.get("zp", 0)], np.int64)
            tflite.QuantizationParametersStart(b)
            tflite.QuantizationParametersAddScale(b, sc)
            tflite.QuantizationParametersAddZeroPoint(b, zp)
            quant = tflite.QuantizationParametersEnd(b)
        buf = 0
        if t.get("data") is not None:
            buffers.append(np.asarray(t["data"], {"int8": np.int8, "int32": np.int32}[t["dtype"]]).tobytes())
            buf = len(buffers) - 1
        tflite.TensorStart(b)
        tflite.TensorAddShape(b, shape)
        tflite.TensorAddType(b, ttype[t["dtype"]])
        tflite.TensorAddBuffer(b, buf)
        tflite.TensorAddName(b, name)
        if quant is not None:
            tflite.TensorAddQuantization(b, quant)
        t_offs.append(tflite.TensorEnd(b))
    kinds = sorted({op[0] for op in ops})
    o_offs = []
    for kind, ins, outs, opts in ops:
        iv, ov = ivec(ins), ivec(outs)
        if kind == "SOFTMAX":
            tflite.SoftmaxOptionsStart(b)
            tflite.SoftmaxOptionsAddBeta(b, opts.get("beta", 1.0))
            options, otype = tflite.SoftmaxOptionsEnd(b), tflite.BuiltinOptions.SoftmaxOptions
        elif kind == "ADD":
            tflite.AddOptionsStart(b)
            tflite.AddOptionsAddFusedActivationFunction(b, opts.get("activation", 0))
            options, otype = tflite.AddOptionsEnd(b), tflite.BuiltinOptions.AddOptions
        elif kind == "PAD":
            tflite.PadOptionsStart(b)
            options, otype = tflite.PadOptionsEnd(b), tflite.BuiltinOptions.PadOptions
        else:
            tflite.PadV2OptionsStart(b)
            options, otype = tflite.PadV2OptionsEnd(b), tflite.BuiltinOptions.PadV2Options
        tflite.OperatorStart(b)
        tflite.OperatorAddOpcodeIndex(b, kinds.index(kind))
        tflite.OperatorAddInputs(b, iv)
        tflite.OperatorAddOutputs(b, ov)
        tflite.OperatorAddBuiltinOptionsType(b, otype)
        tflite.OperatorAddBuiltinOptions(b, options)
        o_offs.append(tflite.OperatorEnd(b))
    tv, ov_, giv, gov, sname = tables(t_offs), tables(o_offs), ivec(inputs), ivec(outputs), b.CreateString("main")
    tflite.SubGraphStart(b)
    tflite.SubGraphAddTensors(b, tv)
    tflite.SubGraphAddInputs(b, giv)
    tflite.SubGraphAddOutputs(b, gov)
    tflite.SubGraphAddOperators(b, ov_)
    tflite.SubGraphAddName(b, sname)
    subgraph = tflite.SubGraphEnd(b)
    c_offs = []
    for kind in kinds:
        code = getattr(tflite.BuiltinOperator, kind)
        tflite.OperatorCodeStart(b)
        tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, 127))
        tflite.OperatorCodeAddBuiltinCode(b, code)
        tflite.OperatorCodeAddVersion(b, 1)
        c_offs.append(tflite.OperatorCodeEnd(b))
    b_offs = []
    for raw in buffers:
        data = b.CreateNumpyVector(np.frombuffer(raw, np.uint8)) if raw else None
        tflite.BufferStart(b)
        if data is not None:
            tflite.BufferAddData(b, data)
        b_offs.append(tflite.BufferEnd(b))
    cv, bv, sv = tables(c_offs), tables(b_offs), tables([subgraph])
    tflite.ModelStart(b)
    tflite.ModelAddVersion(b, 3)
    tflite.ModelAddOperatorCodes(b, cv)
    tflite.ModelAddSubgraphs(b, sv)
    tflite.ModelAddBuffers(b, bv)
    b.Finish(tflite.ModelEnd(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def _act(shape: tuple[int, ...], scale: float, zp: int) -> dict[str, Any]:
    return {"shape": shape, "dtype": "int8", "scale": scale, "zp": zp}


_CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-O2", "-fsanitize=address,undefined",
           "-fno-sanitize-recover=all", "-g"]


@pytest.fixture(scope="session")
def kernel_objects(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The kernels compiled once (same flags as hostbuild's sanitized build) for the single-op models."""
    out = tmp_path_factory.mktemp("octo-kernels")
    include = firmware_dir() / "include"
    jobs = [(src, out / f"{src.stem}.o") for src in kernel_sources()]
    procs = [subprocess.Popen(["gcc", *_CFLAGS, f"-I{include}", "-c", str(src), "-o", str(obj)],
                              stderr=subprocess.PIPE, text=True) for src, obj in jobs]
    for p in procs:
        _, err = p.communicate()
        assert p.returncode == 0, err
    return [obj for _, obj in jobs]


def _tflm(model: bytes, x: np.ndarray) -> np.ndarray:
    """tflm_run with an arena big enough for the weightless single-op models written here."""
    interp = tflm_interpreter(model, arena_size=256 * 1024)
    shape = tuple(interp.get_input_details(0)["shape"])
    outs = []
    for sample in x:
        interp.set_input(sample.reshape(shape), 0)
        interp.invoke()
        outs.append(np.array(interp.get_output(0)).reshape(-1).copy())
    return np.stack(outs)


def _assert_inputs_bit_exact(model: bytes, x: np.ndarray, tmp_path: Path, objs: list[Path]) -> CompiledModel:
    """Our generated C (ASan/UBSan) and TFLM on exactly these int8 inputs [N, *input shape]."""
    mdir = tmp_path / "model"
    cm = compile_to_dir(model, mdir)
    fw = firmware_dir()
    exe = mdir / "octo_infer"
    cmd = ["gcc", *_CFLAGS, f"-I{fw / 'include'}", f"-I{mdir}", "-include", "octo_model_config.h",
           str(mdir / "model.c"), str(fw / "host" / "octo_infer_main.c"), *map(str, objs), "-o", str(exe), "-lm"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    x = np.ascontiguousarray(x, np.int8).reshape(-1, *cm.graph.input.shape)
    ours = run_host(exe, x, cm.graph.output.size)
    ref = _tflm(model, x).reshape(ours.shape)
    bad = np.argwhere(ours != ref)
    assert bad.size == 0, (f"{len(bad)} of {ours.size} bytes differ from TFLM; first at {tuple(bad[0])}: "
                           f"octo {ours[tuple(bad[0])]} vs tflm {ref[tuple(bad[0])]}")
    return cm


def _random_int8(shape: tuple[int, ...], n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(-128, 128, size=(n, *shape)).astype(np.int8)


def _keras_check(build: Callable[[Any], Any], shape: tuple[int, ...], tmp_path: Path, *, shift: float = 0.0,
                 spread: float = 1.0) -> CompiledModel:
    import keras

    keras.utils.set_random_seed(3)
    inp = keras.Input(shape)
    model = keras.Model(inp, build(inp))
    calib = (np.random.default_rng(0).normal(size=(48, *shape)) * spread + shift).astype(np.float32)
    return assert_bit_exact(model, calib, tmp_path)


def _quantize_dynamic_batch(model: Any, calib: np.ndarray) -> bytes:
    """INT8 .tflite of a Keras model with its batch left dynamic (as TFLite files from elsewhere often are):
    Flatten computes its shape at run time and dilated convs become SPACE_TO_BATCH_ND/BATCH_TO_SPACE_ND."""
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([s[None]] for s in calib)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    return bytes(conv.convert())


def _kinds(cm: CompiledModel) -> list[str]:
    return [op.kind for op in cm.graph.ops]


# -- ADD ---------------------------------------------------------------------------------------------------
def _L() -> Any:
    import keras

    return keras.layers


ADD_KERAS: dict[str, tuple[Callable[[Any], Any], tuple[int, ...], str]] = {
    "residual_conv_add": (lambda x: _L().Add()([_L().Conv2D(4, 3, padding="same")(x), x]), (8, 8, 4), "NONE"),
    "residual_add_relu": (lambda x: _L().ReLU()(_L().Add()([_L().Conv2D(4, 3, padding="same")(x), x])),
                          (6, 6, 4), "RELU"),
    "broadcast_channel_constant": (lambda x: x + np.linspace(-2, 3, 5).astype(np.float32), (4, 6, 5), "NONE"),
    "broadcast_pixel_1x1xC": (lambda x: _L().Add()([x, _L().Conv2D(3, (5, 6))(x)]), (5, 6, 3), "NONE"),
}


@pytest.mark.parametrize("case", ADD_KERAS.values(), ids=list(ADD_KERAS))
def test_add_keras_bit_exact(case: tuple[Callable[[Any], Any], tuple[int, ...], str], tmp_path: Path) -> None:
    build, shape, act = case
    cm = _keras_check(build, shape, tmp_path, shift=0.7, spread=1.5)
    adds = [op for op in cm.graph.ops if op.kind == "ADD"]
    assert len(adds) == 1 and adds[0].options["activation"] == act


# (input shape, input qparams, constant shape, constant qparams, output qparams, activation code)
ADD_EXACT: dict[str, tuple[tuple[int, ...], tuple[float, int], tuple[int, ...], tuple[float, int],
                           tuple[float, int], int]] = {
    "scales_100x_apart": ((1, 4, 5, 6), (0.5, 10), (1, 4, 5, 6), (0.005, -128), (0.51, 3), 0),
    "extreme_zero_points_relu6": ((1, 3, 4, 8), (0.05, -128), (1, 3, 4, 8), (0.03, 127), (0.04, -100), 3),
    "relu_n1_to_1": ((1, 2, 3, 16), (0.02, 5), (1, 2, 3, 16), (0.02, -7), (1 / 128, 0), 2),
    "tiny_output_scale_saturates": ((1, 3, 3, 4), (0.1, 0), (1, 3, 3, 4), (0.2, 0), (0.002, 0), 1),
    "broadcast_rank1_const": ((1, 4, 5, 6), (0.07, -3), (6,), (0.02, 9), (0.08, 1), 0),
    "broadcast_rank2_const": ((1, 4, 5, 6), (0.07, -3), (5, 1), (0.09, -20), (0.1, 4), 0),
    "broadcast_both_sides": ((1, 1, 5, 1), (0.06, 12), (1, 4, 1, 6), (0.05, -40), (0.07, -2), 0),
    "rank3": ((1, 7, 9), (0.03, 0), (7, 1), (0.03, 0), (0.05, -5), 1),
    # >= 512 elements: the tabulated fast path (an odd size leaves a tail after the 4-element loop)
    "tabulated_relu6_tail": ((1, 9, 10, 7), (0.05, -128), (1, 9, 10, 7), (0.03, 127), (0.04, -100), 3),
    "tabulated_saturates": ((1, 8, 8, 9), (0.5, 10), (1, 8, 8, 9), (0.005, -128), (0.002, 0), 0),
    "tabulated_same_scales": ((1, 16, 16, 4), (0.02, 5), (1, 16, 16, 4), (0.02, -7), (0.03, 2), 1),
}


@pytest.mark.parametrize("case", ADD_EXACT.values(), ids=list(ADD_EXACT))
def test_add_exact_params_bit_exact(case: tuple[Any, ...], tmp_path: Path, kernel_objects: list[Path]) -> None:
    in_shape, (s1, z1), c_shape, (s2, z2), (so, zo), act = case
    out_shape = tuple(np.broadcast_shapes(in_shape, c_shape))
    const = np.random.default_rng(1).integers(-128, 128, size=c_shape)
    tensors = [_act(in_shape, s1, z1), {**_act(c_shape, s2, z2), "data": const}, _act(out_shape, so, zo)]
    model = _tflite(tensors, [("ADD", [0, 1], [2], {"activation": act})], [0], [2])
    cm = _assert_inputs_bit_exact(model, _random_int8(in_shape[1:], 40, 2), tmp_path, kernel_objects)
    assert _kinds(cm) == ["ADD"]


# -- RESHAPE -----------------------------------------------------------------------------------------------
def test_flatten_aliases_its_input(tmp_path: Path) -> None:
    cm = _keras_check(lambda x: _L().Flatten()(_L().Conv2D(4, 3)(x)), (6, 7, 3), tmp_path)
    assert _kinds(cm) == ["CONV_2D", "RESHAPE"]
    reshape = cm.graph.ops[1]
    assert cm.plan.tensor_offset[reshape.inputs[0]] == cm.plan.tensor_offset[reshape.outputs[0]]
    assert cm.layers[1].macs == 0


def test_flatten_with_runtime_shape(tmp_path: Path) -> None:
    """Dynamic batch: SHAPE -> STRIDED_SLICE -> PACK feed RESHAPE; the rewrite drops them."""
    import keras

    keras.utils.set_random_seed(4)
    inp = keras.Input((6, 7, 3))
    model = keras.Model(inp, keras.layers.Flatten()(keras.layers.Conv2D(4, 3)(inp)))
    calib = np.random.default_rng(0).normal(size=(32, 6, 7, 3)).astype(np.float32)
    tfl = _quantize_dynamic_batch(model, calib)
    assert "SHAPE" in [op.kind for op in parse_tflite(tfl).ops]
    cm = assert_tflite_bit_exact(tfl, tmp_path, calib=calib)
    assert _kinds(cm) == ["CONV_2D", "RESHAPE"]


def test_flatten_dense(tmp_path: Path) -> None:
    cm = _keras_check(lambda x: _L().Dense(7)(_L().Flatten()(x)), (4, 5, 3), tmp_path)
    assert _kinds(cm) == ["RESHAPE", "FULLY_CONNECTED"]


# -- PAD / PADV2 -------------------------------------------------------------------------------------------
PAD_KERAS: dict[str, tuple[Callable[[Any], Any], tuple[int, ...], str]] = {
    "zeropad_symmetric_after_conv": (lambda x: _L().ZeroPadding2D(1)(_L().Conv2D(4, 3)(x)), (7, 7, 3), "PAD"),
    "zeropad_asymmetric_then_conv": (lambda x: _L().Conv2D(4, 3)(_L().ZeroPadding2D(((1, 2), (3, 0)))(x)),
                                     (6, 6, 2), "PAD"),
    "padv2_constant": (lambda x: __import__("keras").ops.pad(_L().Conv2D(4, 1)(x), ((0, 0), (1, 2), (2, 1), (0, 0)),
                                                             constant_values=0.5), (5, 6, 3), "PADV2"),
}


@pytest.mark.parametrize("case", PAD_KERAS.values(), ids=list(PAD_KERAS))
def test_pad_keras_bit_exact(case: tuple[Callable[[Any], Any], tuple[int, ...], str], tmp_path: Path) -> None:
    build, shape, kind = case
    cm = _keras_check(build, shape, tmp_path, shift=1.0)
    assert kind in _kinds(cm)


# (input shape, paddings, qparams, PADV2 constant or None)
PAD_EXACT: dict[str, tuple[tuple[int, ...], list[list[int]], tuple[float, int], int | None]] = {
    "4d_all_dims_but_batch": ((1, 3, 4, 5), [[0, 0], [1, 0], [0, 2], [3, 1]], (0.1, -17), None),
    "2d_vector": ((1, 7), [[0, 0], [2, 3]], (0.2, 100), None),
    "3d": ((1, 4, 6), [[0, 0], [1, 1], [0, 5]], (0.2, -128), None),
    "padv2_value": ((1, 3, 3, 2), [[0, 0], [2, 1], [1, 2], [0, 0]], (0.05, 7), -77),
}


@pytest.mark.parametrize("case", PAD_EXACT.values(), ids=list(PAD_EXACT))
def test_pad_exact_bit_exact(case: tuple[Any, ...], tmp_path: Path, kernel_objects: list[Path]) -> None:
    shape, pads, (s, z), value = case
    out_shape = tuple(d + a + b for d, (a, b) in zip(shape, pads, strict=True))
    tensors = [_act(shape, s, z), {"shape": (len(shape), 2), "dtype": "int32", "data": pads}, _act(out_shape, s, z)]
    ins = [0, 1]
    if value is not None:
        tensors.append({**_act((), s, z), "data": [value]})
        ins.append(3)
    model = _tflite(tensors, [("PADV2" if value is not None else "PAD", ins, [2], {})], [0], [2])
    cm = _assert_inputs_bit_exact(model, _random_int8(shape[1:], 8, 4), tmp_path, kernel_objects)
    assert cm.layers[0].macs == 0


# -- SOFTMAX -----------------------------------------------------------------------------------------------
def _softmax_model(rows: int, depth: int, scale: float, beta: float) -> bytes:
    tensors = [_act((1, rows, depth), scale, 0), _act((1, rows, depth), 1 / 256, -128)]
    return _tflite(tensors, [("SOFTMAX", [0], [1], {"beta": beta})], [0], [1])


def _softmax_rows(depth: int, scale: float, beta: float, n: int, seed: int) -> np.ndarray:
    """Structured rows (ties at the max, all equal, either side of the diff_min cut-off, one spike, all -128,
    sums of exps just under 512), then n full-range random ones. For depth >= 512, rows whose float sum of
    exps reaches 511.5 are dropped: TFLM aborts at 512 (see test_softmax_rows_tflm_aborts_on)."""
    from converter.qmath import softmax_params

    rng = np.random.default_rng(seed)
    rows = [rng.integers(lo, 128, size=depth) for lo in (0, 64, 100, 120)]
    radius = -softmax_params(beta, scale)["diff_min"]
    for top, fill in ((int(rng.integers(-128, 128)),) * 2, (5, 4), (127, 127 - radius), (127, 126 - radius),
                      (-100, -128)):
        row = np.full(depth, max(fill, -128))
        row[rng.integers(0, depth, size=max(1, depth // 3))] = top
        rows.append(row)
    spike = np.full(depth, -128)
    spike[depth // 2] = 127
    rows += [spike, np.full(depth, -128), np.full(depth, 127)]
    for k in (256, 300, 450, 511):  # sums of exps just below 512: TFLM's largest output shift (31)
        if k < depth:
            row = np.full(depth, -128)
            row[rng.permutation(depth)[:k]] = 127
            rows.append(row)
    rows += [rng.integers(-128, 128, size=depth) for _ in range(n)]  # last: the caller trims these
    x = np.clip(np.stack(rows), -128, 127)
    exps = np.exp((x - x.max(axis=1, keepdims=True)) * (np.float32(scale) * np.float32(beta))).sum(axis=1)
    return (x[exps < 511.5] if depth >= 512 else x).astype(np.int8)


# (rows per sample, depth, input scale, beta)
SOFTMAX_EXACT: dict[str, tuple[int, int, float, float]] = {
    "depth2": (40, 2, 0.05, 1.0),
    "depth3_beta2": (40, 3, 0.1, 2.0),
    "depth10_small_scale": (40, 10, 0.004, 1.0),
    "depth10_beta_half": (40, 10, 0.08, 0.5),
    "depth64_beta_tenth": (20, 64, 0.2, 0.1),
    "depth100": (20, 100, 0.0625, 1.0),
    "depth257_large_scale": (10, 257, 0.5, 1.0),
    "depth511_tiny_scale": (8, 511, 0.001, 1.0),
    "depth1000": (6, 1000, 0.05, 1.0),
    "depth1000_beta3": (6, 1000, 0.03, 3.0),
    "capped_multiplier": (20, 16, 40.0, 1.0),
    "tiny_beta_large_scale": (20, 8, 8.0, 1e-3),
}


@pytest.mark.parametrize("case", SOFTMAX_EXACT.values(), ids=list(SOFTMAX_EXACT))
def test_softmax_exact_bit_exact(case: tuple[int, int, float, float], tmp_path: Path,
                                 kernel_objects: list[Path]) -> None:
    rows, depth, scale, beta = case
    x = _softmax_rows(depth, scale, beta, n=3 * rows, seed=depth)
    x = x[: len(x) // rows * rows].reshape(-1, 1, rows, depth)
    assert len(x) >= 2
    cm = _assert_inputs_bit_exact(_softmax_model(rows, depth, scale, beta), x, tmp_path, kernel_objects)
    assert _kinds(cm) == ["SOFTMAX"]


def test_softmax_keras_over_conv_channels(tmp_path: Path) -> None:
    cm = _keras_check(lambda x: _L().Softmax()(_L().Conv2D(12, 3)(x)), (6, 6, 3), tmp_path)
    assert _kinds(cm) == ["CONV_2D", "SOFTMAX"]


@pytest.mark.parametrize("units", [10, 100])
def test_softmax_after_dense(units: int, tmp_path: Path) -> None:
    cm = _keras_check(lambda x: _L().Softmax()(_L().Dense(units)(x)), (16,), tmp_path, spread=2.0)
    assert _kinds(cm) == ["FULLY_CONNECTED", "SOFTMAX"]


def test_softmax_rows_tflm_aborts_on(tmp_path: Path, kernel_objects: list[Path]) -> None:
    """Near-uniform rows of depth >= 512: the sum of exps reaches 512 and TFLM's int8 softmax aborts
    (TFLITE_CHECK on the output shift). Our kernel writes TFLM's formula continued: all -128."""
    depth = 600
    model = _softmax_model(1, depth, 0.05, 1.0)
    rng = np.random.default_rng(9)
    x = np.stack([np.zeros(depth), np.full(depth, 127), rng.integers(126, 128, size=depth)]).astype(np.int8)
    cm = compile_to_dir(model, tmp_path / "model")
    fw = firmware_dir()
    exe = tmp_path / "octo_infer"
    subprocess.run(["gcc", *_CFLAGS, f"-I{fw / 'include'}", f"-I{tmp_path / 'model'}", "-include",
                    "octo_model_config.h", str(tmp_path / "model" / "model.c"), str(fw / "host" / "octo_infer_main.c"),
                    *map(str, kernel_objects), "-o", str(exe), "-lm"], check=True)
    assert np.all(run_host(exe, x.reshape(3, 1, 1, depth), cm.graph.output.size) == -128)
    (tmp_path / "m.tflite").write_bytes(model)
    spike = np.full(depth, -128, np.int8)
    spike[7] = 127
    for row, expect in [(spike, 0)] + [(r, -signal.SIGABRT) for r in x]:
        code = ("import numpy as np; from converter.tflm import tflm_interpreter as t; "
                f"i = t(open({str(tmp_path / 'm.tflite')!r}, 'rb').read(), arena_size=1 << 16); "
                f"i.set_input(np.array({row.tolist()}, np.int8).reshape(1, 1, {depth}), 0); i.invoke()")
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                              cwd=Path(__file__).resolve().parents[2])
        assert proc.returncode == expect, proc.stderr[-500:]


# -- everything together, and the dilated-conv rewrite -----------------------------------------------------
def test_combined_model(tmp_path: Path) -> None:
    def build(x: Any) -> Any:
        layers = _L()
        a = layers.Conv2D(6, 3, activation="relu")(x)
        b = layers.Conv2D(6, 3)(layers.ZeroPadding2D(((1, 1), (2, 0)))(a))  # not SAME: stays a PAD
        y = layers.ReLU()(layers.Add()([a, b]))
        return layers.Softmax()(layers.Dense(10)(layers.Flatten()(y)))

    cm = _keras_check(build, (9, 9, 3), tmp_path, shift=0.5)
    assert _kinds(cm) == ["CONV_2D", "PAD", "CONV_2D", "ADD", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX"]


DILATED: dict[str, tuple[Callable[[], Any], tuple[int, ...], str]] = {
    "conv_same_d2": (lambda: _L().Conv2D(4, 3, dilation_rate=2, padding="same"), (12, 12, 3), "CONV_2D"),
    "conv_valid_d2": (lambda: _L().Conv2D(4, 3, dilation_rate=2, padding="valid"), (12, 12, 3), "CONV_2D"),
    "conv_same_d2x3_odd": (lambda: _L().Conv2D(4, 3, dilation_rate=(2, 3), padding="same"), (11, 13, 3), "CONV_2D"),
    "depthwise_same_d2": (lambda: _L().DepthwiseConv2D(3, dilation_rate=2, padding="same"), (12, 12, 3),
                          "DEPTHWISE_CONV_2D"),
}


@pytest.mark.parametrize("case", DILATED.values(), ids=list(DILATED))
def test_dilated_conv_fusion(case: tuple[Callable[[], Any], tuple[int, ...], str], tmp_path: Path) -> None:
    """With a dynamic batch, TFLite emits SPACE_TO_BATCH_ND -> conv -> BATCH_TO_SPACE_ND whose stored shapes
    have batch 1, so TFLM runs them wrongly (and its int8 SPACE_TO_BATCH_ND pads with 0, not the zero point).
    The fused conv must equal TFLM on the same Keras layer converted with batch 1, where TFLite itself emits
    one dilated conv with identical quantization."""
    import keras

    make, shape, kind = case
    assert kind in all_lowerings()
    keras.utils.set_random_seed(5)
    layer = make()
    calib = (np.random.default_rng(0).normal(size=(48, *shape)) + 1.0).astype(np.float32)
    inp = keras.Input(shape)
    model = keras.Model(inp, layer(inp))
    dynamic, static = _quantize_dynamic_batch(model, calib), quantize_keras(model, calib)
    assert "SPACE_TO_BATCH_ND" in [op.kind for op in parse_tflite(dynamic).ops]
    cm = compile_to_dir(dynamic, tmp_path / "model")
    assert _kinds(cm) == [kind]
    ref_graph = parse_tflite(static)
    assert [op.kind for op in ref_graph.ops] == [kind]
    opt, ref_opt = cm.graph.ops[0].options, ref_graph.ops[0].options
    assert (opt["dilation_h"], opt["dilation_w"]) == (ref_opt["dilation_h"], ref_opt["dilation_w"])
    x = _random_int8(shape, 12, 6)
    ours = run_host(build_host_runner(tmp_path / "model", sanitize=True), x, cm.graph.output.size)
    ref = tflm_run(static, x).reshape(ours.shape)
    assert np.array_equal(ours, ref), f"{int((ours != ref).sum())} bytes differ from TFLM (batch-1 model)"


# -- what Octo refuses, with the op named ------------------------------------------------------------------
def _add_model(in_shape: tuple[int, ...], c_shape: tuple[int, ...], out_shape: tuple[int, ...],
               activation: int = 0) -> bytes:
    tensors = [_act(in_shape, 0.1, 0), {**_act(c_shape, 0.1, 0), "data": np.zeros(c_shape)},
               _act(out_shape, 0.1, 0)]
    return _tflite(tensors, [("ADD", [0, 1], [2], {"activation": activation})], [0], [2])


def _pad_model(shape: tuple[int, ...], pads: list[list[int]], out_shape: tuple[int, ...],
               const_q: tuple[float, int] | None = None, paddings_const: bool = True) -> bytes:
    tensors = [_act(shape, 0.1, 3), {"shape": (len(shape), 2), "dtype": "int32",
                                     "data": pads if paddings_const else None}, _act(out_shape, 0.1, 3)]
    ins = [0, 1]
    if const_q is not None:
        tensors.append({**_act((), *const_q), "data": [5]})
        ins.append(3)
    return _tflite(tensors, [("PADV2" if const_q else "PAD", ins, [2], {})], [0], [2])


def _softmax_bad(out_scale: float, out_zp: int, in_scale: float = 0.1, beta: float = 1.0) -> bytes:
    tensors = [_act((1, 10), in_scale, 0), _act((1, 10), out_scale, out_zp)]
    return _tflite(tensors, [("SOFTMAX", [0], [1], {"beta": beta})], [0], [1])


REFUSED: dict[str, tuple[Callable[[], bytes], str]] = {
    "add_not_broadcastable": (lambda: _add_model((1, 4, 5, 6), (4,), (1, 4, 5, 6)), "ADD.*broadcast"),
    "add_wrong_output_shape": (lambda: _add_model((1, 4, 5, 6), (6,), (1, 4, 5, 1)), "ADD"),
    "add_output_scale_too_small": (lambda: _tflite([_act((1, 4), 0.1, 0), {**_act((4,), 0.1, 0), "data": [1] * 4},
                                                    _act((1, 4), 1e-7, 0)], [("ADD", [0, 1], [2], {})], [0], [2]),
                                   "ADD.*must be in"),
    "add_tanh_activation": (lambda: _add_model((1, 4), (4,), (1, 4), activation=4), "ADD.*activation"),
    "pad_5d": (lambda: _pad_model((1, 2, 2, 2, 2), [[0, 0]] * 5, (1, 2, 2, 2, 2)), "PAD.*4"),
    "pad_negative": (lambda: _pad_model((1, 4, 4, 2), [[0, 0], [-1, 0], [0, 0], [0, 0]], (1, 3, 4, 2)),
                     "PAD.*negative"),
    "pad_runtime_paddings": (lambda: _pad_model((1, 4, 4, 2), [[0, 0]] * 4, (1, 4, 4, 2), paddings_const=False),
                             "PAD.*constant"),
    "padv2_other_quantization": (lambda: _pad_model((1, 4, 4, 2), [[0, 0], [1, 1], [1, 1], [0, 0]],
                                                    (1, 6, 6, 2), const_q=(0.2, 3)), "PADV2.*scale"),
    "softmax_output_scale": (lambda: _softmax_bad(1 / 128, -128), "SOFTMAX.*1/256"),
    "softmax_output_zero_point": (lambda: _softmax_bad(1 / 256, 0), "SOFTMAX.*zero point"),
    "softmax_beta_times_scale_too_small": (lambda: _softmax_bad(1 / 256, -128, in_scale=1e-5, beta=1e-4),
                                           "SOFTMAX.*multiplier"),
}


@pytest.mark.parametrize("case", REFUSED.values(), ids=list(REFUSED))
def test_refused_with_clear_error(case: tuple[Callable[[], bytes], str], tmp_path: Path) -> None:
    make, pattern = case
    with pytest.raises(ConvertError, match=pattern):
        compile_to_dir(make(), tmp_path)
