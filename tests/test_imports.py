"""Imports point one way: every module of artify/ imports only modules of lower layers (or of its own package).

The layers, lowest first (README's developer section says the same):
  0 base      atomic, progress, devices; settings; figures, config, weights and methods/registry.py (the
              methods' declarations: what each reads, needs and costs, no method imported; the flow, span
              sizing and the rules read them)
  1 media     media/ (pixels, video, chunks, spans' resumable jobs, assemble)
  2 measures  flow, raft, features (what frames are measured with: optical flow, VGG19 features)
  3 style     style/ (scenes, cuts, keyframes, schedule)
  4 masks, methods  (siblings: neither imports the other)
  5 quality   quality/ (metrics, costs, baselines, report, comparison, A/B page)
  6 stages    stages/ (one module per rule family: reads a stage's files, calls the libraries, writes its
              outputs), demo
  7 commands  cli, resume (`make run`'s wrapper)
  8 __main__  (`python -m artify`: the command line)
Imports inside functions count as much as those at module level: a lazy import still ties the two modules.
"""
import ast
from pathlib import Path

import pytest

ARTIFY = Path(__file__).resolve().parents[1] / "artify"

# A layer's modules import each other only down its own order, given as tenths: settings (.1) may write with
# atomic (.0); figures, config, weights and the method registry (.2) use both; flow (2.1) runs RAFT (2.0). An
# entry for a module (artify.methods.registry) places it apart from the rest of its package.
LAYERS = {
    "artify": 0, "artify.atomic": 0, "artify.progress": 0, "artify.devices": 0, "artify.settings": 0.1,
    "artify.figures": 0.2, "artify.config": 0.2, "artify.weights": 0.2, "artify.methods.registry": 0.2,
    "artify.media": 1,
    "artify.raft": 2, "artify.features": 2, "artify.flow": 2.1,
    "artify.style": 3,
    "artify.masks": 4, "artify.methods": 4,
    "artify.quality": 5,
    "artify.stages": 6, "artify.demo": 6,
    "artify.cli": 7, "artify.resume": 7, "artify.__main__": 8,
}


def unit(module: str) -> str:
    """The entry of LAYERS that holds `module`: its longest dotted prefix there."""
    parts = module.split(".")
    for n in range(len(parts), 1, -1):  # "artify" itself is the package's __init__ only
        if ".".join(parts[:n]) in LAYERS:
            return ".".join(parts[:n])
    if module == "artify":
        return module
    raise KeyError(f"{module} is in no layer of tests/test_imports.py")


def module_name(path: Path, root: Path = ARTIFY) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def artify_imports(path: Path):
    """(line, imported module) of every import of an artify module in `path`, at any depth."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "artify")
        elif isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").split(".")[0] == "artify":
            # `from artify.media import video` names the module artify.media.video
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                known = (ARTIFY.parent / sub.replace(".", "/")).with_suffix(".py").is_file()
                yield node.lineno, sub if known else node.module


def upward_imports(root: Path = ARTIFY) -> list[str]:
    """'module:line imports target' for each import of a module in a layer above the importer's, or beside it
    in another package."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        module = module_name(path, root)
        for line, target in artify_imports(path):
            own, other = unit(module), unit(target)
            if own != other and LAYERS[other] >= LAYERS[own]:
                found.setdefault(f"{path.relative_to(root.parent)}:{line} imports {target} "
                             f"({other}, layer {LAYERS[other]}; {own} is layer {LAYERS[own]})")
    return list(found)


def test_every_module_is_in_a_layer():
    modules = [module_name(p) for p in ARTIFY.rglob("*.py")]
    assert len(modules) > 40
    for m in modules:
        unit(m)


def test_imports_point_down_the_layers():
    assert upward_imports() == []


def test_an_upward_import_is_named_with_its_line(tmp_path):
    """The check sees imports inside functions, and says where they are."""
    package = tmp_path / "artify"
    (package / "media").mkdir(parents=True)
    (package / "media" / "__init__.py").write_text("")
    (package / "media" / "clip.py").write_text("import numpy\n\n\ndef f():\n    from artify.quality import cost\n")
    assert upward_imports(package) == [
        "artify/media/clip.py:5 imports artify.quality.cost (artify.quality, layer 5; artify.media is layer 1)"]
    with pytest.raises(KeyError, match="artify.nowhere"):
        unit("artify.nowhere.x")
