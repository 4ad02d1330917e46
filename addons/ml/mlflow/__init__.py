"""MLflow: tracking server and model registry, the same on every substrate except where bytes are kept.

- Runs and registry in PostgreSQL: a CloudNativePG `Cluster` in MLflow's namespace (volumes on the Retain
  class), or on eks optionally Amazon RDS (encrypted, private, Multi-AZ in production, deletion protection
  and final snapshot). Either way its credentials are generated (pulumi-random) and delivered as a platform
  secret, and the database is protected: `pulumi destroy` stops at it.
- Artifacts proxied through the server (clients need no storage credentials) to: the S3 artifacts bucket on
  eks (prefix `mlflow/`, through a Pod Identity role limited to that prefix), the site's S3-compatible store
  elsewhere (its own bucket and credentials), or a protected Retain volume when there is neither.
- Reached in the cluster at `http://mlflow.<namespace>.svc.cluster.local:5000` (team namespaces may reach
  it, also with restricted egress), or through the gateway when `expose` is on.
- Authenticated: MLflow's basic-auth app with `default_permission = NO_PERMISSIONS`, its users and grants in the
  same PostgreSQL (their own `alembic_version_auth` table, mlflow/server/auth/db/utils.py). Each team gets one
  MLflow user, `team-<name>`, whose credentials land in the team's namespace as the Secret `mlflow-credentials`
  (MLFLOW_TRACKING_URI/USERNAME/PASSWORD, what the MLflow client reads); notebooks load it. A team sees the
  experiments and models it creates (their creator gets MANAGE) and nothing of another team's — proxied
  artifacts included, which basic-auth checks against the experiment in the artifact path. The admin password is
  a stack output; a Job creates or re-keys the users after every change of the team list.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from mlcluster.addons.base import Addon
from mlcluster.addons.gateway import route_manifest
from mlcluster.addons.postgres import database_cluster, read_write_host
from mlcluster.components import k8s as objects
from mlcluster.components.aws.database import PostgresInstance
from mlcluster.components.aws.iam import bucket_prefix_role
from mlcluster.deferred import pulumi, random
from mlcluster.profiles.model import AddonSettings, DnsLabel, ProfileBase, Team

SERVICE_ACCOUNT = "mlflow"
DATABASE = "mlflow"
DB_CLUSTER = "mlflow-db"
DB_SECRET = "mlflow-db-credentials"
ARTIFACTS_PVC = "mlflow-artifacts"
ARTIFACTS_MOUNT = "/mlartifacts"
S3_SECRET = "mlflow-s3"
S3_PREFIX = "mlflow"
PORT = 5000
ADMIN_SECRET = "mlflow-admin"  # the basic-auth admin (chart: auth.existingAdminSecret)
USERS_SECRET = "mlflow-users"  # user name → password, read by the provisioning Job
TEAM_SECRET = "mlflow-credentials"  # in each team namespace: what the MLflow client reads
METRICS_USER = "metrics"  # Prometheus's user: authenticated, no permissions (MLflow's /metrics needs a login)
# The chart's own image at the pinned chart's appVersion (community-charts mlflow 1.11.5: burakince/mlflow, 3.15.1);
# tests/addons/test_mlflow.py checks it against ../shared/upstream/charts/mlflow/Chart.yaml.
IMAGE = "burakince/mlflow:3.15.1"


def team_user(team: Team) -> str:
    return f"team-{team.name}"


class MlflowSettings(AddonSettings):
    namespace: DnsLabel = "mlflow"
    database: Literal["cnpg", "rds"] = Field(
        "cnpg", description="cnpg: PostgreSQL in the cluster (CloudNativePG); rds: Amazon RDS (eks only).")
    rds_instance_class: str = Field("db.t4g.medium", pattern=r"^db\.[a-z0-9]+\.[a-z0-9]+$",
                                    description="rds: the instance class.")
    db_instances: int = Field(1, ge=1, le=5, description="PostgreSQL instances (3 for a primary with two "
                                                         "replicas and automatic failover).")
    db_storage_gib: int = Field(20, ge=1, le=16384)
    artifacts_storage_gib: int = Field(100, ge=1, le=65536, description="The artifact volume, when there is "
                                                                        "no S3 store.")
    expose: bool = Field(False, description="Serve the UI at mlflow.<gateway domain> (put SSO in front).")


def allowed_hosts(profile: ProfileBase, settings: MlflowSettings) -> list[str]:
    """Host headers MLflow accepts (MLFLOW_SERVER_ALLOWED_HOSTS; exact, or fnmatch with `*`): the Service's names
    with the port clients use, and the public name the gateway forwards when exposed."""
    service = f"mlflow.{settings.namespace}"
    names = [f"{service}.svc.cluster.local", f"{service}.svc", service]
    hosts = [*names, *(f"{n}:{PORT}" for n in names)]
    if settings.expose:
        hosts.append(f"mlflow.{profile.addons.gateway.domain}")  # type: ignore[attr-defined]
    return hosts


def artifact_store(profile: ProfileBase, cluster: Any) -> str:
    """Where artifacts go here: `s3` (the eks bucket), `object-store` (the site's store) or `volume`."""
    if cluster.aws is not None and cluster.aws.artifacts_bucket is not None:
        return "s3"
    if profile.addons.object_store.enabled:  # type: ignore[attr-defined]
        return "object-store"
    return "volume"


class Mlflow(Addon):
    key = "mlflow"
    section = "ml"
    type_name = "Mlflow"
    description = "MLflow tracking and registry: PostgreSQL (CloudNativePG), artifacts on S3 or a volume."
    Settings = MlflowSettings
    requires = ("postgres", "object_store", "storage", "secrets", "gateway", "monitoring")
    front_door = (5000,)  # notebooks and jobs log to it; it never connects into team namespaces
    object_store_bucket = "mlflow"

    @classmethod
    def check(cls, profile: ProfileBase, settings: MlflowSettings) -> list[tuple[tuple, object, str]]:  # type: ignore[override]
        found: list[tuple[tuple, object, str]] = []
        if settings.expose and not profile.addons.gateway.enabled:  # type: ignore[attr-defined]
            found.append((("ml", "mlflow", "expose"), True, "exposing MLflow needs addons.gateway"))
        if settings.database == "rds" and profile.substrate.kind != "eks":
            found.append((("ml", "mlflow", "database"), "rds", "RDS is an eks option; allowed here: cnpg"))
        if settings.database == "cnpg" and not profile.addons.postgres.enabled:  # type: ignore[attr-defined]
            found.append((("ml", "mlflow", "database"), "cnpg", "the in-cluster database needs addons.postgres "
                          "(CloudNativePG); turn it on, or use rds on eks"))
        return found

    def build(self) -> dict[str, Any]:
        settings: MlflowSettings = self.settings  # type: ignore[assignment]
        ns = self.namespace(settings.namespace)
        opts = pulumi.ResourceOptions(parent=self)
        password = pulumi.Output.secret(
            random.RandomPassword(f"{self.key}-db-password", length=32, special=False, opts=opts).result)
        credentials = self.platform_secret("db-credentials", DB_SECRET, settings.namespace,
                                           {"username": DATABASE, "password": password},
                                           depends_on=[ns], type_="kubernetes.io/basic-auth")
        db: pulumi.Resource
        db_host: pulumi.Input[str]
        if settings.database == "rds":
            facts = self.cluster.aws
            assert facts is not None  # check(): eks only
            rds = PostgresInstance(f"{self.cluster.name}-mlflow", facts=facts, database=DATABASE, username=DATABASE,
                                   password=password, instance_class=settings.rds_instance_class,
                                   storage_gib=settings.db_storage_gib, opts=pulumi.ResourceOptions(parent=self))
            db, db_host = rds, rds.instance.address
        else:
            db = self.apply("db", database_cluster(
                DB_CLUSTER, settings.namespace, database=DATABASE, owner=DATABASE, secret=DB_SECRET,
                instances=settings.db_instances, storage_gib=settings.db_storage_gib,
                storage_class=self.cluster.user_data_storage_class), depends_on=[credentials], protect=True)
            db_host = read_write_host(DB_CLUSTER, settings.namespace)

        admin_password = pulumi.Output.secret(random.RandomPassword(
            f"{self.key}-admin-password", length=32, special=False, opts=opts).result)
        admin = self.platform_secret("admin", ADMIN_SECRET, settings.namespace,
                                     {"username": "admin", "password": admin_password}, depends_on=[ns])
        # One user per team and one for the scraper; alphanumeric, as the chart's ini templating (sed) needs.
        self.user_passwords: dict[str, pulumi.Output[str]] = {
            user: pulumi.Output.secret(random.RandomPassword(f"{self.key}-user-{user}", length=32, special=False,
                                                             opts=opts).result)
            for user in [*(team_user(t) for t in self.profile.teams), METRICS_USER]}
        users = self.platform_secret("users", USERS_SECRET, settings.namespace,
                                     {**self.user_passwords, "metrics-username": METRICS_USER}, depends_on=[ns])

        store = artifact_store(self.profile, self.cluster)
        after: list[pulumi.Resource] = [ns, db, credentials, admin]
        context: dict[str, Any] = {"store": store, "s3_secret": S3_SECRET, "pvc": ARTIFACTS_PVC,
                                   "mount": ARTIFACTS_MOUNT, "endpoint": None, "bucket": None}
        if store == "s3":
            assert self.cluster.aws is not None
            after.append(self._bucket_role(settings.namespace))
            context.update(bucket="(the artifacts bucket)", prefix=S3_PREFIX)  # an Output: set after rendering
        elif store == "object-store":
            access = self.shared["object_store"][self.key]
            after.append(self.platform_secret("s3", S3_SECRET, settings.namespace, {
                "AWS_ACCESS_KEY_ID": access.access_key, "AWS_SECRET_ACCESS_KEY": access.secret_key}, depends_on=[ns]))
            context.update(bucket=access.bucket, prefix="", endpoint=access.endpoint)
        else:
            after.append(self.apply("artifacts", self._artifact_volume(settings), depends_on=[ns], protect=True))
        values = self.values(service_account=SERVICE_ACCOUNT, db_host="(set below)", database=DATABASE,
                             admin_secret=ADMIN_SECRET, port=PORT,
                             allowed_hosts=allowed_hosts(self.profile, settings),
                             db_secret=DB_SECRET,
                             monitoring=bool(self.profile.addons.monitoring.enabled),  # type: ignore[attr-defined]
                             **context)
        values["backendStore"]["postgres"]["host"] = db_host  # an Output for RDS: set after rendering
        values["auth"]["postgres"]["host"] = db_host
        if store == "s3":
            values["artifactRoot"]["s3"]["bucket"] = self.cluster.aws.artifacts_bucket  # type: ignore[union-attr]
        release = self.helm_release("mlflow", "mlflow", settings.namespace, values, depends_on=after)
        if self.profile.addons.monitoring.enabled:  # type: ignore[attr-defined]
            self.apply("servicemonitor", service_monitor(settings.namespace), depends_on=[release, users])
        script = self.apply("provision-script", {
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": objects.metadata("mlflow-provision-users",
                                                                                 settings.namespace),
            "data": {"provision_users.py": (Path(__file__).parent / "provision_users.py").read_text()}},
            depends_on=[ns])
        self.apply("provision-users", provision_job(settings.namespace, sorted(self.user_passwords)),
                   depends_on=[release, users, script])
        url = f"http://mlflow.{settings.namespace}.svc.cluster.local:{PORT}"
        outputs: dict[str, Any] = {"mlflowTrackingUri": url}
        if settings.expose:
            gateway = self.profile.addons.gateway  # type: ignore[attr-defined]
            self.apply("route", route_manifest("mlflow", settings.namespace, f"mlflow.{gateway.domain}", gateway,
                                               "mlflow", PORT), depends_on=[release])
            outputs["mlflowUrl"] = f"https://mlflow.{gateway.domain}"
        return outputs

    def team_objects(self, team: Team, namespace: str) -> list[tuple[str, dict[str, Any]]]:
        """The team's MLflow credentials, as the MLflow client reads them from the environment."""
        settings: MlflowSettings = self.settings  # type: ignore[assignment]
        return [(f"credentials-{team.name}", {
            "apiVersion": "v1", "kind": "Secret", "metadata": objects.metadata(TEAM_SECRET, namespace),
            "type": "Opaque",
            "stringData": {"MLFLOW_TRACKING_URI": f"http://mlflow.{settings.namespace}.svc.cluster.local:{PORT}",
                           "MLFLOW_TRACKING_USERNAME": team_user(team),
                           "MLFLOW_TRACKING_PASSWORD": self.user_passwords[team_user(team)]}})]

    def _artifact_volume(self, settings: MlflowSettings) -> dict[str, Any]:
        spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"],
                                "resources": {"requests": {"storage": f"{settings.artifacts_storage_gib}Gi"}}}
        if self.cluster.user_data_storage_class:
            spec["storageClassName"] = self.cluster.user_data_storage_class
        return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": objects.metadata(ARTIFACTS_PVC, settings.namespace), "spec": spec}

    def _bucket_role(self, namespace: str) -> pulumi.Resource:
        """MLflow's service account may use `mlflow/` of the artifacts bucket, nothing else."""
        assert self.cluster.aws is not None
        return bucket_prefix_role(f"{self.key}-artifacts", self.cluster.aws, f"{S3_PREFIX}/", namespace,
                                  SERVICE_ACCOUNT, self)

def service_monitor(namespace: str) -> dict[str, Any]:
    """Prometheus scrapes /metrics with the `metrics` user (the chart's own ServiceMonitor has no credentials, and
    points at a container port name the pod does not have)."""
    password = {"name": USERS_SECRET, "key": METRICS_USER}
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
            "metadata": objects.metadata("mlflow", namespace),
            "spec": {"selector": {"matchLabels": {"app.kubernetes.io/name": "mlflow",
                                                  "app.kubernetes.io/instance": "mlflow"}},
                     "namespaceSelector": {"matchNames": [namespace]},
                     "endpoints": [{"port": "http", "path": "/metrics", "interval": "30s",
                                    "basicAuth": {"username": {"name": USERS_SECRET, "key": "metrics-username"},
                                                  "password": password}}]}}


def provision_job(namespace: str, users: list[str]) -> dict[str, Any]:
    """Creates or re-keys the users; named after the user list, so a new team means a new Job (Jobs are
    immutable) and an unchanged list leaves the finished one alone."""
    digest = hashlib.sha256(",".join(users).encode()).hexdigest()[:8]
    restricted = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "runAsNonRoot": True,
                  "readOnlyRootFilesystem": True, "seccompProfile": {"type": "RuntimeDefault"}}
    env = [{"name": "MLFLOW_URL", "value": f"http://mlflow.{namespace}.svc.cluster.local:{PORT}"},
           *({"name": f"ADMIN_{key.upper()}", "valueFrom": {"secretKeyRef": {"name": ADMIN_SECRET, "key": key}}}
             for key in ("username", "password"))]
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": objects.metadata(f"mlflow-provision-users-{digest}", namespace),
            "spec": {"backoffLimit": 6, "template": {"spec": {
                "restartPolicy": "OnFailure", "automountServiceAccountToken": False,
                "securityContext": {"runAsUser": 1001, "runAsGroup": 1001},
                "containers": [{"name": "provision", "image": IMAGE,
                                "command": ["python", "/scripts/provision_users.py"], "env": env,
                                "securityContext": restricted,
                                "resources": {"requests": {"cpu": "50m", "memory": "64Mi"},
                                              "limits": {"cpu": "500m", "memory": "256Mi"}},
                                "volumeMounts": [{"name": "scripts", "mountPath": "/scripts", "readOnly": True},
                                                 {"name": "users", "mountPath": "/users", "readOnly": True}]}],
                "volumes": [{"name": "scripts", "configMap": {"name": "mlflow-provision-users"}},
                            {"name": "users", "secret": {"secretName": USERS_SECRET,
                                                         "items": [{"key": u, "path": u} for u in users]}}]}}}}


ADDON = Mlflow
