"""The gateway on EKS: data scientists reach JupyterHub (and the other tools) at https://<tool>.<domain> over an
internal NLB (issue 16.3: aws-gpu had no way in — ClusterIP proxy, no route, OAuth callback on localhost)."""

from __future__ import annotations

import pytest
import yaml

from mlcluster.errors import ConfigError
from mlcluster.profiles.effective import load_profile
from tests.conftest import rendered_profile
from tests.upstream import require_upstream


def helm(rendered, name):
    return yaml.safe_load(rendered.files[f"helm/{name}.yaml"])["values"]


def test_aws_gpu_serves_jupyterhub_through_an_internal_load_balancer():
    r = rendered_profile("aws-gpu")
    annotations = helm(r, "traefik")["service"]["annotations"]
    # kubernetes/cloud-provider-aws docs/service_controller.md: the legacy service controller's NLB and scheme.
    assert annotations == {"service.beta.kubernetes.io/aws-load-balancer-type": "nlb",
                           "service.beta.kubernetes.io/aws-load-balancer-internal": "true"}
    chart = yaml.safe_load((require_upstream() / "charts" / "traefik" / "values.yaml").read_text())
    assert chart["service"]["spec"]["type"] == "LoadBalancer"  # what the annotations act on
    hub = helm(r, "jupyterhub")
    assert hub["httpRoute"]["hostnames"] == ["jupyter.ml.example.internal"]
    assert hub["hub"]["config"]["GenericOAuthenticator"]["oauth_callback_url"] == \
        "https://jupyter.ml.example.internal/hub/oauth_callback"
    assert r.result.outputs["jupyterhubUrl"][0] == "https://jupyter.ml.example.internal"


def test_onprem_gateway_has_no_aws_annotations():
    assert "service" not in helm(rendered_profile("onprem-gpu"), "traefik")


def test_envoy_gateway_is_refused_on_eks():
    with pytest.raises(ConfigError) as err:
        load_profile("aws-gpu", sets=("addons.gateway.controller=envoy-gateway",))
    assert "internal NLB" in {p.field: p for p in err.value.problems}["addons.gateway.controller"].allowed
