# ruff: noqa: E501  (embedded shell and Python fakes read better unwrapped)
"""Run rendered host scripts for real: bash, in a scratch root (MLCLUSTER_ROOT), with fake system commands first
on PATH. The fakes record every call and answer from a shared scenario state: one cluster API (nodes with their
kubelet version, boot ID, labels, taints, annotations, schedulability and pods), and per host what is installed
(packages, the k3s/RKE2 binary, the loaded driver). Real coreutils do the file work under the scratch root.

A `Cluster` holds the shared state; `cluster.host(name)` is one machine; `host.run(script, stdin)` runs a script
there the way pulumi-command would (stdin, exit status, stderr).
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

# --- fakes ---------------------------------------------------------------------------------------------------------

_RECORD = 'printf "%s\\n" "$(basename "$0") $*" >>"$FAKE_STATE/calls.$FAKE_HOST"'

_SHELL_FAKES = {
    # sudo VAR=value cmd args… → run it (env handles the assignments).
    "sudo": 'exec env "$@"\n',
    "systemctl": _RECORD + textwrap.dedent('''
        case "$1" in
          is-active) [ -f "$FAKE_STATE/active.$FAKE_HOST.${3%.service}" ] ;;
          enable|restart|start) for unit in "$@"; do case "$unit" in --*|enable|restart|start) ;; *)
              touch "$FAKE_STATE/active.$FAKE_HOST.${unit%.service}" ;; esac; done ;;
          reboot) ;;
        esac
    '''),
    # Loading the module works unless the scenario says nouveau holds the GPU until a reboot.
    "modprobe": _RECORD + '\nif [ "$1" = nvidia ] && [ -f "$FAKE_STATE/driver-loadable.$FAKE_HOST" ] '
                          '&& [ ! -f "$FAKE_STATE/needs-reboot.$FAKE_HOST" ]; then '
                          'touch "$FAKE_STATE/driver-loaded.$FAKE_HOST"; fi\n',
    "update-initramfs": _RECORD + "\n",
    "sleep": _RECORD + "\n",  # the scripts' wait loops do not really wait here
    "ufw": _RECORD + "\n",
    "gpg": _RECORD + '\nout=""; while [ $# -gt 0 ]; do [ "$1" = -o ] && out="$2"; shift; done\n'
                     'cat >/dev/null; [ -z "$out" ] || { mkdir -p "$(dirname "$out")"; echo key >"$out"; }\n',
    "nvidia-smi": _RECORD + '\n[ -f "$FAKE_STATE/driver-loaded.$FAKE_HOST" ] || { echo "NVIDIA-SMI has failed" >&2; exit 9; }\n'
                            'cat "$FAKE_STATE/driver-version.$FAKE_HOST" 2>/dev/null || echo 580.95.05\n',
    "systemd-run": _RECORD + '\ncase "$*" in *reboot*) python3 "$FAKE_BIN/fakectl.py" reboot "$FAKE_NODE" ;; esac\n',
    "curl": _RECORD + textwrap.dedent('''
        url="${*: -1}"
        case "$url" in
          */cacerts) [ ! -f "$FAKE_STATE/api-down" ] || exit 7; echo CA ;;
          */gpgkey) echo "-----BEGIN PGP PUBLIC KEY BLOCK-----" ;;
          */nvidia-container-toolkit.list) echo "deb https://nvidia.github.io/libnvidia-container/stable/deb/amd64 /" ;;
          *k3s*|*rke2*) cat "$FAKE_BIN/installer.sh" ;;
          *) exit 22 ;;
        esac
    '''),
}

_INSTALLER = textwrap.dedent('''\
    # A stand-in for get.k3s.io / get.rke2.io: "installs" the binary at the requested version.
    set -e
    printf '%s\\n' "installer K3S=${INSTALL_K3S_VERSION:-} RKE2=${INSTALL_RKE2_VERSION:-} exec=${INSTALL_K3S_EXEC:-}${INSTALL_RKE2_TYPE:-} method=${INSTALL_RKE2_METHOD:-} artifact=${INSTALL_K3S_ARTIFACT_URL:-}${INSTALL_RKE2_ARTIFACT_URL:-}" >>"$FAKE_STATE/calls.$FAKE_HOST"
    version="${INSTALL_K3S_VERSION:-$INSTALL_RKE2_VERSION}"
    dist=k3s; [ -z "${INSTALL_RKE2_VERSION:-}" ] || dist=rke2
    bin="$MLCLUSTER_ROOT/usr/local/bin"
    mkdir -p "$bin"
    printf '#!/usr/bin/env bash\\nif [ "$1" = --version ]; then echo "%s version %s (fake)"; exit 0; fi\\nif [ "$1" = kubectl ]; then shift; exec python3 "$FAKE_BIN/fakectl.py" kubectl "$@"; fi\\n' "$dist" "$version" >"$bin/$dist"
    chmod +x "$bin/$dist"
    if [ "$dist" = rke2 ]; then
      mkdir -p "$MLCLUSTER_ROOT/var/lib/rancher/rke2/bin"
      printf '#!/usr/bin/env bash\\n[ "$1" = --kubeconfig ] && shift 2\\nexec python3 "$FAKE_BIN/fakectl.py" kubectl "$@"\\n' >"$MLCLUSTER_ROOT/var/lib/rancher/rke2/bin/kubectl"
      chmod +x "$MLCLUSTER_ROOT/var/lib/rancher/rke2/bin/kubectl"
    fi
    for u in "$dist-uninstall.sh" "$dist-agent-uninstall.sh"; do
      printf '#!/usr/bin/env bash\\necho uninstall >>"$FAKE_STATE/calls.$FAKE_HOST"\\nrm -f "%s/%s" "%s/%s-uninstall.sh" "%s/%s-agent-uninstall.sh"\\n' "$bin" "$dist" "$bin" "$dist" "$bin" "$dist" >"$bin/$u"
      chmod +x "$bin/$u"
    done
    python3 "$FAKE_BIN/fakectl.py" register "$FAKE_NODE" "$version"
''')

# kubectl, apt-get, dpkg-query, nvidia-ctk and the node registry, in Python (they keep structured state).
_FAKECTL = textwrap.dedent('''\
    import json, os, sys, uuid
    from pathlib import Path

    state = Path(os.environ["FAKE_STATE"])
    host = os.environ["FAKE_HOST"]
    nodes_file = state / "nodes.json"

    def load():
        return json.loads(nodes_file.read_text()) if nodes_file.exists() else {}

    def save(nodes):
        nodes_file.write_text(json.dumps(nodes, indent=1, sort_keys=True))

    def record(*words):
        with open(state / f"calls.{host}", "a") as f:
            f.write(" ".join(words) + "\\n")

    def jsonpath(node, path):
        path = path.strip("'{}").lstrip(".")
        parts = path.replace("\\\\.", "\\0").split(".")
        parts = [p.replace("\\0", ".") for p in parts]
        value = node
        for part in parts:
            value = value.get(part, "") if isinstance(value, dict) else ""
        return value if isinstance(value, str) else json.dumps(value)

    def kubectl(args):
        nodes = load()
        record("kubectl", *args)
        verb = args[0]
        if verb == "get":
            name = args[2]
            if name not in nodes:
                print(f'Error from server (NotFound): nodes "{name}" not found', file=sys.stderr)
                return 1
            if "-o" in args:
                print(jsonpath(nodes[name], args[args.index("-o") + 1].removeprefix("jsonpath=")), end="")
            return 0
        if verb == "wait":
            name = args[-2].split("/", 1)[1] if args[-2].startswith("node/") else args[2].split("/", 1)[1]
            return 0 if nodes.get(name, {}).get("status", {}).get("ready") else 1
        name = args[2] if verb in ("label", "annotate", "taint") else args[1]
        node = nodes[name]
        meta = node["metadata"]
        if verb == "drain":
            bare = [p for p in node.get("pods", []) if not p.get("controller")]
            if bare and "--force" not in args:
                print("error: cannot delete Pods that declare no controller (use --force to override): "
                      + ", ".join(p["name"] for p in bare), file=sys.stderr)
                return 1
            node["spec"]["unschedulable"] = True
            node["evicted"] = node.get("evicted", []) + [p["name"] for p in node.get("pods", [])]
            node["pods"] = []
        elif verb == "uncordon":
            node["spec"]["unschedulable"] = False
        elif verb in ("label", "annotate"):
            target = meta.setdefault("labels" if verb == "label" else "annotations", {})
            for item in args[3:]:
                if item.startswith("--"):
                    continue
                if item.endswith("-") and "=" not in item:
                    target.pop(item[:-1], None)
                else:
                    key, value = item.split("=", 1)
                    target[key] = value
        elif verb == "taint":
            taints = node["spec"].setdefault("taints", [])
            for item in args[3:]:
                if item.startswith("--"):
                    continue
                if item.endswith("-"):
                    key = item[:-1]
                    node["spec"]["taints"] = taints = [t for t in taints if t["key"] != key]
                else:
                    kv, effect = item.rsplit(":", 1)
                    key, value = kv.split("=", 1)
                    taints[:] = [t for t in taints if t["key"] != key] + [{"key": key, "value": value, "effect": effect}]
        save(nodes)
        return 0

    def register(name, version):
        nodes = load()
        node = nodes.setdefault(name, {"metadata": {"name": name, "labels": {}, "annotations": {}},
                                       "spec": {"unschedulable": False, "taints": []},
                                       "status": {"nodeInfo": {"bootID": str(uuid.uuid4())}, "ready": True}})
        node["status"]["nodeInfo"]["kubeletVersion"] = version
        save(nodes)

    def reboot(name):
        nodes = load()
        if name in nodes:
            nodes[name]["status"]["nodeInfo"]["bootID"] = str(uuid.uuid4())
        save(nodes)
        if (state / f"driver-loadable.{host}").exists():
            (state / f"driver-loaded.{host}").touch()

    def packages():
        path = state / f"packages.{host}.json"
        return path, (json.loads(path.read_text()) if path.exists() else {})

    def apt(args):
        record("apt-get", *args)
        if "install" not in args:
            return 0
        path, installed = packages()
        for item in args[args.index("install") + 1:]:
            if item.startswith("-"):
                continue
            name, _, version = item.partition("=")
            version = version.rstrip("*") or "1.0"
            if name.startswith("nvidia-driver-") and version == "1.0":
                version = name.split("-")[2] + ".95.05-0ubuntu0.24.04.1"
                (state / f"driver-loadable.{host}").touch()
            elif name.startswith("nvidia-driver-"):
                version += "-0ubuntu0.24.04.1"
                (state / f"driver-loadable.{host}").touch()
            installed[name] = version
        path.write_text(json.dumps(installed))
        return 0

    def dpkg_query(args):
        _, installed = packages()
        # dpkg-query's forms (checked with the real one): `-f FORMAT`, `-f=FORMAT`, `-fFORMAT`, `--showformat=FORMAT`.
        fmt = "${Version}\\n"
        for i, arg in enumerate(args):
            if arg == "-f":
                fmt = args[i + 1]
            elif arg.startswith("--showformat="):
                fmt = arg.split("=", 1)[1]
            elif arg.startswith("-f"):
                fmt = arg[2:].removeprefix("=")
        name = args[-1]
        if name not in installed:
            print(f"dpkg-query: no packages found matching {name}", file=sys.stderr)
            return 1
        print(fmt.replace("${Version}", installed[name]).replace("${Status}", "install ok installed"), end="")
        return 0

    def nvidia_ctk(args):
        record("nvidia-ctk", *args)
        out = next(a.split("=", 1)[1] for a in args if a.startswith("--output="))
        if args[0] == "config":
            sets = [args[i + 1] for i, a in enumerate(args) if a == "--set"]
            Path(out).write_text("\\n".join(sorted(sets)) + "\\n")
        else:
            Path(out).write_text("cdiVersion: 0.6.0\\n")
        return 0

    tool = sys.argv[1]
    args = sys.argv[2:]
    if tool == "kubectl":
        sys.exit(kubectl(args))
    if tool == "register":
        register(*args)
    elif tool == "reboot":
        reboot(*args)
    elif tool == "apt-get":
        sys.exit(apt(args))
    elif tool == "dpkg-query":
        sys.exit(dpkg_query(args))
    elif tool == "nvidia-ctk":
        sys.exit(nvidia_ctk(args))
''')


@dataclass
class Cluster:
    """Shared state of one fake site: the API's nodes, and per host its scratch root."""

    base: Path
    hosts: dict[str, Host] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.state = self.base / "state"
        self.bin = self.base / "bin"
        self.state.mkdir(parents=True, exist_ok=True)
        self.bin.mkdir(parents=True, exist_ok=True)
        for name, body in _SHELL_FAKES.items():
            self._write_bin(name, "#!/usr/bin/env bash\nset -eu\n" + body)
        for name in ("apt-get", "dpkg-query", "nvidia-ctk"):
            self._write_bin(name, f'#!/usr/bin/env bash\nexec python3 "$FAKE_BIN/fakectl.py" {name} "$@"\n')
        (self.bin / "installer.sh").write_text(_INSTALLER)
        (self.bin / "fakectl.py").write_text(_FAKECTL)

    def _write_bin(self, name: str, text: str) -> None:
        path = self.bin / name
        path.write_text(text)
        path.chmod(0o755)

    def host(self, name: str, os_id: str = "ubuntu") -> Host:
        if name not in self.hosts:
            root = self.base / "hosts" / name
            for folder in ("etc/apt/sources.list.d", "usr/share/keyrings", "usr/local/bin"):  # as on Ubuntu
                (root / folder).mkdir(parents=True, exist_ok=True)
            (root / "etc" / "os-release").write_text(f'ID={os_id}\nVERSION_ID="24.04"\n')
            self.hosts[name] = Host(self, name, root)
        return self.hosts[name]

    # The API's view.
    def nodes(self) -> dict:
        path = self.state / "nodes.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def node(self, name: str) -> dict:
        return self.nodes()[name]

    def edit_node(self, name: str, change) -> None:
        nodes = self.nodes()
        change(nodes[name])
        (self.state / "nodes.json").write_text(json.dumps(nodes))


@dataclass
class Host:
    cluster: Cluster
    name: str
    root: Path

    def run(self, script: str, stdin: str = "", node: str | None = None) -> subprocess.CompletedProcess:
        """Run `script` on this host (`node`: the node it acts on, for steps run from the first server)."""
        path = self.cluster.base / "script.sh"
        path.write_text(script)
        env = {"PATH": f"{self.cluster.bin}:/usr/bin:/bin", "HOME": str(self.root), "MLCLUSTER_ROOT": str(self.root),
               "FAKE_STATE": str(self.cluster.state), "FAKE_BIN": str(self.cluster.bin), "FAKE_HOST": self.name,
               "FAKE_NODE": node or self.name, "LANG": "C.UTF-8"}
        return subprocess.run(["bash", str(path)], input=stdin, capture_output=True, text=True, env=env, timeout=60)

    def calls(self) -> list[str]:
        path = self.cluster.state / f"calls.{self.name}"
        return path.read_text().splitlines() if path.exists() else []

    def forget_calls(self) -> None:
        (self.cluster.state / f"calls.{self.name}").unlink(missing_ok=True)

    def file(self, path: str) -> str:
        return (self.root / path.lstrip("/")).read_text()

    def has(self, path: str) -> bool:
        return (self.root / path.lstrip("/")).exists()

    def packages(self) -> dict:
        path = self.cluster.state / f"packages.{self.name}.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def driver_loaded(self) -> bool:
        return (self.cluster.state / f"driver-loaded.{self.name}").exists()


def run_env_check() -> None:  # pragma: no cover - documentation of what the harness needs
    assert os.path.exists("/usr/bin/env")
