"""`octo demo` / `make demo`: the whole loop on a virtual board.

Stages (each prints what it does and what it measured):
  1. build the firmware with PlatformIO (RAM/flash vs the board's budget)
  2. boot the virtual board under QEMU, connect over its serial port
  3. HELLO, ping round trips, a burst of telemetry
  4. convert the digits CNN (trained on scikit-learn's digits), show its report
  5. run the held-out digits on the virtual board: accuracy measured on the board,
     per-layer instructions and a bar chart (PNG) next to the report
  6. on-device INT8 training (Octo): a digits CNN pretrained on digits 0-4 learns all ten
     on the virtual board (live progress), the FP32 baseline runs the same engine natively,
     a loss/accuracy plot (PNG) of both, and the exported .tflite checked by TFLM
  7. a residual network (the small ResNet-8-shaped digits model: identity and projection shortcuts)
     trains every layer in INT8 on the virtual board, the batch chosen to fit its SRAM
  8. split learning (SGQ): two virtual boards run the digits CNN up to conv2 in INT8 and exchange
     4-bit SGQ features and gradients with a TensorFlow cloud (a short live run), then a plot (PNG) of
     bytes on the wire vs held-out accuracy for FP32, uniform and SGQ at 2/4/8 bits from
     bench/results/collab.json (or, without that file, from quick native runs of each setting)
  9. PASS video: the video CNN (64x64 frames -> a 4x4 grid of digit cells) gets gates trained
     self-supervised on an unlabelled clip, then a generated static-camera clip streams through the
     virtual board with PASS and with the dense model: the side-by-side table and a skip heatmap (PNG)
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from converter import toollog
from host_tools.board import protocol as P
from host_tools.board.boards import Board, sram_budget
from host_tools.errors import OctoError


def _stage(n: int, title: str) -> None:
    toollog.echo(f"\n== {n}. {title}")


def run_demo(board: Board, out_dir: Path, *, verbose: bool = False) -> int:
    from host_tools.board import qemu  # noqa: PLC0415
    from host_tools.board.client import BoardClient, ping_stats  # noqa: PLC0415
    from host_tools.board.pio import build_firmware  # noqa: PLC0415

    if not board.virtual:
        raise OctoError("the demo runs on a virtual board (e.g. --board virtual-m4)")
    out_dir.mkdir(parents=True, exist_ok=True)
    summary: dict[str, object] = {"board": board.name}

    _stage(1, f"Build firmware for {board.name} (PlatformIO, offline)")
    res = build_firmware(board, verbose=verbose)
    toollog.echo(f"   flash {res.flash_used} B / {res.flash_budget} B, RAM {res.ram_used} B / {res.ram_budget} B")
    summary["build"] = res.as_dict()

    _stage(2, f"Boot {board.name} ({board.qemu_machine}) and connect")
    t0 = time.perf_counter()
    with qemu.private(board, res.elf) as rb, BoardClient(rb.url) as client:
        hello = client.hello()
        boot_s = time.perf_counter() - t0
        toollog.echo(f"   serial {rb.url}; HELLO after {boot_s * 1e3:.0f} ms")
        toollog.echo(f"   HELLO: {hello.board} {hello.cpu} fw v{hello.fw_version} proto v{hello.proto_version}, "
                     f"features {', '.join(hello.features)}, max payload {hello.max_payload} B")
        summary["hello"] = hello.as_dict()
        summary["boot_to_hello_s"] = round(boot_s, 4)

        _stage(3, "Link: ping round trips and telemetry")
        rows = ping_stats(client, [0, hello.max_payload], 10)
        for r in rows:
            toollog.echo(f"   ping {r['payload_bytes']:>5} B: median RTT {float(r['rtt_median_s']) * 1e3:.2f} ms")
        summary["ping"] = rows
        client.set_telemetry(100)
        frames = client.poll_events(0.5)
        client.set_telemetry(0)
        tlm = [P.parse_telemetry(f.payload) for f in frames if f.type == P.MSG_TELEMETRY]
        if tlm:
            last = " ".join(f"{k}={v}" for k, v in tlm[-1].items())
            toollog.echo(f"   {len(tlm)} telemetry frames, last: {last}")
        summary["telemetry_frames"] = len(tlm)

    summary["inference"] = _inference_stages(board, out_dir)
    summary["training"] = _training_stage(board, out_dir)
    summary["residual"] = _residual_stage(board, out_dir)
    summary["collab"] = _collab_stage(board, out_dir)
    summary["pass"] = _pass_stage(board, out_dir)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    toollog.echo(f"\nDemo finished; summary in {out_dir / 'summary.json'}")
    return 0


def _inference_stages(board: Board, out_dir: Path) -> dict[str, object]:

    import numpy as np  # noqa: PLC0415

    from converter.pipeline import convert  # noqa: PLC0415
    from host_tools.model.bench import bench_session, plot_layers  # noqa: PLC0415
    from host_tools.model.folder import load_local_model  # noqa: PLC0415
    from host_tools.model.report import show_report  # noqa: PLC0415
    from host_tools.paths import repo_root  # noqa: PLC0415
    from host_tools.services.inference import board_session  # noqa: PLC0415

    _stage(4, "Convert the digits CNN (scikit-learn digits) to INT8 + generated C")
    model_dir = out_dir / "digits"
    report = convert(repo_root() / "models" / "digits_cnn.py", model_dir, replace=True,
                     say=lambda m: toollog.echo(f"   {m}"))
    show_report(model_dir, board.name, 32768, toollog.echo)

    _stage(5, f"Held-out digits on {board.name}")
    model = load_local_model(model_dir)
    with np.load(model_dir / "eval.npz") as d:
        xq, y = model.quantize(d["x"]), d["y"]
    with board_session(board, model, say=lambda m: toollog.echo(f"   {m}")) as sess:
        pred = np.array([int(np.argmax(sess.infer(x))) for x in xq])
        res = bench_session(sess, model, board.name, runs=1)
    acc = float(np.mean(pred == y))
    ref = report["accuracy"]
    toollog.echo(f"   board accuracy {acc:.4f} on {len(y)} held-out digits (float model {ref.get('float', 0):.4f}, "
          f"generated C on the host {ref.get('int8_host', 0):.4f})")
    chart = model_dir / "layers.png"
    plot_layers(res, chart, f"digits_cnn on {board.name}: instructions per layer")
    toollog.echo(f"   {res['total']:,} instructions per inference ({res['instructions_per_mac']} per MAC); "
                 f"chart {chart}")
    return {"board_accuracy": round(acc, 6), "samples": len(y), "instructions": res["total"],
            "instructions_per_mac": res["instructions_per_mac"], "chart": str(chart)}


DEMO_TRAIN_EPOCHS = 3
# ResNet-8's best fine-tuning rate (bench/results/graph_train.json); one epoch here: 96.2% -> 96.7% (3e-4: 96.0%)
DEMO_RESIDUAL_LR = 0.001


def _training_stage(board: Board, out_dir: Path) -> dict[str, object]:

    import numpy as np  # noqa: PLC0415

    from converter.pipeline import convert  # noqa: PLC0415
    from converter.train_export import export_tflite  # noqa: PLC0415
    from converter.train_plan import TrainConfig, prepare_training  # noqa: PLC0415
    from host_tools.board.target import open_train_target  # noqa: PLC0415
    from host_tools.paths import repo_root  # noqa: PLC0415
    from host_tools.services.state_blob import decode_weights  # noqa: PLC0415
    from host_tools.services.training import TrainSession  # noqa: PLC0415
    from host_tools.train.export import tflite_accuracy  # noqa: PLC0415
    from host_tools.train.run import TrainOptions, load_dataset, run_training  # noqa: PLC0415

    _stage(6, f"On-device INT8 training (Octo) on {board.name}: learn digits 5-9 on the board")
    say = lambda m: toollog.echo(f"   {m}")
    model_dir = out_dir / "digits04"
    convert(repo_root() / "models" / "digits_cnn_0to4.py", model_dir, replace=True, say=say)
    runs: dict[str, dict] = {}
    blob = b""
    int8_tb = None
    for precision, target in (("int8", board.name), ("fp32", "host")):
        tb = prepare_training(model_dir, TrainConfig(precision, 16, "last:2"), target,
                              sram_bytes=sram_budget(target))
        train_xy = load_dataset(model_dir / "train.npz", tb.plan)
        eval_xy = load_dataset(model_dir / "eval.npz", tb.plan)
        where = board.name if target != "host" else "the host (same C engine, natively: the FP32 baseline)"
        say(f"{precision.upper()} on {where}: {tb.plan['trainable_params']:,} trainable parameters (last 2 layers), "
            f"static training plan {tb.plan['arena_bytes']:,} B of SRAM")
        opts = TrainOptions(epochs=DEMO_TRAIN_EPOCHS, seed=1, lr=0.05, progress=toollog.err().isatty(),
                            model=str(model_dir))
        with open_train_target(tb, target, say=say) as t:
            m = run_training(t, tb, train_xy, eval_xy, opts, say, out_dir / f"train-{precision}")
            if precision == "int8":
                blob = TrainSession(t.client).get_state()
                int8_tb = tb
        runs[precision] = m
        ips = m.get("instructions_per_sample")
        say(f"{precision.upper()}: held-out accuracy {m['epochs'][0]['eval_accuracy']:.3f} after epoch 1 -> "
            f"{m['final']['eval_accuracy']:.3f} after {DEMO_TRAIN_EPOCHS}"
            + (f"; {ips:,.0f} instructions per training sample" if ips else ""))
    plot = out_dir / "training.png"
    _plot_training(runs, plot)
    say(f"loss/accuracy plot {plot}")
    tuned = out_dir / "digits-tuned.tflite"
    with np.load(model_dir / "train.npz") as d:
        calib = d["x"][:300]
    assert int8_tb is not None
    weights = decode_weights(int8_tb.plan, blob, (model_dir / "model.tflite").read_bytes())
    export_tflite(model_dir, weights, calib, tuned)
    with np.load(model_dir / "eval.npz") as d:
        acc = tflite_accuracy(tuned.read_bytes(), str(tuned), d["x"], d["y"])
    say(f"exported {tuned} ({tuned.stat().st_size:,} B): TFLM runs it at {acc:.3f} held-out accuracy "
        f"(board INT8 evaluation {runs['int8']['final']['eval_accuracy']:.3f})")
    return {"int8": {k: runs["int8"][k] for k in ("final", "instructions_per_sample", "peak_training_sram_bytes")},
            "fp32": {k: runs["fp32"][k] for k in ("final", "peak_training_sram_bytes")},
            "exported": str(tuned), "exported_tflm_accuracy": round(acc, 6), "plot": str(plot)}


def _residual_stage(board: Board, out_dir: Path) -> dict[str, object]:
    from converter.pipeline import convert  # noqa: PLC0415
    from converter.train_plan import TrainConfig, fitting_batch, prepare_training  # noqa: PLC0415
    from host_tools.board.target import open_train_target  # noqa: PLC0415
    from host_tools.paths import repo_root  # noqa: PLC0415
    from host_tools.train.run import TrainOptions, load_dataset, run_training  # noqa: PLC0415

    _stage(7, f"A residual network trains on {board.name}: every layer, INT8 forward and backward")
    say = lambda m: toollog.echo(f"   {m}")
    model_dir = out_dir / "digits_resnet"
    convert(repo_root() / "models" / "digits_resnet.py", model_dir, replace=True, say=say)
    sram = sram_budget(board.name)
    batch = 16 if sram is None else fitting_batch(model_dir, TrainConfig("int8", 16, "all"), sram, 16)
    tb = prepare_training(model_dir, TrainConfig("int8", batch, "all"), board.name, sram_bytes=sram)
    adds = sum(la["kind"] == "ADD" for la in tb.plan["layers"])
    say(f"{len(tb.plan['layers'])} layers ({adds} ADDs), {tb.plan['trainable_params']:,} trainable parameters, "
        f"batch {batch}, static training plan {tb.plan['arena_bytes']:,} B of SRAM")
    train_xy = load_dataset(model_dir / "train.npz", tb.plan)
    eval_xy = load_dataset(model_dir / "eval.npz", tb.plan)
    opts = TrainOptions(epochs=1, seed=1, lr=DEMO_RESIDUAL_LR, progress=toollog.err().isatty(), model=str(model_dir))
    with open_train_target(tb, board.name, say=say) as t:
        m = run_training(t, tb, train_xy, eval_xy, opts, say, out_dir / "train-residual")
    ips = m.get("instructions_per_sample")
    say(f"held-out accuracy {m['initial']['eval_accuracy']:.3f} before -> {m['final']['eval_accuracy']:.3f} after "
        "one epoch on the board" + (f"; {ips:,.0f} instructions per training sample" if ips else ""))
    return {k: m[k] for k in ("initial", "final", "instructions_per_sample", "peak_training_sram_bytes")}


def _plot_training(runs: dict[str, dict], path: Path) -> None:
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.4))
    for name, m in runs.items():
        ep = [e["epoch"] for e in m["epochs"]]
        a1.plot(ep, [e["train_loss"] for e in m["epochs"]], marker="o", label=f"{name.upper()} train")
        a2.plot(ep, [e["eval_accuracy"] for e in m["epochs"]], marker="o", label=f"{name.upper()} held-out")
    a1.set_xlabel("epoch")
    a1.set_ylabel("cross-entropy")
    a2.set_xlabel("epoch")
    a2.set_ylabel("accuracy")
    a1.legend()
    a2.legend()
    fig.suptitle("digits CNN pretrained on 0-4, trained on all ten on the board (INT8) vs FP32")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


DEMO_COLLAB_TRAIN = 640     # samples of the live split-learning run (20 steps per board)
DEMO_COLLAB_LR = 0.002      # fine-tuning the converted CNN: float SGD in the cloud is unstable above ~0.005 here
COLLAB_SETTINGS = [("fp32", 32), ("uniform", 2), ("uniform", 4), ("uniform", 8), ("sgq", 2), ("sgq", 4), ("sgq", 8)]


def _collab_stage(board: Board, out_dir: Path) -> dict[str, object]:

    import numpy as np  # noqa: PLC0415

    from converter.train_plan import TrainConfig, prepare_training  # noqa: PLC0415
    from host_tools.collab.run import CollabOptions, open_boards, run_collab  # noqa: PLC0415
    from host_tools.paths import repo_root  # noqa: PLC0415
    from host_tools.services.collab import CodecSpec  # noqa: PLC0415

    _stage(8, f"Split learning (SGQ): two {board.name} boards and a TensorFlow cloud")
    say = lambda m: toollog.echo(f"   {m}")
    model_dir = out_dir / "digits"
    tb = prepare_training(model_dir, TrainConfig("int8", 16, "all", split="conv2"), board.name,
                          sram_bytes=board.sram_bytes)
    with np.load(model_dir / "train.npz") as d:
        train_xy = (d["x"][:DEMO_COLLAB_TRAIN], d["y"][:DEMO_COLLAB_TRAIN])
    with np.load(model_dir / "eval.npz") as d:
        eval_xy = (d["x"], d["y"])
    say(f"the converted digits CNN is fine-tuned split after conv2: each board runs conv1+conv2 in INT8 on "
        f"{DEMO_COLLAB_TRAIN // 2} of its own digits and sends 4-bit SGQ features (8x8x16 per sample, range-coded); "
        f"the cloud runs the rest in TensorFlow and sends back 4-bit SGQ gradients (range-coded); device plan "
        f"{tb.plan['arena_bytes']:,} B of SRAM "
        f"(split buffers {tb.plan['memory']['collab']:,} B)")
    opts = CollabOptions(epochs=1, seed=1, lr=DEMO_COLLAB_LR, progress=toollog.err().isatty(), model=str(model_dir))
    with open_boards(tb, board.name, 2, say=say) as targets:
        live = run_collab(targets, tb, train_xy, eval_xy, CodecSpec("sgq", 4, entropy=True), opts, say,
                          out_dir / "collab")
    b, ips = live["bytes_per_sample"], live["device"]["instructions_per_sample"] or {}
    say(f"held-out accuracy {live['final']['eval_accuracy']:.3f} (boards "
        f"{', '.join(f'{a:.3f}' for a in live['final']['eval_accuracy_per_board'])}); per sample "
        f"{b['up_wire']:.0f} B up and {b['down_wire']:.0f} B down on the wire (FP32 payloads {b['fp32_payload']:.0f} B "
        f"each way); encode {ips.get('encode', 0):,.0f} and decode {ips.get('decode', 0):,.0f} instructions/sample")
    bench = repo_root() / "bench" / "results" / "collab.json"
    panels, source = _collab_points(bench, model_dir)
    plot = out_dir / "collab.png"
    _plot_collab(panels, source, plot)
    say(f"bytes vs accuracy plot {plot} ({source})")
    return {"live": {"final": live["final"], "bytes_per_sample": live["bytes_per_sample"],
                     "instructions_per_sample": live["device"]["instructions_per_sample"]},
            "plot": str(plot), "plot_source": source}


DEMO_VIDEO_FRAMES = 120    # the static clip streamed through the board (PASS, then dense)
DEMO_GATE_FRAMES = 300     # the unlabelled clip the gates learn from (another seed, mixed scenes)


def _pass_stage(board: Board, out_dir: Path) -> dict[str, object]:
    from converter.pipeline import convert  # noqa: PLC0415
    from host_tools.paths import repo_root  # noqa: PLC0415
    from host_tools.video.data import make_clip, save_clip  # noqa: PLC0415
    from host_tools.video.pass_model import pass_train  # noqa: PLC0415
    from host_tools.video.run import video_compare, video_lines  # noqa: PLC0415

    _stage(9, f"PASS video: patch skipping on {board.name}")
    say = lambda m: toollog.echo(f"   {m}")
    model_dir = out_dir / "video"
    if not (model_dir / "octo" / "model.c").exists():
        convert(repo_root() / "models" / "video_cnn.py", model_dir, replace=True, say=say)
    train = make_clip("mixed", DEMO_GATE_FRAMES, 1000)
    plan = pass_train(model_dir, train.frames, out_dir / "video_pass", say=say)
    say(f"gates on {len(plan['gates'])} layers, trained on {DEMO_GATE_FRAMES} unlabelled frames; PASS state "
        f"{plan['state_bytes']:,} B vs the dense arena {plan['dense_arena_bytes']:,} B")
    clip = make_clip("static", DEMO_VIDEO_FRAMES, 1)
    clip_path = out_dir / "static_clip.npz"
    save_clip(clip_path, clip)
    say(f"static-camera clip: {DEMO_VIDEO_FRAMES} frames, {clip.changed_fraction[1:].mean():.1%} of pixels change "
        "per frame")
    heat = out_dir / "pass_skip.png"
    res = video_compare(out_dir / "video_pass", clip_path, board.name, heatmap=heat)
    for line in video_lines(res):
        say(line)
    say(f"skip heatmap {heat}")
    return {k: res.get(k) for k in ("speedup", "accuracy_delta_pp", "heatmap")} | {
        "pass_instructions_per_frame": res["pass"]["instructions_per_frame"],
        "dense_instructions_per_frame": res["dense"]["instructions_per_frame"],
        "pass_cell_accuracy": res["pass"]["cell_accuracy"], "dense_cell_accuracy": res["dense"]["cell_accuracy"]}


Points = dict[str, tuple[float, float]]  # setting -> (wire bytes per sample both ways, held-out accuracy)


def _collab_points(bench: Path, model_dir: Path) -> tuple[list[tuple[str, Points]], str]:
    """Panels of {setting: (bytes, accuracy)} from the committed benchmark (its scenarios), or from quick
    native runs (1 epoch on 320 samples per setting, ~5 s each) when it is missing."""
    if bench.exists():
        acc = json.loads(bench.read_text()).get("accuracy") or {}
        titles = {"from_scratch": "from random weights", "fine_tune": "fine-tuning the converted CNN"}
        panels = []
        for key, title in titles.items():
            a = acc.get(key) or {}
            if a.get("table"):
                pts = {k: (r["bytes_per_sample"]["total_wire"], r["accuracy"]["mean"]) for k, r in a["table"].items()}
                panels.append((f"{title}: {a['epochs']} epochs, lr {a['lr']}, mean of {len(a['seeds'])} seeds", pts))
        if panels:
            return panels, "bench/results/collab.json (octo collab --target host, 2 boards)"
    import numpy as np  # noqa: PLC0415

    from converter.train_plan import TrainConfig, prepare_training  # noqa: PLC0415
    from host_tools.collab.run import CollabOptions, open_boards, run_collab  # noqa: PLC0415
    from host_tools.services.collab import CodecSpec  # noqa: PLC0415

    tb = prepare_training(model_dir, TrainConfig("int8", 16, "all", split="conv2"), "host")
    with np.load(model_dir / "train.npz") as d:
        train_xy = (d["x"][:320], d["y"][:320])
    with np.load(model_dir / "eval.npz") as d:
        eval_xy = (d["x"], d["y"])
    pts = {}
    with open_boards(tb, "host", 2, say=lambda m: None) as targets:
        for codec, bits in COLLAB_SETTINGS:
            name = "fp32" if codec == "fp32" else f"{codec}{bits}"
            m = run_collab(targets, tb, train_xy, eval_xy, CodecSpec(codec, bits if bits < 32 else 4),
                           CollabOptions(epochs=1, seed=1, lr=DEMO_COLLAB_LR), lambda m: None,
                           model_dir / "collab-sweep" / name)
            b = m["bytes_per_sample"]
            pts[name] = (b["up_wire"] + b["down_wire"], m["final"]["eval_accuracy"])
    return [("fine-tuning the converted CNN: 1 epoch on 320 samples", pts)], "quick native runs (no bench file)"


def _plot_collab(panels: list[tuple[str, Points]], source: str, path: Path) -> None:
    import matplotlib  # noqa: PLC0415
    import matplotlib.ticker  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, axes = plt.subplots(1, len(panels), figsize=(6.4 * len(panels), 4.2), squeeze=False)
    colors = {"fp32": "black", "uniform": "tab:orange", "sgq": "tab:blue", "sgq-rc": "tab:green"}
    labels = {"fp32": "FP32", "uniform": "uniform", "sgq": "sgq", "sgq-rc": "sgq, range-coded"}

    # the series: fp32, uniformN, sgqN, sgqN-rc; the bench's other variants (sgq2-clip, ...) are in its table
    pattern = {"fp32": "fp32", "uniform": r"uniform\d+", "sgq": r"sgq\d+", "sgq-rc": r"sgq\d+-rc"}
    for ax, (title, points) in zip(axes[0], panels, strict=True):
        for codec in ("fp32", "uniform", "sgq", "sgq-rc"):
            ks = sorted((k for k in points if re.fullmatch(pattern[codec], k)), key=lambda k: points[k][0])
            if not ks:
                continue
            xs, ys = [points[k][0] for k in ks], [100 * points[k][1] for k in ks]
            ax.plot(xs, ys, marker="o", color=colors[codec], label=labels[codec])
            for k, x, y in zip(ks, xs, ys, strict=True):
                bits = "".join(ch for ch in k if ch.isdigit())
                ax.annotate(f"{bits} bits" if codec != "fp32" else "", (x, y), fontsize=8,
                            textcoords="offset points", xytext=(4, -10))
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xticks([200, 500, 1000, 2000, 4000, 8000])
        ax.set_xlabel("bytes per sample on the wire, both ways (headers and frames included)")
        ax.set_ylabel("held-out accuracy (%)")
        ax.set_title(title, fontsize=9)
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle("digits CNN split after conv2: 2 boards (INT8) + TensorFlow cloud", fontsize=10)
    fig.text(0.01, 0.01, source, fontsize=7)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
