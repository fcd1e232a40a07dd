"""One output channel: human text on stdout/stderr, numbers as JSON on request.

``--json FILE`` writes a document ``{"schema": "octo.<command>/1", ...}``;
``-`` means stdout (the human text then goes to stderr so stdout stays
parseable). Schemas are documented in docs/JSON.md and only grow fields.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TextIO

from converter import toollog


class Output:
    def __init__(self, json_path: str | None) -> None:
        self.json_path = json_path

    @property
    def text(self) -> TextIO:
        return toollog.err() if self.json_path == "-" else toollog.out()

    def say(self, line: str = "") -> None:
        print(line, file=self.text, flush=True)

    def emit(self, schema: str, data: dict[str, Any]) -> None:
        if not self.json_path:
            return
        doc = {"schema": schema, **data}
        text = json.dumps(doc, indent=2, sort_keys=False) + "\n"
        if self.json_path == "-":
            toollog.out().write(text)
            toollog.out().flush()
        else:
            path = Path(self.json_path)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
