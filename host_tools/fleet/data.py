"""Non-IID client partitions, deterministic per seed."""

from __future__ import annotations

import numpy as np


def dirichlet_split(y: np.ndarray, clients: int, alpha: float, seed: int, min_size: int = 2) -> list[np.ndarray]:
    """Sample indices per client: for every class, its samples (shuffled) are cut into `clients` shares drawn from
    Dirichlet(alpha) (small alpha: each client sees few classes; large: close to IID). Redrawn (same seed stream)
    until every client has at least min_size samples. Sorted indices per client."""
    y = np.asarray(y)
    if clients * min_size > len(y):
        raise ValueError(f"{len(y)} samples cannot give {clients} clients {min_size} samples each")
    rng = np.random.default_rng([seed, clients, 0xF1EE7])
    classes = np.unique(y)
    for _ in range(1000):
        parts: list[list[np.ndarray]] = [[] for _ in range(clients)]
        for c in classes:
            idx = rng.permutation(np.flatnonzero(y == c))
            p = rng.dirichlet(np.full(clients, alpha))
            cuts = (np.cumsum(p)[:-1] * len(idx)).astype(int)
            for i, part in enumerate(np.split(idx, cuts)):
                parts[i].append(part)
        out = [np.sort(np.concatenate(p)) for p in parts]
        if min(len(p) for p in out) >= min_size:
            return out
    raise ValueError(f"no Dirichlet({alpha}) split of {len(y)} samples gives {clients} clients {min_size} each")


def iid_split(n: int, clients: int, seed: int) -> list[np.ndarray]:
    perm = np.random.default_rng([seed, clients, 0x11D]).permutation(n)
    return [np.sort(p) for p in np.array_split(perm, clients)]
