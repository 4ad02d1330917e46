"""JupyterHub (zero-to-jupyterhub): notebooks in the resource tiers, spawned into team namespaces.

- Profiles are the profile's tiers (CPU, 1×/2×/8× GPU) a team may use: the same CPU, memory and GPU as
  the tier, the GPU toleration, and node affinity to pools that can hold the tier (whole GPUs for more than
  one). Notebooks run in the team's namespace, so its ResourceQuota, network policies and `workload` service
  account apply; the hub gets a Role (never cluster-wide) in each team namespace to spawn there.
- Home volumes on the Retain class, an idle culler, no privileged pods (team namespaces enforce Pod Security
  `baseline`; instance metadata stays blocked by IMDS hop limit 1 on EKS and by the network elsewhere).
- Authentication: `passwords` (a generated password per user, a secret stack output; `existing` clusters),
  `dummy` (one shared password: anyone logs in as anyone, so only with a single team on an `existing` cluster),
  `github` (an organisation) or `oidc` (any OpenID Connect provider; team groups from its `groups` claim).
- Hub operators (`admin_users`) get a role that lists users and starts/stops servers — never JupyterHub's `admin`
  role, whose `access:servers` and `tokens` scopes open every user's notebook (`admin_access: false` no longer
  limits that since JupyterHub 2's RBAC). No one else is an administrator.
  The OAuth client secret is the stack secret `mlcluster:oidcClientSecret`; the hub's cookie secret is
  generated. None of them is in Helm values.
"""

from __future__ import annotations

import inspect
import json
from typing import Any, Literal

from pydantic import Field

from mlcluster.addons.base import Addon
from mlcluster.addons.ml.jupyterhub import hub_config
from mlcluster.components import k8s as objects
from mlcluster.components import quantity
from mlcluster.components.cluster import GPU_COUNT_LABEL, GPU_TAINT_KEY
from mlcluster.components.tenancy import WORKLOAD_SERVICE_ACCOUNT, allowed_tiers, team_namespace
from mlcluster.deferred import pulumi, random
from mlcluster.errors import ConfigError
from mlcluster.profiles import quotas
from mlcluster.profiles.gpu_products import WHOLE_GPU, tier_resource
from mlcluster.profiles.model import AddonSettings, DnsLabel, PinnedImage, ProfileBase, Strict, Team, Tier
from mlcluster.stackconfig import SECRET_PLACEHOLDER, StackSettings

SECRET = "jupyterhub-mlcluster"  # cookie secret, OAuth client secret, dummy password
COOKIE_KEY = "hub.config.JupyterHub.cookie_secret"  # the key z2jh reads from hub.existingSecret
PASSWORD_KEY = "dummy-password"
USER_PASSWORDS_KEY = "user-passwords"  # JSON: user → generated password (auth `passwords`)
# jupyterhub.readthedocs.io rbac/scopes: see users and groups, start and stop their servers — no `access:servers`
# (open a notebook), no `tokens`, no `admin:users`.
OPERATOR_SCOPES = ["admin-ui", "list:users", "read:users", "list:groups", "read:groups", "read:servers", "servers"]
CLIENT_SECRET_KEY = "oauth-client-secret"
HUB_SERVICE_ACCOUNT = "hub"  # z2jh's hub service account
STACK_KEY = "mlcluster:oidcClientSecret"
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
PRIORITY_LABEL = "kueue.x-k8s.io/priority-class"
HUB_PORT = 8081


class OidcEndpoints(Strict):
    """The provider's OAuth endpoints (see its `/.well-known/openid-configuration`)."""

    authorize_url: str = Field(pattern=r"^https://")
    token_url: str = Field(pattern=r"^https://")
    userdata_url: str = Field(pattern=r"^https://")
    groups_claim: str = Field("groups", description="Claim listing the user's groups (matched to team groups).")


class JupyterHubSettings(AddonSettings):
    namespace: DnsLabel = "jupyterhub"
    auth: Literal["passwords", "dummy", "github", "oidc"] = Field(
        "passwords", description="passwords: a generated password per user (existing clusters only; stack output "
                                 "`jupyterhubPasswords`); dummy: one shared password (a single team on an existing "
                                 "cluster); github or oidc: OAuth, client secret in the stack "
                                 "(`mlcluster:oidcClientSecret`).")
    client_id: str | None = Field(None, description="github/oidc: the OAuth client id.")
    oidc: OidcEndpoints | None = Field(None, description="oidc: the provider's endpoints.")
    github_org: str | None = Field(None, description="github: only members of this organisation may log in.")
    admin_users: list[str] = Field(default_factory=list, description="Hub operators (platform team): list users, "
                                   "start and stop servers; never open a user's notebook or take a token.")
    idle_minutes: int = Field(60, ge=10, le=10080, description="Stop notebooks idle for this long.")
    home_gib: int = Field(20, ge=1, le=4096, description="Each user's home volume (Retain class).")
    image: PinnedImage | None = Field(None, description="Notebook image with a pinned tag; null: the chart's.")


def eligible_pools(profile: ProfileBase, tier: Tier) -> list[str]:
    """GPU pools a tier's notebook may land on: its GPU resource, enough of it on one node."""
    return [f.pool for f in quotas.eligible(profile, tier)]


def multi_gpu_affinity(tier: Tier) -> list[dict[str, Any]]:
    """Nodes with at least the tier's whole GPUs. Kueue evaluates this against each flavor's labels, so the
    workload is only ever admitted to a pool whose nodes can hold it (the flavors carry nvidia.com/gpu.count)."""
    return [{"matchExpressions": [{"key": GPU_COUNT_LABEL, "operator": "Gt", "values": [str(tier.gpu - 1)]}]}]


def notebook_profile(profile: ProfileBase, team: Team, tier: Tier, namespace: str) -> dict[str, Any]:
    """One KubeSpawner profile: exactly the tier's resources (requests = limits, what Kueue and the quota count),
    in the team's namespace and queue, at the `interactive` priority. Kueue admits the pod (pod integration) and
    adds the flavor's node selector and toleration; a multi-GPU tier also requires nodes that can hold it."""
    override: dict[str, Any] = {
        "namespace": namespace,
        "service_account": WORKLOAD_SERVICE_ACCOUNT,
        "cpu_guarantee": quantity.value(tier.cpu), "cpu_limit": quantity.value(tier.cpu),
        "mem_guarantee": tier.memory, "mem_limit": tier.memory,
        "extra_labels": {QUEUE_LABEL: team.name, PRIORITY_LABEL: "interactive"},
    }
    if profile.ml.mlflow.enabled:  # type: ignore[attr-defined]
        # The team's MLflow credentials (kubespawner/spawner.py `extra_container_config`: merged into the
        # notebook container), so `mlflow.log_*` works with no setup.
        override["extra_container_config"] = {"envFrom": [{"secretRef": {"name": "mlflow-credentials"}}]}
    resource = tier_resource(tier)
    if resource is not None:
        override["extra_resource_guarantees"] = {resource: str(tier.gpu)}
        override["extra_resource_limits"] = {resource: str(tier.gpu)}
        override["tolerations"] = [{"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}]
        if resource == WHOLE_GPU and tier.gpu > 1:
            override["node_affinity_required"] = multi_gpu_affinity(tier)
    return {"display_name": f"{team.name}: {tier.name}", "description": tier.description or tier.name,
            "slug": f"{team.name}-{tier.name}", "kubespawner_override": override}


def teams_config(profile: ProfileBase) -> dict[str, dict[str, Any]]:
    tiers = list(profile.tiers)
    return {team.name: {"users": sorted({*team.members, *team.leads}), "groups": sorted(team.groups),
                        "profiles": [notebook_profile(profile, team, tier, team_namespace(team, profile.tenancy))
                                     for tier in allowed_tiers(team, tiers)]}
            for team in profile.teams}


def hub_code(profile: ProfileBase) -> str:
    """The `hub.extraConfig` snippet: hub_config.py, then the calls that install the profile list and the login."""
    teams = json.dumps(teams_config(profile), sort_keys=True)
    code = (inspect.getsource(hub_config) + "\n\n"
            "import json\n"
            "import os\n"
            f"c.KubeSpawner.profile_list = profile_list_for(json.loads({teams!r}))\n")
    auth = profile.ml.jupyterhub.auth  # type: ignore[attr-defined]
    if auth == "dummy":
        code += 'c.DummyAuthenticator.password = os.environ["MLCLUSTER_DUMMY_PASSWORD"]\n'
    elif auth == "passwords":
        code += ("c.JupyterHub.authenticator_class = generated_password_authenticator(\n"
                 '    json.loads(os.environ["MLCLUSTER_USER_PASSWORDS"]))\n')
    return code


def spawner_role(namespace: str, hub_namespace: str) -> list[dict[str, Any]]:
    """What the hub may do in a team namespace: its users' pods and volumes, nothing else."""
    rbac = "rbac.authorization.k8s.io"
    return [
        {"apiVersion": f"{rbac}/v1", "kind": "Role", "metadata": objects.metadata("jupyterhub-spawner", namespace),
         "rules": [{"apiGroups": [""], "resources": ["pods", "persistentvolumeclaims"],
                    "verbs": ["get", "list", "watch", "create", "delete"]},
                   {"apiGroups": [""], "resources": ["events"], "verbs": ["get", "list", "watch"]}]},
        {"apiVersion": f"{rbac}/v1", "kind": "RoleBinding",
         "metadata": objects.metadata("jupyterhub-spawner", namespace),
         "roleRef": {"apiGroup": rbac, "kind": "Role", "name": "jupyterhub-spawner"},
         "subjects": [{"kind": "ServiceAccount", "name": HUB_SERVICE_ACCOUNT, "namespace": hub_namespace}]},
    ]


class JupyterHub(Addon):
    key = "jupyterhub"
    section = "ml"
    type_name = "JupyterHub"
    description = "JupyterHub: notebooks in the profile's tiers, in team namespaces, idle-culled, OAuth login."
    Settings = JupyterHubSettings
    reaches_teams = (8888,)  # the hub and proxy reach notebook servers in team namespaces
    front_door = (8081,)  # notebooks call the hub API (z2jh hub port)
    requires = ("secrets", "storage", "gateway")

    @classmethod
    def check(cls, profile: ProfileBase, settings: JupyterHubSettings) -> list[tuple[tuple, object, str]]:  # type: ignore[override]
        at = ("ml", "jupyterhub")
        found: list[tuple[tuple, object, str]] = []
        if settings.auth in ("dummy", "passwords") and profile.substrate.kind != "existing":
            found.append(((*at, "auth"), settings.auth, "generated passwords are for a laptop cluster only; "
                          "allowed here: github or oidc"))
        elif settings.auth == "dummy" and len(profile.teams) > 1:
            found.append(((*at, "auth"), "dummy", "one shared password lets anyone log in as anyone, which only a "
                          "single team may accept; allowed with several teams: passwords (one per user), github "
                          "or oidc"))
        if settings.auth in ("github", "oidc") and not settings.client_id:
            found.append(((*at, "client_id"), None, f"{settings.auth} login needs the OAuth client id"))
        if settings.auth == "oidc" and settings.oidc is None:
            found.append(((*at, "oidc"), None, "oidc login needs the provider's authorize_url, token_url and "
                          "userdata_url"))
        if settings.auth == "github" and not settings.github_org:
            found.append(((*at, "github_org"), None, "github login is limited to one organisation: name it"))
        if not profile.teams:
            found.append(((*at, "enabled"), True, "notebooks spawn into team namespaces: define a team"))
        found += cls._home_volumes_follow_users(profile)
        return found

    @staticmethod
    def _home_volumes_follow_users(profile: ProfileBase) -> list[tuple[tuple, object, str]]:
        """A user's home volume is made where their first notebook runs and must be mounted by the next one, on
        any pool: zonal (EBS) or node-local (local-path) volumes pin later notebooks to that zone or node, where
        other pools' notebooks never schedule."""
        substrate = profile.substrate
        if substrate.kind == "eks" and not substrate.efs:  # type: ignore[union-attr]
            return [(("substrate", "efs"), False, "JupyterHub's home volumes must follow users to any pool and "
                     "zone; EBS volumes stay in one availability zone (EFA pools sit in one): turn on substrate.efs "
                     "(home volumes on EFS)")]
        from mlcluster.addons.storage import Storage

        storage = getattr(profile.addons, "storage", None)
        if substrate.kind == "baremetal" and (storage is None or not storage.enabled
                                              or Storage.portable_storage_class(storage) is None):
            return [(("addons", "storage", "provider"), getattr(storage, "provider", None), "JupyterHub's home "
                     "volumes must follow users to any node; local-path volumes stay on the node that made them: "
                     "use longhorn (replicated) or nfs")]
        return []

    @classmethod
    def stack_secrets(cls, profile: ProfileBase, settings: JupyterHubSettings) -> dict[str, str]:  # type: ignore[override]
        return {} if settings.auth in ("dummy", "passwords") else {STACK_KEY: SECRET_PLACEHOLDER}

    @classmethod
    def check_stack(cls, profile: ProfileBase, settings: JupyterHubSettings,  # type: ignore[override]
                    stack: StackSettings) -> None:
        if settings.auth in ("github", "oidc") and stack.oidc_client_secret is None:
            raise ConfigError.one(stack.source, STACK_KEY, None, f"{settings.auth} login needs the OAuth client "
                                  "secret: pulumi config set --secret oidcClientSecret <secret>", missing=True)

    def build(self) -> dict[str, Any]:
        settings: JupyterHubSettings = self.settings  # type: ignore[assignment]
        ns = self.namespace(settings.namespace)
        opts = pulumi.ResourceOptions(parent=self)
        # 64 digits: valid hex, as JupyterHub wants its cookie secret; read by z2jh from hub.existingSecret.
        cookie = random.RandomPassword(f"{self.key}-cookie-secret", length=64, special=False, upper=False,
                                       lower=False, opts=opts)
        data: dict[str, pulumi.Input[str]] = {COOKIE_KEY: pulumi.Output.secret(cookie.result)}
        outputs: dict[str, Any] = {}
        if settings.auth == "dummy":
            password = random.RandomPassword(f"{self.key}-password", length=24, special=False, opts=opts)
            data[PASSWORD_KEY] = outputs["jupyterhubPassword"] = pulumi.Output.secret(password.result)
        elif settings.auth == "passwords":
            people = sorted({u for t in self.profile.teams for u in (*t.members, *t.leads)} | set(settings.admin_users))
            passwords = {user: random.RandomPassword(f"{self.key}-password-{user}", length=24, special=False,
                                                     opts=opts).result for user in people}
            table = pulumi.Output.secret(pulumi.Output.all(**passwords))
            outputs["jupyterhubPasswords"] = table
            data[USER_PASSWORDS_KEY] = table.apply(lambda t: json.dumps(dict(t), sort_keys=True))
        else:
            data[CLIENT_SECRET_KEY] = self.stack.oidc_client_secret or pulumi.Output.secret(SECRET_PLACEHOLDER)
        secret = self.platform_secret("secret", SECRET, settings.namespace, data, depends_on=[ns])
        gateway = self.profile.addons.gateway  # type: ignore[attr-defined]
        users = sorted({u for t in self.profile.teams for u in (*t.members, *t.leads)})
        groups = sorted({g for t in self.profile.teams for g in t.groups})
        values = self.values(secret=SECRET, password_key=PASSWORD_KEY, client_secret_key=CLIENT_SECRET_KEY,
                             user_passwords_key=USER_PASSWORDS_KEY, operator_scopes=OPERATOR_SCOPES,
                             hub_port=HUB_PORT,
                             hub_code=hub_code(self.profile), users=users, groups=groups,
                             storage_class=self.cluster.portable_storage_class or self.cluster.user_data_storage_class,
                             host=f"jupyter.{gateway.domain}" if gateway.enabled else None,
                             gateway_namespace=gateway.namespace)
        self.helm_release("jupyterhub", "jupyterhub", settings.namespace, values, depends_on=[ns, secret],
                          uses=("gateway.networking.k8s.io",) if gateway.enabled else ())  # its httpRoute
        if gateway.enabled:
            outputs["jupyterhubUrl"] = f"https://jupyter.{gateway.domain}"
        return outputs


    def team_objects(self, team: Team, namespace: str) -> list[tuple[str, dict[str, Any]]]:
        """The hub's spawner Role and its binding, in each team namespace (the team's space creates them)."""
        hub_namespace = self.settings.namespace  # type: ignore[attr-defined]
        return [(f"{m['kind'].lower()}-{team.name}", m) for m in spawner_role(namespace, hub_namespace)]


ADDON = JupyterHub
