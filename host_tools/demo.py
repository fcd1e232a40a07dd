"""`octo demo` / `make demo`: the whole loop on a virtual board.

Stages (each prints what it does and what it measured):
  1. build the firmware with PlatformIO (RAM/flash vs the board's budget)
  2. boot the virtual board under QEMU, connect over its serial port
  3. HELLO, ping round trips, a burst of telemetry
  4. convert the digits CNN (trained on scikit-learn's digits), show its report
  5. run the held-out digits on the virtual board: accuracy measured on the board,
     per-layer instructions and a bar chart (PNG) next to the report
Later capabilities (train, SGQ, PASS) append their stages here.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from host_tools import protocol as P
from host_tools.boards import Board
from host_tools.errors import OctoError


def _stage(n: int, title: str) -> None:
    print(f"\n== {n}. {title}", flush=True)


def run_demo(board: Board, out_dir: Path, *, verbose: bool = False) -> int:
    from host_tools import qemu  # noqa: PLC0415
    from host_tools.client import BoardClient  # noqa: PLC0415
    from host_tools.commands import ping_stats  # noqa: PLC0415
    from host_tools.pio import build_firmware  # noqa: PLC0415

    if not board.virtual:
        raise OctoError("the demo runs on a virtual board (e.g. --board virtual-m4)")
    out_dir.mkdir(parents=True, exist_ok=True)
    summary: dict[str, object] = {"board": board.name}

    _stage(1, f"Build firmware for {board.name} (PlatformIO, offline)")
    res = build_firmware(board, verbose=verbose)
    print(f"   flash {res.flash_used} B / {res.flash_budget} B, RAM {res.ram_used} B / {res.ram_budget} B")
    summary["build"] = res.as_dict()

    _stage(2, f"Boot {board.name} ({board.qemu_machine}) and connect")
    t0 = time.perf_counter()
    rb = qemu.start(board, res.elf)
    try:
        with BoardClient(rb.url) as client:
            hello = client.hello()
            boot_s = time.perf_counter() - t0
            print(f"   serial {rb.url}; HELLO after {boot_s * 1e3:.0f} ms")
            print(f"   HELLO: {hello.board} {hello.cpu} fw v{hello.fw_version} proto v{hello.proto_version}, "
                  f"features {', '.join(hello.features)}, max payload {hello.max_payload} B")
            summary["hello"] = hello.as_dict()
            summary["boot_to_hello_s"] = round(boot_s, 4)

            _stage(3, "Link: ping round trips and telemetry")
            rows = ping_stats(client, [0, hello.max_payload], 10)
            for r in rows:
                print(f"   ping {r['payload_bytes']:>5} B: median RTT {float(r['rtt_median_s']) * 1e3:.2f} ms")
            summary["ping"] = rows
            client.set_telemetry(100)
            frames = client.poll_events(0.5)
            client.set_telemetry(0)
            tlm = [P.parse_telemetry(f.payload) for f in frames if f.type == P.MSG_TELEMETRY]
            if tlm:
                print(f"   {len(tlm)} telemetry frames, last: " + " ".join(f"{k}={v}" for k, v in tlm[-1].items()))
            summary["telemetry_frames"] = len(tlm)
    finally:
        qemu.stop(board)

    summary["inference"] = _inference_stages(board, out_dir)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"\nDemo finished; summary in {out_dir / 'summary.json'}")
    return 0


def _inference_stages(board: Board, out_dir: Path) -> dict[str, object]:
    import argparse  # noqa: PLC0415

    import numpy as np  # noqa: PLC0415

    from converter.pipeline import convert  # noqa: PLC0415
    from host_tools.infer import board_session, load_local_model  # noqa: PLC0415
    from host_tools.model_cmds import bench_session, cmd_report, plot_layers  # noqa: PLC0415
    from host_tools.paths import repo_root  # noqa: PLC0415

    _stage(4, "Convert the digits CNN (scikit-learn digits) to INT8 + generated C")
    model_dir = out_dir / "digits"
    report = convert(repo_root() / "models" / "digits_cnn.py", model_dir, say=lambda m: print(f"   {m}", flush=True))
    cmd_report(argparse.Namespace(model=str(model_dir), board=board.name, firmware_ram=32768, json=None))

    _stage(5, f"Held-out digits on {board.name}")
    model = load_local_model(model_dir)
    with np.load(model_dir / "eval.npz") as d:
        xq, y = model.quantize(d["x"]), d["y"]
    with board_session(board, model, say=lambda m: print(f"   {m}", flush=True)) as sess:
        pred = np.array([int(np.argmax(sess.infer(x))) for x in xq])
        res = bench_session(sess, model, board.name, runs=1)
    acc = float(np.mean(pred == y))
    ref = report["accuracy"]
    print(f"   board accuracy {acc:.4f} on {len(y)} held-out digits (float model {ref.get('float', 0):.4f}, "
          f"generated C on the host {ref.get('int8_host', 0):.4f})")
    chart = model_dir / "layers.png"
    plot_layers(res, chart, f"digits_cnn on {board.name}: instructions per layer")
    print(f"   {res['total']:,} instructions per inference ({res['instructions_per_mac']} per MAC); chart {chart}")
    return {"board_accuracy": round(acc, 6), "samples": len(y), "instructions": res["total"],
            "instructions_per_mac": res["instructions_per_mac"], "chart": str(chart)}
