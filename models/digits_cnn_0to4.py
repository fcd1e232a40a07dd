"""Digits CNN pretrained on digits 0-4 only (10 outputs), the starting point for on-device
personalisation: `octo convert models/digits_cnn_0to4.py -o DIR` writes eval.npz and train.npz
with all ten digits, so training on the board teaches it 5-9. See models/digits_cnn.py."""

from __future__ import annotations

from models.digits_cnn import pretrain_subset
from models.recipe import Recipe

CLASSES = (0, 1, 2, 3, 4)


def make(seed: int = 0) -> Recipe:
    return pretrain_subset(CLASSES, seed=seed)
