"""What a model recipe provides (models/<name>.py exposes ``make(seed) -> Recipe``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class Recipe:
    name: str
    model: Any                      # keras.Model (trained, or random-init for speed/memory models)
    calib: np.ndarray               # float32 NHWC samples for post-training quantization
    x_test: np.ndarray | None = None  # held-out data for accuracy (float32, NHWC)
    y_test: np.ndarray | None = None  # int labels
    x_train: np.ndarray | None = None
    y_train: np.ndarray | None = None
    trained: bool = True
    float_accuracy: float | None = None  # held-out accuracy of the float model (AUC when metric is "auc")
    # "accuracy": y are class labels, scored by argmax. "auc": an autoencoder; y are 0 normal / 1 anomalous and the
    # score is the ROC AUC of the reconstruction error (mean squared error of the output against the input).
    metric: str = "accuracy"
    x_personal: np.ndarray | None = None  # personalisation data: a domain pretraining did not see (personal.npz)
    y_personal: np.ndarray | None = None
    # the group of each x_train sample (speaker voice, writer, ...; negative = none), written to train.npz as 'g'
    # so a federation can give each client one group (`octo fleet sim --partition group`)
    g_train: np.ndarray | None = None


def fit_cosine(model: Any, x: np.ndarray, y: np.ndarray, *, epochs: int, batch: int, lr: float = 3e-3,
               loss: str = "sparse_categorical_crossentropy") -> None:
    """Adam with a cosine-decayed learning rate over the whole run: how the MLPerf Tiny recipes train."""
    import keras

    sched = keras.optimizers.schedules.CosineDecay(lr, epochs * int(np.ceil(len(x) / batch)))
    metrics = ["accuracy"] if loss == "sparse_categorical_crossentropy" else None
    model.compile(optimizer=keras.optimizers.Adam(sched), loss=loss, metrics=metrics)
    model.fit(x, y, epochs=epochs, batch_size=batch, verbose=0, shuffle=True)
