"""Broken files at every file argument of the CLI: exit code 2, one line on stderr, no traceback.

Each command's file arguments get a table of broken files (truncated, random bytes, the wrong type, empty,
NaN, integer pixels, complex); `octo` runs in-process (the same `cli.main` as the console script) so the
whole table stays cheap."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from host_tools.cli import main as octo_main

ROOT = Path(__file__).resolve().parents[2]


def _valid_npz(p: Path) -> None:
    np.savez(p, x=np.random.default_rng(0).random((8, 8, 8, 1), np.float32), y=np.arange(8) % 10)


def _truncated(p: Path) -> None:
    _valid_npz(p)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])


def _write(data: bytes) -> Callable[[Path], None]:
    return lambda p: p.write_bytes(data)


def _npz(**arrays: np.ndarray) -> Callable[[Path], None]:
    def make(p: Path) -> None:
        with p.open("wb") as fh:
            np.savez(fh, **arrays)
    return make


def _npy(p: Path) -> None:
    with p.open("wb") as fh:
        np.save(fh, np.zeros((4, 8, 8, 1), np.float32))


def _pickle(p: Path) -> None:
    with p.open("wb") as fh:
        np.savez(fh, x=np.array([{"a": 1}], dtype=object))


def _zip_without_x(p: Path) -> None:
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("notes.txt", "hello")


SHAPE = (6, 8, 8, 1)
BROKEN_NPZ = {
    "truncated": _truncated,
    "random": _write(np.random.default_rng(1).integers(0, 256, 3000, np.uint8).tobytes()),
    "empty-file": _write(b""),
    "npy-not-npz": _npy,
    "pickle": _pickle,
    "zip-without-x": _zip_without_x,
    "no-samples": _npz(x=np.zeros((0, 8, 8, 1), np.float32), y=np.zeros(0, np.int64)),
    "nan": _npz(x=np.full(SHAPE, np.nan, np.float32), y=np.zeros(6, np.int64)),
    "inf": _npz(x=np.where(np.eye(8)[None, :, :, None] > 0, np.inf, 0.0).repeat(6, 0).astype(np.float32),
                y=np.zeros(6, np.int64)),
    "uint8-pixels": _npz(x=np.full(SHAPE, 200, np.uint8), y=np.zeros(6, np.int64)),
    "complex": _npz(x=np.ones(SHAPE, np.complex64), y=np.zeros(6, np.int64)),
    "text": _write(b"x,y\n1,2\n"),
}
BROKEN_NPY = {
    "truncated": lambda p: (np.save(p, np.ones((2, 4, 4, 8), np.float32)), p.write_bytes(p.read_bytes()[:100])),
    "random": _write(np.random.default_rng(2).integers(0, 256, 999, np.uint8).tobytes()),
    "empty-file": _write(b""),
    "npz-not-npy": _valid_npz,
    "nan": lambda p: np.save(p, np.full((2, 4, 4, 8), np.nan, np.float32)),
    "complex": lambda p: np.save(p, np.ones((2, 4, 4, 8), np.complex64)),
}
BROKEN_MODEL = {
    "random": _write(np.random.default_rng(3).integers(0, 256, 5000, np.uint8).tobytes()),
    "empty-file": _write(b""),
    "text": _write(b"this is not a model\n"),
}


def _one_line_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    code = octo_main(argv)                 # a traceback would raise here and fail the test
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, (argv, err)
    errors = [ln for ln in err if ln.startswith("octo: error: ")]
    assert len(errors) == 1 and err[-1] == errors[0], err
    assert "Traceback" not in "\n".join(err)
    return errors[0]


@pytest.fixture(scope="module")
def small_model(digits_dir: Path) -> Path:
    return digits_dir


def _broken(tmp_path: Path, name: str, maker: Callable[[Path], None], suffix: str) -> Path:
    p = tmp_path / f"{name}{suffix}"
    maker(p)
    return p


@pytest.mark.parametrize("case", sorted(BROKEN_NPZ))
@pytest.mark.parametrize("command", ["infer --input", "train --data", "train --eval", "collab --data",
                                     "collab --eval", "convert --calib"])
def test_broken_npz_files(command: str, case: str, small_model: Path, tmp_path: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    bad = _broken(tmp_path, case, BROKEN_NPZ[case], ".npz")
    cmd, flag = command.split()
    if cmd == "infer":
        argv = ["infer", str(small_model), "--input", str(bad), "-o", str(tmp_path / "y.npy"), "--target", "host"]
    elif cmd == "train":
        argv = ["train", str(small_model), flag, str(bad), "--target", "host", "--run-dir", str(tmp_path / "run")]
    elif cmd == "collab":
        argv = ["collab", str(small_model), "--split", "conv2", flag, str(bad), "--target", "host",
                "--run-dir", str(tmp_path / "run")]
    else:
        argv = ["convert", str(ROOT / "models" / "digits_cnn.py"), "--calib", str(bad), "-o", str(tmp_path / "m")]
    line = _one_line_exit_2(argv, capsys)
    assert bad.name in line, line


@pytest.mark.parametrize("case", sorted(BROKEN_NPY))
def test_broken_codec_tensors(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = _broken(tmp_path, case, BROKEN_NPY[case], ".npy")
    line = _one_line_exit_2(["codec", "bench", "--features", str(bad)], capsys)
    assert bad.name in line, line


@pytest.mark.parametrize("case", sorted(BROKEN_NPZ))
@pytest.mark.parametrize("command", ["pass-train --video", "video --frames"])
def test_broken_clips(command: str, case: str, small_model: Path, tmp_path: Path,
                      capsys: pytest.CaptureFixture[str]) -> None:
    bad = _broken(tmp_path, case, BROKEN_NPZ[case], ".npz")
    if command.startswith("pass-train"):
        argv = ["pass-train", str(small_model), "--video", str(bad), "-o", str(tmp_path / "p")]
    else:
        argv = ["video", str(small_model), "--dense", "--frames", str(bad)]
    line = _one_line_exit_2(argv, capsys)
    assert bad.name in line, line


@pytest.mark.parametrize("case", sorted(BROKEN_MODEL))
@pytest.mark.parametrize("suffix", [".tflite", ".keras", ".h5"])
def test_broken_model_files(suffix: str, case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = _broken(tmp_path, case, BROKEN_MODEL[case], suffix)
    calib = tmp_path / "calib.npz"
    _valid_npz(calib)
    line = _one_line_exit_2(["convert", str(bad), "--calib", str(calib), "-o", str(tmp_path / "m")], capsys)
    assert bad.name in line, line


@pytest.mark.parametrize("damage", ["garbage", "empty", "a list"])
@pytest.mark.parametrize("command", ["report", "infer"])
def test_damaged_model_folder_json(command: str, damage: str, small_model: Path, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(small_model, folder, ignore=shutil.ignore_patterns("train", "fw", "host"))
    (folder / "report.json").write_text({"garbage": "{not json", "empty": "", "a list": "[1, 2]"}[damage])
    x = tmp_path / "x.npz"
    _valid_npz(x)
    argv = ["report", str(folder)] if command == "report" else \
        ["infer", str(folder), "--input", str(x), "-o", str(tmp_path / "y.npy"), "--target", "host"]
    line = _one_line_exit_2(argv, capsys)
    assert "report.json" in line, line
