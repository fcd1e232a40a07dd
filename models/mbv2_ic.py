"""MobileNetV2-style classifier (inverted residual blocks) on the image-classification data, small enough to
train on a 256 KiB board.

Input 32x32x3 -> conv 3x3 stride 2 x8, ReLU6 -> five inverted residual blocks (expansion 3: 1x1 expand,
ReLU6 -> 3x3 depthwise, ReLU6 -> linear 1x1 project; + the block's input when the shape is kept, as in
MobileNetV2 / MCUNet): 8 -> 8 (+), 8 -> 16 stride 2, 16 -> 16 (+), 16 -> 24 stride 2, 24 -> 24 (+) ->
conv 1x1 x64, ReLU6 -> global average -> fc 10 -> softmax. BN folded by the TFLite converter.

Data (models/datasets.py ``ic_data``, as models/mlperf_ic.py): digits on 32x32 photo crops, 10 classes;
personal.npz = digits of writers never seen, on another photograph.
"""

from __future__ import annotations

from models.mlperf_ic import ic_recipe
from models.recipe import Recipe

NAME = "mbv2_ic"
INPUT_SHAPE = (32, 32, 3)
NUM_CLASSES = 10
EPOCHS = 15
EXPANSION = 3
BLOCKS = ((8, 1), (16, 2), (16, 1), (24, 2), (24, 1))  # (output channels, stride)


def build_model(seed: int = 0):  # -> keras.Model
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    inp = keras.Input(INPUT_SHAPE, name="input")

    def bn_relu6(x, name: str):
        return layers.ReLU(6.0, name=f"{name}_relu6")(layers.BatchNormalization(name=f"{name}_bn")(x))

    x = bn_relu6(layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False, name="stem")(inp), "stem")
    for i, (c, stride) in enumerate(BLOCKS, start=1):
        cin = int(x.shape[-1])
        y = bn_relu6(layers.Conv2D(cin * EXPANSION, 1, use_bias=False, name=f"b{i}_expand")(x), f"b{i}_expand")
        y = bn_relu6(layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False, name=f"b{i}_dw")(y),
                     f"b{i}_dw")
        y = layers.BatchNormalization(name=f"b{i}_project_bn")(
            layers.Conv2D(c, 1, use_bias=False, name=f"b{i}_project")(y))
        x = layers.Add(name=f"b{i}_add")([x, y]) if stride == 1 and cin == c else y
    x = bn_relu6(layers.Conv2D(64, 1, use_bias=False, name="head")(x), "head")
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    out = layers.Softmax(name="softmax")(layers.Dense(NUM_CLASSES, name="fc")(x))
    return keras.Model(inp, out, name=NAME)


def make(seed: int = 0, epochs: int = EPOCHS) -> Recipe:
    return ic_recipe(NAME, build_model, seed, epochs)
