"""The package's layout: one public function per name across artify/, so an import says which one it means."""
import ast
from collections import defaultdict
from pathlib import Path

ARTIFY = Path(__file__).resolve().parents[1] / "artify"
# Names several modules define on purpose: every command module's entry point, and the interface each
# stylization method implements (artify.methods.<method>.stylize_frames, chosen by the method's name).
SHARED_ON_PURPOSE = {"main", "stylize_frames"}


def public_functions() -> dict[str, list[str]]:
    """name -> the modules (paths under artify/) whose top level defines a public function of that name. The
    bench*.py modules are benchmark scripts that leave the package, so they are not counted."""
    found = defaultdict(list)
    for path in sorted(ARTIFY.rglob("*.py")):
        if path.name.startswith("bench"):
            continue
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
    assert sorted(public_functions()["stylize_frames"]) == ["methods/arbitrary.py", "methods/gatys.py",
                                                            "methods/segmented.py"]
