"""MobileNetV1 shape, width multiplier 0.25, 32x32x3 input, 10 classes.

conv1 3x3/2 x8 -> 13 depthwise-separable blocks (stride-2 blocks pad explicitly, as Keras'
MobileNet does) -> global average pool -> 1x1 conv classifier -> reshape -> softmax.
Random (seeded, He-normal so activations keep their scale through 28 layers) weights and synthetic
calibration: for speed and memory, not accuracy.
"""

from __future__ import annotations

import numpy as np

from models.recipe import Recipe

NAME = "mobilenet_v1_025"
INPUT_SHAPE = (32, 32, 3)
ALPHA = 0.25
# (pointwise filters at alpha 1.0, depthwise stride) of MobileNetV1's 13 blocks
BLOCKS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1), (512, 1),
          (512, 1), (1024, 2), (1024, 1)]

# He-normal for a depthwise 3x3 kernel: fan-in is 9 (Keras would count 9 x channels and
# shrink the signal at every depthwise layer).
DW_STD = (2.0 / 9.0) ** 0.5


def build_model(seed: int = 0, classes: int = 10):  # -> keras.Model
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    inp = keras.Input(INPUT_SHAPE, name="input")
    x = layers.Conv2D(int(32 * ALPHA), 3, strides=2, padding="same", use_bias=False, kernel_initializer="he_normal",
                      name="conv1")(inp)
    x = layers.BatchNormalization(name="conv1_bn")(x)
    x = layers.ReLU(6.0, name="conv1_relu")(x)
    for i, (filters, stride) in enumerate(BLOCKS, start=1):
        if stride == 2:
            x = layers.ZeroPadding2D(((0, 1), (0, 1)), name=f"pad{i}")(x)
        x = layers.DepthwiseConv2D(3, strides=stride, padding="same" if stride == 1 else "valid", use_bias=False,
                                   depthwise_initializer=keras.initializers.RandomNormal(stddev=DW_STD),
                                   name=f"dw{i}")(x)
        x = layers.BatchNormalization(name=f"dw{i}_bn")(x)
        x = layers.ReLU(6.0, name=f"dw{i}_relu")(x)
        x = layers.Conv2D(int(filters * ALPHA), 1, use_bias=False, kernel_initializer="he_normal", name=f"pw{i}")(x)
        x = layers.BatchNormalization(name=f"pw{i}_bn")(x)
        x = layers.ReLU(6.0, name=f"pw{i}_relu")(x)
    x = layers.GlobalAveragePooling2D(keepdims=True, name="gap")(x)
    x = layers.Conv2D(classes, 1, kernel_initializer="he_normal", name="classifier")(x)
    x = layers.Reshape((classes,), name="reshape")(x)
    out = layers.Softmax(name="softmax")(x)
    return keras.Model(inp, out, name=NAME)


def make(seed: int = 0) -> Recipe:
    model = build_model(seed)
    calib = np.random.default_rng(seed).uniform(0.0, 1.0, size=(128, *INPUT_SHAPE)).astype(np.float32)
    return Recipe(NAME, model, calib, trained=False)
