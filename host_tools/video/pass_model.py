"""Building a PASS model folder: gates trained self-supervised on a clip, then pass_model.c."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from converter import toollog
from host_tools.errors import OctoError


def pass_train(model_dir: Path, frames: Any, out_dir: Path, *, tolerance: float | None = None,
               cut_permille: int | None = None, say: Any = toollog.say) -> dict[str, Any]:
    """Trains gates on unlabelled frames and writes a PASS model folder; returns its plan."""
    from converter.ir import ConvertError  # noqa: PLC0415
    from converter.pass_codegen import compile_pass, gate_summary  # noqa: PLC0415
    from converter.tflite_reader import read_tflite  # noqa: PLC0415
    from host_tools.video.gates import train_gates  # noqa: PLC0415

    tfl = model_dir / "model.tflite"
    rep = model_dir / "report.json"
    if not tfl.exists() or not rep.exists():
        raise OctoError(f"{model_dir} is not a converted model folder (needs model.tflite and report.json)",
                        hint=f"run `octo convert <model> -o {model_dir}` first")
    if out_dir.resolve() == model_dir.resolve():
        raise OctoError("-o must differ from the model folder (the dense model stays as the baseline)")
    from host_tools.model.folder import read_folder_json  # noqa: PLC0415

    report = read_folder_json(rep)
    try:
        graph = read_tflite(tfl)
        from converter.pass_codegen import check_chain  # noqa: PLC0415
        from converter.rewrite import rewrite_graph  # noqa: PLC0415

        check_chain(rewrite_graph(graph))
    except ConvertError as exc:
        raise OctoError(f"{model_dir}: {exc}") from None
    kw: dict[str, Any] = {"say": say}
    if tolerance is not None:
        kw["tolerance"] = tolerance
    gates = train_gates(tfl, frames, **kw)
    if cut_permille is not None:
        gates["cut_permille"] = cut_permille
    text, plan = compile_pass(graph, gates, report.get("name", model_dir.name),
                              int(str(report.get("fingerprint", "0x0")), 16))
    (out_dir / "octo").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(tfl, out_dir / "model.tflite")
    shutil.copyfile(rep, out_dir / "report.json")
    (out_dir / "gates.json").write_text(json.dumps(gates, indent=1) + "\n")
    (out_dir / "octo" / "pass_model.c").write_text(text)
    info = plan.as_dict()
    info.update(source=str(model_dir.resolve()), dense_arena_bytes=int(report["totals"]["arena_bytes"]),
                gates=gate_summary(plan))
    (out_dir / "pass_plan.json").write_text(json.dumps(info, indent=1) + "\n")
    return info
