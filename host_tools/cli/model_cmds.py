"""`octo convert | report | infer | bench`: the model compiler's commands."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from converter import toollog
from host_tools.board.boards import get_board
from host_tools.output import Output

if TYPE_CHECKING:
    import numpy as np


def cmd_convert(args: argparse.Namespace) -> int:
    from converter.pipeline import convert  # noqa: PLC0415

    out = Output(args.json)
    report = convert(Path(args.source), Path(args.output), calib=Path(args.calib) if args.calib else None,
                     replace=args.force,
                     say=toollog.say, flash=args.flash)
    t = report["totals"]
    out.say(f"converted {args.source} -> {args.output}/ ({len(report['layers'])} layers, {t['macs']:,} MACs, "
            f"{t['weight_bytes']:,} B of weights, arena {t['arena_bytes']:,} B; TFLM plans "
            f"{report['tflm']['arena_planned_bytes']} B + {report['tflm']['arena_persistent_bytes']} B overhead)")
    acc = report.get("accuracy", {})
    if "int8_host" in acc:
        out.say(f"held-out {acc.get('metric', 'accuracy')}: float {acc.get('float', float('nan')):.4f}, "
                f"INT8 (generated C) "
                f"{acc['int8_host']:.4f}, TFLM {acc['int8_tflm']:.4f}, bit-exact with TFLM: {acc['host_matches_tflm']}")
    out.emit("octo.convert/1", report)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from host_tools.model.report import show_report  # noqa: PLC0415

    out = Output(args.json)
    doc = show_report(Path(args.model), args.board, args.firmware_ram, out.say)
    out.emit("octo.report/1", doc)
    return 0


def _load_inputs(path: str, model) -> tuple[np.ndarray, np.ndarray | None]:
    from converter.datafile import load_samples, saturation  # noqa: PLC0415

    x, y = load_samples(Path(path), role="input")
    xq = model.quantize(x)
    sat = saturation(x, model.report["input"]["scale"], model.report["input"]["zero_point"])
    if sat > 0.01:
        toollog.say(f"warning: {100 * sat:.1f}% of the input values in {path} lie outside the model's input range and "
             "saturate at INT8 quantization: are they in the units the model was trained on?")
    return xq, y


def cmd_infer(args: argparse.Namespace) -> int:
    import numpy as np  # noqa: PLC0415

    from host_tools.model.folder import load_local_model, run_on_host  # noqa: PLC0415
    from host_tools.services.inference import board_session  # noqa: PLC0415

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
        with board_session(board, model, args.port, say=toollog.say) as sess:
            for i, x in enumerate(xq):
                rows.append(sess.infer(x))
                if (i + 1) % 50 == 0 or i + 1 == len(xq):
                    toollog.say(f"  {i + 1}/{len(xq)} samples")
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


def cmd_bench(args: argparse.Namespace) -> int:
    from host_tools.model.bench import bench_model, plot_layers  # noqa: PLC0415
    from host_tools.model.folder import load_local_model  # noqa: PLC0415

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


