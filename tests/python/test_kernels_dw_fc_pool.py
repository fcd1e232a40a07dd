"""DEPTHWISE_CONV_2D, FULLY_CONNECTED, AVERAGE/MAX_POOL_2D and MEAN: generated C equals TFLM bit for bit.

Each case is a tiny Keras model quantized by TFLite's converter; a few cases edit the
.tflite afterwards (schema object API) to reach corners the converter does not emit on
its own: FULLY_CONNECTED reading a 4-D input flat, MEAN with equal input/output
quantization. The error cases check that unsupported variants fail in conversion with
a ConvertError naming the op, never in the generated C.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from converter.codegen import compile_graph
from converter.ir import ConvertError
from converter.ops import lowering_for
from converter.quantize import quantize_keras
from converter.tflite_reader import parse_tflite
from tests.modelcheck import assert_bit_exact, assert_tflite_bit_exact


def _calib(shape: tuple[int, ...], n: int = 64) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, *shape)).astype(np.float32)


def _model(shape: tuple[int, ...], body: Callable[[Any], Any]) -> Any:
    import keras

    keras.utils.set_random_seed(1)
    inp = keras.Input(shape, batch_size=1)  # static batch: no SHAPE/PACK ops around FULLY_CONNECTED
    return keras.Model(inp, body(inp))


def _act(name: str | None) -> Any:
    import keras

    return keras.activations.relu6 if name == "relu6" else name


def _ops(cm: Any) -> list[str]:
    return [op.kind for op in cm.graph.ops]


def _edit_tflite(tfl: bytes, fn: Callable[[Any, Any], None]) -> bytes:
    """Unpack a .tflite to the schema object API, let fn(schema, model) edit it, repack."""
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(tfl, 0)
    fn(schema, model)
    b = flatbuffers.Builder(0)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def _op_code(schema: Any, model: Any, op: Any) -> int:
    code = model.operatorCodes[op.opcodeIndex]
    return max(code.builtinCode, code.deprecatedBuiltinCode)


# -- DEPTHWISE_CONV_2D ------------------------------------------------------------------------------------------------
DW_CASES = {
    "dm1_3x3_s1_same_relu": dict(kernel=3, strides=1, padding="same", dm=1, act="relu", shape=(9, 9, 8)),
    "dm2_3x3_s2_valid_none": dict(kernel=3, strides=2, padding="valid", dm=2, act=None, shape=(11, 10, 3)),
    "dm3_5x5_s1_same_relu6": dict(kernel=5, strides=1, padding="same", dm=3, act="relu6", shape=(7, 8, 2)),
    "dm2_5x5_s2_same_even": dict(kernel=5, strides=2, padding="same", dm=2, act="relu", shape=(10, 12, 4)),
    "dm1_rect_3x1_s(2,1)_same": dict(kernel=(3, 1), strides=(2, 1), padding="same", dm=1, act=None, shape=(9, 7, 5)),
    "dm1_3x3_dilation2_same": dict(kernel=3, strides=1, padding="same", dm=1, act="relu", shape=(9, 9, 4),
                                   dilation=2),
    # wide layers: border pixels through the stack patch (C <= 256), merged output stage with and without ReLU
    "dm1_3x3_s1_same_c128_relu": dict(kernel=3, strides=1, padding="same", dm=1, act="relu", shape=(5, 6, 128)),
    "dm1_3x3_s2_same_c96_none": dict(kernel=3, strides=2, padding="same", dm=1, act=None, shape=(7, 7, 96)),
    "dm1_3x3_s1_same_c264_relu6": dict(kernel=3, strides=1, padding="same", dm=1, act="relu6", shape=(4, 4, 264)),
}


@pytest.mark.parametrize("case", DW_CASES.values(), ids=list(DW_CASES))
def test_depthwise_conv_bit_exact(case: dict, tmp_path: Path) -> None:
    import keras

    layer = keras.layers.DepthwiseConv2D(case["kernel"], strides=case["strides"], padding=case["padding"],
                                         depth_multiplier=case["dm"], activation=_act(case["act"]),
                                         dilation_rate=case.get("dilation", 1), bias_initializer="random_normal")
    model = _model(case["shape"], layer)
    cm = assert_bit_exact(model, _calib(case["shape"]), tmp_path)
    assert _ops(cm) == ["DEPTHWISE_CONV_2D"]
    op = cm.graph.ops[0]
    assert len(op.inputs) > 2 and op.inputs[2] >= 0, "bias expected (random-initialised)"
    assert cm.graph.tensors[op.inputs[1]].per_channel


# -- FULLY_CONNECTED --------------------------------------------------------------------------------------------------
FC_CASES = {
    "1d_relu": dict(shape=(96,), units=33, act="relu"),
    "1d_odd_depth": dict(shape=(101,), units=7, act=None),  # the 1-byte layout pads the row to a multiple of 8
    "3d_keep_num_dims_relu6": dict(shape=(5, 8), units=4, act="relu6"),
    "4d_keep_num_dims_none": dict(shape=(3, 5, 8), units=6, act=None),
}


@pytest.mark.parametrize("weight_bytes", [1, 2])
@pytest.mark.parametrize("case", FC_CASES.values(), ids=list(FC_CASES))
def test_fully_connected_bit_exact(case: dict, weight_bytes: int, tmp_path: Path) -> None:
    """One input row runs the packed kernel in either weight layout (1 byte, the default; 2 bytes under
    octo convert --flash); more rows, the reference kernel."""
    import keras

    layer = keras.layers.Dense(case["units"], activation=_act(case["act"]), bias_initializer="random_normal")
    cm = assert_bit_exact(_model(case["shape"], layer), _calib(case["shape"]), tmp_path, weight_bytes=weight_bytes)
    packed = "octo_conv_s8_packed8(" if weight_bytes == 1 else "octo_conv_s8_packed("
    assert (packed in cm.files["model.c"]) == (len(case["shape"]) == 1)
    assert _ops(cm) == ["FULLY_CONNECTED"]
    op = cm.graph.ops[0]
    assert cm.graph.tensors[op.inputs[1]].per_channel, "current converters emit per-channel FC weights"
    assert op.options["keep_num_dims"] == (len(case["shape"]) > 1)


def test_fully_connected_per_tensor_bit_exact(tmp_path: Path) -> None:
    """Legacy per-tensor weights: the multiplier is float32(in_scale * filter_scale) / out_scale."""
    import keras
    import tensorflow as tf

    model = _model((24,), keras.layers.Dense(9, activation="relu", bias_initializer="random_normal"))
    calib = _calib((24,))
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([s[None]] for s in calib)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    conv._experimental_disable_per_channel_quantization_for_dense_layers = True
    cm = assert_tflite_bit_exact(bytes(conv.convert()), tmp_path, calib=calib, n_random=64)
    assert _ops(cm) == ["FULLY_CONNECTED"]
    assert not cm.graph.tensors[cm.graph.ops[0].inputs[1]].per_channel


def test_fully_connected_reads_4d_input_flat(tmp_path: Path) -> None:
    """keep_num_dims false on a [1, 3, 5, 8] input: TFLM reads it as [1, 120] (the RESHAPE removed)."""
    import keras

    model = _model((3, 5, 8), lambda x: keras.layers.Dense(6, bias_initializer="random_normal")(
        keras.layers.Flatten()(x)))
    calib = _calib((3, 5, 8))

    def drop_reshape(schema: Any, m: Any) -> None:
        sg = m.subgraphs[0]
        reshape, fc = sg.operators
        assert _op_code(schema, m, reshape) == schema.BuiltinOperator.RESHAPE
        assert _op_code(schema, m, fc) == schema.BuiltinOperator.FULLY_CONNECTED
        fc.inputs = [int(reshape.inputs[0]), *(int(i) for i in fc.inputs[1:])]
        sg.operators = [fc]

    tfl = _edit_tflite(quantize_keras(model, calib), drop_reshape)
    cm = assert_tflite_bit_exact(tfl, tmp_path, calib=calib)
    op = cm.graph.ops[0]
    assert _ops(cm) == ["FULLY_CONNECTED"] and cm.graph.tensors[op.inputs[0]].shape == (1, 3, 5, 8)
    assert cm.layers[0].macs == 120 * 6


# -- AVERAGE_POOL_2D / MAX_POOL_2D ------------------------------------------------------------------------------------
POOL_CASES = {
    "max_2x2_s2_valid": dict(kind="max", pool=2, strides=2, padding="valid", shape=(8, 8, 6)),
    "max_3x3_s1_same": dict(kind="max", pool=3, strides=1, padding="same", shape=(7, 6, 5)),
    "max_3x3_s2_same_odd_relu": dict(kind="max", pool=3, strides=2, padding="same", shape=(9, 7, 4), relu=True),
    "avg_2x2_s2_valid": dict(kind="avg", pool=2, strides=2, padding="valid", shape=(9, 8, 6)),
    "avg_3x3_s1_same": dict(kind="avg", pool=3, strides=1, padding="same", shape=(7, 6, 5)),
    "avg_rect_3x2_s2_same_relu6": dict(kind="avg", pool=(3, 2), strides=2, padding="same", shape=(9, 7, 4),
                                       relu6=True),
    # halfword lane sums: 4 channels a word plus a tail channel; a 16x16 window (256 taps, the lane limit)
    "avg_global_16x16_c9": dict(kind="avg", pool=16, strides=16, padding="valid", shape=(16, 16, 9)),
    "avg_17x16_c8_scalar": dict(kind="avg", pool=(17, 16), strides=1, padding="valid", shape=(17, 16, 8)),
}


@pytest.mark.parametrize("case", POOL_CASES.values(), ids=list(POOL_CASES))
def test_pool_bit_exact(case: dict, tmp_path: Path) -> None:
    import keras

    cls = keras.layers.MaxPooling2D if case["kind"] == "max" else keras.layers.AveragePooling2D

    def body(x: Any) -> Any:
        if case.get("relu") or case.get("relu6"):
            # a conv in front gives the pool an input range the fused activation actually clips
            x = keras.layers.Conv2D(case["shape"][-1], 1, bias_initializer="random_normal")(x)
        x = cls(case["pool"], strides=case["strides"], padding=case["padding"])(x)
        if case.get("relu"):
            x = keras.layers.ReLU()(x)
        if case.get("relu6"):
            x = keras.layers.ReLU(6.0)(x)
        return x

    cm = assert_bit_exact(_model(case["shape"], body), _calib(case["shape"]) * 3.0, tmp_path)
    kind = "MAX_POOL_2D" if case["kind"] == "max" else "AVERAGE_POOL_2D"
    (op,) = [op for op in cm.graph.ops if op.kind == kind]
    fused = "RELU" if case.get("relu") else "RELU6" if case.get("relu6") else "NONE"
    assert op.options["activation"] == fused, "the ReLU should be fused into the pool"


# -- MEAN -------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("keepdims", [True, False], ids=["keep_dims", "no_keep_dims"])
def test_mean_global_average_bit_exact(keepdims: bool, tmp_path: Path) -> None:
    import keras

    shape = (5, 7, 12)
    cm = assert_bit_exact(_model(shape, keras.layers.GlobalAveragePooling2D(keepdims=keepdims)), _calib(shape),
                          tmp_path, n_random=48)
    assert _ops(cm) == ["MEAN"] and cm.graph.ops[0].options["keep_dims"] == keepdims


def test_mean_equal_quantization_bit_exact(tmp_path: Path) -> None:
    """Output quantization set equal to the input's: TFLM takes the same integer path (verified here)."""
    import keras

    shape = (6, 6, 10)

    def equalize(schema: Any, m: Any) -> None:
        sg = m.subgraphs[0]
        (op,) = sg.operators
        assert _op_code(schema, m, op) == schema.BuiltinOperator.MEAN
        qi, qo = sg.tensors[op.inputs[0]].quantization, sg.tensors[op.outputs[0]].quantization
        qo.scale, qo.zeroPoint = list(qi.scale), list(qi.zeroPoint)

    calib = _calib(shape)
    tfl = _edit_tflite(quantize_keras(_model(shape, keras.layers.GlobalAveragePooling2D()), calib), equalize)
    cm = assert_tflite_bit_exact(tfl, tmp_path, calib=calib, n_random=64)
    g = cm.graph
    assert g.tensors[g.ops[0].inputs[0]].qparams() == g.tensors[g.ops[0].outputs[0]].qparams()


# -- the whole digits CNN (CONV_2D, MAX_POOL_2D, DEPTHWISE_CONV_2D, MEAN, FULLY_CONNECTED) -----------------------------
def test_digits_cnn_without_softmax_bit_exact(tmp_path: Path) -> None:
    import keras

    from models import digits_cnn

    r = digits_cnn.make(epochs=3)
    model = keras.Model(r.model.input, r.model.get_layer("fc").output)
    cm = assert_bit_exact(model, r.calib, tmp_path)
    assert _ops(cm) == ["CONV_2D", "CONV_2D", "MAX_POOL_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "MEAN",
                        "FULLY_CONNECTED"]


# -- what conversion must refuse --------------------------------------------------------------------------------------
def _graph(model: Any, shape: tuple[int, ...]) -> Any:
    return parse_tflite(quantize_keras(model, _calib(shape)))


def test_mean_over_channels_is_rejected() -> None:
    import keras

    g = _graph(_model((4, 4, 6), lambda x: keras.ops.mean(x, axis=3)), (4, 4, 6))
    assert [op.kind for op in g.ops] == ["MEAN"]
    with pytest.raises(ConvertError, match=r"op 0 \(MEAN.*axes \[3\] is not supported"):
        compile_graph(g)


def test_pool_requantization_is_rejected() -> None:
    import keras

    tfl = quantize_keras(_model((6, 6, 3), keras.layers.MaxPooling2D(2)), _calib((6, 6, 3)))

    def rescale_output(schema: Any, m: Any) -> None:
        sg = m.subgraphs[0]
        q = sg.tensors[sg.operators[0].outputs[0]].quantization
        q.scale = [s * 2.0 for s in q.scale]

    with pytest.raises(ConvertError, match=r"MAX_POOL_2D.*quantization .* differs"):
        compile_graph(parse_tflite(_edit_tflite(tfl, rescale_output)))


def test_depth_multiplier_mismatch_is_rejected() -> None:
    import keras

    tfl = quantize_keras(_model((6, 6, 3), keras.layers.DepthwiseConv2D(3, depth_multiplier=2)), _calib((6, 6, 3)))

    def wrong_multiplier(schema: Any, m: Any) -> None:
        m.subgraphs[0].operators[0].builtinOptions.depthMultiplier = 3

    with pytest.raises(ConvertError, match=r"DEPTHWISE_CONV_2D.*depth_multiplier option 3 disagrees"):
        compile_graph(parse_tflite(_edit_tflite(tfl, wrong_multiplier)))


def test_int16_activations_are_rejected() -> None:
    """16x8 quantization: each lowering's check names the op and the int16 tensor."""
    import keras
    import tensorflow as tf

    shape = (6, 6, 4)

    def body(x: Any) -> Any:
        x = keras.layers.DepthwiseConv2D(3)(x)
        x = keras.layers.AveragePooling2D(2)(x)
        return keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(x))

    calib = _calib(shape)
    conv = tf.lite.TFLiteConverter.from_keras_model(_model(shape, body))
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([s[None]] for s in calib)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    g = parse_tflite(bytes(conv.convert()))
    mine = [op for op in g.ops if op.kind in ("DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "MEAN", "FULLY_CONNECTED")]
    assert len(mine) == 4
    for op in mine:
        with pytest.raises(ConvertError, match=rf"op {op.index} \({op.kind}.*int16"):
            lowering_for(g, op).check(g, op)
