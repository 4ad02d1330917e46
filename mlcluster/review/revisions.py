"""Render a profile or stack as the toolkit was at a git revision, with that revision's own code.

The revision's tree is exported to a temporary folder (`git archive`; the working tree: tracked and untracked,
not ignored, files) and rendered there in a subprocess whose import path starts with that folder, so a
change to a profile, a template, a component or the chart catalog all show up. The project's package layout
(profiles/, components/, addons/ installed as mlcluster.*) is recreated there with symlinks.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from mlcluster.errors import ConfigError

PACKAGED = ("profiles", "components", "addons")  # top-level folders installed as mlcluster.<name>


def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ConfigError.one("git", " ".join(args), done.stderr.strip().splitlines()[-1] if done.stderr else "",
                              "a revision git knows (a branch, tag or commit) in this repository")
    return done.stdout.strip()


def default_base(root: Path) -> str:
    """The merge-base with `main` (what a pull request is compared with), or HEAD without a main branch."""
    for main in ("main", "origin/main"):
        if subprocess.run(["git", "-C", str(root), "rev-parse", "--verify", "--quiet", main],
                          capture_output=True, check=False).returncode == 0:
            return git(root, "merge-base", "HEAD", main)
    return git(root, "rev-parse", "HEAD")


def export(root: Path, revision: str | None, dest: Path) -> None:
    """The tree at `revision` (None: the working tree) into `dest`."""
    if revision is None:
        listed = git(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
        for name in filter(None, listed.split("\0")):
            source = root / name
            if source.is_file():
                target = dest / name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
        return
    archive = subprocess.run(["git", "-C", str(root), "archive", "--format=tar", revision], capture_output=True,
                             check=False)
    if archive.returncode != 0:
        raise ConfigError.one("--base/--head", "", revision, "a revision git knows (a branch, tag or commit)")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(dest, filter="data")


def render_revision(root: Path, revision: str | None, render_args: list[str], out: Path) -> None:
    """`mlcluster render <render_args> --out <out>` as the toolkit was at `revision`."""
    with tempfile.TemporaryDirectory(prefix="mlcluster-revision-") as tmp:
        tree = Path(tmp)
        export(root, revision, tree)
        for name in PACKAGED:
            link = tree / "mlcluster" / name
            if (tree / name).is_dir() and not link.exists():
                link.symlink_to(tree / name, target_is_directory=True)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [tmp, os.environ.get("PYTHONPATH")]))}
        done = subprocess.run([sys.executable, "-c", "from mlcluster.cli import main; main()", "render",
                               *render_args, "--out", str(out)], cwd=tree, env=env, capture_output=True, text=True,
                              check=False)
        if done.returncode != 0:
            where = revision or "the working tree"
            message = (done.stderr or done.stdout).strip()
            raise ConfigError.one(f"render at {where}", "", " ".join(render_args),
                                  f"a profile or stack that renders there; it said: {message[-600:]}")


# What a committed revision's render depends on besides its own tree: the interpreter and the libraries that
# shape the output (the mocks, the provider SDKs' input names, validation, YAML). All go into the cache key.
RENDER_LIBRARIES = ("pulumi", "pulumi-kubernetes", "pulumi-aws", "pulumi-random", "pulumi-command", "pyyaml",
                    "kubernetes-validate", "jsonschema-rs", "jinja2", "pydantic")


def cache_dir() -> Path:
    """Where renders of committed revisions are kept: $MLCLUSTER_CACHE, else ~/.cache/mlcluster/renders."""
    if configured := os.environ.get("MLCLUSTER_CACHE"):
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mlcluster" / "renders"


def cache_key(root: Path, revision: str, render_args: list[str]) -> str:
    """Content-addressed: the revision's tree hash (not its name: a moved branch is another key), the render
    arguments, the Python version and the versions of the libraries that shape a render."""
    from importlib.metadata import PackageNotFoundError, version

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "-"

    tree = git(root, "rev-parse", f"{revision}^{{tree}}")
    material = {"tree": tree, "args": render_args, "python": sys.version,
                "libraries": {name: installed(name) for name in RENDER_LIBRARIES}}
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:32]


def render_revision_cached(root: Path, revision: str | None, render_args: list[str], out: Path) -> bool:
    """render_revision, reusing a committed revision's earlier render (True when it did). The working tree is
    always rendered. Entries are written whole (a temporary folder renamed into place), so concurrent runs may
    share the cache and a half-written entry is never read."""
    if revision is None:
        render_revision(root, revision, render_args, out)
        return False
    entry = cache_dir() / cache_key(root, revision, render_args)
    if (entry / "resources.json").is_file():
        shutil.copytree(entry, out)
        return True
    render_revision(root, revision, render_args, out)
    entry.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{entry.name}-", dir=entry.parent))
    try:
        shutil.copytree(out, staging, dirs_exist_ok=True)
        os.replace(staging, entry)
    except OSError:  # another run stored it first: theirs is the same content
        shutil.rmtree(staging, ignore_errors=True)
    return False
