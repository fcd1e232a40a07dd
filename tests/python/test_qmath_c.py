"""The fast requantization forms used by the optimized kernels equal TFLite's reference, bit for bit."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def test_requantize_fast_and_merged_equal_reference(host_cc: Callable[..., Path]) -> None:
    exe = host_cc("test_qmath", [ROOT / "tests" / "c" / "test_qmath.c"])
    proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    last = proc.stdout.strip().splitlines()[-1]
    passed = int(last.split()[0])
    assert last.endswith(" passed, 0 failed") and passed > 3_000_000, last


def test_merged_table_matches_c(host_cc: Callable[..., Path], tmp_path: Path) -> None:
    """converter.qmath.merged_requant_table produces the constants octo_merged_constants computes."""
    import numpy as np

    from converter.qmath import merged_requant_table

    shifts = np.arange(-31, 0, dtype=np.int32)
    table = merged_requant_table(shifts)
    assert table is not None
    src = tmp_path / "test_merged_constants.c"
    src.write_text('#include <stdio.h>\n#include "octo/octo_qmath.h"\nint main(void) {\n'
                   "    for (int s = -31; s <= -1; s++) { int32_t k[3]; octo_merged_constants(s, k);\n"
                   '        printf("%ld %ld %ld\\n", (long)k[0], (long)k[1], (long)k[2]); }\n    return 0;\n}\n')
    exe = host_cc("test_merged_constants", [src])
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split("\n")
    c_rows = [tuple(int(v) for v in line.split()) for line in out if line.strip()]
    assert c_rows == [tuple(int(v) for v in row) for row in table]
    assert merged_requant_table(np.array([-3, 0], np.int32)) is None
