"""Command lines written as templates, shared by the CLI tests that run every command."""

from __future__ import annotations

from pathlib import Path


def fill(template: list[str], data: Path, out: Path, bad: str | None = None) -> list[str]:
    """The arguments of ``template``: ``{name}`` (and anything after the brace) a file of ``data``, ``OUT`` (and
    its suffix) the output path ``out``, ``DATA`` the file ``bad`` of ``data``."""
    arguments = []
    for part in template:
        if part == "DATA":
            part = str(data / bad)
        elif part.startswith("OUT"):
            part = str(out) + part[3:]
        elif part.startswith("{"):
            name, _, rest = part[1:].partition("}")
            part = str(data / name) + rest
        arguments.append(part)
    return arguments
