"""Optical flow, warping and the occlusion mask on constructed cases with known answers."""
import cv2
import numpy as np
import pytest
import torch

from artify.flow import dis_flow, flow_pair, flow_to_torch, occlusion_mask, warp, warp_torch

H, W = 96, 128


def texture(h, w, seed=0, sigma=1.5):
    """Smooth random texture, full 0-255 range: DIS and warping have structure everywhere."""
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8).astype(np.float32), (0, 0), sigma)
    return cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)


@pytest.fixture(scope="module")
def big():
    return texture(H + 60, W + 60)


def crop(img, dx, dy, oy=30, ox=30):
    """Window of `img` moved by (dx, dy): crop(dx, dy)(x) = img(x + o + d)."""
    return img[oy + dy:oy + dy + H, ox + dx:ox + dx + W]


def moving_square(shift=6, size=30, y0=30, x0=40, seed=1):
    """Static textured background, a textured square moving `shift` px right from t to t+1."""
    bg = texture(H, W, seed)
    sq = texture(size, size, seed + 1, sigma=1.0)
    a, b = bg.copy(), bg.copy()
    a[y0:y0 + size, x0:x0 + size] = sq
    b[y0:y0 + size, x0 + shift:x0 + shift + size] = sq
    return a, b


def test_dis_flow_recovers_translation(big):
    a = crop(big, 0, 0)
    b = crop(big, -3, -2)  # content of a at x is in b at x + (3, 2)
    flow = dis_flow(a, b)
    assert flow.shape == (H, W, 2) and flow.dtype == np.float32
    inner = flow[12:-12, 12:-12]
    assert np.abs(inner - np.array([3.0, 2.0], np.float32)).max() < 0.5
    # and back
    back = dis_flow(b, a)[12:-12, 12:-12]
    assert np.abs(back - np.array([-3.0, -2.0], np.float32)).max() < 0.5


def test_dis_flow_rejects_bad_frames(big):
    with pytest.raises(TypeError):
        dis_flow(crop(big, 0, 0).astype(np.float32), crop(big, 0, 0))
    with pytest.raises(ValueError):
        dis_flow(crop(big, 0, 0), crop(big, 0, 0)[:-2])


def test_warp_with_known_flow_aligns_frames(big):
    a, b = crop(big, 0, 0), crop(big, -3, -2)
    flow = np.zeros((H, W, 2), np.float32)
    flow[..., 0], flow[..., 1] = 3, 2
    warped = warp(b, flow)
    assert warped.dtype == np.uint8 and warped.shape == a.shape
    # exact where x + flow stays inside b; the last 3 columns / 2 rows are border-replicated
    assert np.array_equal(warped[:-2, :-3], a[:-2, :-3])
    assert np.array_equal(warped[:, -1], warped[:, -4])  # replicated border


def test_warp_shapes_and_dtypes():
    rng = np.random.default_rng(3)
    flow = rng.normal(0, 2, (H, W, 2)).astype(np.float32)
    assert warp(rng.random((H, W)).astype(np.float32), flow).shape == (H, W)
    assert warp(rng.random((H, W, 1)).astype(np.float32), flow).shape == (H, W, 1)
    assert warp(rng.random((H, W, 6)), flow).shape == (H, W, 6)
    assert warp(rng.random((H, W, 3)), flow).dtype == np.float32
    zero = np.zeros((H, W, 2), np.float32)
    img = rng.random((H, W, 3)).astype(np.float32)
    np.testing.assert_allclose(warp(img, zero), img, atol=1e-6)
    with pytest.raises(ValueError):
        warp(img[:-1], flow)


def test_warp_and_warp_torch_agree():
    rng = np.random.default_rng(4)
    img = rng.random((H, W, 3)).astype(np.float32)
    flow = rng.normal(0, 4, (H, W, 2)).astype(np.float32)
    flow[:5] += 20  # some samples fall outside: border handling must match too
    ref = warp(img, flow)
    t = warp_torch(torch.from_numpy(img).permute(2, 0, 1)[None], flow_to_torch(flow))
    got = t[0].permute(1, 2, 0).numpy()
    # cv2.remap may use 1/32-px fixed-point weights: |error| <= 1/32 of a neighbour difference (<= 1)
    assert np.abs(got - ref).max() < 1.0 / 32
    assert np.abs(got - ref).mean() < 1e-3
    # masks (H, W) and batches
    mask = (rng.random((H, W)) > 0.5).astype(np.float32)
    tm = warp_torch(torch.from_numpy(np.stack([mask, mask]))[:, None], flow_to_torch(np.stack([flow, flow])))
    assert tm.shape == (2, 1, H, W)
    assert np.abs(tm[1, 0].numpy() - warp(mask, flow)).max() < 1.0 / 32


def test_warp_torch_is_differentiable():
    img = torch.rand(1, 3, 16, 20, requires_grad=True)
    flow = torch.full((1, 2, 16, 20), 0.5)
    warp_torch(img, flow).sum().backward()
    assert img.grad is not None and torch.isfinite(img.grad).all()


def test_occlusion_mask_analytic_flows():
    """Exact flows of a square moving 6 px right over a static background."""
    size, y0, x0, s = 30, 30, 40, 6
    fwd = np.zeros((H, W, 2), np.float32)
    bwd = np.zeros((H, W, 2), np.float32)
    fwd[y0:y0 + size, x0:x0 + size, 0] = s
    bwd[y0:y0 + size, x0 + s:x0 + s + size, 0] = -s
    mask = occlusion_mask(fwd, bwd)
    assert mask.dtype == np.float32 and mask.shape == (H, W)
    assert set(np.unique(mask)) <= {0.0, 1.0}
    rows = slice(y0 + 1, y0 + size - 1)
    # background in t that the square covers in t+1: occluded
    assert (mask[rows, x0 + size:x0 + size + s] == 0).all()
    # the square's interior moves consistently: reliable
    assert (mask[y0 + 1:y0 + size - 2, x0 + 1:x0 + size - 2] == 1).all()
    # motion boundary: the flow jumps at the square's left edge
    assert (mask[rows, x0 - 1] == 0).all()
    # the rest of the background is reliable
    far = np.ones((H, W), bool)
    far[y0 - 2:y0 + size + 2, x0 - 2:x0 + size + s + 2] = False
    assert (mask[far] == 1).all()


def test_occlusion_mask_identity_and_translation():
    assert (occlusion_mask(np.zeros((H, W, 2), np.float32), np.zeros((H, W, 2), np.float32)) == 1).all()
    f = np.full((H, W, 2), 3.0, np.float32)
    assert (occlusion_mask(f, -f) == 1).all()
    # inconsistent round trip everywhere: all occluded
    assert (occlusion_mask(f, f) == 0).all()


def test_occlusion_mask_flags_moving_square_with_dis():
    size, y0, x0, s = 30, 30, 40, 6
    a, b = moving_square(s, size, y0, x0)
    fwd, bwd, mask = flow_pair(a, b)
    assert fwd.shape == bwd.shape == (H, W, 2) and mask.shape == (H, W)
    covered = mask[y0 + 3:y0 + size - 3, x0 + size:x0 + size + s]
    assert covered.mean() < 0.3, covered.mean()
    far = np.ones((H, W), bool)
    far[y0 - 12:y0 + size + 12, x0 - 12:x0 + size + s + 12] = False
    assert mask[far].mean() > 0.95
    inner = fwd[y0 + 6:y0 + size - 6, x0 + 6:x0 + size - 6]
    assert np.abs(inner - np.array([s, 0], np.float32)).max() < 1.0
