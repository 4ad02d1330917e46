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
    for rendered, retain, instances in ((rendered_stack("lab"), "local-path-retain", 3),
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
