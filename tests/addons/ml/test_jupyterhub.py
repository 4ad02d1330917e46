"""JupyterHub: notebook profiles are the tiers, in team namespaces, for the right people; no secret in values."""

from __future__ import annotations

import types

import pytest
import yaml

from mlcluster.addons.ml.jupyterhub import eligible_pools, teams_config
from mlcluster.components import quantity
from mlcluster.errors import ConfigError
from mlcluster.profiles.effective import load_profile
from mlcluster.profiles.gpu_products import tier_resource
from mlcluster.render import engine
from tests.conftest import rendered_profile, rendered_stack


def values(rendered):
    return yaml.safe_load(rendered.files["helm/jupyterhub.yaml"])["values"]


def spawner(name, groups=()):
    user = types.SimpleNamespace(name=name, groups=[types.SimpleNamespace(name=g) for g in groups])
    return types.SimpleNamespace(user=user)


def run_hub_snippet(code, passwords=None):
    """Execute the hub snippet as z2jh would (with a traitlets-like `c`, the hub's environment, and JupyterHub's
    Authenticator base class stubbed: jupyterhub is not installed here) and return `c`."""
    import json
    import os
    import sys

    auth_module = types.ModuleType("jupyterhub.auth")
    auth_module.Authenticator = type("Authenticator", (), {})
    package = types.ModuleType("jupyterhub")
    package.auth = auth_module
    c = types.SimpleNamespace(KubeSpawner=types.SimpleNamespace(), DummyAuthenticator=types.SimpleNamespace(),
                              JupyterHub=types.SimpleNamespace())
    env = {"MLCLUSTER_DUMMY_PASSWORD": "x", "MLCLUSTER_USER_PASSWORDS": json.dumps(passwords or {})}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    sys.modules.update({"jupyterhub": package, "jupyterhub.auth": auth_module})
    try:
        exec(compile(code, "hub.extraConfig.mlcluster", "exec"), {"c": c, "__name__": "jupyterhub_config"})
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        sys.modules.pop("jupyterhub", None)
        sys.modules.pop("jupyterhub.auth", None)
    return c


def installed_profile_list(code):
    return run_hub_snippet(code).KubeSpawner.profile_list


def test_users_see_the_profiles_of_their_teams_only():
    code = values(rendered_profile("local"))["hub"]["extraConfig"]["mlcluster"]
    profile_list = installed_profile_list(code)
    alice = [p["slug"] for p in profile_list(spawner("alice@example.com"))]
    assert alice == ["vision-cpu-small", "vision-cpu-large"]
    assert {p["kubespawner_override"]["namespace"] for p in profile_list(spawner("someone", ["nlp-scientists"]))} == \
        {"team-nlp"}
    assert profile_list(spawner("mallory@example.com")) == []  # in no team: nothing to spawn


def test_notebook_profiles_are_exactly_the_tiers():
    profile = load_profile("aws-gpu")
    tiers = {t.name: t for t in profile.tiers}
    for team in teams_config(profile).values():
        for notebook in team["profiles"]:
            tier = tiers[notebook["slug"].split("-", 1)[1]]
            override = notebook["kubespawner_override"]
            assert override["cpu_limit"] == override["cpu_guarantee"] == quantity.value(tier.cpu)
            assert override["mem_limit"] == override["mem_guarantee"] == tier.memory
            resource = tier_resource(tier)
            gpus = {resource: str(tier.gpu)} if resource else {}
            assert override.get("extra_resource_limits", {}) == override.get("extra_resource_guarantees", {}) == gpus
            assert override["service_account"] == "workload"  # the team's identity (S3 prefix on eks)
            # In the team's queue at the interactive priority: Kueue admits notebooks like any workload.
            team_name = notebook["slug"].split("-", 1)[0]
            assert override["extra_labels"] == {"kueue.x-k8s.io/queue-name": team_name,
                                                "kueue.x-k8s.io/priority-class": "interactive"}


def test_gpu_tiers_tolerate_the_taint_and_land_on_pools_that_hold_them():
    profile = load_profile("aws-gpu")
    tiers = {t.name: t for t in profile.tiers}
    assert eligible_pools(profile, tiers["gpu-shared"]) == ["gpu-a10g"]  # slices are their own resource
    assert eligible_pools(profile, tiers["gpu-1"]) == ["gpu-l4", "gpu-h100"]
    assert eligible_pools(profile, tiers["gpu-2"]) == ["gpu-l4", "gpu-h100"]
    assert eligible_pools(profile, tiers["gpu-8"]) == ["gpu-h100"]
    override = next(p for p in teams_config(profile)["vision"]["profiles"]
                    if p["slug"] == "vision-gpu-8")["kubespawner_override"]
    assert override["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    # Kueue matches this against each flavor's nvidia.com/gpu.count: only 8-GPU nodes can take the notebook.
    assert override["node_affinity_required"] == [{"matchExpressions": [
        {"key": "nvidia.com/gpu.count", "operator": "Gt", "values": ["7"]}]}]
    one = next(p for p in teams_config(profile)["vision"]["profiles"] if p["slug"] == "vision-gpu-1")
    assert "node_affinity_required" not in one["kubespawner_override"]  # any pool with a whole GPU


def test_notebooks_reach_the_hub_from_team_namespaces():
    """z2jh sets `hub_connect_url` to http://hub:8081, which resolves only in the hub's namespace (z2jh#1916);
    notebooks run in team namespaces, so the hub's full service name is set (hub.config is applied after it,
    jupyterhub/files/hub/jupyterhub_config.py at 4.4.0)."""
    values = yaml.safe_load(rendered_profile("local").files["helm/jupyterhub.yaml"])["values"]
    assert values["hub"]["config"]["JupyterHub"]["hub_connect_url"] == \
        "http://hub.jupyterhub.svc.cluster.local:8081"


def test_hub_spawns_into_team_namespaces_with_a_namespaced_role():
    r = rendered_profile("local")
    for team in ("vision", "nlp"):
        role = yaml.safe_load(r.files[f"manifests/team-{team}/role-jupyterhub-spawner.yaml"])
        assert {res for rule in role["rules"] for res in rule["resources"]} == {"pods", "persistentvolumeclaims",
                                                                                "events"}
    v = values(r)
    assert v["hub"]["networkPolicy"]["interNamespaceAccessLabels"] == "accept"
    assert v["singleuser"]["cloudMetadata"]["blockWithIptables"] is False  # no privileged init container
    assert v["singleuser"]["storage"]["capacity"] == "5Gi"
    assert v["cull"] == {"enabled": True, "timeout": 3600, "every": 300}
    assert v["proxy"]["service"]["type"] == "ClusterIP"


def test_secrets_come_from_the_generated_secret_not_values():
    r = rendered_profile("local")
    v = values(r)
    assert v["hub"]["existingSecret"] == "jupyterhub-mlcluster"
    secret = yaml.safe_load(r.files["manifests/jupyterhub/secret-jupyterhub-mlcluster.yaml"])
    assert secret["stringData"] == {"hub.config.JupyterHub.cookie_secret": "[secret]", "user-passwords": "[secret]"}
    assert v["hub"]["extraEnv"]["MLCLUSTER_USER_PASSWORDS"]["valueFrom"]["secretKeyRef"]["key"] == "user-passwords"
    assert r.result.outputs["jupyterhubPasswords"][1] is True  # handed to the platform team as a secret output


def test_each_user_logs_in_with_their_own_password_only():
    """17.3: the laptop's login used to be one shared password (anyone as anyone)."""
    code = values(rendered_profile("local"))["hub"]["extraConfig"]["mlcluster"]
    c = run_hub_snippet(code, {"alice@example.com": "pa", "dave@example.com": "pd"})
    login = c.JupyterHub.authenticator_class()

    def attempt(user, password):  # the coroutine awaits nothing: drive it by hand, leaving the event loop alone
        coroutine = login.authenticate(None, {"username": user, "password": password})
        with pytest.raises(StopIteration) as done:
            coroutine.send(None)
        return done.value.value

    assert attempt("alice@example.com", "pa") == "alice@example.com"
    assert attempt("alice@example.com", "pd") is None  # another user's password
    assert attempt("mallory@example.com", "") is None and attempt("alice@example.com", "") is None
    assert "authenticator_class" not in values(rendered_profile("local"))["hub"]["config"]["JupyterHub"]


def test_hub_operators_cannot_open_notebooks_or_take_tokens():
    """17.8: `admin_users` were JupyterHub admins (the `admin` role: every scope, `access:servers` and `tokens`
    included; jupyterhub.readthedocs.io rbac/roles); `admin_access: false` no longer limits that."""
    for rendered in (rendered_profile("aws-gpu"), rendered_stack("lab")):
        hub = values(rendered)["hub"]
        assert hub["config"]["Authenticator"]["admin_users"] == []
        assert "admin_access" not in hub["config"]["JupyterHub"]
        role = hub["loadRoles"]["platform-operator"]
        assert role["users"] == rendered.result.profile.ml.jupyterhub.admin_users
        assert not [s for s in role["scopes"] if s.startswith(("access:", "tokens", "admin:", "users", "inherit"))]
        assert set(role["users"]) <= set(hub["config"]["Authenticator"]["allowed_users"])


def test_oidc_login_on_premises_routes_through_the_gateway():
    r = rendered_stack("lab")
    v = values(r)
    oauth = v["hub"]["config"]["GenericOAuthenticator"]
    assert oauth["oauth_callback_url"] == "https://jupyter.ml.lab.example/hub/oauth_callback"
    assert oauth["allowed_groups"] == ["nlp-scientists"] and oauth["manage_groups"] is True
    assert v["hub"]["extraEnv"]["OAUTH_CLIENT_SECRET"]["valueFrom"]["secretKeyRef"]["name"] == "jupyterhub-mlcluster"
    assert v["httpRoute"] == {"enabled": True, "hostnames": ["jupyter.ml.lab.example"],
                              "gateway": {"name": "mlcluster", "namespace": "gateway", "sectionName": "https"}}


@pytest.mark.parametrize(("profile", "sets", "field", "message"), [
    ("onprem-gpu", ("ml.jupyterhub.auth=dummy",), "ml.jupyterhub.auth", "laptop"),
    ("onprem-gpu", ("ml.jupyterhub.auth=passwords",), "ml.jupyterhub.auth", "laptop"),
    ("local", ("ml.jupyterhub.auth=dummy",), "ml.jupyterhub.auth", "anyone log in as anyone"),
    ("onprem-gpu", ("ml.jupyterhub.oidc=null",), "ml.jupyterhub.oidc", "authorize_url"),
    ("aws-gpu", ("ml.jupyterhub.auth=github",), "ml.jupyterhub.github_org", "organisation"),
    ("local", ("ml.jupyterhub.image=jupyter/base-notebook:latest",), "ml.jupyterhub.image", "pinned tag"),
    ("local", ("teams=[]",), "ml.jupyterhub.enabled", "define a team"),
    # 16.8: a home volume made by a CPU notebook must mount where the user's GPU notebook lands
    ("aws-gpu", ("substrate.efs=false",), "substrate.efs", "EBS volumes stay in one availability zone"),
    ("onprem-gpu", ("addons.storage.provider=local-path",), "addons.storage.provider",
     "local-path volumes stay on the node"),
])
def test_bad_jupyterhub_settings(profile, sets, field, message):
    with pytest.raises(ConfigError) as err:
        load_profile(profile, sets=sets)
    assert message in {p.field: p for p in err.value.problems}[field].allowed


def test_oauth_needs_the_client_secret_in_the_stack():
    with pytest.raises(ConfigError) as err:
        engine.run("t", {"mlcluster:profile": "local", "mlcluster:kubeContext": "kind"}, [], "stacks/Pulumi.t.yaml",
                   sets=("ml.jupyterhub={enabled: true, auth: github, client_id: abc, github_org: example}",))
    (problem,) = err.value.problems
    assert problem.field == "mlcluster:oidcClientSecret" and "--secret" in problem.allowed


def test_home_volumes_are_on_storage_every_pool_can_mount():
    """16.8: the first notebook makes the user's home PVC; later ones, on any pool, must mount it. EBS volumes
    attach only in their availability zone and local-path volumes only on their node, so homes are on EFS
    (eks) or the storage add-on's replicated/network Retain class (bare metal)."""
    homes = {"aws-gpu": "efs", "onprem-gpu": "longhorn-retain"}
    for profile, storage_class in homes.items():
        storage = values(rendered_profile(profile))["singleuser"]["storage"]
        assert storage["dynamic"]["storageClass"] == storage_class
    classes = rendered_profile("aws-gpu").files
    efs = yaml.safe_load(classes["manifests/_cluster/storageclass-efs.yaml"])
    assert efs["provisioner"] == "efs.csi.aws.com" and efs["reclaimPolicy"] == "Retain"
