"""`stacks/__main__.py` under the Pulumi runtime: exports the stack outputs, or fails cleanly on bad input."""

from __future__ import annotations

import runpy

import pulumi
import pytest
from pulumi.runtime import config as runtime_config
from pulumi.runtime import settings

from mlcluster.render.mocks import PlatformMocks
from tests.conftest import ROOT


def run_main(config):
    settings.reset_options(project="mlcluster", stack="dev", preview=False)
    runtime_config.set_all_config(config, [])
    pulumi.runtime.set_mocks(PlatformMocks(), "mlcluster", "dev", preview=False)
    exported = {}

    @pulumi.runtime.test
    def program():
        original = pulumi.export
        pulumi.export = lambda k, v: exported.__setitem__(k, v)
        try:
            runpy.run_path(str(ROOT / "stacks" / "__main__.py"), run_name="__main__")
        finally:
            pulumi.export = original

    program()
    return exported


def test_main_exports_the_platform_outputs():
    exported = run_main({"mlcluster:profile": "local", "mlcluster:kubeContext": "kind-mlcluster"})
    assert {"profile", "substrate", "kubernetesVersion", "nodePools", "addons", "teamNamespaces",
            "grafanaAdminPassword"} <= set(exported)


def test_main_turns_bad_input_into_a_run_error():
    with pytest.raises(pulumi.RunError, match="nothing was deployed"):
        run_main({"mlcluster:profile": "nope"})


def test_outside_the_engine_it_says_how_to_run_it():
    """`python stacks/__main__.py` used to end in a traceback naming a stacks/Pulumi.stack.yaml that does not exist."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "stacks/__main__.py"], cwd=ROOT, capture_output=True, text=True,
                          check=False)
    assert done.returncode == 2
    assert "pulumi up" in done.stderr and "mlcluster render" in done.stderr
    assert "Traceback" not in done.stderr and "Pulumi.stack.yaml" not in done.stderr
