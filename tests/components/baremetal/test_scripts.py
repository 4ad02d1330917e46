"""Every script the toolkit would run on a host: shellcheck-clean, valid bash, strict mode, no secrets."""

from __future__ import annotations

import functools
import shutil
import subprocess

import pytest

from mlcluster.render import render
from tests.conftest import rendered_profile, rendered_stack

VARIANTS = {
    "lab": lambda: rendered_stack("lab"),
    "colo": lambda: rendered_stack("colo"),
    "onprem-gpu": lambda: rendered_profile("onprem-gpu"),
    "rke2": lambda: rke2(),
    "air-gapped": lambda: air_gapped(),
    "single-server": lambda: single_server(),
    "operator-driver": lambda: operator_driver(),
}


@functools.cache
def rke2():
    return render(profile="onprem-gpu", sets=("substrate.distribution=rke2", "substrate.version=v1.35.1+rke2r1",
                                             "addons.storage.provider=longhorn"))


@functools.cache
def air_gapped():
    return render(profile="onprem-gpu", sets=(
        "substrate.air_gap.artifact_url=https://mirror.example.internal/k3s",
        "substrate.air_gap.package_mirror=https://mirror.example.internal/nvidia",
        "substrate.air_gap.package_mirror_key="
        "'-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBGexample\n-----END PGP PUBLIC KEY BLOCK-----'",
        "substrate.air_gap.registry_mirror=registry.example.internal:5000",
        "substrate.air_gap.chart_repository=https://charts.example.internal"))


@functools.cache
def single_server():
    import json

    from mlcluster.components.baremetal.inventory import example_host_key
    from mlcluster.render import engine, writer

    inventory = {"networks": ["192.0.2.0/24"], "hosts": [
        {"name": "box", "address": "192.0.2.2", "role": "server", "pool": "system",
         "host_key": example_host_key("box")}]}
    result = engine.run("solo", {"mlcluster:profile": "onprem-gpu", "mlcluster:inventory": json.dumps(inventory),
                                 "mlcluster:sshPrivateKey": "[secret]"}, ["mlcluster:sshPrivateKey"], "test",
                        sets=("node_pools=[{name: system, role: system, min: 1, max: 1}]", "tiers=[]", "teams=[]",
                              "ml.jupyterhub.enabled=false"))  # no teams: no notebooks
    return type("R", (), {"files": writer.build_tree(result, [])})


@functools.cache
def operator_driver():
    """The GPU operator installs drivers: GPU hosts get only the toolkit, pointed at the driver container."""
    return render(profile="onprem-gpu", sets=("addons.gpu.driver=operator",))  # example inventory follows


def scripts(name):
    return {p: t for p, t in VARIANTS[name]().files.items() if p.startswith("scripts/")}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_scripts_pass_shellcheck_and_bash_n(name, tmp_path):
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (Debian package `shellcheck`; .ci/run installs it)")
    found = scripts(name)
    assert found
    paths = []
    for rel, text in found.items():
        path = tmp_path / rel.replace("/", "_")
        path.write_text(text)
        paths.append(str(path))
        assert subprocess.run(["bash", "-n", str(path)], capture_output=True).returncode == 0, rel
    result = subprocess.run(["shellcheck", "--severity=style", "--shell=bash", *paths], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_scripts_are_strict_and_hold_no_secret(name):
    for rel, text in scripts(name).items():
        lines = text.splitlines()
        assert lines[0] == "#!/usr/bin/env bash", rel
        assert "set -euo pipefail" in lines[:8], rel
        assert "[secret]" not in text and "mock-" not in text, rel


def test_every_role_and_step_is_rendered():
    names = set(scripts("lab"))
    for expected in ("scripts/mlcluster-server-1-install.sh", "scripts/mlcluster-server-2-install.sh",
                     "scripts/mlcluster-a100-1-gpu.sh", "scripts/mlcluster-a100-1-install.sh",
                     "scripts/mlcluster-server-1-kubeconfig.sh", "scripts/mlcluster-server-1-upgrade.sh",
                     "scripts/mlcluster-a100-1-drain.sh", "scripts/mlcluster-a100-1-uncordon.sh",
                     "scripts/mlcluster-a100-1-driver.sh", "scripts/mlcluster-a100-1-node-config.sh",
                     "scripts/mlcluster-a100-1-install.delete.sh"):
        assert expected in names


def test_first_server_initialises_others_join_the_vip():
    files = scripts("lab")
    first = files["scripts/mlcluster-server-1-install.sh"]
    second = files["scripts/mlcluster-server-2-install.sh"]
    agent = files["scripts/mlcluster-a100-1-install.sh"]
    assert "cluster-init: true" in first and "server: https://" not in first
    assert "server: https://192.0.2.10:6443" in second and "server: https://192.0.2.10:6443" in agent
    for text in (first, second):
        assert "secrets-encryption: true" in text and "- 192.0.2.10" in text  # TLS SAN
        assert "kube-vip.yaml" in text
    assert "nvidia.com/gpu=true:NoSchedule" in agent
    assert "nvidia.com/gpu.product=NVIDIA-A100-SXM4-80GB" in agent
    assert "kube-vip.yaml" not in agent and "secrets-encryption" not in agent
    # Agents hold the agent token only; servers hand it out (docs.k3s.io/cli/token).
    assert "token-file: /etc/rancher/k3s/agent-token" in agent and "cluster-token" not in agent
    assert "agent-token-file: /etc/rancher/k3s/agent-token" in first


def test_gpu_driver_modes_and_one_owner_of_containerd_config():
    files = scripts("lab")
    install = files["scripts/mlcluster-a100-1-gpu.sh"]
    verify = files["scripts/mlcluster-l40s-1-gpu.sh"]
    assert 'wanted_driver="580"' in install and "apt-get install" in install
    assert "preinstalled, but nvidia-smi finds no working driver" in verify
    for text in (install, verify):
        assert "nvidia-ctk cdi generate" in text
        assert "containerd" not in text.split("set -euo pipefail")[1]  # the distribution owns containerd's config
        # NVIDIA's guidance against the NVIDIA_VISIBLE_DEVICES escape (toolkit config.toml keys).
        assert "--set accept-nvidia-visible-devices-envvar-when-unprivileged=false" in text
        assert "--set accept-nvidia-visible-devices-as-volume-mounts=true" in text
    assert "nvidia-fabricmanager" in install  # 8x A100-SXM4: an NVSwitch system
    assert "nvidia-fabricmanager" not in files["scripts/mlcluster-l40s-1-gpu.sh"]


def test_device_plugin_passes_gpus_as_volume_mounts_on_bare_metal():
    """k8s-device-plugin v0.20.0 README: deviceListStrategy volume-mounts, matched by the toolkit setting above."""
    import yaml

    lab = rendered_stack("lab")  # GPU operator mode: its device plugin reads our ConfigMap, and the env wins
    configs = yaml.safe_load(lab.files["manifests/node-agents/configmap-device-plugin-config.yaml"])["data"]
    for text in configs.values():
        assert yaml.safe_load(text)["flags"]["plugin"]["deviceListStrategy"] == "volume-mounts"
    operator = yaml.safe_load(lab.files["helm/gpu-operator.yaml"])["values"]["devicePlugin"]
    assert {"name": "DEVICE_LIST_STRATEGY", "value": "volume-mounts"} in operator["env"]
    from mlcluster.addons.gpu.config import plugin_configs
    from mlcluster.profiles.effective import load_profile

    # The standalone device plugin gets the same configs; on eks the AMI's toolkit is not ours: unchanged there.
    assert all("volume-mounts" in t for t in plugin_configs(load_profile("onprem-gpu")).values())
    assert not any("volume-mounts" in t for t in plugin_configs(load_profile("aws-gpu")).values())


def test_upgrade_scripts_refuse_minor_skips_and_downgrades():
    text = scripts("lab")["scripts/mlcluster-a100-1-drain.sh"]
    assert "refusing to skip a Kubernetes minor version" in text and "refusing to downgrade" in text
    assert "kubectl drain" in text or "drain \"$node\"" in text


def test_air_gapped_sources():
    files = scripts("air-gapped")
    install = files["scripts/mlcluster-server-1-install.sh"]
    assert "INSTALL_K3S_ARTIFACT_URL=\"https://mirror.example.internal/k3s\"" in install
    assert "registry.example.internal:5000" in install and "registries.yaml" in install
    gpu = files["scripts/mlcluster-gpu-a100-1-gpu.sh"]
    assert "[trusted=yes]" not in gpu
    assert "deb [signed-by=/usr/share/keyrings/mlcluster-mirror.gpg] https://mirror.example.internal/nvidia /" in gpu
    assert "image: registry.example.internal:5000/kube-vip/kube-vip:" in install  # kube-vip from the mirror too
    import yaml

    release = yaml.safe_load(air_gapped().files["helm/kube-prometheus-stack.yaml"])
    assert release["repository"] == "https://charts.example.internal"


def test_rke2_variant():
    files = scripts("rke2")
    install = files["scripts/mlcluster-server-2-install.sh"]
    assert "get.rke2.io" in install and "INSTALL_RKE2_VERSION" in install
    assert "server: https://192.0.2.5:9345" in install
    # rancher/rke2 install.sh: the tarball method installs to /usr/local/bin; RKE2 has no cluster-init flag, and
    # since v1.36 its packaged ingress is Traefik (docs.rke2.io/reference/ingress_migration): both are disabled.
    assert "INSTALL_RKE2_METHOD=tar" in install and "cluster-init" not in files["scripts/mlcluster-server-1-install.sh"]
    assert "- rke2-ingress-nginx\n- rke2-traefik" in install
    assert 'kube_bin="$root/usr/local/bin/rke2"' in install
    assert "open-iscsi nfs-common" in install  # Longhorn's host prerequisites


def test_colo_hosts_are_firewalled_and_the_overlay_encrypted():
    """14.11: behind a bastion, cluster ports open to the host networks only, flannel over WireGuard, and the
    kubeconfig reaches the API through the runner's SOCKS tunnel (client-go honours `proxy-url`)."""
    files = scripts("colo")
    install = files["scripts/mlcluster-cp-1-install.sh"]
    assert "flannel-backend: wireguard-native" in install
    assert "sudo ufw allow from 198.51.100.0/24 to any port 6443 proto tcp" in install
    assert "sudo ufw allow from 203.0.113.5/32 to any port 22 proto tcp" in install
    assert "sudo ufw allow from 203.0.113.5/32 to any port 6443" not in install
    assert "sudo ufw default deny incoming" in install
    kubeconfig = files["scripts/mlcluster-cp-1-kubeconfig.sh"]
    assert "proxy-url: socks5://127.0.0.1:1080" in kubeconfig
