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


def group_split(g: np.ndarray, clients: int, seed: int) -> list[np.ndarray]:
    """One group per client (a speaker's voice, a writer, ...): the groups (g >= 0) are shuffled with the seed and
    dealt out, client i taking group i mod G; when there are more clients than groups, the clients that share a
    group split its samples evenly (each still holds one group only); with fewer clients than groups, each client
    takes several whole groups. Samples without a group (g < 0, e.g.
    silence) are spread evenly over all clients. Sorted indices per client."""
    g = np.asarray(g).astype(np.int64).reshape(-1)
    groups = np.unique(g[g >= 0])
    if len(groups) == 0:
        raise ValueError("the data's 'g' array names no group (all values are negative)")
    if clients > len(g):
        raise ValueError(f"{len(g)} samples cannot give {clients} clients one sample each")
    rng = np.random.default_rng([seed, clients, 0x6A0])
    order = rng.permutation(groups)
    parts: list[list[np.ndarray]] = [[] for _ in range(clients)]
    holders = {int(grp): list(range(j, clients, len(order))) or [j % clients] for j, grp in enumerate(order)}
    for grp, cl in holders.items():
        idx = rng.permutation(np.flatnonzero(g == grp))
        for c, part in zip(cl, np.array_split(idx, len(cl)), strict=True):
            parts[c].append(part)
    free = rng.permutation(np.flatnonzero(g < 0))
    for c, part in enumerate(np.array_split(free, clients)):
        parts[c].append(part)
    out = [np.sort(np.concatenate(p)) if p else np.zeros(0, np.int64) for p in parts]
    if min(len(p) for p in out) == 0:
        empty = sum(len(p) == 0 for p in out)
        raise ValueError(f"{empty} of {clients} clients would get no sample ({len(groups)} groups of "
                         f"{len(g)} samples)")
    return out


PARTITIONS = ("dirichlet", "iid", "group")


def partition(data: str, clients: int, kind: str, alpha: float, seed: int) -> list[np.ndarray]:
    """The clients' sample indices of the .npz at `data`: Dirichlet over classes (alpha; alpha <= 0 = IID), IID,
    or one group per client from the file's 'g' array."""
    with np.load(data) as d:
        y = d["y"]
        g = d["g"] if "g" in d.files else None
    if kind == "group":
        if g is None:
            raise ValueError(f"{data} has no 'g' array (the group of each sample: voice, writer, ...); "
                             "--partition group needs one")
        if len(g) != len(y):
            raise ValueError(f"{data}: 'g' has {len(g)} values for {len(y)} samples")
        return group_split(g, clients, seed)
    if kind == "iid" or alpha <= 0:
        return iid_split(len(y), clients, seed)
    if kind != "dirichlet":
        raise ValueError(f"unknown partition {kind!r}; choose one of {', '.join(PARTITIONS)}")
    return dirichlet_split(y, clients, alpha, seed)
