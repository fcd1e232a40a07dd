"""RESHAPE lowering (output aliases the input buffer)."""

from __future__ import annotations

from converter.ops import Lowering

LOWERINGS: dict[str, Lowering] = {}
