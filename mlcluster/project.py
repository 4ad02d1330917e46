"""Where the project is: a helper every command needs, importable without the Pulumi runtime."""

from __future__ import annotations

from pathlib import Path


def project_root() -> Path:
    """The folder with Pulumi.yaml: the working directory or an ancestor, else this checkout."""
    for folder in [Path.cwd(), *Path.cwd().parents]:
        if (folder / "Pulumi.yaml").is_file():
            return folder
    return Path(__file__).resolve().parents[1]
