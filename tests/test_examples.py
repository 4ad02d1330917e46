"""The examples users copy: valid Kubernetes, and they name queues, namespaces and priorities that exist."""

from __future__ import annotations

import re

import kubernetes_validate
import yaml

from tests.conftest import ROOT, rendered_profile


def test_team_job_example_is_valid_and_matches_the_platform():
    job = yaml.safe_load((ROOT / "docs" / "examples" / "team-job.yaml").read_text())
    kubernetes_validate.validate(job, "1.35.0", strict=True)
    files = rendered_profile("aws-gpu").files
    ns, queue = job["metadata"]["namespace"], job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"]
    assert f"manifests/{ns}/localqueue-{queue}.yaml" in files
    priority = job["metadata"]["labels"]["kueue.x-k8s.io/priority-class"]
    assert f"manifests/_cluster/workloadpriorityclass-{priority}.yaml" in files
    gpus = job["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"]
    limit_range = yaml.safe_load(files[f"manifests/{ns}/limitrange-team-defaults.yaml"])
    assert gpus <= int(limit_range["spec"]["limits"][0]["max"]["nvidia.com/gpu"])


def test_readme_shows_the_same_job():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```yaml\n(apiVersion: batch/v1\n.*?)```", readme, re.S).group(1)
    example = (ROOT / "docs" / "examples" / "team-job.yaml").read_text()
    strip = lambda text: [line.split("#")[0].rstrip() for line in text.splitlines()  # noqa: E731
                          if line.strip() and not line.lstrip().startswith("#")]
    assert strip(block) == strip(example)
