"""Editing one setting of a TOML config file in place, every other line and comment kept
(`storage migrate --to s3` and `storage migrate-db` switch the config they moved)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

_SECTION = re.compile(r"^\s*\[\s*([A-Za-z0-9_.-]+)\s*\]\s*(#.*)?$")


def set_setting(path: Path, section_name: str, key: str, value: str) -> None:
    """Write ``key = "<value>"`` into the ``[section_name]`` table of a TOML file, keeping
    every other line (and comment) as it is; the file is replaced atomically."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    setting = f"{key} = {json.dumps(value)}\n"
    assignment = re.compile(rf"^\s*{re.escape(key)}\s*=")
    section: str | None = None
    header_at: int | None = None
    for i, line in enumerate(lines):
        match = _SECTION.match(line)
        if match:
            section = match.group(1)
            if section == section_name:
                header_at = i
            continue
        if section == section_name and assignment.match(line):
            lines[i] = setting
            break
    else:
        if header_at is not None:
            lines.insert(header_at + 1, setting)
        else:
            if lines and not lines[-1].endswith("\n"):
                lines[-1] += "\n"
            lines += ["\n", f"[{section_name}]\n", setting]
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with temp.open("w", encoding="utf-8") as fh:
        fh.write("".join(lines))
        fh.flush()
        os.fsync(fh.fileno())
    temp.replace(path)
