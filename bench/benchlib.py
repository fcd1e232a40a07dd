"""Shared by the bench scripts: every result file starts with the same header."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any


def write_results(path: str | Path, schema: str, **fields: Any) -> Path:
    """Write {"schema", "date", "host", **fields} as JSON to path (folders created); say where."""
    doc = {"schema": schema, "date": time.strftime("%Y-%m-%d"),
           "host": {"machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version()},
           **fields}
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {out}")
    return out
