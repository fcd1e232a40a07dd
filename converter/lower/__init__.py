"""One module per op family; each exports LOWERINGS: dict[op kind, Lowering]."""
