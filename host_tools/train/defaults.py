"""Training defaults shared by `octo train`, `octo collab`, the demo and the benches, each chosen by a benchmark
(bench/results/train.json, graph_train.json, collab.json). No heavy imports: the CLI reads these for its --help."""

from __future__ import annotations

BATCH = 16                     # samples per training step
# `octo train`'s SGD learning rate by starting point. From the converted weights: the rate with the best mean
# held-out accuracy over the five fine-tuning tasks measured (bench/results/graph_train.json "personalisation":
# ResNet-8, MobileNetV2-style, KWS DS-CNN, VWW MobileNetV1 adapting to personal data, plus the digits CNN of
# bench/results/train.json "fine_tune"): 3e-4 (mean 82.2%; 1e-3 81.0%; 1e-2, the best on the digits CNN alone,
# destroys the four BN-folded models). From random weights 0.05 (train.json "accuracy").
LR = {"converted": 3e-4, "random": 0.05}
MOMENTUM = 0.9
# How INT8 input gradients round, by starting point (`octo train --grad-rounding`). From random weights
# stochastic: nearest rounding zeroes every gradient below half a step of its tensor's range, and the deep
# BN-folded models then learn far slower than FP32 (bench/results/graph_train.json "random_init": KWS DS-CNN
# and VWW, nearest vs stochastic, 5 seeds). From the converted weights nearest, as every fine-tuning result
# was measured ("personalisation" has both).
GRAD_ROUNDING = {"converted": "nearest", "random": "stochastic"}
CHECKPOINT_EVERY = 50          # steps between checkpoints (also at every epoch end)
PRC_K_DEFAULT = 16.0           # TRAIN_INIT prc_k (PRC clips backward tensors at k x mean|g|)
# Defaults of the Octo techniques: the best measured in bench/results/train.json (ablation table, mean
# over both scenarios and 8 seeds). On the digits CNN neither LAC nor PRC beats plain INT8 there.
DEFAULT_LAC = False
DEFAULT_PRC = False
LAC_L2_DEFAULT = 1e-4          # TRAIN_INIT lac_l2 (L2 pull of LAC compensation to identity)


def default_lr(init: str) -> float:
    """The learning rate `octo train` uses when --lr is not given."""
    return LR[init]


def default_grad_rounding(init: str) -> str:
    """How `octo train` rounds INT8 input gradients when --grad-rounding is not given."""
    return GRAD_ROUNDING[init]
