"""Training the arbitrary decoder: losses, a step lowers the loss, a killed run resumes where it stopped."""
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from artify.methods.arbitrary import ArbitraryNet, PasticheEncoder, adain_decoder, load_decoder
from artify.methods.train_arbitrary import (TrainingData, losses, make_pairs, sample_batch, state_path, mean_std_style_loss,
                                    output_temporal_loss, train_decoder)
from artify.settings import Settings
from tests.conftest import textured_video

SIZE = 32
# the loss weights train_decoder is given, as the stage gives them: the settings' defaults
LOSS_WEIGHTS = dict(style_weight=Settings().train_style_weight, temporal_weight=Settings().train_temporal_weight)


@pytest.fixture(scope="module")
def encoder():
    return PasticheEncoder()


@pytest.fixture(scope="module")
def data():
    pairs, flows, masks = make_pairs(textured_video(9, 48, 40, seed=4, speed=2), SIZE)
    rng = np.random.default_rng(0)
    styles = [rng.integers(0, 256, (40, 40, 3), dtype=np.uint8),
              np.repeat(np.repeat(rng.integers(0, 256, (5, 5, 3), dtype=np.uint8), 8, 0), 8, 1)]
    return TrainingData(pairs, flows, masks, styles)


def test_pairs_come_with_backward_flows_and_masks(data):
    assert data.pairs.shape[1:] == (2, SIZE, 38, 3) and data.pairs.dtype == np.uint8
    # the texture pans right by 2 px per frame (1.6 px once resized): frame t at x is frame t-1 at x + 1.6
    reliable = data.masks[0].astype(bool)
    assert reliable.mean() > 0.5
    assert np.median(data.flows[0][..., 0][reliable]) == pytest.approx(2.0 * SIZE / 40, abs=0.2)  # resized 40 -> 32


def test_losses_vanish_where_they_should():
    feats = {"relu1_1": torch.rand(2, 4, 6, 6), "relu4_1": torch.rand(2, 4, 3, 3)}
    assert float(mean_std_style_loss(feats, feats)) == 0
    frame = torch.rand(1, 3, 8, 8)
    gray = (0.299 * frame[:, :1] + 0.587 * frame[:, 1:2] + 0.114 * frame[:, 2:3]).repeat(1, 3, 1, 1)
    still, mask = torch.zeros(1, 2, 8, 8), torch.ones(1, 1, 8, 8)
    # output changes exactly as the input's luminance: no temporal penalty; a flicker is penalised
    zero = output_temporal_loss(gray, torch.zeros_like(gray), frame, torch.zeros_like(frame), still, mask)
    assert float(zero) < 1e-12
    assert float(output_temporal_loss(gray + 0.1, gray, frame, frame, still, mask)) == pytest.approx(0.01, rel=1e-4)


def test_training_steps_lower_the_loss_on_a_fixed_batch(encoder, data):
    torch.manual_seed(0)
    net = ArbitraryNet(encoder, adain_decoder(0.5))
    batch = sample_batch(data, 2, SIZE, torch.Generator().manual_seed(0), "cpu")
    optimiser = torch.optim.Adam(net.decoder.parameters(), lr=3e-4)
    with torch.no_grad():
        before = losses(net, batch, 10.0, 100.0)
    for _ in range(6):
        parts = losses(net, batch, 10.0, 100.0)
        optimiser.zero_grad()
        parts["loss"].backward()
        optimiser.step()
    with torch.no_grad():
        after = losses(net, batch, 10.0, 100.0)
    assert set(parts) == {"loss", "content", "style", "temporal"}
    assert float(after["loss"]) < 0.95 * float(before["loss"])


def test_a_killed_training_resumes_from_its_last_checkpoint(tmp_path, encoder, data):
    common = dict(**LOSS_WEIGHTS, iterations=4, size=SIZE, batch=1, lr=1e-3, checkpoint_every=1, width=0.25, progress=False,
                  encoder=encoder)
    out = tmp_path / "resumed" / "decoder.pth"
    first = train_decoder(data, out, stop_after=2, **common)  # as if killed after iteration 2
    assert first["step"] == 2 and not first["finished"]
    assert state_path(out).is_file() and not out.exists()
    second = train_decoder(data, out, **common)
    assert second["finished"] and second["step"] == 4 and len(second["history"]) == 4
    assert second["history"][:2] == first["history"]
    assert (tmp_path / "resumed" / "decoder.pth.loss.tsv").is_file()
    # the same as a run never interrupted: batches and optimiser state carry over exactly
    straight = train_decoder(data, tmp_path / "straight" / "decoder.pth", **common)
    assert straight["history"] == second["history"]
    a, b = load_decoder(out).state_dict(), load_decoder(tmp_path / "straight" / "decoder.pth").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # asking for more iterations continues from the finished state
    more = train_decoder(data, out, **common | {"iterations": 5})
    assert more["step"] == 5 and more["history"][:4] == second["history"]


def test_cli_trains_a_decoder_from_a_video_and_keyframes(tmp_path, small_video):
    import cv2

    from artify.cli import main

    kdir = tmp_path / "keyframes"
    kdir.mkdir()
    cv2.imwrite(str(kdir / "k0.png"), np.random.default_rng(1).integers(0, 256, (40, 48, 3), dtype=np.uint8))
    pd.DataFrame({"file": ["k0.png"]}).to_csv(tmp_path / "keyframes.tsv", sep="\t", index=False)
    out = tmp_path / "models" / "decoder.pth"
    assert main(["train-arbitrary", "--content", str(small_video), "--keyframes", str(tmp_path / "keyframes.tsv"),
                 "--keyframe-dir", str(kdir), "--device", "cpu", "--train-iterations", "2", "--train-size", "32",
                 "--train-batch", "1", "--train-width", "0.25", "--train-on-cpu", "true", "--threads", "1",
                 "-o", str(out)]) == 0
    decoder = load_decoder(out)
    assert decoder[1].weight.shape == (64, 512, 3, 3)  # width 0.25 of pytorch-AdaIN's layout
    assert (tmp_path / "models" / "decoder.pth.loss.png").is_file()


def test_a_non_finite_loss_is_refused_before_backward_and_no_weights_are_written(tmp_path, encoder, data,
                                                                                  monkeypatch):
    import artify.methods.train_arbitrary as train
    from artify.media.pixels import NonFiniteError

    real = train.losses
    calls = [0]

    def diverging(net, batch, style_weight, temporal_weight):
        parts = real(net, batch, style_weight, temporal_weight)
        calls[0] += 1
        if calls[0] == 3:  # iteration 3 diverges
            parts["loss"] = parts["loss"] * float("inf")
        return parts

    monkeypatch.setattr(train, "losses", diverging)
    out = tmp_path / "decoder.pth"
    with pytest.raises(NonFiniteError, match="non-finite loss at iteration 3"):
        train_decoder(data, out, iterations=5, size=SIZE, batch=1, lr=1e-3, checkpoint_every=1, width=0.25,
                      progress=False, encoder=encoder, **LOSS_WEIGHTS)
    assert not out.exists()
    state = torch.load(state_path(out), weights_only=True)
    assert int(state["step"]) == 2  # the last good checkpoint stays, unpoisoned
    assert all(torch.isfinite(v).all() for v in state["decoder"].values())


def test_training_on_the_cpu_says_how_long_and_does_not_start_by_default(tmp_path, small_video, capsys):
    from artify.cli import main

    pd.DataFrame({"file": []}).to_csv(tmp_path / "keyframes.tsv", sep="\t", index=False)
    out = tmp_path / "models" / "decoder.pth"
    code = main(["train-arbitrary", "--content", str(small_video), "--keyframes", str(tmp_path / "keyframes.tsv"),
                 "--keyframe-dir", str(tmp_path), "--device", "cpu", "--threads", "1", "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    # the defaults: 2000 iterations x batch 8 x 256 px, the time expected, the fast default, the switch
    assert "2000 iterations x batch 8 x 256 px" in err and "expected to take about" in err
    assert re.search(r"about \d+(\.\d)? (s|min|h) \(\d+\.\d\d s per iteration", err), err
    assert "arbitrary_network: magenta" in err and "train_on_cpu: true" in err
    assert not out.parent.exists()  # nothing started, nothing written


def test_the_expected_time_counts_what_a_resumed_run_has_done(tmp_path, encoder, data):
    from artify.settings import Settings
    from artify.methods.train_arbitrary import expected_time

    settings = Settings(train_iterations=6, train_size=SIZE, train_batch=1, train_width=0.25, train_lr=1e-3)
    out = tmp_path / "decoder.pth"
    train_decoder(data, out, 6, SIZE, 1, 1e-3, checkpoint_every=1, width=0.25, progress=False, encoder=encoder,
                  **LOSS_WEIGHTS,
                  stop_after=4)
    _, sentence = expected_time(settings, "cpu", out, encoder)
    assert sentence.startswith("training the AdaIN decoder (2 iterations x batch 1 x 32 px crops, width 0.25)")
    _, sentence = expected_time(replace(settings, train_lr=1e-4), "cpu", out, encoder)  # that state will not resume
    assert sentence.startswith("training the AdaIN decoder (6 iterations")


def test_a_training_state_resumes_only_the_training_it_was_made_for(tmp_path, encoder, data, capsys):
    """A changed hyper-parameter, width, style set or encoder starts over (saying which) instead of silently
    continuing the other training (or failing with a traceback, for the width); more iterations continue."""
    import copy

    common = dict(**LOSS_WEIGHTS, iterations=3, size=SIZE, batch=1, lr=1e-3, checkpoint_every=1, width=0.25, progress=False,
                  encoder=encoder)
    out = tmp_path / "decoder.pth"
    other_encoder = copy.deepcopy(encoder)
    other_encoder.vgg.convs["conv1_1"].weight.data *= 2  # another VGG19 file
    other_styles = TrainingData(data.pairs, data.flows, data.masks, [255 - s for s in data.styles])
    changes = {"train_style_weight": ({"style_weight": 30.0}, data), "train_lr": ({"lr": 5e-4}, data),
               "train_width": ({"width": 0.5}, data),
               "encoder (vgg_source, vgg_weights)": ({"encoder": other_encoder}, data),
               "training data (frames, keyframes, train_images)": ({}, other_styles)}
    for name, (changed, changed_data) in changes.items():
        first = train_decoder(data, out, stop_after=2, **common)  # killed after iteration 2 (or resumed to it)
        capsys.readouterr()
        again = train_decoder(changed_data, out, **common | changed)
        assert f"decoder.pth.state.pt: made with another {name}: training starts over" in capsys.readouterr().out
        assert again["step"] == 3 and again["history"][:2] != first["history"], name  # not the old run's
        state_path(out).unlink()
    train_decoder(data, out, stop_after=2, **common)
    more = train_decoder(data, out, **common | {"iterations": 4, "checkpoint_every": 2})
    assert "resuming from" in capsys.readouterr().out and more["step"] == 4


def test_a_killed_save_leaves_nothing_the_rerun_does_not_replace(tmp_path, encoder, data, monkeypatch):
    """A hard kill inside a save leaves its temporary file (no cleanup runs); the decoder and its state have
    one writer, so the rerun writes to the same temporary name and replaces it."""
    import artify.atomic
    import artify.methods.train_arbitrary as train

    real_save = torch.save

    def killed_midway(obj, path):
        Path(path).write_bytes(b"half a state")
        raise KeyboardInterrupt

    monkeypatch.setattr(artify.atomic, "_remove", lambda tmp: None)  # SIGKILL: no cleanup runs
    monkeypatch.setattr(train.torch, "save", killed_midway)
    common = dict(**LOSS_WEIGHTS, iterations=2, size=SIZE, batch=1, lr=1e-3, checkpoint_every=1, width=0.25, progress=False,
                  encoder=encoder)
    with pytest.raises(KeyboardInterrupt):
        train_decoder(data, tmp_path / "decoder.pth", **common)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp.")]
    monkeypatch.undo()
    assert torch.save is real_save
    train_decoder(data, tmp_path / "decoder.pth", **common)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["decoder.pth", "decoder.pth.loss.tsv",
                                                          "decoder.pth.state.pt"]


def test_training_pairs_the_decoder_with_the_settings_vgg19(tmp_path, small_video, capsys):
    """vgg_source and vgg_weights reach training as they reach stylization: a decoder is trained on the
    encoder it will be used with (it was always the default VGG19)."""
    import json

    import cv2

    from artify.cli import main

    convs = PasticheEncoder().vgg.convs
    caffe = {f"{name}.{k}": v * (2 if name == "conv1_1" else 1) for name, conv in convs.items()
             for k, v in conv.state_dict().items()}
    torch.save(caffe, tmp_path / "vgg19_caffe.pth")
    kdir = tmp_path / "keyframes"
    kdir.mkdir()
    cv2.imwrite(str(kdir / "k0.png"), np.random.default_rng(1).integers(0, 256, (40, 48, 3), dtype=np.uint8))
    pd.DataFrame({"file": ["k0.png"]}).to_csv(tmp_path / "keyframes.tsv", sep="\t", index=False)

    def train(*vgg):
        return main(["train-arbitrary", "--content", str(small_video), "--keyframes", str(tmp_path / "keyframes.tsv"),
                     "--keyframe-dir", str(kdir), "--device", "cpu", "--train-iterations", "1", "--train-size", "32",
                     "--train-batch", "1", "--train-width", "0.25", "--train-on-cpu", "true", "--threads", "1",
                     *vgg, "-o", str(tmp_path / "decoder.pth")])

    assert train("--vgg-source", "caffe", "--vgg-weights", str(tmp_path / "missing.pth")) == 2
    assert capsys.readouterr().err.strip().endswith("missing.pth: VGG19 weights file not found")
    assert train("--vgg-source", "caffe", "--vgg-weights", str(tmp_path / "vgg19_caffe.pth")) == 0
    from artify.methods.train_arbitrary import training_record

    made_from = json.loads(torch.load(state_path(tmp_path / "decoder.pth"), weights_only=True)["made_from"])
    key = "encoder (vgg_source, vgg_weights)"
    caffe_encoder = PasticheEncoder("cpu", "caffe", tmp_path / "vgg19_caffe.pth")
    assert made_from[key] == training_record(32, 1, 1e-4, 10.0, 100.0, 0.25, 0, caffe_encoder)[key]
    assert made_from[key] != training_record(32, 1, 1e-4, 10.0, 100.0, 0.25, 0, PasticheEncoder())[key]
