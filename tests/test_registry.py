"""The method registry: every method is reached through it, and what it declares is what the pipeline does."""
import dataclasses
import sys
import types
from pathlib import Path

import cv2
import numpy as np
import pytest

from artify.methods import registry
from artify.methods.registry import METHODS, NEEDS, Method, Shot, method_for, needs
from artify.settings import STAGES, ConfigError, Settings

from tests.test_stylize import chunk_inputs, run_chunk  # noqa: F401  (the fixture)


def test_the_method_setting_offers_exactly_the_registered_methods():
    choices = next(f for f in dataclasses.fields(Settings) if f.name == "method").metadata["choices"]
    assert list(choices) == list(METHODS)


def test_the_stylize_stage_reads_every_settings_group_a_method_reads():
    # a method's settings reach its jobs as the stylize rule's params: a group missing there would be ignored
    for method in METHODS.values():
        missing = set(method.reads) - set(STAGES["stylize_chunk"])
        assert not missing, f"{method.name} reads {missing}, which stylize_chunk does not pass"


def test_every_method_has_its_entry_point_and_a_cost_for_each_device():
    import importlib

    for method in METHODS.values():
        assert callable(importlib.import_module(method.module).stylizer), method.name
        assert set(method.costs) == {"cpu", "cuda"}, method.name
        assert method.flow_on_cuda in ("dis", "raft"), method.name


@pytest.mark.parametrize("values, expected", [
    ({"method": "gatys"}, {"flows"}),
    ({"method": "gatys", "temporal": False}, set()),
    ({"method": "segmented"}, {"flows", "masks"}),
    ({"method": "segmented", "temporal": False}, {"masks"}),
    ({"method": "arbitrary"}, {"flows"}),
    ({"method": "arbitrary", "arbitrary_network": "adain"}, {"flows", "decoder"}),
    ({"method": "arbitrary", "arbitrary_network": "adain", "adain_decoder": "d.pth", "temporal": False}, set()),
])
def test_what_a_job_needs_follows_its_method_and_settings(values, expected):
    settings = Settings(**values)
    assert needs(settings) == expected
    assert needs(vars(settings)) == expected  # the workflow holds a job's settings as a dict
    assert expected <= set(NEEDS)


def test_an_unknown_method_is_one_clear_error():
    with pytest.raises(ConfigError, match="'method': 'ebsynth' is not one of gatys, segmented, arbitrary"):
        method_for("ebsynth")


@pytest.fixture
def inverting_method(monkeypatch):
    """A method of the test's own, put in the registry in place of gatys: what stylizes a shot is whatever
    the registry names, and nothing else needs to know it."""
    module = types.ModuleType("inverting_method")
    calls = []

    def stylizer(settings, device, inputs):
        calls.append(inputs)
        return lambda shot: (255 - frame for frame in shot.frames)

    module.stylizer = stylizer
    monkeypatch.setitem(sys.modules, "inverting_method", module)
    monkeypatch.setitem(METHODS, "gatys", dataclasses.replace(METHODS["gatys"], module="inverting_method"))
    return calls


def test_the_chunk_driver_stylizes_through_the_registry(chunk_inputs, inverting_method):
    run_chunk(chunk_inputs, Settings(temporal=False, device="cpu"))
    from artify.media.video import read_frames

    assert np.array_equal(read_frames(chunk_inputs / "out.npy"), 255 - read_frames(chunk_inputs / "frames.npy"))
    assert inverting_method == [{}]  # no flows, masks or decoder needed by a per-frame gatys job


def test_artify_image_stylizes_through_the_registry(tmp_path, inverting_method):
    from artify.methods.image import stylize_image

    picture = np.random.default_rng(1).integers(0, 255, (40, 64, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "in.png"), picture)
    result = stylize_image(tmp_path / "in.png", tmp_path / "in.png", tmp_path / "out.png",
                           Settings(device="cpu"), size=64)
    assert np.array_equal(result, 255 - cv2.cvtColor(picture, cv2.COLOR_BGR2RGB))


def test_artify_image_refuses_a_method_for_videos_naming_what_it_needs(tmp_path):
    from artify.methods.image import stylize_image

    cv2.imwrite(str(tmp_path / "in.png"), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ConfigError, match="method segmented is for videos .*foreground masks.*runs gatys or arbitrary"):
        stylize_image(tmp_path / "in.png", tmp_path / "in.png", tmp_path / "out.png",
                      Settings(method="segmented", device="cpu"), size=8)
    assert not (tmp_path / "out.png").exists()


def test_the_job_flow_on_cuda_is_the_methods_choice():
    from artify.flow import flow_method

    for method in METHODS.values():
        assert flow_method(Settings(method=method.name), "cuda").method == method.flow_on_cuda
        assert flow_method(Settings(method=method.name), "cpu").method == "dis"


def test_span_sizing_and_cost_files_ask_the_registry(monkeypatch):
    from artify.quality.cost import benchmark_files, job_cost

    assert job_cost("arbitrary", "cpu", 256 * 144) == METHODS["arbitrary"].costs["cpu"]
    jobs = {"j": vars(Settings(method="segmented"))}
    files = benchmark_files("j", jobs, {}, lambda job: [0], lambda job: job)
    assert "benchmarks/segment_chunk/j_0000.tsv" in files and "benchmarks/flow_chunk/j_0000.tsv" in files
    # a method that needs no masks costs no mask files, whatever its name
    monkeypatch.setitem(METHODS, "segmented", dataclasses.replace(METHODS["segmented"], needs=registry._temporal))
    assert "benchmarks/segment_chunk/j_0000.tsv" not in benchmark_files("j", jobs, {}, lambda job: [0],
                                                                         lambda job: job)
