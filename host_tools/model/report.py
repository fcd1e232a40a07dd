"""What a converted model needs: per-layer ops, shapes, MACs, parameters, the arena next to TFLM's, and
which boards it fits."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from host_tools.board.boards import BOARDS, get_board


def _fits(report: dict, board_name: str, fw_static: int) -> dict[str, object]:
    b = get_board(board_name)
    t = report["totals"]
    ram = t["arena_bytes"] + fw_static
    flash = t["weight_bytes"] + 16 * 1024  # code estimate: kernels + runtime; `octo build` has the real number
    return {"board": b.name, "ram_estimate": ram, "ram_budget": b.sram_bytes, "flash_estimate": flash,
            "flash_budget": b.flash_bytes, "fits": ram <= b.sram_bytes and flash <= b.flash_bytes}


def show_report(model_dir: Path, board: str | None, firmware_ram: int, say: Callable[[str], None]) -> dict[str, Any]:
    """Print the report of a converted model folder with say; returns the octo.report/1 document.
    board: only that board's fit (default every board); firmware_ram: RAM besides the arena."""
    from host_tools.model.folder import load_local_model  # noqa: PLC0415

    model = load_local_model(model_dir)
    rep = model.report
    say(f"model {rep['name']} ({rep['source']}), input {rep['input']['shape']}, output {rep['output']['shape']}")
    say(f"{'#':>3} {'op':<18} {'output shape':<16} {'MACs':>11} {'params':>8} {'act bytes':>9}  name")
    for layer in rep["layers"]:
        shape = "x".join(map(str, layer["output_shape"]))
        say(f"{layer['index']:>3} {layer['op']:<18} {shape:<16} {layer['macs']:>11,} {layer['params']:>8,} "
                f"{layer['output_bytes']:>9,}  {layer['name'][:40]}")
    t = rep["totals"]
    say(f"total: {t['macs']:,} MACs, {t['params']:,} parameters, weights {t['weight_bytes']:,} B (flash)")
    tflm = rep["tflm"]
    say(f"activation arena: Octo {t['arena_bytes']:,} B; TFLM {tflm['arena_planned_bytes']:,} B planned + "
            f"{tflm['arena_persistent_bytes']:,} B interpreter state = {tflm['arena_total_bytes']:,} B")
    static = firmware_ram
    fits = [_fits(rep, name, static) for name in ([board] if board else list(BOARDS))]
    for f in fits:
        verdict = "fits" if f["fits"] else "DOES NOT FIT"
        say(f"{f['board']:<14} SRAM ~{f['ram_estimate']:,} of {f['ram_budget']:,} B, "
                f"flash ~{f['flash_estimate']:,} of {f['flash_budget']:,} B: {verdict}")
    if rep.get("accuracy"):
        say("accuracy: " + ", ".join(f"{k} {v}" for k, v in rep["accuracy"].items()))
    return {**rep, "fits": fits}
