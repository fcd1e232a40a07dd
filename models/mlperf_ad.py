"""MLPerf Tiny anomaly detection: fully connected autoencoder on 640-value log-mel vectors of machine sounds.

Architecture as the MLPerf Tiny reference (keras_model.py, the DCASE 2020 task 2 baseline): input 640 ->
4 x [dense 128, BN, ReLU] -> dense 8, BN, ReLU -> 4 x [dense 128, BN, ReLU] -> dense 640 (linear);
0.264M MACs. BN is folded into the dense layers by the TFLite converter.

Data (models/datasets.py ``ad_data``): synthetic machine A, normal sounds only for training; held-out = new
normal clips and anomalous ones (shifted or extra partials, clicks), y = 1 anomalous; personalisation
(personal.npz) = machine B. The score of a vector is its reconstruction error (mean squared error); the
recipe's figure is the ROC AUC of that score on the held-out vectors (Recipe.metric = "auc").
"""

from __future__ import annotations

import numpy as np

from models.datasets import ad_data, roc_auc
from models.recipe import Recipe, fit_cosine

NAME = "mlperf_ad"
INPUT_DIM = 640
EPOCHS = 30


def build_model(seed: int = 0):  # -> keras.Model
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    inp = keras.Input((INPUT_DIM,), name="input")
    x = inp
    for i, units in enumerate([128, 128, 128, 128, 8, 128, 128, 128, 128], start=1):
        x = layers.Dense(units, name=f"dense{i}")(x)
        x = layers.BatchNormalization(name=f"bn{i}")(x)
        x = layers.ReLU(name=f"relu{i}")(x)
    out = layers.Dense(INPUT_DIM, name="output")(x)
    return keras.Model(inp, out, name=NAME)


def reconstruction_error(model, x: np.ndarray) -> np.ndarray:
    """Per-vector mean squared error of the autoencoder's output."""
    return np.mean((np.asarray(model.predict(x, verbose=0, batch_size=256)) - x) ** 2, axis=1)


def make(seed: int = 0, epochs: int = EPOCHS) -> Recipe:
    d = ad_data(seed)
    x_tr = d["x_train"]
    model = build_model(seed)
    fit_cosine(model, x_tr, x_tr, epochs=epochs, batch=64, lr=1e-3, loss="mean_squared_error")
    auc = roc_auc(reconstruction_error(model, d["x_test"]), d["y_test"])
    return Recipe(NAME, model, x_tr[:300], d["x_test"], d["y_test"], x_tr, d["y_train"], trained=True,
                  float_accuracy=auc, metric="auc", x_personal=d["x_personal"], y_personal=d["y_personal"])
