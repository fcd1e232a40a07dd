"""Per-layer speed of a converted model on a board (instructions under QEMU -icount, cycles on real boards),
and its chart."""

from __future__ import annotations

import statistics
from pathlib import Path

from converter import toollog


def bench_model(model, board, port: str | None, runs: int, seed: int = 0) -> dict[str, object]:
    """Per-layer ticks and instruction counts (virtual boards) for random inputs."""
    from host_tools.services.inference import board_session  # noqa: PLC0415

    with board_session(board, model, port, say=toollog.say) as sess:
        return bench_session(sess, model, board.name, runs, seed)


def bench_session(sess, model, board_name: str, runs: int, seed: int = 0) -> dict[str, object]:
    """bench_model on an open BoardSession."""
    import numpy as np  # noqa: PLC0415

    from host_tools.board.qemu import instructions_from_ticks  # noqa: PLC0415

    rng = np.random.default_rng(seed)
    totals, per_layer = [], []
    for _ in range(runs):
        x = rng.integers(-128, 128, size=model.input_size, dtype=np.int64).astype(np.int8)
        total, ticks = sess.invoke_timed(x)
        totals.append(total)
        per_layer.append(ticks)
    timer_hz, icount = sess.timer_hz, sess.icount
    unit = "instructions" if icount else "cycles"

    def conv(t: float) -> int:
        return instructions_from_ticks(int(t), timer_hz) if icount else int(t)

    layers = []
    for i, layer in enumerate(model.report["layers"]):
        med = statistics.median(run[i] for run in per_layer)
        n = conv(med)
        layers.append({**{k: layer[k] for k in ("index", "name", "op", "macs")}, unit: n,
                       f"{unit}_per_mac": round(n / layer["macs"], 3) if layer["macs"] else None})
    by_op: dict[str, dict[str, float]] = {}
    for layer in layers:
        d = by_op.setdefault(layer["op"], {"macs": 0, unit: 0})
        d["macs"] += layer["macs"]
        d[unit] += layer[unit]
    for d in by_op.values():
        d[f"{unit}_per_mac"] = round(d[unit] / d["macs"], 3) if d["macs"] else None
    total = conv(statistics.median(totals))
    return {"board": board_name, "unit": unit, "runs": runs, "total": total,
            "macs": model.report["totals"]["macs"],
            f"{unit}_per_mac": round(total / model.report["totals"]["macs"], 3), "layers": layers, "by_op": by_op}


def plot_layers(res: dict, path: Path, title: str) -> None:
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    unit = res["unit"]
    layers = res["layers"]
    labels = [f"{layer['index']} {layer['op']}" for layer in layers]
    values = [layer[unit] for layer in layers]
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(layers) + 1.5))
    ax.barh(labels[::-1], values[::-1], color="#3b7dd8")
    ax.set_xlabel(f"{unit} per inference")
    ax.set_title(title)
    for i, v in enumerate(values[::-1]):
        ax.text(v, i, f" {v:,}", va="center", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
