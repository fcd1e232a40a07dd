"""DEPTHWISE_CONV_2D lowering."""

from __future__ import annotations

from converter.ops import Lowering

LOWERINGS: dict[str, Lowering] = {}
