"""The package's layout: one public function per name across artify/, so an import says which one it means."""
import ast
from collections import defaultdict
from pathlib import Path

ARTIFY = Path(__file__).resolve().parents[1] / "artify"
# Names several modules define on purpose: every command module's entry point, and the interface each
# stylization method implements (its entry point `stylizer`, which artify.methods.registry names, and the
# frames-in, frames-out `stylize_frames` behind it).
SHARED_ON_PURPOSE = {"main", "stylizer", "stylize_frames"}


def public_functions() -> dict[str, list[str]]:
    """name -> the modules (paths under artify/) whose top level defines a public function of that name."""
    found = defaultdict(list)
    for path in sorted(ARTIFY.rglob("*.py")):
        for node in ast.parse(path.read_text(), str(path)).body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_"):
                found[node.name].append(str(path.relative_to(ARTIFY)))
    return found


def test_no_two_modules_define_a_public_function_of_the_same_name():
    found = public_functions()
    assert len(found) > 100 and "select_keyframes" in found  # the walk saw the package
    twice = {name: paths for name, paths in found.items() if len(paths) > 1 and name not in SHARED_ON_PURPOSE}
    assert twice == {}


def test_the_methods_share_their_interface_name():
    from artify.methods.registry import METHODS

    modules = sorted(m.module.removeprefix("artify.").replace(".", "/") + ".py" for m in METHODS.values())
    assert sorted(public_functions()["stylizer"]) == modules  # every registered method, and only they
    assert sorted(public_functions()["stylize_frames"]) == ["methods/arbitrary.py", "methods/gatys.py",
                                                            "methods/segmented.py"]


def developer_map() -> str:
    readme = (ARTIFY.parent / "README.md").read_text()
    return readme.split("## For developers", 1)[1].split("\n## ", 1)[0]


def test_benchmarks_live_outside_the_installed_package():
    assert not list(ARTIFY.rglob("bench*.py"))
    assert (ARTIFY.parent / "bench" / "long.py").is_file()


def test_the_developer_map_names_every_module_and_subcommand():
    """README's map (package tree and stage -> rule -> function -> subcommand -> test) stays complete."""
    from artify.cli import build_parser

    text = developer_map()
    modules = [p for p in ARTIFY.rglob("*.py") if p.stem not in ("__init__", "__main__")]
    assert len(modules) > 30
    missing = [str(p.relative_to(ARTIFY)) for p in modules if f"{p.name}" not in text]
    assert missing == [], f"README's developer map does not mention {missing}"
    sub = next(a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    assert [c for c in sub.choices if f"`artify {c}`" not in text and f"`{c}`" not in text] == []
    tests = sorted(p.stem for p in (ARTIFY.parent / "tests").glob("test_*.py"))
    assert [t for t in tests if t not in text] == []


def test_rule_helpers_that_several_rule_files_use_live_in_common_smk():
    """A function or constant one .smk file defines and another uses would make the order of the Snakefile's
    includes matter (evaluate.smk once defined helpers report.smk read): such helpers belong in common.smk."""
    import re

    rules = {p.name: p.read_text() for p in sorted((ARTIFY.parent / "workflow/rules").glob("*.smk"))}
    assert "common.smk" in rules and "report.smk" in rules
    shared = {}
    for name, text in rules.items():
        if name == "common.smk":
            continue
        for helper in re.findall(r"^def (\w+)|^([A-Za-z_]\w*) = ", text, re.M):
            helper = "".join(helper)
            users = [other for other, t in rules.items() if other != name and re.search(rf"\b{helper}\b", t)]
            if users:
                shared[f"{name}: {helper}"] = users
    assert not shared, f"move these to workflow/rules/common.smk: {shared}"


def test_every_file_of_the_package_that_is_not_python_ships_as_package_data():
    """setuptools puts only .py files into the wheel unless pyproject.toml names the others (the A/B page's
    assess.js and assess.css: an installed artify without them could not build the page)."""
    import fnmatch
    import tomllib

    setuptools = tomllib.loads((ARTIFY.parent / "pyproject.toml").read_text())["tool"]["setuptools"]
    declared = setuptools.get("package-data", {})
    data = [p for p in ARTIFY.rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc")]
    assert any(p.name == "assess.js" for p in data)
    missing = [str(p.relative_to(ARTIFY)) for p in data
               if not any(fnmatch.fnmatch(p.name, pattern) for pattern in
                          declared.get(".".join(p.parent.relative_to(ARTIFY.parent).parts), []))]
    assert not missing, f"pyproject.toml [tool.setuptools.package-data] does not ship {missing}"
