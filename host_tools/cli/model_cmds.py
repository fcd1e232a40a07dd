"""`octo convert | report | infer | bench`: the model compiler's commands."""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path
from typing import TYPE_CHECKING

from converter import toollog
from host_tools.board.boards import BOARDS, get_board
from host_tools.output import Output

if TYPE_CHECKING:
    import numpy as np


def _say(msg: str) -> None:
    toollog.say(msg)



def cmd_convert(args: argparse.Namespace) -> int:
    from converter.pipeline import convert  # noqa: PLC0415

    out = Output(args.json)
    report = convert(Path(args.source), Path(args.output), calib=Path(args.calib) if args.calib else None,
                     say=_say)
    t = report["totals"]
    out.say(f"converted {args.source} -> {args.output}/ ({len(report['layers'])} layers, {t['macs']:,} MACs, "
            f"{t['weight_bytes']:,} B of weights, arena {t['arena_bytes']:,} B; TFLM plans "
            f"{report['tflm']['arena_planned_bytes']} B + {report['tflm']['arena_persistent_bytes']} B overhead)")
    acc = report.get("accuracy", {})
    if "int8_host" in acc:
        out.say(f"held-out accuracy: float {acc.get('float', float('nan')):.4f}, INT8 (generated C) "
                f"{acc['int8_host']:.4f}, TFLM {acc['int8_tflm']:.4f}, bit-exact with TFLM: {acc['host_matches_tflm']}")
    out.emit("octo.convert/1", report)
    return 0


def _fits(report: dict, board_name: str, fw_static: int) -> dict[str, object]:
    b = get_board(board_name)
    t = report["totals"]
    ram = t["arena_bytes"] + fw_static
    flash = t["weight_bytes"] + 16 * 1024  # code estimate: kernels + runtime; `octo build` has the real number
    return {"board": b.name, "ram_estimate": ram, "ram_budget": b.sram_bytes, "flash_estimate": flash,
            "flash_budget": b.flash_bytes, "fits": ram <= b.sram_bytes and flash <= b.flash_bytes}


def cmd_report(args: argparse.Namespace) -> int:
    from host_tools.services.inference import load_local_model  # noqa: PLC0415

    out = Output(args.json)
    model = load_local_model(Path(args.model))
    rep = model.report
    out.say(f"model {rep['name']} ({rep['source']}), input {rep['input']['shape']}, output {rep['output']['shape']}")
    out.say(f"{'#':>3} {'op':<18} {'output shape':<16} {'MACs':>11} {'params':>8} {'act bytes':>9}  name")
    for layer in rep["layers"]:
        shape = "x".join(map(str, layer["output_shape"]))
        out.say(f"{layer['index']:>3} {layer['op']:<18} {shape:<16} {layer['macs']:>11,} {layer['params']:>8,} "
                f"{layer['output_bytes']:>9,}  {layer['name'][:40]}")
    t = rep["totals"]
    out.say(f"total: {t['macs']:,} MACs, {t['params']:,} parameters, weights {t['weight_bytes']:,} B (flash)")
    tflm = rep["tflm"]
    out.say(f"activation arena: Octo {t['arena_bytes']:,} B; TFLM {tflm['arena_planned_bytes']:,} B planned + "
            f"{tflm['arena_persistent_bytes']:,} B interpreter state = {tflm['arena_total_bytes']:,} B")
    static = args.firmware_ram
    fits = [_fits(rep, name, static) for name in ([args.board] if args.board else list(BOARDS))]
    for f in fits:
        verdict = "fits" if f["fits"] else "DOES NOT FIT"
        out.say(f"{f['board']:<14} SRAM ~{f['ram_estimate']:,} of {f['ram_budget']:,} B, "
                f"flash ~{f['flash_estimate']:,} of {f['flash_budget']:,} B: {verdict}")
    if rep.get("accuracy"):
        out.say("accuracy: " + ", ".join(f"{k} {v}" for k, v in rep["accuracy"].items()))
    out.emit("octo.report/1", {**rep, "fits": fits})
    return 0


def _load_inputs(path: str, model) -> tuple[np.ndarray, np.ndarray | None]:
    from converter.pipeline import load_npz  # noqa: PLC0415

    x, y = load_npz(Path(path))
    return model.quantize(x), y


def cmd_infer(args: argparse.Namespace) -> int:
    import numpy as np  # noqa: PLC0415

    from host_tools.services.inference import board_session, load_local_model, run_on_host  # noqa: PLC0415

    out = Output(args.json)
    model = load_local_model(Path(args.model))
    xq, y = _load_inputs(args.input, model)
    limit = args.limit or len(xq)
    xq = xq[:limit]
    y = y[:limit] if y is not None else None
    if args.target == "host" and not args.board:
        ys = run_on_host(model, xq)
        where = "host"
    else:
        board = get_board(args.board or "virtual-m4")
        where = board.name
        rows = []
        with board_session(board, model, args.port, say=_say) as sess:
            for i, x in enumerate(xq):
                rows.append(sess.infer(x))
                if (i + 1) % 50 == 0 or i + 1 == len(xq):
                    _say(f"  {i + 1}/{len(xq)} samples")
        ys = np.stack(rows)
    result = model.dequantize(ys) if args.dequantize else ys
    np.save(args.output, result)
    summary: dict[str, object] = {"model": str(model.path), "target": where, "samples": len(xq),
                                  "output": args.output, "dequantized": bool(args.dequantize)}
    if y is not None:
        from converter.pipeline import label_accuracy  # noqa: PLC0415

        summary["accuracy"] = round(label_accuracy(ys, y), 6)
    out.say(f"ran {len(xq)} samples on {where}; outputs -> {args.output}"
            + (f"; accuracy {summary['accuracy']:.4f}" if "accuracy" in summary else ""))
    out.emit("octo.infer/1", summary)
    return 0


def bench_model(model, board, port: str | None, runs: int, seed: int = 0) -> dict[str, object]:
    """Per-layer ticks and instruction counts (virtual boards) for random inputs."""
    from host_tools.services.inference import board_session  # noqa: PLC0415

    with board_session(board, model, port, say=_say) as sess:
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


def cmd_bench(args: argparse.Namespace) -> int:
    from host_tools.services.inference import load_local_model  # noqa: PLC0415

    out = Output(args.json)
    model = load_local_model(Path(args.model))
    board = get_board(args.board)
    res = bench_model(model, board, args.port, args.runs)
    unit = str(res["unit"])
    out.say(f"{model.report['name']} on {board.name}: {res['total']:,} {unit} per inference "
            f"({res[f'{unit}_per_mac']} per MAC)")
    for layer in res["layers"]:  # type: ignore[attr-defined]
        per = layer[f"{unit}_per_mac"]
        per_s = "-" if per is None else str(per)
        out.say(f"{layer['index']:>3} {layer['op']:<18} {layer[unit]:>12,} {unit} {per_s:>7}/MAC {layer['name'][:40]}")
    out.emit("octo.bench/1", {"model": str(model.path), **res})
    if args.plot:
        plot_layers(res, Path(args.plot), f"{model.report['name']} on {board.name}")
        out.say(f"per-layer chart -> {args.plot}")
    return 0


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
