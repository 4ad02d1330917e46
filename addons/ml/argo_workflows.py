"""Argo Workflows for pipelines and retraining: workflows run in team namespaces (each gets the workflow
service account and its Role), the UI/API authenticates every request with the caller's own Kubernetes
token (`client` mode: nobody borrows the server's rights), and is served at argo.<domain> with the gateway.
"""

from __future__ import annotations

from typing import Any

from mlcluster.addons.base import Addon
from mlcluster.addons.gateway import route_manifest
from mlcluster.components.tenancy import team_namespace
from mlcluster.profiles.model import AddonSettings, DnsLabel

SERVER_PORT = 2746


class ArgoWorkflowsSettings(AddonSettings):
    namespace: DnsLabel = "argo"


class ArgoWorkflows(Addon):
    key = "argo_workflows"
    section = "ml"
    type_name = "ArgoWorkflows"
    description = "Argo Workflows: pipelines and retraining in team namespaces; API/UI with the caller's token."
    Settings = ArgoWorkflowsSettings
    installs = ("argo-workflows",)
    requires = ("gateway",)

    def build(self) -> dict[str, Any]:
        settings: ArgoWorkflowsSettings = self.settings  # type: ignore[assignment]
        ns = self.namespace(settings.namespace)
        namespaces = [team_namespace(t, self.profile.tenancy) for t in self.profile.teams]
        release = self.helm_release("argo-workflows", "argo-workflows", settings.namespace,
                                    self.values(workflow_namespaces=namespaces), depends_on=[ns])
        outputs: dict[str, Any] = {}
        gateway = self.profile.addons.gateway  # type: ignore[attr-defined]
        if gateway.enabled:
            host = f"argo.{gateway.domain}"
            self.apply("route", route_manifest("argo", settings.namespace, host, gateway,
                                               "argo-workflows-server", SERVER_PORT), depends_on=[release])
            outputs["argoUrl"] = f"https://{host}"
        return outputs


ADDON = ArgoWorkflows
