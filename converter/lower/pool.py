"""AVERAGE_POOL_2D and MAX_POOL_2D lowering."""

from __future__ import annotations

from converter.ops import Lowering

LOWERINGS: dict[str, Lowering] = {}
