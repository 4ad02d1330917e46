"""Where the e2e toolchain is cached: outside the repository, keyed by the hash of this folder's own files.

    python3 e2e/toolchain/key.py        → prints the cache folder (its bin/ holds the binaries once built)

Change any go.mod, go.sum, main.go or build.sh here and the key changes, so a stale toolchain is never used.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

HERE = Path(__file__).resolve().parent
INPUTS = ("go.mod", "go.sum", ".go", "build.sh", "key.py")


def cache_root() -> Path:
    return Path(os.environ.get("MLCLUSTER_E2E_CACHE") or Path.home() / ".cache" / "mlcluster-e2e")


def key() -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in HERE.rglob("*") if p.is_file() and p.name.endswith(INPUTS)):
        digest.update(str(path.relative_to(HERE)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def toolchain_dir() -> Path:
    return cache_root() / key()


def bin_dir() -> Path | None:
    """The built binaries, or None when this toolchain has not been built (or its build did not finish)."""
    folder = toolchain_dir()
    return folder / "bin" if (folder / "COMPLETE").is_file() else None


if __name__ == "__main__":
    print(toolchain_dir())
