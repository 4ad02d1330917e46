"""Writing only where we may: a command that writes checks its target before it touches anything.

`render` replaces a folder only when it is recognisably an earlier render of ours (it holds the marker file
render writes, or, for renders made before the marker existed, nothing but render's own files), an empty
folder, or nothing yet. Anything else (a user's file, a foreign folder, the working directory or one of its
parents, `/`, the home folder, a symlink) is a `ConfigError`: exit 2 and nothing touched. Generated files in
the checkout (`profiles/schema.json`, `profiles/REFERENCE.md`, `docs/guardrails.md`) are overwritten only
when what is there is that generated file.
"""

from __future__ import annotations

import os
from pathlib import Path

from mlcluster.errors import ConfigError

RENDER_MARKER = ".mlcluster-render"
MARKER_TEXT = ("This folder was written by `mlcluster render` and is replaced by the next render to it.\n"
               "Anything you add here is deleted then; keep your own files elsewhere.\n")
# What a render writes at its top level; a marker-less folder holding only these is an older render.
RENDER_ENTRIES = frozenset({"resources.json", "SUMMARY.md", "manifests", "helm", "scripts", RENDER_MARKER})


def _refuse(flag: str, target: Path | str, why: str) -> ConfigError:
    return ConfigError.one(flag, "", str(target), f"{why}; render writes a new folder or replaces an earlier "
                           "render (it carries the file .mlcluster-render), nothing else — pick another --out")


def check_render_target(out: Path, flag: str = "--out") -> Path:
    """The absolute folder render may write to, or a ConfigError saying why not (nothing is touched)."""
    given = Path(os.path.expanduser(str(out)))
    if given.is_symlink():
        raise _refuse(flag, out, f"it is a symlink to {os.readlink(given)}; render does not follow links")
    target = Path(os.path.abspath(given))
    if target.exists() and not target.is_dir():
        raise _refuse(flag, out, "it is a file")
    cwd = Path.cwd().resolve()
    resolved = target.resolve()
    if resolved == Path(resolved.anchor):
        raise _refuse(flag, out, "it is the file-system root")
    if resolved == Path.home().resolve():
        raise _refuse(flag, out, "it is your home folder")
    if resolved == cwd or resolved in cwd.parents:
        raise _refuse(flag, out, "it is the working directory or one of its parents")
    if not target.is_dir():
        return target
    entries = sorted(p.name for p in target.iterdir())
    if not entries or RENDER_MARKER in entries:
        return target
    if "resources.json" in entries and set(entries) <= RENDER_ENTRIES:
        return target  # an older render, written before the marker existed
    shown = ", ".join(entries[:3]) + (f" and {len(entries) - 3} more" if len(entries) > 3 else "")
    raise _refuse(flag, out, f"it is a folder that is not a render (it holds {shown})")


def check_generated_file(path: Path, signature: str, command: str) -> None:
    """`path` may be (re)written by `command` only if it is missing or already that generated file."""
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise ConfigError.one(command, "", str(path), "it is not a regular file; nothing was written")
    if path.exists():
        head = path.read_text(encoding="utf-8", errors="replace")
        if signature not in head:
            raise ConfigError.one(command, "", str(path), f"it is not the file `{command}` generates (no "
                                  f"{signature!r} in it), so it is left alone; move it away to regenerate it")


def source_checkout(folder: Path, command: str) -> Path:
    """The mlcluster checkout that holds `folder`; generated files are written only into a checkout."""
    for parent in [folder, *folder.parents]:
        pyproject = parent / "pyproject.toml"
        if pyproject.is_file() and 'name = "mlcluster"' in pyproject.read_text(encoding="utf-8"):
            return parent
    raise ConfigError.one(command, "", str(folder), "it regenerates files of a source checkout of mlcluster; "
                          "this installation is not one (run it in your git checkout); nothing was written")
