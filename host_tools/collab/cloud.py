"""The cloud half of split learning: the layers after the split as a float Keras model (TensorFlow, imported
lazily), trained with SGD on decoded features."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np


def _he_uniform(shape: tuple[int, ...], fan_in: int, rng: np.random.Generator) -> np.ndarray:
    bound = math.sqrt(6.0 / fan_in)
    return rng.uniform(-bound, bound, shape).astype(np.float32)


class CloudTail:
    """The layers after the split point, float, in TensorFlow: SGD with momentum on the mean softmax
    cross-entropy, and the gradient of that loss w.r.t. the split features (what the boards get)."""

    def __init__(self, model_path: Path, split_op: int, *, init: str = "converted", seed: int = 0,
                 momentum: float = 0.9, weight_decay: float = 0.0) -> None:
        import keras  # noqa: PLC0415
        import tensorflow as tf  # noqa: PLC0415

        from converter.tflite_reader import parse_tflite  # noqa: PLC0415
        from converter.train_export import graph_float_weights, keras_tail  # noqa: PLC0415

        g = parse_tflite(Path(model_path).read_bytes(), str(model_path))
        weights = None
        if init == "random":
            rng = np.random.default_rng([seed, 0xC10D])
            weights = {}
            for idx, (w, b) in graph_float_weights(g).items():
                if idx <= split_op:
                    continue
                kind = g.ops[idx].kind
                fan_in = w.shape[1] * w.shape[2] if kind == "DEPTHWISE_CONV_2D" else int(np.prod(w.shape[1:]))
                weights[idx] = (_he_uniform(w.shape, fan_in, rng), np.zeros_like(b))
        self.model = keras_tail(g, split_op, weights)
        self.classes = int(self.model.output.shape[-1])
        self.weight_decay = float(weight_decay)
        self.opt = keras.optimizers.SGD(learning_rate=0.01, momentum=momentum)
        self.opt.build(self.model.trainable_variables)
        self._tf = tf
        spec = tf.TensorSpec([None, *self.model.input.shape[1:]], tf.float32)
        self._train_fn = tf.function(self._train, input_signature=[spec, tf.TensorSpec([None], tf.int32)])
        self._eval_fn = tf.function(self._eval, input_signature=[spec, tf.TensorSpec([None], tf.int32)])

    def _loss(self, x: Any, y: Any, training: bool) -> tuple[Any, Any]:
        tf = self._tf
        logits = self.model(x, training=training)
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
        return loss, logits

    def _train(self, x: Any, y: Any) -> tuple[Any, Any, Any]:
        tf = self._tf
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss, logits = self._loss(x, y, True)
            total = loss
            if self.weight_decay > 0:
                total = loss + 0.5 * self.weight_decay * tf.add_n([tf.reduce_sum(v * v) for v in variables])
        grads = tape.gradient(total, [x, *variables])
        self.opt.apply_gradients(zip(grads[1:], variables, strict=True))
        return loss, logits, grads[0]

    def _eval(self, x: Any, y: Any) -> tuple[Any, Any]:
        return self._loss(x, y, False)

    def train_step(self, x: np.ndarray, y: np.ndarray, lr: float) -> tuple[float, np.ndarray, np.ndarray]:
        """One SGD step on decoded features x [n,H,W,C] -> (mean loss, logits [n,K], d loss / d x)."""
        self.opt.learning_rate = float(lr)
        loss, logits, gx = self._train_fn(np.asarray(x, np.float32), np.asarray(y, np.int32))
        return float(loss), logits.numpy(), gx.numpy()

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        """(mean loss, logits) without any update."""
        loss, logits = self._eval_fn(np.asarray(x, np.float32), np.asarray(y, np.int32))
        return float(loss), logits.numpy()

    def weights(self) -> list[np.ndarray]:
        return [v.numpy() for v in self.model.trainable_variables]
