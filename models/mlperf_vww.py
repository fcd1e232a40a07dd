"""MLPerf Tiny visual wake words: MobileNetV1 width 0.25 on 96x96x3, 2 classes, trained on photo crops.

Architecture as the MLPerf Tiny reference (vww_model.py, from the EEMBC person-detection model): conv 3x3
stride 2 x8, BN, ReLU -> 13 depthwise-separable blocks [depthwise 3x3 (stride 2 in blocks 2, 4, 6, 12), BN,
ReLU, pointwise 1x1, BN, ReLU] with 16, 32, 32, 64, 64, 128 x6, 256, 256 filters, all 'same' padding ->
average pool 3x3 -> flatten -> dense 2 -> softmax; 7.49M MACs. BN is folded by the TFLite converter.

Data (models/datasets.py ``vww_data``): "is there a handwritten digit in this photo crop" on china.jpg (held-out
= another region of the photo and other digit rows); personalisation (personal.npz) = flower.jpg with digits of
writers never seen.
"""

from __future__ import annotations

from models.datasets import images_float, vww_data
from models.recipe import Recipe, fit_cosine

NAME = "mlperf_vww"
INPUT_SHAPE = (96, 96, 3)
NUM_CLASSES = 2
# (pointwise filters, depthwise stride) of the 13 depthwise-separable blocks (MobileNetV1 at width 0.25)
BLOCKS = [(16, 1), (32, 2), (32, 1), (64, 2), (64, 1), (128, 2), (128, 1), (128, 1), (128, 1), (128, 1),
          (128, 1), (256, 2), (256, 1)]
EPOCHS = 10
# Keras's default 0.99 leaves the moving variances of the deep, nearly constant 3x3 layers at their initial 1.0
# after a few hundred steps (the inference-mode model then predicts one class); 0.9 settles within ~50 steps.
BN_MOMENTUM = 0.9


def build_model(seed: int = 0):  # -> keras.Model
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    l2 = keras.regularizers.l2(1e-4)
    inp = keras.Input(INPUT_SHAPE, name="input")
    x = layers.Conv2D(8, 3, strides=2, padding="same", kernel_initializer="he_normal", kernel_regularizer=l2,
                      name="conv1")(inp)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name="conv1_bn")(x)
    x = layers.ReLU(name="conv1_relu")(x)
    for i, (filters, stride) in enumerate(BLOCKS, start=1):
        x = layers.DepthwiseConv2D(3, strides=stride, padding="same", depthwise_initializer="he_normal",
                                   depthwise_regularizer=l2, name=f"dw{i}")(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"dw{i}_bn")(x)
        x = layers.ReLU(name=f"dw{i}_relu")(x)
        x = layers.Conv2D(filters, 1, kernel_initializer="he_normal", kernel_regularizer=l2, name=f"pw{i}")(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"pw{i}_bn")(x)
        x = layers.ReLU(name=f"pw{i}_relu")(x)
    x = layers.AveragePooling2D(3, name="pool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(NUM_CLASSES, name="fc")(x)
    out = layers.Softmax(name="softmax")(x)
    return keras.Model(inp, out, name=NAME)


def make(seed: int = 0, epochs: int = EPOCHS) -> Recipe:
    d = vww_data(seed)
    x_tr, x_te, x_pe = (images_float(d[k]) for k in ("x_train", "x_test", "x_personal"))
    model = build_model(seed)
    fit_cosine(model, x_tr, d["y_train"], epochs=epochs, batch=32)
    acc = float(model.evaluate(x_te, d["y_test"], verbose=0)[1])
    return Recipe(NAME, model, x_tr[:200], x_te, d["y_test"], x_tr, d["y_train"], trained=True, float_accuracy=acc,
                  x_personal=x_pe, y_personal=d["y_personal"])
