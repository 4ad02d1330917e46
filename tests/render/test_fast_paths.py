"""Issue 18: the fast paths give the same answers as the slow ones (byte-identical YAML, the same validation
verdicts, a cached render equal to a fresh one), and commands that run no program import no provider SDK.
Speed itself is measured by bench/, never asserted."""

from __future__ import annotations

import json
import subprocess
import sys

import kubernetes_validate
import pytest
import yaml

from mlcluster.render import writer
from mlcluster.render.kubevalidate import _cache_schemas, validate_one
from mlcluster.review.revisions import cache_key, render_revision_cached
from tests.conftest import ROOT
from tests.render.test_render import RENDERS, get


def documents(kind, name):
    rendered = get(kind, name)
    return {path: text for path, text in rendered.files.items() if path.endswith(".yaml")}


@pytest.mark.parametrize(("kind", "name"), RENDERS)
def test_libyaml_dumper_writes_the_same_bytes_as_the_pure_python_one(kind, name):
    """The writer dumps with libyaml's emitter (yaml.CSafeDumper) and our representers; the pure-Python
    SafeDumper with the same representers must produce every file byte for byte."""
    assert writer._ReviewDumper.__mro__[1] is yaml.CSafeDumper

    class Pure(yaml.SafeDumper):
        pass

    Pure.add_representer(str, writer._str)
    for path, text in documents(kind, name).items():
        data = yaml.safe_load(text)
        pure = yaml.dump(data, Dumper=Pure, sort_keys=True, default_flow_style=False, allow_unicode=True,
                         width=100)
        assert writer._dump_yaml(data) == pure, path


def test_reused_validators_give_the_librarys_verdicts():
    """validate_one reuses one compiled validator per kind; kubernetes_validate.validate builds one per call.
    Same verdict on every built-in object of a render, and on broken ones."""
    _cache_schemas()
    rendered = get("profile", "aws-gpu")
    manifests = [yaml.safe_load(t) for p, t in rendered.files.items() if p.startswith("manifests/")]
    builtin = [m for m in manifests if m["apiVersion"] in ("v1", "apps/v1", "rbac.authorization.k8s.io/v1",
                                                           "networking.k8s.io/v1", "batch/v1")]
    assert len(builtin) > 20
    broken = []
    for manifest in builtin[:10]:
        bad = yaml.safe_load(yaml.safe_dump(manifest))
        bad["metadata"]["unknownField"] = 1  # strict: unknown fields are errors
        broken.append(bad)
    for manifest in builtin + broken:
        def verdict(check, m=manifest):
            try:
                check(m, "1.35.0")
                return "ok"
            except kubernetes_validate.ValidationError as exc:
                return exc.message

        library = verdict(lambda m, v: kubernetes_validate.validate(m, v, strict=True))
        assert verdict(validate_one) == library


@pytest.fixture(scope="module")
def repository(tmp_path_factory):
    from mlcluster.review.revisions import export

    repo = tmp_path_factory.mktemp("cache") / "repo"
    export(ROOT, None, repo)

    def git(*args):
        return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org",
                               *args], check=True, capture_output=True, text=True).stdout.strip()

    git("init", "-q", "-b", "main")
    git("add", "-A")
    git("commit", "-qm", "base")
    return repo, git


def test_a_cached_render_is_the_fresh_render_and_keys_follow_content(repository, tmp_path, monkeypatch):
    repo, git = repository
    monkeypatch.setenv("MLCLUSTER_CACHE", str(tmp_path / "cache"))
    args = ["--profile", "local"]
    assert render_revision_cached(repo, "main", args, tmp_path / "first") is False  # rendered and stored
    assert render_revision_cached(repo, "main", args, tmp_path / "second") is True  # reused
    files = sorted(p.relative_to(tmp_path / "first") for p in (tmp_path / "first").rglob("*") if p.is_file())
    assert files and files == sorted(p.relative_to(tmp_path / "second") for p in (tmp_path / "second").rglob("*")
                                     if p.is_file())
    assert all((tmp_path / "first" / f).read_bytes() == (tmp_path / "second" / f).read_bytes() for f in files)
    # The key is the content: a new commit with another tree is another entry; the same tree is the same one.
    base = cache_key(repo, "main", args)
    assert cache_key(repo, "main", ["--profile", "aws-gpu"]) != base
    git("commit", "-q", "--allow-empty", "-m", "same tree")
    assert cache_key(repo, "main", args) == base
    (repo / "profiles" / "local.yaml").write_text((repo / "profiles" / "local.yaml").read_text() + "\n# note\n")
    git("commit", "-qam", "another tree")
    assert cache_key(repo, "main", args) != base
    # Another version of a library that decides what a render writes or rejects is another entry.
    import importlib.metadata

    real_version, current = importlib.metadata.version, cache_key(repo, "main", args)
    for library in ("kubernetes-validate", "jsonschema-rs", "pulumi-kubernetes"):
        monkeypatch.setattr(importlib.metadata, "version",
                            lambda name, lib=library: "0.0.0-other" if name == lib else real_version(name))
        assert cache_key(repo, "main", args) != current, library
    monkeypatch.setattr(importlib.metadata, "version", real_version)
    # The working tree is never cached: it can change under the same name.
    assert render_revision_cached(repo, None, args, tmp_path / "work") is False


def _modules_after(argv):
    """Run `mlcluster <argv>` in a fresh interpreter: its output, and every module it loaded with its type's name
    (provider packages keep placeholders for their typed submodules until one is used: type `_LazyModule`)."""
    code = ("import json, sys\nfrom mlcluster.cli import app\nsys.argv = ['mlcluster', *sys.argv[1:]]\n"
            "try:\n    app()\nexcept SystemExit:\n    pass\n"
            "print('MODULES', json.dumps({m: type(v).__name__ for m, v in sys.modules.items()}))\n")
    run = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, cwd=ROOT, timeout=120)
    output, _, modules = run.stdout.rpartition("MODULES ")
    assert modules, run.stdout[-2000:] + run.stderr[-2000:]
    return output, json.loads(modules)


# Only executed modules cost time: provider packages load their typed submodules lazily.
HEAVY = ("pulumi_aws.eks", "pulumi_aws.ec2", "pulumi_aws.iam", "pulumi_kubernetes.core.v1", "pulumi_kubernetes.apps.v1",
         "pulumi_command.remote", "kubernetes_validate", "mlcluster.render.engine", "mlcluster.render.writer",
         # nor the SDKs themselves (~0.3 s of imports: grpc, protobuf, OpenTelemetry) nor Jinja: the add-on and
         # component classes they read take them from mlcluster.deferred, on first use
         "pulumi", "pulumi_aws", "pulumi_kubernetes", "pulumi_random", "pulumi_command", "grpc", "jinja2")


@pytest.mark.parametrize("argv", [["validate", "profiles/aws-gpu.yaml"], ["validate", "stacks/Pulumi.prod.yaml"],
                                  ["validate", "stacks/Pulumi.colo.yaml", "profiles/local.yaml"],
                                  ["profiles", "list"], ["--help"]])
def test_commands_that_run_no_program_import_no_provider_sdk(argv):
    _, modules = _modules_after(argv)
    assert [m for m in HEAVY if modules.get(m) == "module"] == []


def test_validate_prints_without_importing_rich():
    """rich is for tables on a terminal and typer's --help (~40 ms of imports); the lines validate prints are plain
    text."""
    output, modules = _modules_after(["validate", "stacks/Pulumi.prod.yaml", "profiles/aws-gpu.yaml"])
    assert sorted(m for m in modules if m == "rich" or m.startswith("rich.")) == []
    assert output.startswith("ok  stacks/Pulumi.prod.yaml: stack `prod`")


def test_a_render_runs_with_the_cyclic_collector_paused_and_restores_it(monkeypatch):
    """Issue 18: with the collector on, its full collections walked every live object of the run again and again
    (~40% of a 100-team render). The render pauses it while the program and the writer run, and leaves it as it
    found it — on stays on, off stays off."""
    import gc

    from mlcluster.render import engine, render

    seen = []
    real_run = engine.run

    def run(*args, **kwargs):
        seen.append(gc.isenabled())
        return real_run(*args, **kwargs)

    monkeypatch.setattr(engine, "run", run)
    assert gc.isenabled()
    render(profile="local")
    assert seen == [False] and gc.isenabled()
    gc.disable()
    try:
        render(profile="local")
    finally:
        still_off = not gc.isenabled()
        gc.enable()
    assert still_off


def test_each_registration_is_deserialized_once_and_the_mocks_forget_it_after_the_run(monkeypatch):
    """The recording monitor records the inputs it deserialized for the mocks (it used to deserialize every request
    a second time), and the mocks' own copy of every resource's state is dropped when the run ends."""
    from pulumi.runtime import rpc

    from mlcluster.render import engine, render

    calls, depth = [], [0]
    real = rpc.deserialize_properties

    def counting(*args, **kwargs):  # whole structs only, not the nested ones it recurses into
        calls.append(depth[0] == 0)
        depth[0] += 1
        try:
            return real(*args, **kwargs)
        finally:
            depth[0] -= 1

    monitors = []
    real_init = engine.RecordingMonitor.__init__

    def init(self, mocks):
        real_init(self, mocks)
        monitors.append(self)

    monkeypatch.setattr(rpc, "deserialize_properties", counting)
    monkeypatch.setattr(engine.RecordingMonitor, "__init__", init)
    rendered = render(profile="local")
    registered = len(rendered.result.resources)
    assert registered > 50
    # One for the monitor, one for the SDK reading the answer back as outputs; the recording added a third.
    assert sum(calls) < 2.5 * registered, (sum(calls), registered)
    assert monitors[0].resources == {}


def _yaml_files():
    """What mlcluster.yamlsource reads: profiles, stack files, Pulumi.yaml (single documents)."""
    return sorted([*ROOT.glob("profiles/*.yaml"), *ROOT.glob("stacks/Pulumi.*.yaml"), ROOT / "Pulumi.yaml"])


@pytest.mark.parametrize("path", _yaml_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_libyaml_composer_reads_every_file_as_the_pure_python_one(path, monkeypatch):
    """mlcluster.yamlsource composes with libyaml's parser: the same data, the same line for every value."""
    from mlcluster import yamlsource

    text = path.read_text(encoding="utf-8")
    fast = yamlsource.parse(text, path.name)
    monkeypatch.setattr(yamlsource, "_COMPOSER", yaml.SafeLoader)
    pure = yamlsource.parse(text, path.name)
    assert fast.data == pure.data and fast.lines == pure.lines
    assert {type(v) for v in fast.lines.values()} == {int}


def test_malformed_yaml_is_reported_with_the_pure_python_parsers_message():
    from mlcluster import yamlsource
    from mlcluster.errors import ConfigError

    with pytest.raises(ConfigError) as raised:
        yamlsource.parse("teams:\n\t- name: a\n", "p.yaml")
    assert "found character '\\t' that cannot start any token" in raised.value.render()


def test_values_templates_parse_as_safe_load_parses_them():
    """components.helm parses rendered values with libyaml's safe loader: the same values as yaml.safe_load."""
    from components import helm

    rendered = get("profile", "aws-gpu")
    releases = [yaml.safe_load(t) for p, t in rendered.files.items() if p.startswith("helm/")]
    assert len(releases) > 5
    for release in releases:
        text = yaml.safe_dump(release["values"], sort_keys=False)
        assert yaml.load(text, Loader=helm._LOADER) == yaml.safe_load(text)


def _mutations(manifest):
    """Broken variants of `manifest`, one change each: an unknown field in every object (strict schemas forbid
    them), every leaf and object given the wrong JSON type, every field removed (some are required)."""
    import copy

    def nodes(value, path=()):
        yield path, value
        children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        for key, child in children:
            yield from nodes(child, (*path, key))

    def changed(path, change):
        copied = copy.deepcopy(manifest)
        parent = copied
        for key in path[:-1]:
            parent = parent[key]
        change(parent, path[-1])
        return copied

    wrong = {str: 7, int: "7", bool: "true", float: "1.5", dict: ["x"], list: {"x": 1}}
    for path, value in nodes(manifest):
        if isinstance(value, dict):
            yield (changed(path, lambda p, k: p[k].update(zzUnknownField="x")) if path
                   else dict(manifest, zzUnknownField="x"))
        replacement = wrong.get(type(value))
        if path and replacement is not None:
            yield changed(path, lambda p, k, v=replacement: p.__setitem__(k, v))
        if path and isinstance(path[-1], str):
            yield changed(path, lambda p, k: p.pop(k))


def test_the_fast_validator_gives_the_librarys_verdict_on_every_shipped_object_and_its_mutations():
    """Issue 18: the verdict comes from jsonschema-rs; an object it passes is never checked again, so it must reject
    everything the library's validator (python-jsonschema, kubernetes_validate/utils.py `validate`) rejects. Same
    verdict on every built-in object of every shipped render, and on every one-change mutation of the largest
    object of each kind (unknown fields at every depth, wrong types, removed fields)."""
    from mlcluster.components.k8s import is_custom
    from mlcluster.render.kubevalidate import _fast_validator, _validator

    _cache_schemas()
    largest, checked, rejected = {}, 0, 0
    for kind, name in RENDERS:
        rendered = get(kind, name)
        version = f"{rendered.result.profile.kubernetes.version}.0"
        for path, text in rendered.files.items():
            if not path.startswith("manifests/"):
                continue
            manifest = yaml.safe_load(text)
            if is_custom(manifest):
                continue
            key = (version, manifest["kind"], manifest["apiVersion"])
            assert _fast_validator(*key).is_valid(manifest) and _validator(*key).is_valid(manifest), path
            if len(text) > len(largest.get(key, ("", ""))[1]):
                largest[key] = (manifest, text)
    assert len(largest) >= 15  # (version, kind) pairs the shipped renders write
    for key, (manifest, _) in sorted(largest.items()):
        fast, library = _fast_validator(*key), _validator(*key)
        for broken in _mutations(manifest):
            verdict = library.is_valid(broken)
            assert fast.is_valid(broken) == verdict, (key, broken)
            checked, rejected = checked + 1, rejected + (not verdict)
    assert checked > 1000 and rejected > checked // 2, (checked, rejected)


def test_an_object_the_fast_validator_rejects_is_reported_with_the_librarys_message_or_fails_closed(monkeypatch):
    """A rejected object gets kubernetes-validate's message (path and reason); were the library to pass what
    jsonschema-rs rejects, the object still fails, with jsonschema-rs's reason."""
    from mlcluster.render import kubevalidate

    broken = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "bogus": 1}, "data": {"a": "b"}}
    with pytest.raises(kubernetes_validate.ValidationError) as library:
        kubernetes_validate.validate(broken, "1.35.0", strict=True)
    with pytest.raises(kubernetes_validate.ValidationError) as ours:
        validate_one(broken, "1.35.0")
    assert (ours.value.message, list(ours.value.path)) == (library.value.message, list(library.value.path))

    class Permissive:
        def validate(self, manifest):
            return None

    real_fast = kubevalidate._fast_validator("1.35.0", "ConfigMap", "v1")
    monkeypatch.setattr(kubevalidate, "_validator", lambda *key: Permissive())
    monkeypatch.setattr(kubevalidate, "_fast_validator", lambda *key: real_fast)
    with pytest.raises(kubernetes_validate.ValidationError) as closed:
        validate_one(broken, "1.35.0")
    assert "bogus" in closed.value.message and list(closed.value.path) == ["metadata"]


def test_the_fast_validator_never_fetches_a_schema():
    """kubernetes-validate's schemas refer only to their definitions, which are registered; anything else is an
    error at build time, not a download."""
    import jsonschema_rs

    from mlcluster.render.kubevalidate import _no_retrieval

    with pytest.raises(Exception, match="nothing is fetched"):
        jsonschema_rs.validator_for({"$ref": "https://example.com/other.json"}, retriever=_no_retrieval)


def test_a_render_captures_no_stack_trace_per_resource_and_gives_the_sdk_its_capture_back(monkeypatch):
    """Issue 18: the SDK walks and stats the whole Python stack of every registration for the engine's source
    positions, which the mock monitor never reads; a render registers with an empty trace and restores the SDK's
    function afterwards, also when the run fails (`pulumi up` never runs through the render)."""
    from pulumi.runtime import resource as runtime_resource

    from mlcluster.render import engine, render

    captured = []
    real = runtime_resource._get_stack_trace

    def capture():
        captured.append(1)
        return real()

    monkeypatch.setattr(runtime_resource, "_get_stack_trace", capture)
    rendered = render(profile="local")
    assert len(rendered.result.resources) > 50 and captured == []
    assert runtime_resource._get_stack_trace is capture
    with pytest.raises(RuntimeError), engine.stack_traces_skipped():
        assert runtime_resource._get_stack_trace is not capture
        raise RuntimeError("the program failed")
    assert runtime_resource._get_stack_trace is capture


def test_every_monitor_call_of_a_render_runs_on_the_loops_thread_and_the_loop_is_put_away(monkeypatch):
    """Issue 18: the SDK sends each monitor call to its loop's executor, a thread pool; under the mocks a call is a
    function call, and the thread hop per resource cost ~14% of a 10-team render. A render runs on a loop of its own
    whose executor runs each call at once, on the loop's thread; afterwards that loop is closed with nothing pending,
    and the loop that was current before is current again."""
    import asyncio
    import threading

    from mlcluster.render import engine, render

    threads, loops = set(), set()
    real = engine.RecordingMonitor.RegisterResource

    def register(self, request):
        threads.add(threading.get_ident())
        loops.add(asyncio.get_event_loop())
        return real(self, request)

    monkeypatch.setattr(engine.RecordingMonitor, "RegisterResource", register)
    before = asyncio.get_event_loop()
    rendered = render(profile="local")
    assert len(rendered.result.resources) > 50
    assert threads == {threading.get_ident()}
    (loop,) = loops
    assert loop is not before and loop.is_closed() and not asyncio.all_tasks(loop)
    assert asyncio.get_event_loop() is before


def test_the_recording_monitor_answers_every_registration_as_the_sdks_mock_monitor(monkeypatch):
    """RecordingMonitor.RegisterResource is MockMonitor.RegisterResource (pulumi/runtime/mocks.py at v3.272.0)
    without its nested event loop: for every request of an eks render, the same id and the same state sent back,
    and the same state kept for lookups."""
    from pulumi.runtime import mocks as runtime_mocks

    from mlcluster.render import engine, render
    from mlcluster.render.mocks import PlatformMocks

    requests = []
    real = engine.RecordingMonitor.RegisterResource

    def register(self, request):
        requests.append(request)
        return real(self, request)

    monkeypatch.setattr(engine.RecordingMonitor, "RegisterResource", register)
    render(profile="aws-gpu")
    assert len(requests) > 100
    with engine.render_loop():
        ours, sdk = engine.RecordingMonitor(PlatformMocks()), runtime_mocks.MockMonitor(PlatformMocks())
        for request in requests:
            mine, theirs = real(ours, request), sdk.RegisterResource(request)
            assert (mine.id, mine.object) == (theirs.id, theirs.object), request.name
        assert [(r.id, r.state) for r in ours.resources.values()] == [(r.id, r.state) for r in sdk.resources.values()]


def test_an_answer_that_awaits_is_serialized_by_the_loop():
    """The mocks answer with plain data, serialized without the loop (secrets included); anything else (here an
    output not yet resolved) goes to the loop as MockMonitor sends it."""
    import asyncio

    import pulumi
    from pulumi.runtime import rpc
    from pulumi.runtime.sync_await import _sync_await

    from mlcluster.render import engine

    with engine.render_loop() as loop:
        plain = {"name": "x", "labels": {"a": "b"}, "count": 3, "list": [1.5, None, True],
                 "password": rpc.wrap_rpc_secret("hunter2")}
        assert engine._serialized(plain) == _sync_await(rpc.serialize_properties(plain, {}))
        later = loop.create_future()
        loop.call_soon(later.set_result, "resolved later")
        waits = {"name": pulumi.Output(set(), later, asyncio.ensure_future(asyncio.sleep(0, True)))}
        assert dict(engine._serialized(waits)) == {"name": "resolved later"}


def test_a_valid_object_never_loads_the_librarys_validator_or_keeps_its_definitions(monkeypatch):
    """Memory: the fast validator reads the kind's schema and registers the definitions itself; the library's
    validator, which holds the definitions as Python objects too (~3 MB per version), is built only for an object
    the fast one rejects."""
    from mlcluster.render import kubevalidate

    def library(*key):
        raise AssertionError(f"the library's validator was built for a valid object: {key}")

    for cached in (kubevalidate._fast_validator, kubevalidate._definitions_registry, kubevalidate._kind_schema):
        cached.cache_clear()
    monkeypatch.setattr(kubevalidate, "_validator", library)
    _cache_schemas()
    kubernetes_validate.utils.schema_contents.cache_clear()
    validate_one({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "b"}}, "1.35.0")
    assert kubernetes_validate.utils.schema_contents.cache_info().currsize == 1  # the ConfigMap schema only
