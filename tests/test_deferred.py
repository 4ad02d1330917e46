"""mlcluster.deferred: the program's classes become Pulumi resources when instantiated, not when defined."""

from __future__ import annotations

import subprocess
import sys

import pulumi

from mlcluster.deferred import Component, CustomResource
from tests.conftest import ROOT


def test_a_component_is_a_pulumi_component_of_its_own_class():
    from components.platform import Platform
    from mlcluster.addons import registry

    for cls in [Platform, *registry().values()]:
        assert issubclass(cls, Component) and not issubclass(cls, pulumi.Resource)  # defined without pulumi
    from mlcluster.deferred import _with_pulumi_base

    made = _with_pulumi_base(Platform, "ComponentResource")
    assert issubclass(made, Platform) and issubclass(made, pulumi.ComponentResource)
    assert made.__name__ == "Platform" and made.__module__ == Platform.__module__
    assert made.__mro__.index(Platform) < made.__mro__.index(pulumi.ComponentResource)  # super() reaches Pulumi
    assert _with_pulumi_base(Platform, "ComponentResource") is made  # one class, not one per instance


def test_instances_register_as_resources_under_the_mocks():
    """Under the SDK's mocks: a Component registers with the type token it passes and parents its children; a
    CustomResource registers as a custom resource."""
    registered = []

    class Mocks(pulumi.runtime.Mocks):
        def new_resource(self, args):
            registered.append((args.typ, args.name, args.custom))
            return f"{args.name}-id", dict(args.inputs)

        def call(self, args):
            return {}

    pulumi.runtime.set_mocks(Mocks(), preview=False)

    class Outer(Component):
        def __init__(self, name: str) -> None:
            super().__init__("test:index:Outer", name, None, None)
            self.inner = Thing(f"{name}-thing", pulumi.ResourceOptions(parent=self))
            self.register_outputs({})

    class Thing(CustomResource):
        def __init__(self, name: str, opts: pulumi.ResourceOptions) -> None:
            super().__init__("test:index:Thing", name, {"x": 1}, opts)

    @pulumi.runtime.test
    def check():
        outer = Outer("o")
        assert isinstance(outer, Outer) and isinstance(outer, pulumi.ComponentResource)
        assert isinstance(outer.inner, Thing) and isinstance(outer.inner, pulumi.CustomResource)

        def urns(args):
            outer_urn, inner_urn = args
            assert inner_urn.endswith("test:index:Outer$test:index:Thing::o-thing"), inner_urn
            assert outer_urn.endswith("test:index:Outer::o"), outer_urn
            assert ("test:index:Thing", "o-thing", True) in registered

        return pulumi.Output.all(outer.urn, outer.inner.urn).apply(urns)

    check()


def test_deferred_modules_load_on_first_use():
    code = ("import sys\nfrom mlcluster.deferred import pulumi, k8s\n"
            "before = 'pulumi' in sys.modules\nopts = pulumi.ResourceOptions(protect=True)\n"
            "print(before, 'pulumi' in sys.modules, opts.protect, 'pulumi_kubernetes' in sys.modules)\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert run.stdout.split() == ["False", "True", "True", "False"], run.stdout + run.stderr
