"""JSON files written atomically (a reader, or a process killed mid-write, never sees half a file)."""

import json
import os
from pathlib import Path


def write_json(payload: dict, path: str | Path) -> None:
    """Write payload as indented JSON, creating the folder; replaces the file in one step."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(partial, path)


def read_json(path: str | Path) -> dict:
    """The JSON object in path, or {} when the file is absent."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        return {}
