"""Digits CNN: scikit-learn's 1797 real 8x8 handwritten digits (ships with the package).

Input 8x8x1 in [0, 1]; conv1 3x3x8 -> conv2 3x3x16 -> max-pool 2x2 -> depthwise 3x3 ->
pointwise conv3 1x1x32 -> global average (MEAN) -> fc 10 -> softmax. Trains in a few seconds
on a CPU. The held-out split (25%, stratified, fixed seed) is never used for training.
"""

from __future__ import annotations

import numpy as np

from models.recipe import Recipe

NAME = "digits_cnn"
INPUT_SHAPE = (8, 8, 1)
NUM_CLASSES = 10


def load_digits_split(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0)[..., None]
    y = d.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.25, random_state=seed, stratify=y)
    return x_tr, y_tr, x_te, y_te


def build_model(seed: int = 0):  # -> keras.Model
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    inp = keras.Input(INPUT_SHAPE, name="input")
    x = layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(inp)
    x = layers.Conv2D(16, 3, padding="same", activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = layers.DepthwiseConv2D(3, padding="same", activation="relu", name="dwconv1")(x)
    x = layers.Conv2D(32, 1, activation="relu", name="conv3")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dense(NUM_CLASSES, name="fc")(x)
    out = layers.Softmax(name="softmax")(x)
    return keras.Model(inp, out, name=NAME)


def make(seed: int = 0, epochs: int = 40) -> Recipe:
    import keras

    x_tr, y_tr, x_te, y_te = load_digits_split(seed)
    model = build_model(seed)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x_tr, y_tr, epochs=epochs, batch_size=32, verbose=0, shuffle=True)
    acc = float(model.evaluate(x_te, y_te, verbose=0)[1])
    return Recipe(NAME, model, x_tr[:300], x_te, y_te, x_tr, y_tr, trained=True, float_accuracy=acc)


def subset_name(classes: tuple[int, ...]) -> str:
    """Recipe name for a pretraining subset: (0, 1, 2, 3, 4) -> 'digits_cnn_0to4'."""
    cs = sorted(set(classes))
    if len(cs) > 1 and cs == list(range(cs[0], cs[-1] + 1)):
        return f"{NAME}_{cs[0]}to{cs[-1]}"
    return f"{NAME}_" + "_".join(str(c) for c in cs)


def pretrain_subset(classes: tuple[int, ...] = (0, 1, 2, 3, 4), seed: int = 0, epochs: int = 40) -> Recipe:
    """The 10-output digits CNN trained only on digits in `classes` (a personalisation starting point).

    Held-out data, calibration and x_train/y_train (what `octo convert` writes to train.npz, and what
    on-device training then learns from) are all ten digits; only the Keras pretraining is restricted.
    float_accuracy is on all ten held-out digits, so it is at most about len(classes) / 10.
    """
    import keras

    bad = [c for c in classes if not 0 <= int(c) < NUM_CLASSES]
    if not classes or bad:
        raise ValueError(f"classes must be digits 0..{NUM_CLASSES - 1}, got {tuple(classes)}")
    x_tr, y_tr, x_te, y_te = load_digits_split(seed)
    keep = np.isin(y_tr, np.asarray(classes))
    model = build_model(seed)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x_tr[keep], y_tr[keep], epochs=epochs, batch_size=32, verbose=0, shuffle=True)
    acc = float(model.evaluate(x_te, y_te, verbose=0)[1])
    return Recipe(subset_name(tuple(classes)), model, x_tr[:300], x_te, y_te, x_tr, y_tr, trained=True,
                  float_accuracy=acc)
