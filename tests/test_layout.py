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
