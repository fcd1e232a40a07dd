"""MLPerf Tiny keyword spotting: DS-CNN on 49x10x1 MFCCs, 12 classes, trained on speech synthesised offline.

Architecture as the MLPerf Tiny reference (keras_model.py, ds_cnn): conv 10x4 stride 2 x64, BN, ReLU (dropout
0.2) -> 4 x [depthwise 3x3, BN, ReLU, pointwise 1x1 x64, BN, ReLU] -> (dropout 0.4) average pool 25x5 ->
flatten -> dense 12 -> softmax; 2.66M MACs. BatchNorm and dropout vanish in the TFLite conversion (BN is folded
into the convolutions).

Data (models/datasets.py ``kws_data``): the ten Speech Commands keywords, "silence" and "unknown", spoken by
espeak-ng voices at random speeds and pitches with background noise; held-out = new renditions by the training
voices; personalisation (personal.npz) = voices never used in training.
"""

from __future__ import annotations

from models.datasets import KWS_LABELS, kws_data
from models.recipe import Recipe, fit_cosine

NAME = "mlperf_kws"
INPUT_SHAPE = (49, 10, 1)
NUM_CLASSES = len(KWS_LABELS)
EPOCHS = 30


def build_model(seed: int = 0):  # -> keras.Model
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    inp = keras.Input(INPUT_SHAPE, name="input")
    x = layers.Conv2D(64, (10, 4), strides=2, padding="same", name="conv1")(inp)
    x = layers.BatchNormalization(name="bn1")(x)
    x = layers.ReLU(name="relu1")(x)
    x = layers.Dropout(0.2, name="drop1")(x)
    for i in range(1, 5):
        x = layers.DepthwiseConv2D(3, padding="same", name=f"dw{i}")(x)
        x = layers.BatchNormalization(name=f"dw{i}_bn")(x)
        x = layers.ReLU(name=f"dw{i}_relu")(x)
        x = layers.Conv2D(64, 1, name=f"pw{i}")(x)
        x = layers.BatchNormalization(name=f"pw{i}_bn")(x)
        x = layers.ReLU(name=f"pw{i}_relu")(x)
    x = layers.Dropout(0.4, name="drop2")(x)
    x = layers.AveragePooling2D((25, 5), name="pool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(NUM_CLASSES, name="fc")(x)
    out = layers.Softmax(name="softmax")(x)
    return keras.Model(inp, out, name=NAME)


def make(seed: int = 0, epochs: int = EPOCHS) -> Recipe:
    d = kws_data(seed)
    model = build_model(seed)
    fit_cosine(model, d["x_train"], d["y_train"], epochs=epochs, batch=32)
    acc = float(model.evaluate(d["x_test"], d["y_test"], verbose=0)[1])
    return Recipe(NAME, model, d["x_train"][:300], d["x_test"], d["y_test"], d["x_train"], d["y_train"],
                  trained=True, float_accuracy=acc, x_personal=d["x_personal"], y_personal=d["y_personal"],
                  g_train=d["g_train"])
