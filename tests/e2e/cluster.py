"""A real control plane on 127.0.0.1 for the e2e loops: etcd, kube-apiserver and kube-controller-manager (and,
for the journey, kube-scheduler, Kueue and kwok), built from Go modules by `make e2e-toolchain`.

Everything runs from a temporary folder with a token file, a CA and serving certificate and service-account keys
made with openssl; every process is stopped by its PID, also when a test fails. Nothing listens beyond loopback.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "e2e" / "toolchain"))
import key as toolchain  # noqa: E402  (e2e/toolchain/key.py: where `make e2e-toolchain` put the binaries)

ADMIN_TOKEN = "mlcluster-e2e-admin-token"
CONTEXT = "mlcluster-e2e"  # the context stacks/Pulumi.e2e.yaml names


def toolchain_bin() -> Path | None:
    return toolchain.bin_dir()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@dataclass
class LocalCluster:
    """Processes of one control plane, their folder and how to reach the API server."""

    home: Path
    bin: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    api_port: int = 0
    etcd_port: int = 0

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.api_port}"

    @property
    def kubeconfig_path(self) -> Path:
        return self.home / "kubeconfig"

    def kubeconfig(self, token: str = ADMIN_TOKEN, user: str = "admin") -> str:
        ca = base64.b64encode((self.home / "ca.crt").read_bytes()).decode()
        return json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": CONTEXT,
            "clusters": [{"name": "e2e", "cluster": {"server": self.server, "certificate-authority-data": ca}}],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": CONTEXT, "context": {"cluster": "e2e", "user": user}}]})

    def _certificates(self) -> None:
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=e2e-ca",
                 "-keyout", "ca.key", "-out", "ca.crt", cwd=self.home)
        (self.home / "san.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\n")
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=kube-apiserver", "-keyout", "apiserver.key",
                 "-out", "apiserver.csr", cwd=self.home)
        _openssl("x509", "-req", "-in", "apiserver.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                 "-days", "2", "-extfile", "san.cnf", "-out", "apiserver.crt", cwd=self.home)
        _openssl("genrsa", "-out", "sa.key", "2048", cwd=self.home)
        _openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=self.home)
        # token,user,uid,"groups": the admin, and team members the RBAC checks impersonate through tokens.
        (self.home / "tokens.csv").write_text(f'{ADMIN_TOKEN},admin,1,"system:masters"\n')

    def _spawn(self, name: str, args: list[str]) -> None:
        log = open(self.home / f"{name}.log", "w")  # noqa: SIM115  (closed with the process)
        self.processes[name] = subprocess.Popen([str(self.bin / args[0]), *args[1:]], stdout=log,
                                                stderr=subprocess.STDOUT, start_new_session=True)

    def start(self, components: tuple[str, ...] = ("kube-controller-manager",)) -> None:
        self._certificates()
        self.etcd_port, self.api_port = free_port(), free_port()
        self.kubeconfig_path.write_text(self.kubeconfig())
        peer = free_port()
        self._spawn("etcd", ["etcd", "--data-dir", str(self.home / "etcd"), "--listen-client-urls",
                             f"http://127.0.0.1:{self.etcd_port}", "--advertise-client-urls",
                             f"http://127.0.0.1:{self.etcd_port}", "--listen-peer-urls", f"http://127.0.0.1:{peer}",
                             "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
                             "--initial-cluster", f"default=http://127.0.0.1:{peer}", "--log-level", "warn"])
        home = self.home
        self._spawn("kube-apiserver", [
            "kube-apiserver", f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={self.api_port}",
            f"--tls-cert-file={home / 'apiserver.crt'}", f"--tls-private-key-file={home / 'apiserver.key'}",
            f"--client-ca-file={home / 'ca.crt'}", f"--token-auth-file={home / 'tokens.csv'}",
            "--authorization-mode=RBAC", "--service-cluster-ip-range=10.96.0.0/16",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-key-file={home / 'sa.pub'}", f"--service-account-signing-key-file={home / 'sa.key'}",
            # The `kubernetes` Service cannot point at a loopback address, and nothing here needs it to.
            "--endpoint-reconciler-type=none",
            "--allow-privileged=true", "--profiling=false", "--v=1"])
        self.wait_ready()
        if "kube-controller-manager" in components:
            self._spawn("kube-controller-manager", [
                "kube-controller-manager", f"--kubeconfig={self.kubeconfig_path}",
                f"--authentication-kubeconfig={self.kubeconfig_path}",
                f"--authorization-kubeconfig={self.kubeconfig_path}",
                f"--service-account-private-key-file={home / 'sa.key'}", f"--root-ca-file={home / 'ca.crt'}",
                "--leader-elect=false", "--bind-address=127.0.0.1", f"--secure-port={free_port()}",
                "--controllers=*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller"])
        if "kube-scheduler" in components:
            self._spawn("kube-scheduler", [
                "kube-scheduler", f"--kubeconfig={self.kubeconfig_path}",
                f"--authentication-kubeconfig={self.kubeconfig_path}",
                f"--authorization-kubeconfig={self.kubeconfig_path}",
                "--leader-elect=false", "--bind-address=127.0.0.1", f"--secure-port={free_port()}"])

    def request(self, method: str, path: str, body: dict | None = None, token: str = ADMIN_TOKEN) -> tuple[int, Any]:
        """One API call; the body as JSON when it is JSON, else as text (e.g. /readyz)."""
        context = ssl.create_default_context(cafile=str(self.home / "ca.crt"))
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.server + path, data=data, method=method,
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})

        def parse(raw: bytes) -> Any:
            try:
                return json.loads(raw or b"{}")
            except ValueError:
                return raw.decode(errors="replace")

        try:
            with urllib.request.urlopen(req, context=context, timeout=10) as response:
                return response.status, parse(response.read())
        except urllib.error.HTTPError as error:
            return error.code, parse(error.read())

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            with contextlib.suppress(OSError, ValueError):
                status, _ = self.request("GET", "/readyz")
                if status == 200:
                    return
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited: {(self.home / f'{name}.log').read_text()[-3000:]}")
            time.sleep(0.5)
        with contextlib.suppress(OSError, ValueError):
            print(self.request("GET", "/readyz?verbose"), file=sys.stderr)
        raise TimeoutError(f"kube-apiserver not ready: {(self.home / 'kube-apiserver.log').read_text()[-3000:]}")

    def stop(self) -> None:
        """Every process by its PID (its whole session), newest first; then wait for them."""
        for process in reversed(list(self.processes.values())):
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


@contextlib.contextmanager
def local_cluster(home: Path, bin_dir: Path, components: tuple[str, ...] = ("kube-controller-manager",)
                  ) -> Iterator[LocalCluster]:
    home.mkdir(parents=True, exist_ok=True)
    cluster = LocalCluster(home=home, bin=bin_dir)
    try:
        cluster.start(components)
        yield cluster
    finally:
        cluster.stop()
