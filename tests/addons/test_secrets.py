"""Secrets backends per substrate, the scoped store, and platform secrets that never appear in plain text."""

from __future__ import annotations

import functools
import json

import pytest
import yaml

from mlcluster.errors import ConfigError
from mlcluster.profiles.effective import load_profile
from mlcluster.render import render
from tests.conftest import rendered_profile
from tests.upstream import unknown_value_keys


@functools.cache
def vault():
    return render(profile="local", sets=("addons.secrets.backend=vault",))


def release(rendered, name):
    return yaml.safe_load(rendered.files[f"helm/{name}.yaml"])


def resources(rendered):
    return json.loads(rendered.files["resources.json"])["resources"]


def test_auto_backend_is_sealed_secrets_off_aws_and_external_secrets_on_eks():
    assert rendered_profile("local").result.outputs["secretsBackend"][0] == "sealed-secrets"
    assert rendered_profile("aws-gpu").result.outputs["secretsBackend"][0] == "external-secrets"


@pytest.mark.parametrize(("rendered", "chart"), [
    (lambda: rendered_profile("local"), "sealed-secrets"),
    (lambda: vault(), "vault"),
    (lambda: rendered_profile("aws-gpu"), "external-secrets"),
], ids=["sealed-secrets", "vault", "external-secrets"])
def test_values_keys_exist_in_the_pinned_chart(rendered, chart):
    r = rendered()
    values = release(r, chart)["values"]
    assert unknown_value_keys(chart, values) == []


def test_vault_is_ha_with_raft_on_retained_storage():
    values = release(vault(), "vault")["values"]
    assert values["server"]["ha"] == {"enabled": True, "replicas": 3, "raft": {"enabled": True}}
    assert values["server"]["dataStorage"]["enabled"] is True
    lab = render(stack="shared", sets=("addons.secrets.backend=vault",))
    assert release(lab, "vault")["values"]["server"]["dataStorage"]["storageClass"] == "standard-retain"


def test_cluster_store_serves_platform_namespaces_only():
    files = rendered_profile("aws-gpu").files
    store = yaml.safe_load(files["manifests/_cluster/clustersecretstore-aws-secrets-manager.yaml"])
    namespaces = store["spec"]["conditions"][0]["namespaces"]
    assert namespaces == ["argo", "cert-manager", "gateway", "jupyterhub", "kserve", "kubeflow-system", "kuberay",
                          "kueue-system", "logging", "mlflow", "monitoring", "opencost"]  # the platform's
    assert not [n for n in namespaces if n.startswith("team-")]


def test_external_secrets_role_reads_only_this_stacks_secrets():
    res = resources(rendered_profile("aws-gpu"))
    (policy,) = [r for r in res if r["type"] == "aws:iam/rolePolicy:RolePolicy" and "external-secrets" in r["name"]]
    statements = json.loads(policy["inputs"]["policy"])["Statement"]
    read = next(s for s in statements if s["Sid"] == "ReadThisStacksSecrets")
    assert read["Resource"].endswith(":secret:mlcluster/render/*")
    decrypt = next(s for s in statements if s["Sid"] == "DecryptThroughSecretsManager")
    assert decrypt["Condition"]["StringEquals"]["kms:ViaService"] == "secretsmanager.us-east-1.amazonaws.com"


def test_platform_secret_goes_through_secrets_manager_on_eks():
    r = rendered_profile("aws-gpu")
    res = resources(r)
    # 13.9: a name prefix, so destroy -> up never meets a name still in its 30-day recovery window
    secrets = {x["inputs"]["namePrefix"]: x for x in res if x["type"] == "aws:secretsmanager/secret:Secret"}
    assert all("name" not in x["inputs"] for x in secrets.values())
    assert set(secrets) == {"mlcluster/render/monitoring/grafana-admin-",  # the generated platform secrets
                            "mlcluster/render/monitoring/alertmanager-receivers-",  # the receivers' URLs/keys
                            "mlcluster/render/mlflow/mlflow-db-credentials-",
                            "mlcluster/render/mlflow/mlflow-admin-",  # MLflow's basic-auth admin
                            "mlcluster/render/mlflow/mlflow-users-",  # its team users' passwords
                            "mlcluster/render/jupyterhub/jupyterhub-mlcluster-"}
    secret = secrets["mlcluster/render/monitoring/grafana-admin-"]
    assert secret["inputs"]["kmsKeyId"].startswith("arn:aws:kms:")
    external = yaml.safe_load(r.files["manifests/monitoring/externalsecret-grafana-admin.yaml"])
    (source,) = external["spec"]["dataFrom"]
    assert source["extract"]["key"].startswith("mlcluster/render/monitoring/grafana-admin-")  # the created name
    assert external["spec"]["secretStoreRef"] == {"kind": "ClusterSecretStore", "name": "aws-secrets-manager"}
    (es_resource,) = [x for x in res if x["type"] == "kubernetes:external-secrets.io/v1:ExternalSecret"
                      and x["name"] == "monitoring-grafana-admin"]
    assert any(d.endswith("::secrets-cluster-store") for d in es_resource["dependencies"])
    assert "manifests/monitoring/secret-grafana-admin.yaml" not in r.files


def test_kubernetes_secrets_are_encrypted_at_rest_on_eks():
    (cluster,) = [r for r in resources(rendered_profile("aws-gpu")) if r["type"] == "aws:eks/cluster:Cluster"]
    assert cluster["inputs"]["encryptionConfig"]["resources"] == ["secrets"]


@pytest.mark.parametrize(("sets", "field", "message"), [
    (("addons.secrets.backend=external-secrets",), "addons.secrets.backend", "needs substrate eks"),
    (("addons.secrets.vault_replicas=2",), "addons.secrets.vault_replicas", "odd number"),
])
def test_bad_secrets_settings(sets, field, message):
    with pytest.raises(ConfigError) as err:
        load_profile("local", sets=sets)
    (problem,) = err.value.problems
    assert problem.field == field and message in problem.allowed
