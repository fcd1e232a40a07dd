"""On-device training orchestration: datasets, batch order, checkpoints, recovery, progress."""
