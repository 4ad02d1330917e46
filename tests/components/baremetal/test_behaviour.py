"""The host scripts, run: bash executes each rendered script in a scratch root with fake system commands that
record their calls and answer from a scenario (harness.py). Each test names the defect it guards (issue 14).

Scenarios: fresh install, second run changes nothing, a token that differs on a running host, a join before the
registration address answers, configuration/label/taint changes reaching the node, a version bump through the
maintenance chain (with a notebook pod on the node), a driver change (drain, install, reboot, uncordon), a GPU host
whose driver needs a reboot, a non-Ubuntu host, destroy, RKE2, an air-gapped mirror, Longhorn prerequisites.
"""

from __future__ import annotations

import functools
import shutil

import pytest

from mlcluster.components.baremetal import scripts
from mlcluster.components.baremetal.inventory import Driver
from mlcluster.render import render
from tests.components.baremetal.harness import Cluster
from tests.conftest import rendered_stack

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="bash is needed to run the host scripts")

SERVER_TOKENS = "server-token\nagent-token\n"
AGENT_TOKEN = "agent-token\n"


@functools.cache
def lab(version: str = "v1.35.1+k3s1"):
    rendered = rendered_stack("lab") if version == "v1.35.1+k3s1" else render(
        stack="lab", sets=(f"substrate.version={version}",))
    return {p.removeprefix("scripts/mlcluster-").removesuffix(".sh"): t for p, t in rendered.files.items()
            if p.startswith("scripts/")}


@pytest.fixture
def site(tmp_path):
    return Cluster(tmp_path)


def bootstrap(site, hosts=("server-1", "a100-1"), version="v1.35.1+k3s1"):
    """Fresh hosts: GPU preparation, install, node configuration — the order the program runs them in."""
    s = lab(version)
    for name in hosts:
        host = site.host(name)
        if f"{name}-gpu" in s:
            assert host.run(s[f"{name}-gpu"]).returncode == 0
        tokens = SERVER_TOKENS if name.startswith("server") else AGENT_TOKEN
        result = host.run(s[f"{name}-install"], tokens)
        assert result.returncode == 0, result.stderr
        config = site.host("server-1").run(s[f"{name}-node-config"], node=name)
        assert config.returncode == 0, config.stderr
    return s


def chain(site, s, name):
    """The maintenance steps of one node, as the chain runs them (drain/uncordon from the first server)."""
    results = {}
    for step in ("drain", "upgrade", "driver", "uncordon"):
        if f"{name}-{step}" not in s:
            continue
        on = "server-1" if step in ("drain", "uncordon") else name
        results[step] = site.host(on).run(s[f"{name}-{step}"], node=name)
        assert results[step].returncode == 0, (step, results[step].stderr)
    return results


# --- install: fresh, idempotent, tokens ---------------------------------------------------------------------------


def test_fresh_install_then_a_second_run_changes_nothing(site):
    bootstrap(site)
    server = site.host("server-1")
    assert "installer K3S=v1.35.1+k3s1 RKE2= exec=server method= artifact=" in server.calls()
    assert server.file("/etc/rancher/k3s/cluster-token").strip() == "server-token"
    agent = site.host("a100-1")
    assert agent.file("/etc/rancher/k3s/agent-token").strip() == "agent-token"
    assert not agent.has("/etc/rancher/k3s/cluster-token")  # 14.6: agents never hold the server token
    server.forget_calls()
    again = server.run(lab()["server-1-install"], SERVER_TOKENS)
    assert again.returncode == 0 and "configuration unchanged" in again.stderr
    assert not [c for c in server.calls() if c.startswith(("installer", "systemctl", "apt-get"))]


def test_a_running_hosts_token_is_never_overwritten(site):
    """14.8: a stack that lost its state (or a destroy without uninstall) must not write a new token over a
    running cluster's: k3s would refuse to start with "bootstrap data already found and encrypted"."""
    bootstrap(site, hosts=("server-1",))
    server = site.host("server-1")
    result = server.run(lab()["server-1-install"], "another-token\nagent-token\n")
    assert result.returncode == 1 and "already runs a cluster with another token" in result.stderr
    assert server.file("/etc/rancher/k3s/cluster-token").strip() == "server-token"


def test_joining_waits_for_the_registration_address(site):
    """14.15: server 2 and agents join through the VIP only once it answers."""
    bootstrap(site, hosts=("server-1",))
    (site.state / "api-down").touch()
    result = site.host("server-2").run(lab()["server-2-install"], SERVER_TOKENS)
    assert result.returncode == 1 and "does not answer" in result.stderr
    assert not [c for c in site.host("server-2").calls() if c.startswith("installer")]
    (site.state / "api-down").unlink()
    assert site.host("server-2").run(lab()["server-2-install"], SERVER_TOKENS).returncode == 0


def test_non_ubuntu_hosts_are_refused(site):
    """14.9: the scripts are Ubuntu's (apt, ufw, Ubuntu's NVIDIA packages); anything else stops at once."""
    host = site.host("server-1", os_id="rhel")
    result = host.run(lab()["server-1-install"], SERVER_TOKENS)
    assert result.returncode == 1 and "only Ubuntu" in result.stderr and not host.calls()


# --- configuration changes reach the node --------------------------------------------------------------------------


def test_config_changes_restart_the_service_and_labels_follow_through_the_api(site):
    """14.7: config.yaml used to be rewritten without a restart, and node-label/node-taint apply only at
    registration. Now a changed config restarts the service, and node-config sets and removes labels/taints."""
    s = bootstrap(site)
    agent = site.host("a100-1")
    node = site.node("a100-1")
    assert node["metadata"]["labels"]["nvidia.com/gpu.product"] == "NVIDIA-A100-SXM4-80GB"
    assert node["spec"]["taints"] == [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}]
    assert node["metadata"]["annotations"]["mlcluster.io/driver"] == "580"
    # A label the profile no longer sets, and a label an admin set by hand.
    site.edit_node("a100-1", lambda n: n["metadata"]["labels"].update({"old/managed": "x", "admin/own": "y"}))
    site.edit_node("a100-1", lambda n: n["metadata"]["annotations"].update(
        {"mlcluster.io/labels": n["metadata"]["annotations"]["mlcluster.io/labels"] + ",old/managed"}))
    changed = s["a100-1-install"].replace("- mlcluster.io/pool=gpu-a100", "- mlcluster.io/pool=gpu-a100\n- rack=r7")
    agent.forget_calls()
    result = agent.run(changed, AGENT_TOKEN)
    assert result.returncode == 0 and "systemctl restart k3s-agent.service" in agent.calls()
    assert "rack=r7" in agent.file("/etc/rancher/k3s/config.yaml")
    assert site.host("server-1").run(s["a100-1-node-config"], node="a100-1").returncode == 0
    labels = site.node("a100-1")["metadata"]["labels"]
    assert "old/managed" not in labels and labels["admin/own"] == "y"


# --- the maintenance chain -----------------------------------------------------------------------------------------


def test_a_version_bump_upgrades_drains_and_uncordons(site):
    """14.1/14.2/14.3. The old rule replayed the old script (it logged "nothing to do"); the uncordon step exited
    early once the node was at the target; drain without --force stopped at JupyterHub's bare notebook pods."""
    bootstrap(site)
    site.edit_node("a100-1", lambda n: n.update(pods=[{"name": "jupyter-alice", "controller": False},
                                                      {"name": "train-0", "controller": True}]))
    old = chain(site, lab(), "a100-1")  # what the old rule ran after a bump: the old scripts
    assert "nothing to do" in old["drain"].stderr
    assert site.node("a100-1")["status"]["nodeInfo"]["kubeletVersion"] == "v1.35.1+k3s1"

    new = lab("v1.35.4+k3s1")
    results = chain(site, new, "a100-1")
    node = site.node("a100-1")
    assert node["status"]["nodeInfo"]["kubeletVersion"] == "v1.35.4+k3s1"
    assert node["spec"]["unschedulable"] is False  # uncordoned after the upgrade
    assert "mlcluster.io/maintenance" not in node["metadata"]["annotations"]
    assert node["evicted"] == ["jupyter-alice", "train-0"]  # the notebook did not stop the chain
    drain = next(c for c in site.host("server-1").calls() if c.startswith("kubectl drain a100-1"))
    assert "--force" in drain and "--grace-period=300" in drain
    assert "installer K3S=v1.35.4+k3s1 RKE2= exec=agent method= artifact=" in site.host("a100-1").calls()
    assert "back in service" in results["uncordon"].stderr
    # Run again: every step sees nothing to do.
    again = chain(site, new, "a100-1")
    assert "nothing to do" in again["drain"].stderr and "nothing to upgrade" in again["upgrade"].stderr


def test_the_chain_never_uncordons_a_node_an_admin_cordoned(site):
    bootstrap(site)
    site.edit_node("a100-1", lambda n: n["spec"].update(unschedulable=True))
    results = chain(site, lab(), "a100-1")
    assert "not in maintenance by mlcluster" in results["uncordon"].stderr
    assert site.node("a100-1")["spec"]["unschedulable"] is True


def test_minor_skips_and_downgrades_are_refused(site):
    bootstrap(site)
    skip = site.host("server-1").run(lab()["a100-1-drain"].replace("v1.35.1+k3s1", "v1.37.0+k3s1"), node="a100-1")
    assert skip.returncode == 1 and "refusing to skip a Kubernetes minor version" in skip.stderr
    down = site.host("server-1").run(lab()["a100-1-drain"].replace("v1.35.1+k3s1", "v1.34.9+k3s1"), node="a100-1")
    assert down.returncode == 1 and "refusing to downgrade" in down.stderr
    assert site.node("a100-1")["spec"]["unschedulable"] is False  # nothing was drained


def test_a_driver_change_goes_drain_install_reboot_uncordon(site):
    """14.10: a driver branch change on a cluster node used to be applied by the GPU step, undrained, with no
    reboot. Now preparation leaves it to the chain: drained, installed, rebooted, recorded, uncordoned."""
    s = bootstrap(site)
    inventory_host = _lab_host("a100-1").model_copy(update={"driver": Driver(mode="install", version="590")})
    pool = _lab_pool("gpu-a100")
    substrate = _lab_substrate()
    prepare = site.host("a100-1").run(scripts.gpu_script(inventory_host, pool, substrate))
    assert prepare.returncode == 0 and "the maintenance chain installs it, drained" in prepare.stderr
    assert site.host("a100-1").packages()["nvidia-driver-580-server"].startswith("580")
    boot = site.node("a100-1")["status"]["nodeInfo"]["bootID"]
    steps = {step: scripts.upgrade_script(inventory_host, pool, substrate, step)
             for step in ("drain", "upgrade", "driver", "uncordon")}
    steps = {f"a100-1-{k}": v for k, v in steps.items()}
    chain(site, steps, "a100-1")
    node = site.node("a100-1")
    assert site.host("a100-1").packages()["nvidia-driver-590-server"].startswith("590")
    assert "nvidia-fabricmanager-590" in site.host("a100-1").packages()  # 14.4: NVSwitch system
    assert node["status"]["nodeInfo"]["bootID"] != boot  # rebooted into the new driver
    assert node["metadata"]["annotations"]["mlcluster.io/driver"] == "590"
    assert node["spec"]["unschedulable"] is False
    assert s  # the original render stays valid for the other nodes


# --- GPU hosts -----------------------------------------------------------------------------------------------------


def test_gpu_preparation_installs_driver_fabric_manager_and_a_locked_down_toolkit(site):
    """14.4/14.5: Fabric Manager on NVSwitch systems; the toolkit ignores NVIDIA_VISIBLE_DEVICES from unprivileged
    containers and takes the device list from the device plugin's volume mounts."""
    host = site.host("a100-1")
    result = host.run(lab()["a100-1-gpu"])
    assert result.returncode == 0, result.stderr
    packages = host.packages()
    assert {"nvidia-driver-580-server", "nvidia-utils-580-server", "nvidia-fabricmanager-580",
            "nvidia-container-toolkit", "nvidia-container-toolkit-base"} <= set(packages)
    assert "systemctl enable nvidia-fabricmanager.service" in host.calls()
    config = host.file("/etc/nvidia-container-runtime/config.toml")
    assert "accept-nvidia-visible-devices-envvar-when-unprivileged=false" in config
    assert "accept-nvidia-visible-devices-as-volume-mounts=true" in config
    assert host.has("/etc/cdi/nvidia.yaml")
    assert "blacklist nouveau" in host.file("/etc/modprobe.d/mlcluster-blacklist-nouveau.conf")
    host.forget_calls()
    assert host.run(lab()["a100-1-gpu"]).returncode == 0
    assert not [c for c in host.calls() if c.startswith("apt-get install")]  # 14.15: the version check matches


def test_a_driver_that_needs_a_reboot_stops_with_a_clear_message(site):
    host = site.host("a100-1")
    (site.state / "needs-reboot.a100-1").touch()
    result = host.run(lab()["a100-1-gpu"])
    assert result.returncode == 1 and "reboot the host once, then run pulumi up again" in result.stderr


# --- destroy -------------------------------------------------------------------------------------------------------


def test_destroy_uninstalls_and_is_idempotent(site):
    """14.8: nothing had a delete command, so `pulumi destroy` left k3s running."""
    bootstrap(site, hosts=("server-1",))
    server = site.host("server-1")
    delete = lab()["server-1-install.delete"]
    assert server.run(delete).returncode == 0 and "uninstall" in server.calls()
    assert not server.has("/usr/local/bin/k3s")
    again = server.run(delete)
    assert again.returncode == 0 and "is not installed" in again.stderr


# --- variants ------------------------------------------------------------------------------------------------------


def test_rke2_installs_by_tarball_and_upgrades(site):
    """14.9/14.14: INSTALL_RKE2_METHOD=tar puts rke2 in /usr/local/bin (rancher/rke2 install.sh), where the
    scripts look; the artifact variable is the URL one."""
    rendered = render(profile="onprem-gpu", sets=("substrate.distribution=rke2", "substrate.version=v1.35.1+rke2r1",
                                                  "addons.storage.provider=longhorn",
                                                  "substrate.air_gap.artifact_url=https://mirror.example.internal/rke2"))
    s = {p.removeprefix("scripts/mlcluster-").removesuffix(".sh"): t for p, t in rendered.files.items()
         if p.startswith("scripts/")}
    server = site.host("server-1")
    assert server.run(s["server-1-install"], SERVER_TOKENS).returncode == 0
    install = next(c for c in server.calls() if c.startswith("installer"))
    assert "RKE2=v1.35.1+rke2r1" in install and "method=tar" in install
    assert "artifact=https://mirror.example.internal/rke2" in install
    assert "systemctl enable --now rke2-server.service" in server.calls()
    bumped = {k: v.replace("v1.35.1+rke2r1", "v1.35.2+rke2r1") for k, v in s.items()}
    chain(site, bumped, "server-1")
    assert site.node("server-1")["status"]["nodeInfo"]["kubeletVersion"] == "v1.35.2+rke2r1"


def test_air_gapped_packages_are_verified_with_the_mirrors_key(site):
    """14.12: `deb [trusted=yes]` installed unsigned packages as root."""
    key = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBGexample\n-----END PGP PUBLIC KEY BLOCK-----"
    rendered = render(profile="onprem-gpu", sets=(
        "substrate.air_gap.package_mirror=https://mirror.example.internal/nvidia",
        f"substrate.air_gap.package_mirror_key='{key.replace(chr(10), chr(92) + 'n')}'"))
    gpu = next(t for p, t in rendered.files.items() if p.endswith("-gpu.sh"))
    host = site.host("gpu-a100-1")
    assert host.run(gpu).returncode == 0
    assert "gpg --dearmor --yes -o " + str(host.root) + "/usr/share/keyrings/mlcluster-mirror.gpg" in host.calls()
    sources = host.file("/etc/apt/sources.list.d/nvidia-container-toolkit.list")
    assert sources.startswith("deb [signed-by=/usr/share/keyrings/mlcluster-mirror.gpg] https://mirror.example")


def test_longhorn_hosts_get_their_prerequisites(site):
    """14.13: Longhorn needs open-iscsi (and nfs-common for RWX), and multipathd must not take its devices."""
    rendered = render(profile="onprem-gpu", sets=("addons.storage.provider=longhorn",))
    install = rendered.files["scripts/mlcluster-server-1-install.sh"]
    host = site.host("server-1")
    assert host.run(install, SERVER_TOKENS).returncode == 0
    assert {"open-iscsi", "nfs-common"} <= set(host.packages())
    assert 'devnode "^sd[a-z0-9]+"' in host.file("/etc/multipath/conf.d/mlcluster-longhorn.conf")


# --- helpers: the lab inventory's objects, for variants rendered straight from scripts.py ----------------------------


def _lab_inventory():
    import json

    from mlcluster.components.baremetal.inventory import load_inventory
    from mlcluster.profiles.effective import load_profile
    from mlcluster.stackconfig import read_stack_file
    from tests.conftest import ROOT

    stack = read_stack_file(ROOT / "stacks" / "Pulumi.lab.yaml")
    data = json.loads(stack.config["mlcluster:inventory"])
    return load_inventory(data, load_profile("onprem-gpu"), stack.source, {})


def _lab_host(name):
    return next(h for h in _lab_inventory().hosts if h.name == name)


def _lab_pool(name):
    from mlcluster.profiles.effective import load_profile

    return next(p for p in load_profile("onprem-gpu").node_pools if p.name == name)


def _lab_substrate():
    from mlcluster.profiles.effective import load_profile

    return load_profile("onprem-gpu").substrate


def test_colo_kubeconfig_goes_through_the_bastions_tunnel(site):
    """14.11: the Kubernetes provider used https://VIP:6443 directly; the kubeconfig now names the runner's SOCKS
    tunnel through the bastion (client-go's `proxy-url`)."""
    colo = {p.removeprefix("scripts/mlcluster-").removesuffix(".sh"): t
            for p, t in rendered_stack("colo").files.items() if p.startswith("scripts/")}
    host = site.host("cp-1")
    path = host.root / "etc/rancher/k3s/k3s.yaml"
    path.parent.mkdir(parents=True)
    path.write_text("apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: Q0E=\n"
                    "    server: https://127.0.0.1:6443\n  name: default\n")
    result = host.run(colo["cp-1-kubeconfig"])
    assert result.returncode == 0, result.stderr
    import yaml

    cluster = yaml.safe_load(result.stdout)["clusters"][0]["cluster"]
    assert cluster["server"] == "https://198.51.100.10:6443"
    assert cluster["proxy-url"] == "socks5://127.0.0.1:1080"
