"""The command line mirrors the library: stages run by hand, bad input gives one line naming the file."""
import subprocess
import sys

import cv2
import numpy as np

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
    from artify.methods.features import VGG19Features

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
