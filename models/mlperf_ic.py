"""MLPerf Tiny image classification: ResNet-8 on 32x32x3, 10 classes, trained on digits pasted on photographs.

Architecture as the MLPerf Tiny reference (keras_model.py, resnet_v1_eembc with 16 filters): conv 3x3 x16, BN,
ReLU -> stack 1: [conv 3x3 x16, BN, ReLU, conv 3x3 x16, BN] + identity, ReLU -> stacks 2 and 3 (32 and 64
filters): [conv 3x3 stride 2, BN, ReLU, conv 3x3, BN] + 1x1 stride-2 projection of the input, ReLU -> average
pool 8x8 -> flatten -> dense 10 -> softmax; three ADDs, 12.5M MACs. BN is folded by the TFLite converter.

Data (models/datasets.py ``ic_data``): scikit-learn's handwritten digits on 32x32 crops of china.jpg;
held-out = other digit rows on another region of the photo; personalisation (personal.npz) = digits of
writers never seen, on flower.jpg.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from models.datasets import ic_data, images_float
from models.recipe import Recipe, fit_cosine

NAME = "mlperf_ic"
INPUT_SHAPE = (32, 32, 3)
NUM_CLASSES = 10
EPOCHS = 10


def build_model(seed: int = 0):  # -> keras.Model
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)

    def conv(x, filters: int, kernel: int, stride: int, name: str):
        return layers.Conv2D(filters, kernel, strides=stride, padding="same", kernel_initializer="he_normal",
                             kernel_regularizer=keras.regularizers.l2(1e-4), name=name)(x)

    inp = keras.Input(INPUT_SHAPE, name="input")
    x = conv(inp, 16, 3, 1, "conv1")
    x = layers.BatchNormalization(name="bn1")(x)
    x = layers.ReLU(name="relu1")(x)
    for stack, filters in enumerate((16, 32, 64), start=1):
        stride = 1 if stack == 1 else 2
        y = conv(x, filters, 3, stride, f"s{stack}_conv1")
        y = layers.BatchNormalization(name=f"s{stack}_bn1")(y)
        y = layers.ReLU(name=f"s{stack}_relu1")(y)
        y = conv(y, filters, 3, 1, f"s{stack}_conv2")
        y = layers.BatchNormalization(name=f"s{stack}_bn2")(y)
        if stride != 1:
            x = conv(x, filters, 1, stride, f"s{stack}_proj")
        x = layers.Add(name=f"s{stack}_add")([x, y])
        x = layers.ReLU(name=f"s{stack}_relu2")(x)
    x = layers.AveragePooling2D(8, name="pool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(NUM_CLASSES, kernel_initializer="he_normal", name="fc")(x)
    out = layers.Softmax(name="softmax")(x)
    return keras.Model(inp, out, name=NAME)


def ic_recipe(name: str, build: Callable[[int], Any], seed: int, epochs: int) -> Recipe:
    """A classifier (build(seed) -> keras.Model) of the IC data (digits on photographs) trained as MLPerf's recipe
    does, with its splits. The data comes first: the model's seeding must not depend on whether it was cached."""
    d = ic_data(seed)
    x_tr, x_te, x_pe = (images_float(d[k]) for k in ("x_train", "x_test", "x_personal"))
    model = build(seed)
    fit_cosine(model, x_tr, d["y_train"], epochs=epochs, batch=64)
    acc = float(model.evaluate(x_te, d["y_test"], verbose=0)[1])
    return Recipe(name, model, x_tr[:300], x_te, d["y_test"], x_tr, d["y_train"], trained=True, float_accuracy=acc,
                  x_personal=x_pe, y_personal=d["y_personal"])


def make(seed: int = 0, epochs: int = EPOCHS) -> Recipe:
    return ic_recipe(NAME, build_model, seed, epochs)
