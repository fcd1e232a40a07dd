"""Octo's TFLM export through the real TensorFlow Lite Micro + CMSIS-NN on virtual-m4.

The TFLM library is built once per machine by TFLM's own Makefile (host_tools/board/tflm_build.py, cached in
~/.cache/octo/tflm: about 8 min on 2 cores when cold, a content hash when warm). Without a TFLM tree (TFLM_DIR, default
../shared/third_party/tflm) these tests are skipped with that reason.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from host_tools.board import tflm_build

ROOT = Path(__file__).resolve().parents[2]
N_INPUTS = 5

needs_tflm = pytest.mark.skipif(tflm_build.skip_reason() is not None, reason=str(tflm_build.skip_reason()))


def _library() -> tflm_build.TflmLibrary:
    missing = tflm_build.missing_packages()
    assert not missing, f"missing Debian packages {' '.join(missing)}: run `make tflm`"
    return tflm_build.build_library()


@needs_tflm
@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.timeout(2400)  # a cold library cache builds TFLM first (~8 min on 2 cores)
def test_tflm_cmsis_nn_runs_the_export_byte_equal_to_octo(digits_dir: Path, tmp_path: Path) -> None:
    """The digits CNN's export (model array, generated op resolver, suggested arena) compiles against TFLM with
    CMSIS-NN, runs on virtual-m4 on held-out inputs, and every output byte equals Octo's generated C; the arena
    TFLM reports on the board is > 0 and within the export's suggested size."""
    assert shutil.which("qemu-system-arm"), "qemu-system-arm not installed: run `make setup`"
    from host_tools.board.tflm_firmware import TflmExport, build_firmware, run_firmware
    from host_tools.model.folder import load_local_model, run_on_host

    lib = _library()
    model = load_local_model(digits_dir)
    with np.load(digits_dir / "eval.npz") as d:
        xq = model.quantize(d["x"][-N_INPUTS:])  # held out: never seen by training or calibration
    run = run_firmware(build_firmware(digits_dir, xq, tmp_path, "virtual-m4", lib), "virtual-m4")
    ours = run_on_host(model, xq)
    assert run.outputs.shape == ours.shape, run.log
    assert np.array_equal(run.outputs, ours), f"TFLM {run.outputs.tolist()}\nOcto {ours.tolist()}"
    export = TflmExport.read(digits_dir)
    assert run.arena_size == export.arena_size
    assert 0 < run.arena_used_bytes <= export.arena_size
    assert len(run.instructions) == N_INPUTS and all(n > 10_000 for n in run.instructions), run.instructions
    assert 0 < run.flash_bytes <= 1024 * 1024 and run.ram_bytes <= 256 * 1024


@needs_tflm
def test_library_cache_is_reused_and_keyed_on_the_flags() -> None:
    """A second request is served from the cache (no make); another arch is another key."""
    lib = _library()
    t0 = time.monotonic()
    again = tflm_build.build_library()
    assert again.lib == lib.lib and again.key == lib.key
    assert time.monotonic() - t0 < 5.0
    assert lib.lib.is_relative_to(tflm_build.cache_root()) and (lib.lib.parents[2] / "done.json").is_file()
    assert tflm_build.cache_key(lib.tree, "cortex-m4") != lib.key


def test_without_a_tflm_tree_everything_says_so_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """TFLM_DIR pointing nowhere: the skip reason names it, `make tflm`'s module and the bench script print a
    one-line note and succeed, and build_library raises one line."""
    missing = tmp_path / "no-tflm"
    monkeypatch.setenv("TFLM_DIR", str(missing))
    reason = tflm_build.skip_reason()
    assert reason is not None and str(missing) in reason and "\n" not in reason
    with pytest.raises(tflm_build.TflmMissing, match="no TFLM tree"):
        tflm_build.build_library()
    env = {"TFLM_DIR": str(missing), "PYTHONPATH": str(ROOT), "OCTO_ROOT": str(ROOT), "PATH": "/usr/bin:/bin"}
    for cmd in ([sys.executable, "-m", "host_tools.board.tflm_build"],
                [sys.executable, str(ROOT / "bench" / "tflm_side_by_side.py"), str(tmp_path)]):
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, check=False)
        out = (proc.stdout + proc.stderr).strip()
        assert proc.returncode == 0 and len(out.splitlines()) == 1 and "no TFLM tree" in out, out
