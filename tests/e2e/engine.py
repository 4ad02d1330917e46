"""The Pulumi CLI, as a user runs it, on a scratch copy of the checkout: a local file backend, a passphrase secrets
provider, no update checks, no plugin downloads (the toolchain's binaries are found on PATH), and the program
served through the CLI's client mode (tests/e2e/langhost.py)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mlcluster.review.revisions import PACKAGED, export

ROOT = Path(__file__).resolve().parents[2]
STACK = "e2e"


@dataclass
class Project:
    """A scratch copy of the working tree that the Pulumi CLI runs in (the test may change its stack files)."""

    path: Path
    home: Path
    bin: Path
    kubeconfig: Path

    @classmethod
    def copy(cls, tmp: Path, bin_dir: Path, kubeconfig: Path) -> Project:
        path = tmp / "project"
        export(ROOT, None, path)  # tracked and untracked files, as `mlcluster diff` exports the working tree
        for name in PACKAGED:  # the program imports this copy's code, not the installed checkout's
            (path / "mlcluster" / name).symlink_to(path / name, target_is_directory=True)
        home = tmp / "pulumi-home"
        (home / "state").mkdir(parents=True)
        return cls(path, home, bin_dir, kubeconfig)

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "PATH": f"{self.bin}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "PULUMI_HOME": str(self.home / ".pulumi"),
            "PULUMI_BACKEND_URL": f"file://{self.home / 'state'}",
            "PULUMI_CONFIG_PASSPHRASE": "mlcluster-e2e",
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "PULUMI_SKIP_CONFIRMATIONS": "true",
            "KUBECONFIG": str(self.kubeconfig),
            "PYTHONPATH": str(self.path),
            "NO_COLOR": "1",
        }

    def cli(self, *args: str, check: bool = True, timeout: int = 900) -> subprocess.CompletedProcess:
        done = subprocess.run([str(self.bin / "pulumi"), *args], cwd=self.path, env=self.env, capture_output=True,
                              text=True, timeout=timeout, check=False)
        if check and done.returncode != 0:
            raise AssertionError(f"pulumi {' '.join(args)} exited {done.returncode}:\n{done.stdout[-6000:]}\n"
                                 f"{done.stderr[-6000:]}")
        return done

    def mlcluster(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", "from mlcluster.cli import main; main()", *args], cwd=self.path,
                              env=self.env, capture_output=True, text=True, check=False)

    @contextlib.contextmanager
    def language_host(self) -> Iterator[str]:
        """`tests/e2e/langhost.py` serving this copy's program; yields its address for `--client`."""
        process = subprocess.Popen([sys.executable, str(ROOT / "tests" / "e2e" / "langhost.py")], cwd=self.path,
                                   env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   start_new_session=True)
        try:
            port = process.stdout.readline().strip()  # type: ignore[union-attr]
            if not port.isdigit():
                raise AssertionError(f"language host did not start: {process.stderr.read()}")  # type: ignore[union-attr]
            yield f"127.0.0.1:{port}"
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def run(self, operation: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """`pulumi <operation>` of the stack with the program served by the language host."""
        with self.language_host() as address:
            return self.cli(operation, "--stack", STACK, "--non-interactive", f"--client={address}", *args,
                            check=check)

    def init(self) -> None:
        self.cli("login", f"file://{self.home / 'state'}")
        self.cli("stack", "init", STACK, "--secrets-provider", "passphrase")
