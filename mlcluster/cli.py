"""The `mlcluster` command: list, show and validate profiles; render a profile or stack offline.

Bad input (profile, stack config, flag) prints one paragraph per problem and exits 2, with no traceback
and nothing written. Tables use rich on a terminal and plain text otherwise.
"""

from __future__ import annotations

import gc
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
import yaml

from mlcluster.errors import EXIT_BAD_INPUT, ConfigError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False)
profiles_app = typer.Typer(add_completion=False, pretty_exceptions_enable=False,
                           help="List shipped profiles, or show one merged and defaulted.")
app.add_typer(profiles_app, name="profiles")


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            print(f"mlcluster {version('mlcluster')}")
        except PackageNotFoundError:  # run from a source tree that is not installed
            print("mlcluster (not installed)")
        raise typer.Exit(0)


@app.callback()
def _main(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="Print the version and exit.")] = False) -> None:
    """Kubernetes platforms for ML teams, chosen by a profile. Review offline, deploy with Pulumi."""


def _stage(stage: str) -> None:
    """Render progress on stderr: each stage as it starts (stdout stays for results)."""
    print(f"· {stage}…", file=sys.stderr)


def _bad_input(exc: ConfigError, writes: bool = False) -> NoReturn:
    """One paragraph per problem, exit 2. Commands that write say that nothing was written."""
    head = "error: bad input, nothing was written." if writes else "error: bad input."
    print(f"{head}\n\n{exc.render()}", file=sys.stderr)
    raise typer.Exit(EXIT_BAD_INPUT)


def _guard(action: Callable[[], Any], writes: bool = False) -> Any:
    """Run a command body; bad input → message + exit 2, an invalid render → message + exit 1."""
    from mlcluster.errors import RenderError

    try:
        return action()
    except ConfigError as exc:
        _bad_input(exc, writes)
    except RenderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(1) from None


def _print_table(headers: list[str], rows: list[list[str]], whole: tuple[int, ...] = (0,)) -> None:
    """A table; the columns in `whole` (ids users type back, e.g. rule ids) are never cut or wrapped."""
    from rich.console import Console  # only tables need rich (~40 ms of imports other commands skip)
    from rich.table import Table

    out = Console(highlight=False, soft_wrap=True)
    if out.is_terminal:
        table = Table(show_lines=False)
        for i, header in enumerate(headers):
            if i in whole:
                table.add_column(header, no_wrap=True, min_width=max([len(header), *(len(r[i]) for r in rows)]))
            else:
                table.add_column(header, overflow="fold")
        for row in rows:
            table.add_row(*row)
        out.print(table)
    else:
        widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
        for row in [headers, *rows]:
            print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())


@profiles_app.callback(invoke_without_command=True)
def profiles_list(ctx: typer.Context) -> None:
    """List the shipped profiles with their one-line descriptions."""
    if ctx.invoked_subcommand is not None:
        return
    from mlcluster.profiles.effective import load_profile
    from mlcluster.profiles.loader import shipped_profiles

    def body() -> None:
        rows = []
        for name in shipped_profiles():
            profile = load_profile(name)
            rows.append([name, profile.substrate.kind, profile.description])
        _print_table(["profile", "substrate", "description"], rows)

    _guard(body)


@profiles_app.command("show")
def profiles_show(
    name: Annotated[str, typer.Argument(help="Profile name (or path to a profile YAML).")],
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a field: KEY=VALUE.")] = None,
) -> None:
    """Print the effective profile: extends chain merged, every default filled in."""
    from mlcluster.profiles.effective import load_profile

    def body() -> None:
        ref: str | Path = Path(name) if name.endswith((".yaml", ".yml")) else name
        profile = load_profile(ref, sets=tuple(set_ or ()), referrer="profiles show")
        print(yaml.safe_dump(profile.model_dump(mode="json"), sort_keys=False, allow_unicode=True), end="")

    _guard(body)


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="Profile YAMLs or stacks/Pulumi.<env>.yaml files (checked also "
                                                     "against Pulumi.yaml as the Pulumi CLI checks them).")],
) -> None:
    """Validate profiles and stack files; every problem is reported, exit 2 if any."""
    from mlcluster import pulumiproject
    from mlcluster.components.substrates import SUBSTRATES
    from mlcluster.errors import Problem
    from mlcluster.profiles.effective import load_profile
    from mlcluster.profiles.loader import ABSTRACT_PREFIX, display_path
    from mlcluster.render import project_root, required_secrets
    from mlcluster.stackconfig import StackSettings, read_stack_file

    problems: list[ConfigError] = []
    for file in files:
        shown = display_path(file)
        try:
            if file.name.startswith("Pulumi.") and file.name != "Pulumi.yaml":
                stack_file = read_stack_file(file, shown)
                project_file = project_root() / "Pulumi.yaml"
                refused = pulumiproject.check_stack(project_file, file) if project_file.is_file() else []
                if refused:
                    raise ConfigError([Problem(shown, "config", None, f"the Pulumi CLI would refuse this stack: {r} "
                                               f"(rules of {project_file.name}'s `config:` block)", has_value=False)
                                       for r in refused])
                profile_name = stack_file.config.get("mlcluster:profile", "local")
                overrides = yaml.safe_load(stack_file.config.get("mlcluster:overrides", "{}"))
                profile = load_profile(profile_name, overrides=overrides, overrides_file=shown,
                                       override_lines=stack_file.override_lines, referrer=shown)
                substrate = SUBSTRATES[profile.substrate.kind]
                unset = [k for k in required_secrets(profile) if k not in stack_file.config]
                present = set(stack_file.config) | set(unset)
                settings = StackSettings(
                    stack=stack_file.stack, source=shown, profile=profile_name,
                    kube_context=stack_file.config.get("mlcluster:kubeContext") or None,
                    kubeconfig="[secret]" if "mlcluster:kubeconfig" in present else None,  # type: ignore[arg-type]
                    inventory=yaml.safe_load(stack_file.config.get("mlcluster:inventory", "null")),
                    inventory_lines=stack_file.inventory_lines,
                    ssh_private_key="[secret]" if "mlcluster:sshPrivateKey" in present else None,  # type: ignore[arg-type]
                )
                substrate.check_stack(profile, settings)
                print(f"ok  {shown}: stack `{stack_file.stack}`, profile `{profile.name}`")
                for key in unset:
                    print(f"    note: {key} is not set yet; `pulumi up` needs it "
                          f"(pulumi config set --secret {key.split(':')[1]} …)")
            elif file.stem.startswith(ABSTRACT_PREFIX):
                print(f"--  {shown}: a base profile; validated through the profiles that extend it")
            else:
                profile = load_profile(file)
                print(f"ok  {shown}: profile `{profile.name}`, substrate {profile.substrate.kind}, "
                      f"{len(profile.teams)} teams")
        except ConfigError as exc:
            problems.append(exc)
    if problems:
        _bad_input(ConfigError.merge(problems))


@app.command()
def render(
    profile: Annotated[str | None, typer.Option("--profile", "-p", help="Profile to render: a shipped name or a "
                                                 "path to a profile YAML (default: local).")] = None,
    stack: Annotated[str | None, typer.Option("--stack", "-s", help="Stack to render: a name (stacks/Pulumi.<NAME>"
                                               ".yaml) or a path to a Pulumi.<name>.yaml file.")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a profile field: KEY=VALUE "
                                                    "(repeatable), e.g. --set teams[0].quota.gpu=4.")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", "-o", help="Output folder (default: build/<name>); must be "
                                                  "new, empty or an earlier render.")] = None,
) -> None:
    """Run the Pulumi program offline under mocks and write what it would deploy."""
    from mlcluster.render import render as do_render
    from mlcluster.render import render_name, writer
    from mlcluster.safewrite import check_render_target

    def body() -> None:
        target = check_render_target(out_dir or Path("build") / render_name(profile, stack))
        rendered = do_render(profile=profile, stack=stack, sets=tuple(set_ or ()), progress=_stage)
        _stage(f"writing {target}")
        writer.write_tree(rendered.files, target)
        manifests = sum(1 for f in rendered.files if f.startswith("manifests/"))
        releases = sum(1 for f in rendered.files if f.startswith("helm/"))
        print(f"rendered {rendered.name}: {len(rendered.result.resources)} resources, {manifests} Kubernetes "
              f"objects (strictly validated), {releases} Helm releases")
        shown = out_dir or Path("build") / rendered.name
        print(f"wrote {shown}/ — read {shown}/SUMMARY.md first")

    _guard(body, writes=True)


def _render_records(profile: str | None, stack: str | None, sets: tuple[str, ...],
                    render_dir: Path | None) -> tuple[str, dict[str, Any]]:
    """resources.json of an existing render folder, or of a fresh render."""
    import json

    from mlcluster.render import render as do_render

    if render_dir is not None:
        path = render_dir / "resources.json"
        if not path.is_file():
            raise ConfigError.one("--render", "", str(render_dir), "a folder `mlcluster render` wrote "
                                  "(it holds resources.json)")
        return str(render_dir), json.loads(path.read_text(encoding="utf-8"))
    rendered = do_render(profile=profile, stack=stack, sets=sets, progress=_stage)
    return rendered.name, json.loads(rendered.files["resources.json"])


FAIL_ON = ("high", "medium", "low", "none")


@app.command()
def check(
    profile: Annotated[str | None, typer.Option("--profile", "-p", help="Profile to check: a name or a path "
                                                 "(default: local).")] = None,
    stack: Annotated[str | None, typer.Option("--stack", "-s", help="Stack to check: a name or a path to a "
                                               "Pulumi.<name>.yaml file.")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a profile field: KEY=VALUE "
                                                    "(repeatable).")] = None,
    render_dir: Annotated[Path | None, typer.Option("--render", help="Check an existing render folder.")] = None,
    fail_on: Annotated[str, typer.Option(help="Exit 1 on open findings this severe or worse: high, medium, low "
                                              "or none.")] = "high",
    markdown: Annotated[bool, typer.Option("--markdown", help="Print a pull-request comment.")] = False,
    list_rules: Annotated[bool, typer.Option("--rules", help="List the rules and exit.")] = False,
) -> None:
    """Evaluate the guardrails (docs/guardrails.md) on a render, exactly as the CrossGuard pack does."""
    from mlcluster.policy import evaluate, from_records, overrides_of, rules
    from mlcluster.policy import report as reports

    if list_rules:
        _print_table(["rule", "severity", "public checks", "title"],
                     [[r.id, r.severity, ", ".join(r.public_ids), r.title] for r in rules().values()])
        print("Each rule is explained in docs/guardrails.md; accept an exception with policy.overrides "
              "(rule id and a reason).")
        return
    if fail_on not in FAIL_ON:
        _bad_input(ConfigError.one("--fail-on", "", fail_on, f"allowed: {', '.join(FAIL_ON)}"))

    def body() -> None:
        name, data = _render_records(profile, stack, tuple(set_ or ()), render_dir)
        report = evaluate(from_records(data["resources"]), overrides_of(data))
        threshold = None if fail_on == "none" else fail_on
        if markdown:
            print(reports.markdown(report, name, threshold))  # type: ignore[arg-type]
        else:
            _print_table(["severity", "rule", "resource", "finding"], reports.rows(report))
            for finding in report.overridden():
                print(f"accepted: {finding.rule.id} on {finding.resource.name} — {finding.override.reason}")  # type: ignore[union-attr]
            print(reports.summary_line(report))
        if threshold and report.open(threshold):  # type: ignore[arg-type]
            raise typer.Exit(1)

    _guard(body)


@app.command()
def diff(
    profile: Annotated[str | None, typer.Option("--profile", "-p", help="Profile to compare (default: local).")
                       ] = None,
    stack: Annotated[str | None, typer.Option("--stack", "-s", help="Stack to compare: a name or a path to a "
                                               "Pulumi.<name>.yaml file inside the checkout.")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a profile field: KEY=VALUE "
                                                    "(repeatable).")] = None,
    base: Annotated[str | None, typer.Option(help="Git revision to compare from (default: merge-base with "
                                                  "main).")] = None,
    head: Annotated[str | None, typer.Option(help="Git revision to compare to (default: the working tree).")] = None,
    from_dir: Annotated[Path | None, typer.Option("--from", help="A render folder to compare from.")] = None,
    to_dir: Annotated[Path | None, typer.Option("--to", help="A render folder to compare to.")] = None,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print a pull-request comment.")] = False,
) -> None:
    """What a change would do to a profile or stack: resources added, removed, changed or replaced (loudly
    when they hold data), chart bumps and value changes. Exit 0: no change, 1: changes, 2: bad input."""
    import json
    import tempfile
    from concurrent.futures import ThreadPoolExecutor

    from mlcluster.project import project_root
    from mlcluster.review import report
    from mlcluster.review.compare import compare
    from mlcluster.review.revisions import default_base, git, render_revision_cached

    def load(folder: Path) -> dict[str, Any]:
        path = folder / "resources.json"
        if not path.is_file():
            raise ConfigError.one("--from/--to", "", str(folder), "a folder `mlcluster render` wrote")
        return json.loads(path.read_text(encoding="utf-8"))

    def body() -> None:
        if (from_dir is None) != (to_dir is None):
            raise ConfigError.one("--from/--to", "", str(from_dir or to_dir), "give both folders, or neither")
        if from_dir is not None and to_dir is not None:
            title, old, new = f"{from_dir} → {to_dir}", load(from_dir), load(to_dir)
            labels = (str(from_dir), str(to_dir))
        else:
            if profile and stack:
                raise ConfigError.one("--profile/--stack", "", f"{profile} / {stack}", "give one")
            root = project_root()
            base_rev = base or default_base(root)
            args = [*(["--stack", stack] if stack else ["--profile", profile or "local"]),
                    *[f"--set={s}" for s in set_ or ()]]
            with tempfile.TemporaryDirectory(prefix="mlcluster-diff-") as tmp:
                short = git(root, "rev-parse", "--short", base_rev)
                _stage(f"rendering {base or 'the merge-base with main'} ({short}) and {head or 'the working tree'}"
                       " side by side (a committed revision's earlier render is reused)")
                # Two subprocesses at once: each is one core's worth of work.
                with ThreadPoolExecutor(max_workers=2) as pool:
                    jobs = [pool.submit(render_revision_cached, root, rev, args, Path(tmp) / side)
                            for rev, side in ((base_rev, "base"), (head, "head"))]
                    for job in jobs:
                        job.result()
                old, new = load(Path(tmp) / "base"), load(Path(tmp) / "head")
            labels = (f"{base or 'merge-base'}@{git(root, 'rev-parse', '--short', base_rev)}",
                      head or "working tree")
            title = stack or profile or "local"
        result = compare(old, new, *labels)
        print(report.markdown(result, title) if markdown else report.text(result))
        if not result.empty:
            raise typer.Exit(1)

    _guard(body)


@app.command("policy-config")
def policy_config(
    profile: Annotated[str | None, typer.Option("--profile", "-p", help="Profile (default: local).")] = None,
    stack: Annotated[str | None, typer.Option("--stack", "-s", help="Stack: a name or a path to a stack file.")
                     ] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a profile field: KEY=VALUE "
                                                    "(repeatable).")] = None,
) -> None:
    """Print the CrossGuard config carrying the profile's accepted exceptions:
    `pulumi preview --policy-pack policies --policy-pack-config <file>`."""
    import json

    from mlcluster.policy import overrides_of
    from mlcluster.policy.crossguard import config

    def body() -> None:
        _, data = _render_records(profile, stack, tuple(set_ or ()), None)
        print(json.dumps(config(overrides_of(data)), indent=2, sort_keys=True))

    _guard(body)


@app.command()
def schema(
    check: Annotated[bool, typer.Option("--check", help="Exit 1 if a generated file is stale; write nothing.")
                     ] = False,
) -> None:
    """Regenerate profiles/schema.json, profiles/REFERENCE.md and docs/guardrails.md in this checkout."""
    from mlcluster.policy.catalogue import SIGNATURE as CATALOGUE_SIGNATURE
    from mlcluster.policy.catalogue import catalogue_file, catalogue_text
    from mlcluster.profiles.reference import REFERENCE_FILE, reference_text
    from mlcluster.profiles.reference import SIGNATURE as REFERENCE_SIGNATURE
    from mlcluster.profiles.schema import SCHEMA_FILE, schema_text
    from mlcluster.profiles.schema import SIGNATURE as SCHEMA_SIGNATURE
    from mlcluster.safewrite import check_generated_file, source_checkout

    def body() -> None:
        root = source_checkout(SCHEMA_FILE.parent, "mlcluster schema")
        generated = [(SCHEMA_FILE, schema_text(), SCHEMA_SIGNATURE), (REFERENCE_FILE, reference_text(),
                     REFERENCE_SIGNATURE), (catalogue_file(root), catalogue_text(), CATALOGUE_SIGNATURE)]
        if check:
            stale = [path for path, text, _ in generated
                     if not path.exists() or path.read_text(encoding="utf-8") != text]
            for path in stale:
                print(f"{path.relative_to(root)} is stale: run `mlcluster schema`", file=sys.stderr)
            if stale:
                raise typer.Exit(1)
            print("profiles/schema.json, profiles/REFERENCE.md and docs/guardrails.md are up to date")
            return
        for path, _, signature in generated:  # every target checked before the first is written
            check_generated_file(path, signature, "mlcluster schema")
        for path, text, _ in generated:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        print("wrote " + ", ".join(str(p.relative_to(root)) for p, _, _ in generated))

    _guard(body, writes=not check)


def main() -> None:
    # pulumi-aws warns about its own deprecated resource classes while registering them all; not ours to fix.
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"pulumi_(aws|command)(\.|$)")
    # A command runs at most one render and exits. A render pauses the cyclic collector (engine.cyclic_gc_paused);
    # switched back on, its first collection would walk every object the render allocated (~15% of a 300-team
    # render, more at 1,000) only to free memory the exit frees anyway. So the command keeps it off.
    gc.disable()
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
