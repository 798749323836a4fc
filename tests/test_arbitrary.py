"""The arbitrary method: the network chosen by settings; AdaIN's public checkpoint format, statistics, mixing,
batching and steadiness; Magenta's network run the same way (style vectors mixed by the schedule, steadied
instance-norm statistics, reduced precision on the CPU as on CUDA)."""
import functools
import http.server
import threading
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from artify.quality.evaluate import warping_error
from artify.flow import backward_flows
from artify.methods.arbitrary import (AdaINEncoder, ArbitraryNet, SteadyNormStats, adain, adain_decoder, adain_vgg,
                                      compose_flows, load_decoder, load_network, mean_std, mix_stats, mix_vectors,
                                      network_for, smooth, style_vector, stylize_frames)
from artify.methods.magenta import MagentaNet
from artify.settings import ConfigError, Settings
from tests.conftest import textured_video

# pytorch-AdaIN net.py: the conv layers' indices in nn.Sequential `vgg` and `decoder`, with their shapes
VGG_CONVS = {0: (3, 3, 1), 2: (64, 3, 3), 5: (64, 64, 3), 9: (128, 64, 3), 12: (128, 128, 3), 16: (256, 128, 3),
             19: (256, 256, 3), 22: (256, 256, 3), 25: (256, 256, 3), 29: (512, 256, 3), 32: (512, 512, 3),
             35: (512, 512, 3), 38: (512, 512, 3), 42: (512, 512, 3), 45: (512, 512, 3), 48: (512, 512, 3),
             51: (512, 512, 3)}
DECODER_CONVS = {1: (256, 512, 3), 5: (256, 256, 3), 8: (256, 256, 3), 11: (256, 256, 3), 14: (128, 256, 3),
                 18: (128, 128, 3), 21: (64, 128, 3), 25: (64, 64, 3), 28: (3, 64, 3)}


def _expected_keys(convs):
    out = {}
    for i, (o, c, k) in convs.items():
        out[f"{i}.weight"], out[f"{i}.bias"] = (o, c, k, k), (o,)
    return out


def _lively(decoder: nn.Sequential, seed: int = 0) -> nn.Sequential:
    """Random weights that keep the signal alive through the decoder (output around 0.5 with visible detail)."""
    g = torch.Generator().manual_seed(seed)
    convs = [m for m in decoder if isinstance(m, nn.Conv2d)]
    for i, conv in enumerate(convs):
        fan_in = conv.weight[0].numel()
        gain = 2.0 if i < len(convs) - 1 else 0.05
        conv.weight.data = torch.randn(conv.weight.shape, generator=g) * (gain / fan_in) ** 0.5
        conv.bias.data.fill_(0.5 if i == len(convs) - 1 else 0.0)
    return decoder


def random_net(seed: int = 0, width: float = 0.25) -> ArbitraryNet:
    """Random encoder and (slim) decoder whose output is a real picture, for behaviour tests."""
    g = torch.Generator().manual_seed(seed)
    vgg = adain_vgg()
    for conv in (m for m in vgg if isinstance(m, nn.Conv2d)):
        conv.weight.data = torch.randn(conv.weight.shape, generator=g) * (2.0 / conv.weight[0].numel()) ** 0.5
        conv.bias.data.zero_()
    return ArbitraryNet(AdaINEncoder(vgg.state_dict()), _lively(adain_decoder(width), seed)).eval()


def _public_checkpoint(tmp_path, seed=0):
    torch.manual_seed(seed)
    vgg, dec = adain_vgg(), _lively(adain_decoder(), seed)
    torch.save(vgg.state_dict(), tmp_path / "vgg_normalised.pth")
    torch.save(dec.state_dict(), tmp_path / "decoder.pth")
    return vgg, dec


def _reference(vgg, dec, content, style, alpha=1.0):
    """pytorch-AdaIN test.py's style_transfer with its calc_mean_std, verbatim in substance."""
    enc = nn.Sequential(*list(vgg.children())[:31])

    def calc_mean_std(feat, eps=1e-5):
        n, c = feat.size()[:2]
        var = feat.view(n, c, -1).var(dim=2) + eps
        return feat.view(n, c, -1).mean(dim=2).view(n, c, 1, 1), var.sqrt().view(n, c, 1, 1)

    with torch.no_grad():
        cf, sf = enc(content), enc(style)
        sm, ss = calc_mean_std(sf)
        cm, cs = calc_mean_std(cf)
        feat = (cf - cm.expand(cf.size())) / cs.expand(cf.size()) * ss.expand(cf.size()) + sm.expand(cf.size())
        feat = feat * alpha + cf * (1 - alpha)
        return dec(feat)


def test_public_checkpoint_layout_loads_and_gives_pytorch_adains_output(tmp_path):
    vgg, dec = _public_checkpoint(tmp_path)
    saved_vgg = torch.load(tmp_path / "vgg_normalised.pth", weights_only=True)
    saved_dec = torch.load(tmp_path / "decoder.pth", weights_only=True)
    assert {k: tuple(v.shape) for k, v in saved_vgg.items()} == _expected_keys(VGG_CONVS)
    assert {k: tuple(v.shape) for k, v in saved_dec.items()} == _expected_keys(DECODER_CONVS)

    net = load_network(tmp_path / "decoder.pth", tmp_path / "vgg_normalised.pth")
    content, style = torch.rand(1, 3, 32, 40), torch.rand(1, 3, 48, 32)
    for alpha in (1.0, 0.6):
        with torch.no_grad():
            ours = net(content, *net.style_stats(style), alpha=alpha)
        assert torch.equal(ours, _reference(vgg, dec, content, style, alpha))


def test_a_wrong_file_is_named_in_the_error(tmp_path):
    torch.save({"1.weight": torch.zeros(3, 3, 3, 3)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="bad.pth: not a pytorch-AdaIN decoder"):
        load_network(tmp_path / "bad.pth")
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        load_network(tmp_path / "nope.pth")


def test_checkpoints_load_from_urls_through_the_download_helper(tmp_path, monkeypatch):
    pytest.importorskip("artify.weights", reason="artify/weights.py (the one download helper) not there yet")
    served = tmp_path / "served"
    served.mkdir()
    vgg, dec = _public_checkpoint(served, seed=1)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.chdir(tmp_path)
        base = f"http://127.0.0.1:{server.server_address[1]}"
        settings = Settings(arbitrary_network="adain", adain_decoder=f"{base}/decoder.pth",
                            adain_encoder=f"{base}/vgg_normalised.pth")
        net = network_for(settings, "cpu")
    finally:
        server.shutdown()
        thread.join()
    from artify.weights import download_path

    assert download_path(f"{base}/decoder.pth", tmp_path / "resources/models").is_file()
    content, style = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(net(content, *net.style_stats(style)), _reference(vgg, dec, content, style))


def test_adain_gives_the_target_statistics():
    g = torch.Generator().manual_seed(0)
    content = torch.randn(2, 16, 9, 11, generator=g) * 3 + 1
    t_mean, t_std = torch.randn(2, 16, 1, 1, generator=g), torch.rand(2, 16, 1, 1, generator=g) + 0.5
    m, s = mean_std(adain(content, t_mean, t_std))
    assert torch.allclose(m, t_mean, atol=1e-5)
    # std = sqrt(var + eps) on both sides: exact up to that eps
    assert torch.allclose(s, t_std, rtol=1e-5, atol=1e-5)


def test_alpha_zero_gives_the_content_features():
    net = random_net()
    feats = torch.rand(1, 512, 4, 5)
    assert torch.equal(net.transfer(feats, torch.zeros(1, 512, 1, 1), torch.ones(1, 512, 1, 1), alpha=0.0), feats)


def test_one_hot_mixing_is_the_single_style_and_mixing_is_linear():
    g = torch.Generator().manual_seed(1)
    stats = [(torch.randn(1, 8, 1, 1, generator=g), torch.rand(1, 8, 1, 1, generator=g) + 0.1) for _ in range(3)]
    mean, std = mix_stats(stats, [[0, 1, 0], [0.25, 0.75, 0], [2, 0, 2]])
    assert torch.equal(mean[0:1], stats[1][0]) and torch.equal(std[0:1], stats[1][1])
    assert torch.allclose(mean[1:2], 0.25 * stats[0][0] + 0.75 * stats[1][0])
    assert torch.allclose(std[2:3], 0.5 * (stats[0][1] + stats[2][1]))  # rows are normalised
    # mixing statistics == pytorch-AdaIN's interpolation (mixing the AdaIN outputs)
    content = torch.randn(1, 8, 5, 5, generator=g)
    mixed = adain(content, mean[1:2], std[1:2])
    assert torch.allclose(mixed, 0.25 * adain(content, *stats[0]) + 0.75 * adain(content, *stats[1]), atol=1e-5)
    with pytest.raises(ValueError):
        mix_stats(stats, [[0, 0, 0]])


def test_smoothing_modes():
    stats = [(torch.full((1, 2, 1, 1), float(v)), torch.ones(1, 2, 1, 1)) for v in (0, 10, 10)]
    assert smooth(stats, "none", 0.8) is stats
    assert [float(m.mean()) for m, _ in smooth(stats, "ema", 0.5)] == [0.0, 5.0, 7.5]
    assert all(float(m.mean()) == pytest.approx(20 / 3) for m, _ in smooth(stats, "clip", 0.5))


def _video():
    frames = textured_video(10, 64, 48, seed=2, speed=3)
    rng = np.random.default_rng(0)  # brightness flicker the content statistics see
    offsets = rng.uniform(0, 50, len(frames))[:, None, None, None]
    return (frames * 0.8 + offsets).clip(0, 255).astype(np.uint8)


def _styles():
    rng = np.random.default_rng(5)
    return [rng.integers(0, 256, (40, 40, 3), dtype=np.uint8), np.full((40, 40, 3), (200, 60, 20), np.uint8)]


def test_batched_and_unbatched_give_the_same_frames():
    net, frames = random_net(), _video()[:5]
    flows = backward_flows(frames, [1])
    weights = np.linspace([1, 0], [0, 1], len(frames))
    runs = [np.stack(list(stylize_frames(net, frames, weights, _styles(), Settings(
        method="arbitrary", batch_frames=b), "cpu", flows=flows))) for b in (1, 3)]
    assert runs[0].shape == frames.shape and runs[0].dtype == np.uint8
    assert np.abs(runs[0].astype(int) - runs[1].astype(int)).max() <= 1


def test_steadying_lowers_the_warping_error_on_a_panning_video():
    net, frames = random_net(), _video()
    flows = backward_flows(frames, [1])
    weights = np.ones((len(frames), 2)) * [1, 0]
    base = Settings(method="arbitrary")

    def error(**settings):
        out = np.stack(list(stylize_frames(net, frames, weights, _styles(), replace(base, **settings), "cpu",
                                           flows=flows)))
        assert out.std() > 5  # a real picture, not a flat one
        return warping_error(out, frames)[0]

    off = error(temporal=False)
    blend_only, both = error(smooth_stats="none"), error()
    # the flow-guided blend does most of it (the bench measures each part on a real clip)
    assert blend_only < 0.6 * off and both < 0.6 * off


def test_flow_blend_needs_flows():
    with pytest.raises(ValueError, match="flows"):
        list(stylize_frames(random_net(), _video()[:2], np.ones((2, 1)), _styles()[:1],
                            Settings(method="arbitrary"), "cpu"))


def test_previous_frames_are_kept_and_the_rest_follow_the_style():
    net, frames = random_net(), _video()[:4]
    previous = [np.zeros_like(frames[0]), np.full_like(frames[0], 255)]
    out = list(stylize_frames(net, frames, np.ones((4, 1)), _styles()[:1], Settings(temporal=False),
                              "cpu", previous=previous))
    assert np.array_equal(out[0], previous[0]) and np.array_equal(out[1], previous[1])
    assert not np.array_equal(out[2], previous[1])


def _pan(n=14, speed=2):
    """A texture panning by `speed` px per frame with a brightness flicker: frame t at x is frame t-k at x+k·speed."""
    frames = textured_video(n, 64, 48, seed=2, speed=speed)
    offsets = np.random.default_rng(0).uniform(0, 50, n)[:, None, None, None]
    return (frames * 0.8 + offsets).clip(0, 255).astype(np.uint8)


def test_composed_flows_follow_the_motion_and_leave_out_what_left_the_frame():
    frames = _pan()
    flows = backward_flows(frames, [1])
    flow, mask = compose_flows(flows, 12, 6)
    reliable = mask[0, 0].bool()
    # 6 frames of a 2 px pan: the point of frame 12 at x was at x + 12 in frame 6, for every reliable pixel
    assert torch.allclose(flow[0, 0][reliable], torch.tensor(12.0), atol=0.3)
    assert torch.allclose(flow[0, 1][reliable], torch.tensor(0.0), atol=0.3)
    assert not reliable[:, -12:].any()  # those came from outside frame 6
    assert reliable[:, :-13].float().mean() > 0.9
    # the flow file's own offset wins when it has one
    direct = backward_flows(frames, [1, 6])
    flow6, mask6 = compose_flows(direct, 12, 6)
    assert torch.equal(flow6[0].permute(1, 2, 0), torch.from_numpy(direct["flow_6"][12].astype(np.float32)))
    assert torch.equal(mask6[0, 0], torch.from_numpy(direct["mask_6"][12]).float())
    with pytest.raises(ValueError):
        compose_flows(flows, 3, 6)


def test_long_range_blend_steadies_frames_k_apart():
    net, frames, k, speed = random_net(), _pan(), 6, 2
    flows = backward_flows(frames, [1])  # only one-frame flows, as the pipeline's default flow file
    weights = np.ones((len(frames), 2)) * [1, 0]
    base = Settings(method="arbitrary", smooth_stats="none", blend_offset=k)

    def error(interval, **settings):  # against the known motion, no flow estimate in the measure
        out = np.stack(list(stylize_frames(net, frames, weights, _styles(), replace(base, **settings), "cpu",
                                           flows=flows)))
        assert out.std() > 5
        o, s = out.astype(np.float64) / 255, interval * speed
        return np.mean([((o[t][:, :-s] - o[t - interval][:, s:]) ** 2).mean() for t in range(interval, len(o))])

    off = error(k, temporal=False)
    assert error(k, flow_blend=0.0, flow_blend_long=0.5) < 0.4 * off
    assert error(k, flow_blend=0.5, flow_blend_long=0.5) < 0.5 * error(k, flow_blend=0.5, flow_blend_long=0.0)
    with pytest.raises(ValueError, match="blend_offset"):
        error(k, flow_blend_long=0.5, blend_offset=1)


def test_the_default_decoder_is_light_and_public_layouts_still_load_at_full_width(tmp_path):
    def conv_flops(decoder, h=64, w=64):  # multiply-adds of the convolutions for relu4_1 features of h x w
        total, scale = 0, 1
        for m in decoder:
            if isinstance(m, nn.Upsample):
                scale *= 4
            elif isinstance(m, nn.Conv2d):
                total += m.weight.numel() * h * w * scale
        return total

    light, full = adain_decoder(Settings().train_width), adain_decoder()
    assert conv_flops(light) < 0.3 * conv_flops(full)
    torch.save(light.state_dict(), tmp_path / "light.pth")
    _public_checkpoint(tmp_path)
    assert load_decoder(tmp_path / "light.pth")[1].out_channels == 128
    assert load_decoder(tmp_path / "decoder.pth")[1].out_channels == 256


# ------------------------------------------------------------------------------------------- Magenta's network

@pytest.fixture(scope="module")
def magenta_net():
    return network_for(Settings(), "cpu")


def _magenta(net, frames, weights, styles, flows=None, **settings):
    base = Settings(method="arbitrary")
    return np.stack(list(stylize_frames(net, frames, weights, styles, replace(base, **settings), "cpu",
                                           flows=flows)))


def test_the_default_network_is_magentas_and_adain_needs_asking_for(magenta_net, tmp_path):
    assert Settings().arbitrary_network == "magenta" and isinstance(magenta_net, MagentaNet)
    assert network_for(Settings(), "cpu") is magenta_net  # loaded once per process
    _public_checkpoint(tmp_path)
    checkpoint = {"adain_decoder": str(tmp_path / "decoder.pth"), "adain_encoder": str(tmp_path / "vgg_normalised.pth")}
    with pytest.raises(ConfigError, match="adain_decoder and adain_encoder set, but arbitrary_network is magenta"):
        Settings(method="arbitrary", **checkpoint)
    assert isinstance(network_for(Settings(**checkpoint, arbitrary_network="adain"), "cpu"), ArbitraryNet)
    with pytest.raises(ValueError, match="arbitrary_network: adain needs a decoder.*magenta is pretrained"):
        network_for(Settings(arbitrary_network="adain"), "cpu")


def test_schedule_weights_mix_the_style_vectors(magenta_net):
    vectors = torch.randn(3, 100)
    mixed = mix_vectors(vectors, [[0, 1, 0], [0.25, 0.75, 0], [2, 0, 2]])
    assert torch.equal(mixed[0], vectors[1]) and torch.allclose(mixed[1], 0.25 * vectors[0] + 0.75 * vectors[1])
    assert torch.allclose(mixed[2], 0.5 * (vectors[0] + vectors[2]))
    frames, styles = _video()[:3], _styles()
    alone = _magenta(magenta_net, frames, np.ones((3, 1)), styles[:1], temporal=False)
    one_hot = _magenta(magenta_net, frames, np.tile([1.0, 0.0], (3, 1)), styles, temporal=False)
    assert np.array_equal(alone, one_hot)
    # a cross-fade's middle lies between its ends: closer to each than they are to each other
    other = _magenta(magenta_net, frames, np.tile([0.0, 1.0], (3, 1)), styles, temporal=False)
    middle = _magenta(magenta_net, frames, np.tile([0.5, 0.5], (3, 1)), styles, temporal=False)
    ends = np.abs(alone.astype(int) - other).mean()
    assert np.abs(middle.astype(int) - alone).mean() < 0.8 * ends and np.abs(middle.astype(int) - other).mean() < 0.8 * ends


def test_the_style_vector_is_the_mean_over_crops_and_mirrors(magenta_net):
    painting = np.random.default_rng(3).integers(0, 256, (90, 160, 3), dtype=np.uint8)
    vector = style_vector(magenta_net, painting, "cpu")
    assert vector.shape == (1, 100)
    mirrored = style_vector(magenta_net, painting[:, ::-1].copy(), "cpu")
    assert torch.allclose(vector, mirrored, atol=1e-5)  # the same set of crops, in another order


def test_magenta_batched_and_unbatched_give_the_same_frames(magenta_net):
    frames = _video()[:5]
    flows = backward_flows(frames, [1])
    weights = np.linspace([1, 0], [0, 1], len(frames))
    runs = [_magenta(magenta_net, frames, weights, _styles(), flows, batch_frames=b) for b in (1, 3)]
    assert runs[0].shape == frames.shape and runs[0].dtype == np.uint8 and runs[0].std() > 5
    assert np.abs(runs[0].astype(int) - runs[1].astype(int)).max() <= 1


def test_steady_norm_stats():
    batches = [torch.full((2, 3, 1, 1), v) for v in (0.0, 10.0)]  # frames 0, 0, 10, 10 in two batches
    ema = SteadyNormStats("ema", 0.5)
    means = [ema(4, b, b + 1)[0] for b in batches]
    assert torch.cat(means)[:, 0, 0, 0].tolist() == [0.0, 0.0, 5.0, 7.5]  # continued across batches
    assert ema(5, batches[1], batches[1])[0][:, 0, 0, 0].tolist() == [10.0, 10.0]  # each layer on its own
    clip = SteadyNormStats("record")
    for b in batches:
        clip(0, b, b + 1)
    clip.mode = "clip"
    mean, std = clip(0, torch.zeros(3, 3, 1, 1), torch.zeros(3, 3, 1, 1))
    assert mean.shape == (3, 3, 1, 1) and torch.all(mean == 5.0) and torch.all(std == 6.0)


def test_magenta_steadiers_lower_the_warping_error(magenta_net):
    frames = _video()
    flows = backward_flows(frames, [1])
    weights = np.ones((len(frames), 1))

    def error(**settings):
        out = _magenta(magenta_net, frames, weights, _styles()[:1], flows, **settings)
        assert out.std() > 5
        return warping_error(out, frames)[0]

    off = error(temporal=False)
    assert error(smooth_stats="none") < 0.6 * off and error() < 0.6 * off
    # the statistics alone: the brightness flicker of this clip moves every norm's statistics
    assert error(flow_blend=0.0, flow_blend_long=0.0) < error(flow_blend=0.0, flow_blend_long=0.0, smooth_stats="none")


def test_magenta_alpha_moves_towards_the_content(magenta_net):
    frames, style = _video()[:3], _styles()[:1]
    full = _magenta(magenta_net, frames, np.ones((3, 1)), style, temporal=False)
    distances = [np.abs(_magenta(magenta_net, frames, np.ones((3, 1)), style, temporal=False, alpha=a).astype(int)
                        - full).mean() for a in (0.7, 0.3)]
    assert 0 < distances[0] < distances[1]


def test_magenta_in_bfloat16_on_the_cpu_runs_the_cuda_code_path(magenta_net, monkeypatch):
    """precision bfloat16 on the CPU: autocast and channels-last frames, as `auto` gives on CUDA."""
    import artify.methods.arbitrary as arbitrary

    layouts = []
    real_input = arbitrary._input
    monkeypatch.setattr(arbitrary, "_input", lambda *a: layouts.append(
        (x := real_input(*a)).is_contiguous(memory_format=torch.channels_last)) or x)
    frames = _video()[:4]
    flows = backward_flows(frames, [1])
    weights = np.linspace([1, 0], [0, 1], len(frames))
    full = _magenta(magenta_net, frames, weights, _styles(), flows, precision="float32")
    assert len(layouts) == 3 and not any(layouts)  # two style vectors, one batch of frames
    layouts.clear()
    low = _magenta(magenta_net, frames, weights, _styles(), flows, precision="bfloat16")
    assert layouts[-1] and layouts[:-1] == [False, False]  # the style vectors stay float32 (one per keyframe)
    assert arbitrary.autocast_dtype("cpu", "bfloat16") == torch.bfloat16 and arbitrary.autocast_dtype("cpu") is None
    assert np.abs(low.astype(int) - full).mean() < 4  # of 255
    with pytest.raises(ValueError, match="precision"):
        _magenta(magenta_net, frames, weights, _styles(), flows, precision="int4")


def test_precision_auto_takes_bfloat16_only_where_the_hardware_computes_it(monkeypatch):
    """CUDA: torch counts bfloat16 emulated on a V100 or T4 as supported (where float16 is faster): auto asks
    without emulation. CPU: bfloat16 for Magenta's network where the CPU computes it natively."""
    import artify.devices as devices
    import artify.methods.arbitrary as arbitrary

    for native, emulated, want in ((True, True, "bfloat16"), (False, True, "float16"), (False, False, "float16")):
        monkeypatch.setattr(torch.cuda, "is_bf16_supported",
                            lambda including_emulation=True: native or (including_emulation and emulated))
        assert arbitrary.auto_precision("cuda", "magenta") == arbitrary.auto_precision("cuda", "adain") == want
    for native, magenta, adain in ((True, "bfloat16", "float32"), (False, "float32", "float32")):
        monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: native)
        assert arbitrary.auto_precision("cpu", "magenta") == magenta and arbitrary.auto_precision("cpu") == adain
        assert arbitrary.autocast_dtype("cpu") is None  # AdaIN's auto: float32


def test_magenta_in_precision_auto_follows_the_cpu(magenta_net, monkeypatch):
    import artify.devices as devices

    frames, weights = _video()[:3], np.ones((3, 1))
    outputs = {}
    for native in (True, False):
        monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: native)
        outputs[native] = _magenta(magenta_net, frames, weights, _styles()[:1], temporal=False)
    assert np.array_equal(outputs[True], _magenta(magenta_net, frames, weights, _styles()[:1], temporal=False,
                                                  precision="bfloat16"))
    assert np.array_equal(outputs[False], _magenta(magenta_net, frames, weights, _styles()[:1], temporal=False,
                                                   precision="float32"))
    assert np.abs(outputs[True].astype(int) - outputs[False]).mean() < 4  # of 255: the bound bfloat16 is held to


def _poison_forward(monkeypatch, when):
    """MagentaNet.forward gives NaN for the frames `when(autocast on)` names (a list of places in the batch)."""
    real = MagentaNet.forward

    def forward(self, frames, style, steady=None):
        out = real(self, frames, style, steady)
        bad = when(torch.is_autocast_enabled("cpu"))
        if bad:
            out = out.clone()
            out[bad] = float("nan")
        return out

    monkeypatch.setattr(MagentaNet, "forward", forward)


def test_a_non_finite_batch_in_reduced_precision_is_made_again_in_float32(magenta_net, monkeypatch):
    frames = _video()[:6]
    flows = backward_flows(frames, [1])
    weights = np.linspace([1, 0], [0, 1], len(frames))
    full = _magenta(magenta_net, frames, weights, _styles(), flows, precision="float32", batch_frames=3)
    _poison_forward(monkeypatch, lambda low: [1] if low else [])  # bfloat16 overflows on every batch
    low = _magenta(magenta_net, frames, weights, _styles(), flows, precision="bfloat16", batch_frames=3)
    # the float32 retry starts from the statistics before the failed attempt, so nothing of it remains
    assert np.array_equal(low, full)


def test_a_batch_non_finite_in_float32_too_is_refused_naming_its_frame(magenta_net, monkeypatch):
    from artify.media.pixels import NonFiniteError

    frames = _video()[:6]
    _poison_forward(monkeypatch, lambda low: [1])
    made = []
    with pytest.raises(NonFiniteError, match="non-finite in bfloat16 and in float32") as e:
        made.extend(stylize_frames(magenta_net, frames, np.ones((6, 1)), _styles()[:1],
                                   Settings(batch_frames=3, precision="bfloat16"), "cpu",
                                   flows=backward_flows(frames, [1])))
    assert len(made) == 0 and e.value.frame == 1  # the first batch's second frame; nothing of it was yielded


def test_the_adain_network_retries_a_non_finite_batch_in_float32_too(monkeypatch):
    import artify.methods.arbitrary as arbitrary

    net, frames = random_net(), _video()[:4]
    weights = np.ones((4, 1))
    settings = Settings(arbitrary_network="adain", batch_frames=2, temporal=True, flow_blend=0.0, flow_blend_long=0.0)
    full = np.stack(list(stylize_frames(net, frames, weights, _styles()[:1], replace(settings, precision="float32"),
                                        "cpu")))
    real = arbitrary._fit
    calls = []

    def overflowing(out, size):  # the decoder overflows in reduced precision
        calls.append(torch.is_autocast_enabled("cpu"))
        return real(out, size) * (float("inf") if calls[-1] else 1.0)

    monkeypatch.setattr(arbitrary, "_fit", overflowing)
    low = np.stack(list(stylize_frames(net, frames, weights, _styles()[:1], replace(settings, precision="bfloat16"),
                                       "cpu")))
    assert calls == [True, False, True, False]  # each batch of 2 failed in bfloat16 and was made in float32
    assert np.array_equal(low, full)  # and the EMA of the statistics never saw the failed attempts
