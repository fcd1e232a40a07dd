"""Digits ResNet: a small residual CNN on scikit-learn's 8x8 handwritten digits (the test bed of graph training).

Input 8x8x1 in [0, 1]; conv 3x3 x8, ReLU -> block 1: [conv 3x3 x8, ReLU, conv 3x3 x8] + identity, ReLU ->
block 2: [conv 3x3 x16 stride 2, ReLU, conv 3x3 x16] + 1x1 stride-2 projection, ReLU -> global average ->
fc 10 -> softmax: the structure of MLPerf Tiny's ResNet-8 (models/mlperf_ic.py) at a size that converts and
trains in seconds. Same split as models/digits_cnn.py.
"""

from __future__ import annotations

from models.digits_cnn import load_digits_split
from models.recipe import Recipe, fit_cosine

NAME = "digits_resnet"
INPUT_SHAPE = (8, 8, 1)
NUM_CLASSES = 10


def build_model(seed: int = 0):  # -> keras.Model
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    inp = keras.Input(INPUT_SHAPE, name="input")
    x = layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(inp)
    y = layers.Conv2D(8, 3, padding="same", activation="relu", name="b1_conv1")(x)
    y = layers.Conv2D(8, 3, padding="same", name="b1_conv2")(y)
    x = layers.ReLU(name="b1_relu")(layers.Add(name="b1_add")([x, y]))
    y = layers.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="b2_conv1")(x)
    y = layers.Conv2D(16, 3, padding="same", name="b2_conv2")(y)
    s = layers.Conv2D(16, 1, strides=2, name="b2_proj")(x)
    x = layers.ReLU(name="b2_relu")(layers.Add(name="b2_add")([s, y]))
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    out = layers.Softmax(name="softmax")(layers.Dense(NUM_CLASSES, name="fc")(x))
    return keras.Model(inp, out, name=NAME)


def make(seed: int = 0, epochs: int = 40) -> Recipe:
    x_tr, y_tr, x_te, y_te = load_digits_split(seed)
    model = build_model(seed)
    fit_cosine(model, x_tr, y_tr, epochs=epochs, batch=32)
    acc = float(model.evaluate(x_te, y_te, verbose=0)[1])
    return Recipe(NAME, model, x_tr[:300], x_te, y_te, x_tr, y_tr, trained=True, float_accuracy=acc)
