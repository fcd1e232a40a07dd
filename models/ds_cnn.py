"""DS-CNN keyword-spotting shape (as MLPerf Tiny's KWS model): 49x10x1 MFCC input, 12 classes.

conv1 10x4/2 x64 -> 4 x (depthwise 3x3 + pointwise 1x1 x64) -> average pool 25x5 -> fc 12 -> softmax.
No speech data ships with our packages, so the weights are random (seeded) and the
calibration data is synthetic: this model is for speed and memory, not accuracy.
"""

from __future__ import annotations

import numpy as np

from models.recipe import Recipe

NAME = "ds_cnn"
INPUT_SHAPE = (49, 10, 1)

# He-normal for a depthwise 3x3 kernel: fan-in is 9 (Keras would count 9 x channels and
# shrink the signal at every depthwise layer).
DW_STD = (2.0 / 9.0) ** 0.5


def build_model(seed: int = 0):  # -> keras.Model
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    inp = keras.Input(INPUT_SHAPE, name="input")
    x = layers.Conv2D(64, (10, 4), strides=2, padding="same", use_bias=False, kernel_initializer="he_normal",
                      name="conv1")(inp)
    x = layers.BatchNormalization(name="bn1")(x)
    x = layers.ReLU(name="relu1")(x)
    for i in range(1, 5):
        x = layers.DepthwiseConv2D(3, padding="same", use_bias=False, name=f"dw{i}",
                                   depthwise_initializer=keras.initializers.RandomNormal(stddev=DW_STD))(x)
        x = layers.BatchNormalization(name=f"dw{i}_bn")(x)
        x = layers.ReLU(name=f"dw{i}_relu")(x)
        x = layers.Conv2D(64, 1, use_bias=False, kernel_initializer="he_normal", name=f"pw{i}")(x)
        x = layers.BatchNormalization(name=f"pw{i}_bn")(x)
        x = layers.ReLU(name=f"pw{i}_relu")(x)
    x = layers.AveragePooling2D((25, 5), name="pool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(12, name="fc")(x)
    out = layers.Softmax(name="softmax")(x)
    return keras.Model(inp, out, name=NAME)


def make(seed: int = 0) -> Recipe:
    model = build_model(seed)
    calib = np.random.default_rng(seed).normal(0.0, 1.0, size=(128, *INPUT_SHAPE)).astype(np.float32)
    return Recipe(NAME, model, calib, trained=False)
