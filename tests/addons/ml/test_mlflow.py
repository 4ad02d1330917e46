"""MLflow: PostgreSQL from CloudNativePG with generated credentials, artifacts where the substrate keeps bytes,
and every data-bearing piece protected."""

from __future__ import annotations

import json

import yaml

from tests.conftest import rendered_profile, rendered_stack
from tests.upstream import validate_custom_resource


def values(rendered):
    return yaml.safe_load(rendered.files["helm/mlflow.yaml"])["values"]


def resources(rendered):
    return {r["name"]: r for r in json.loads(rendered.files["resources.json"])["resources"]}


def test_database_is_a_protected_cloudnativepg_cluster_on_the_retain_class():
    for rendered, retain, instances in ((rendered_stack("lab"), "longhorn-retain", 3),
                                        (rendered_profile("aws-dev"), "gp3-retain", 1)):
        cluster = yaml.safe_load(rendered.files["manifests/mlflow/cluster-mlflow-db.yaml"])
        validate_custom_resource(cluster)
        assert cluster["spec"]["storage"]["storageClass"] == retain
        assert cluster["spec"]["bootstrap"]["initdb"] == {"database": "mlflow", "owner": "mlflow",
                                                          "secret": {"name": "mlflow-db-credentials"}}
        assert cluster["spec"]["instances"] == instances
        assert resources(rendered)["mlflow-db"]["options"]["protect"] is True
        v = values(rendered)["backendStore"]
        assert v["postgres"]["host"] == "mlflow-db-rw.mlflow.svc.cluster.local"
        assert v["existingDatabaseSecret"]["name"] == "mlflow-db-credentials"


def test_rds_on_eks_is_encrypted_private_multi_az_and_protected():
    r = rendered_profile("aws-gpu")
    (db,) = [x for x in resources(r).values() if x["type"] == "aws:rds/instance:Instance"]
    i = db["inputs"]
    assert (i["engine"], i["storageEncrypted"], i["publiclyAccessible"]) == ("postgres", True, False)
    assert i["multiAz"] is True  # a production profile
    assert i["kmsKeyId"].startswith("arn:aws:kms:") and i["deletionProtection"] is True
    assert i["skipFinalSnapshot"] is False and i["backupRetentionPeriod"] == 14 and i["password"] == "[secret]"
    assert db["options"]["protect"] is True
    group = next(x for x in resources(r).values() if x["type"] == "aws:ec2/securityGroup:SecurityGroup"
                 and x["name"].endswith("-mlflow-postgres"))
    assert group["inputs"]["ingress"] == [{"cidrBlocks": ["10.0.0.0/16"], "description": "PostgreSQL from the VPC "
                                           "(nodes and pods)", "fromPort": 5432, "protocol": "tcp", "toPort": 5432}]
    assert group["inputs"]["egress"] == []
    assert values(r)["backendStore"]["postgres"]["host"].endswith(".us-east-1.rds.amazonaws.com")
    assert not [p for p in r.files if "cluster-mlflow-db" in p]  # no in-cluster database beside it


def test_rds_is_an_eks_option_and_cnpg_needs_its_operator():
    import pytest

    from mlcluster.errors import ConfigError
    from mlcluster.profiles.effective import load_profile

    with pytest.raises(ConfigError) as err:
        load_profile("onprem-gpu", sets=("ml.mlflow.database=rds",))
    assert "eks option" in err.value.problems[0].allowed
    with pytest.raises(ConfigError) as err:
        load_profile("local", sets=("addons.postgres.enabled=false",))
    assert "CloudNativePG" in err.value.problems[0].allowed


def test_database_credentials_are_generated_basic_auth():
    r = rendered_profile("local")
    secret = yaml.safe_load(r.files["manifests/mlflow/secret-mlflow-db-credentials.yaml"])
    assert secret["type"] == "kubernetes.io/basic-auth"
    assert secret["stringData"] == {"password": "[secret]", "username": "[secret]"}  # a secret map: all redacted
    eks = rendered_profile("aws-gpu").files
    external = yaml.safe_load(eks["manifests/mlflow/externalsecret-mlflow-db-credentials.yaml"])
    assert external["spec"]["target"]["template"] == {"type": "kubernetes.io/basic-auth"}  # same type via ESO
    validate_custom_resource(external)


def test_artifacts_on_eks_go_to_the_bucket_prefix_through_pod_identity():
    r = rendered_profile("aws-gpu")
    s3 = values(r)["artifactRoot"]
    assert s3["proxiedArtifactStorage"] is True
    assert s3["s3"]["bucket"].startswith("mlcluster-render-artifacts-") and s3["s3"]["path"] == "mlflow"
    policy = next(x for x in resources(r).values() if x["type"] == "aws:iam/rolePolicy:RolePolicy"
                  and x["name"].startswith("mlflow-artifacts"))
    statements = json.loads(policy["inputs"]["policy"])["Statement"]
    write = next(s for s in statements if s["Sid"] == "ReadWriteOwnPrefix")
    assert write["Resource"].endswith("/mlflow/*")


def test_artifacts_on_premises_use_their_own_bucket_and_credentials():
    r = rendered_stack("lab")
    v = values(r)
    assert v["artifactRoot"]["s3"] == {"enabled": True, "bucket": "mlflow", "path": "",
                                       "existingSecret": {"name": "mlflow-s3"}}
    assert v["extraEnvVars"]["MLFLOW_S3_ENDPOINT_URL"] == "http://seaweedfs-s3.object-store.svc:8333"
    seaweed = yaml.safe_load(r.files["helm/seaweedfs.yaml"])["values"]["s3"]
    assert seaweed["createBuckets"] == [{"name": "mlflow", "anonymousRead": False, "versioning": "Enabled"}]
    secret = yaml.safe_load(r.files["manifests/mlflow/secret-mlflow-s3.yaml"])
    assert secret["stringData"] == {"AWS_ACCESS_KEY_ID": "[secret]", "AWS_SECRET_ACCESS_KEY": "[secret]"}


def test_object_store_identity_for_mlflow_reaches_only_its_bucket():
    from mlcluster.addons.object_store import bucket_actions, identity, s3_config

    config = json.loads(s3_config([identity("mlflow", "AK", "SK", bucket_actions("mlflow"))]))
    assert config["identities"][0]["actions"] == ["Read:mlflow", "Write:mlflow", "List:mlflow", "Tagging:mlflow"]


def test_without_a_store_artifacts_live_on_a_protected_retain_volume():
    r = rendered_profile("local")
    pvc = yaml.safe_load(r.files["manifests/mlflow/persistentvolumeclaim-mlflow-artifacts.yaml"])
    assert pvc["spec"]["resources"]["requests"]["storage"] == "10Gi"
    assert resources(r)["mlflow-artifacts"]["options"]["protect"] is True
    v = values(r)
    assert v["artifactRoot"]["defaultArtifactsDestination"] == "/mlartifacts"
    assert v["extraVolumeMounts"] == [{"name": "artifacts", "mountPath": "/mlartifacts"}]


def test_exposed_only_through_the_gateway_when_asked():
    route = yaml.safe_load(rendered_stack("lab").files["manifests/mlflow/httproute-mlflow.yaml"])
    validate_custom_resource(route)
    assert route["spec"]["hostnames"] == ["mlflow.ml.lab.example"]
    assert route["spec"]["parentRefs"][0]["sectionName"] == "https"
    assert not [p for p in rendered_profile("aws-gpu").files if "httproute-mlflow" in p]


def _mlflow_allows(allowed, host):
    """mlflow/server/security_utils.py `is_allowed_host_header`: `*` anywhere allows all; an entry with `*` is an
    fnmatch pattern, anything else must equal the Host header exactly (port included)."""
    import fnmatch

    return "*" in allowed or any(fnmatch.fnmatch(host, a) if "*" in a else host == a for a in allowed)


def test_mlflow_accepts_the_host_headers_its_clients_send():
    """The chart sets MLFLOW_SERVER_ALLOWED_HOSTS only from ingress hosts or `serverAllowedHosts`; MLflow's
    defaults allow only localhost and private IPs, so the in-cluster URL got 403 "Invalid Host header"."""
    from urllib.parse import urlparse

    import yaml

    from tests.conftest import rendered_stack

    r = rendered_stack("lab")
    allowed = yaml.safe_load(r.files["helm/mlflow.yaml"])["values"]["serverAllowedHosts"]
    for url in (r.result.outputs["mlflowTrackingUri"][0], r.result.outputs["mlflowUrl"][0]):
        assert _mlflow_allows(allowed, urlparse(url).netloc), url
    assert not _mlflow_allows(allowed, "attacker.example:5000")


# --- authentication (issue 17.2) ----------------------------------------------------------------------------------


def team_credentials(rendered):
    """The team Secrets' values as registered (before the writer redacts them)."""
    from mlcluster.render.writer import _unwrap

    found = {}
    for reg in rendered.result.resources:
        meta = reg.inputs.get("metadata") or {}
        if reg.type == "kubernetes:core/v1:Secret" and meta.get("name") == "mlflow-credentials":
            found[meta["namespace"]] = {k: _unwrap(v) for k, v in _unwrap(reg.inputs["stringData"]).items()}
    return found


def test_basic_auth_denies_by_default_and_keeps_users_in_the_tracking_database():
    """mlflow.org/docs/latest/auth: default_permission NO_PERMISSIONS reads and writes nothing not granted; the
    chart (community-charts mlflow 1.11.5, templates/auth_ini_configmap.yaml) builds the ini from these values."""
    for rendered in (rendered_profile("aws-gpu"), rendered_profile("onprem-gpu")):
        auth = values(rendered)["auth"]
        assert auth["enabled"] is True and auth["defaultPermission"] == "NO_PERMISSIONS"
        assert auth["existingAdminSecret"]["name"] == "mlflow-admin"
        backend = values(rendered)["backendStore"]["postgres"]
        assert {k: auth["postgres"][k] for k in ("host", "port", "database")} == \
            {k: backend[k] for k in ("host", "port", "database")}
        assert auth["postgres"]["existingSecret"]["name"] == \
            values(rendered)["backendStore"]["existingDatabaseSecret"]["name"]


def test_the_tracking_uri_teams_get_is_the_services_port():
    """The chart's Service listens on `service.port` (80 by default, values.yaml) and targets the container's
    5000: the URI every team is handed must name the Service's port."""
    rendered = rendered_profile("onprem-gpu")
    assert values(rendered)["service"]["port"] == 5000
    secret = yaml.safe_load(rendered.files["manifests/team-vision/secret-mlflow-credentials.yaml"])
    assert secret["stringData"] == dict.fromkeys(  # what the MLflow client reads; the whole map is a Pulumi secret
        ["MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME"], "[secret]")
    data = team_credentials(rendered)["team-vision"]
    assert data["MLFLOW_TRACKING_URI"] == "http://mlflow.mlflow.svc.cluster.local:5000"
    assert data["MLFLOW_TRACKING_USERNAME"] == "team-vision"


def test_each_team_gets_its_own_user_and_notebooks_load_it():
    rendered = rendered_profile("aws-gpu")
    credentials = team_credentials(rendered)
    assert {ns: c["MLFLOW_TRACKING_USERNAME"] for ns, c in credentials.items()} == {
        "team-vision": "team-vision", "team-nlp": "team-nlp"}
    assert credentials["team-vision"]["MLFLOW_TRACKING_PASSWORD"] != credentials["team-nlp"]["MLFLOW_TRACKING_PASSWORD"]
    job = yaml.safe_load(next(rendered.files[p] for p in rendered.files if "/job-mlflow-provision-users-" in p))
    mounted = job["spec"]["template"]["spec"]["volumes"][1]["secret"]["items"]
    assert sorted(i["key"] for i in mounted) == ["metrics", "team-nlp", "team-vision"]
    hub = yaml.safe_load(rendered.files["helm/jupyterhub.yaml"])["values"]["hub"]["extraConfig"]["mlcluster"]
    assert '"envFrom": [{"secretRef": {"name": "mlflow-credentials"}}]' in hub


def test_the_image_is_the_pinned_charts_own():
    from addons.ml.mlflow import IMAGE
    from tests.upstream import require_upstream

    chart = yaml.safe_load((require_upstream() / "charts" / "mlflow" / "Chart.yaml").read_text())
    chart_values = yaml.safe_load((require_upstream() / "charts" / "mlflow" / "values.yaml").read_text())
    assert f"{chart_values['image']['repository']}:{chart['appVersion']}" == IMAGE


def test_prometheus_scrapes_with_its_own_user_on_the_services_port():
    from tests.upstream import require_upstream

    rendered = rendered_profile("onprem-gpu")
    assert values(rendered)["serviceMonitor"]["enabled"] is False  # the chart's has no credentials
    monitor = yaml.safe_load(rendered.files["manifests/mlflow/servicemonitor-mlflow.yaml"])
    validate_custom_resource(monitor)
    endpoint = monitor["spec"]["endpoints"][0]
    chart_values = yaml.safe_load((require_upstream() / "charts" / "mlflow" / "values.yaml").read_text())
    assert endpoint["port"] == chart_values["service"]["name"]  # the Service's port name (templates/service.yaml)
    assert endpoint["basicAuth"]["password"] == {"name": "mlflow-users", "key": "metrics"}


# The provisioning Job's script, run against a fake MLflow that answers like the auth REST API.

def _fake_mlflow(users, admin=("admin", "s3cret"), healthy=True):
    import base64
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        calls: list = []

        def log_message(self, *args):  # quiet
            pass

        def _reply(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            self._reply(200 if healthy else 503, {})

        def _authorised(self):
            token = base64.b64encode(f"{admin[0]}:{admin[1]}".encode()).decode()
            return self.headers.get("Authorization") == f"Basic {token}"

        def _body(self):
            return json.loads(self.rfile.read(int(self.headers["Content-Length"])))

        def do_POST(self):
            body = self._body()
            Handler.calls.append(("POST", self.path, body["username"]))
            if not self._authorised():
                return self._reply(401, {})
            if body["username"] in users:
                return self._reply(400, {"error_code": "RESOURCE_ALREADY_EXISTS"})
            users[body["username"]] = body["password"]
            return self._reply(200, {"user": {"username": body["username"]}})

        def do_PATCH(self):
            body = self._body()
            Handler.calls.append(("PATCH", self.path, body["username"]))
            users[body["username"]] = body["password"]
            return self._reply(200, {})

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, Handler.calls


def _run_job(tmp_path, server, wanted, admin=("admin", "s3cret"), wait="5"):
    import os
    import subprocess
    import sys
    from pathlib import Path

    folder = tmp_path / "users"
    folder.mkdir(parents=True)
    (folder / "..data").mkdir()  # what a Secret volume holds besides its keys
    for name, password in wanted.items():
        (folder / name).write_text(password)
    script = Path("addons/ml/mlflow/provision_users.py").resolve()
    env = {**os.environ, "MLFLOW_URL": f"http://127.0.0.1:{server.server_address[1]}", "ADMIN_USERNAME": admin[0],
           "ADMIN_PASSWORD": admin[1], "USERS_DIR": str(folder), "WAIT_SECONDS": wait}
    return subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60)


def test_provisioning_creates_then_rekeys_users(tmp_path):
    existing = {"team-vision": "old"}
    server, calls = _fake_mlflow(existing)
    try:
        result = _run_job(tmp_path, server, {"team-vision": "new-v", "team-nlp": "new-n"})
    finally:
        server.shutdown()
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["created team-nlp", "updated team-vision"]
    assert existing == {"team-vision": "new-v", "team-nlp": "new-n"}
    assert ("PATCH", "/api/2.0/mlflow/users/update-password", "team-vision") in calls


def test_provisioning_fails_loudly_with_a_wrong_admin_or_no_server(tmp_path):
    server, _ = _fake_mlflow({})
    try:
        wrong = _run_job(tmp_path, server, {"team-vision": "p"}, admin=("admin", "wrong"))
    finally:
        server.shutdown()
    assert wrong.returncode != 0 and "creating team-vision: HTTP 401" in wrong.stderr
    sick, _ = _fake_mlflow({}, healthy=False)
    try:
        down = _run_job(tmp_path / "again", sick, {"team-vision": "p"}, wait="1")
    finally:
        sick.shutdown()
    assert down.returncode != 0 and "is not healthy after 1 s" in down.stderr
