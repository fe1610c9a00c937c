"""The web API (``pixcolor.web.create_app``) through FastAPI's test client, with tiny models."""

from __future__ import annotations

import asyncio
import io
import sys
import threading
import time

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

pytest.importorskip("fastapi", reason="the web extra is not installed")
pytest.importorskip("python_multipart", reason="the web extra is not installed")
from fastapi.testclient import TestClient

from pixcolor.errors import PixcolorError
from pixcolor.pipeline import Colorizer
from pixcolor.web import ModelSet, WebOptions, create_app
from pixcolor.web.upload import FORM_OVERHEAD_BYTES

BASE_URL = "http://127.0.0.1:8000"  # a Host: the app accepts (TestClient's default is refused)


class ConstantAB(nn.Module):
    """A "generator" whose output is the same non-gray ab everywhere (ab/110 = 0.3)."""

    stride = 32

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full((x.shape[0], 2, *x.shape[-2:]), 0.3)


class NegativeAB(ConstantAB):
    """Green-blue everywhere (ab/110 = -0.3)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -super().forward(x)


class SlowColorizer:
    """Duck-typed colorizer that blocks every call until ``gate`` is set."""

    name, device, size, extra_sizes = "slow", "cpu", 64, ()

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.started = threading.Event()

    def colorize(self, image: Image.Image, **_kwargs: object) -> Image.Image:
        self.started.set()
        if not self.gate.wait(timeout=30):
            raise RuntimeError("test gate never opened")
        return image


@pytest.fixture
def colorizer() -> Colorizer:
    return Colorizer(ConstantAB(), {"arch": "constant", "size": 64}, device="cpu")


def make_client(models: object, **options: object) -> TestClient:
    return TestClient(create_app(models, WebOptions(**options)), base_url=BASE_URL)


@pytest.fixture
def client(colorizer: Colorizer):
    with make_client(colorizer) as test_client:
        yield test_client


def png_bytes(width: int = 96, height: int = 64, *, noise: bool = False) -> bytes:
    """A grayscale PNG: a horizontal gradient, or (``noise``) random pixels that compress badly."""
    if noise:
        pixels = np.random.default_rng(0).integers(0, 256, (height, width), dtype=np.uint8)
    else:
        pixels = np.tile(np.linspace(30, 220, width).astype(np.uint8), (height, 1))
    buffer = io.BytesIO()
    Image.fromarray(pixels, "L").save(buffer, format="PNG")
    return buffer.getvalue()


def post(client: TestClient, data: bytes, **fields: str):
    return client.post(
        "/api/colorize", files={"image": ("photo.png", data, "image/png")}, data=fields
    )


def assert_json_error(response, status: int, fragment: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert fragment in response.json()["error"]


def test_colorize_returns_colour_png_of_input_size(client: TestClient) -> None:
    response = post(client, png_bytes(96, 64), size="64")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    result = Image.open(io.BytesIO(response.content))
    assert result.format == "PNG" and result.mode == "RGB"
    assert result.size == (96, 64)
    r, g, b = np.asarray(result).astype(int).transpose(2, 0, 1)
    assert np.abs(r - g).mean() > 10 and np.abs(g - b).mean() > 10  # a+ b+: orange, not gray


def test_health_reports_model_and_limits(client: TestClient) -> None:
    health = client.get("/api/health").json()
    assert health["status"] == "ok"
    assert (health["model"], health["device"], health["size"]) == ("default", "cpu", 64)
    assert health["extra_sizes"] == []
    (model,) = health["models"]
    assert model.pop("hints") is False and "takes no colour hints" in model.pop("hints_note")
    assert model == {"name": "default", "device": "cpu", "size": 64}
    assert health["busy"] == 0 and health["max_queue"] == 4


def test_page_and_static_files_are_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert 'type="file"' in page.text and 'name="viewport"' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for name in ("app.js", "download.js", "zip.js", "style.css"):
        assert client.get(f"/static/{name}").status_code == 200
    assert "http" not in page.text.replace('href="/static', "")  # no external assets


def test_model_picker_runs_the_named_model(colorizer: Colorizer) -> None:
    warm = Colorizer(ConstantAB(), {"arch": "constant", "size": 64}, device="cpu")
    cool = Colorizer(NegativeAB(), {"arch": "constant", "size": 64}, device="cpu")
    with make_client({"default": warm, "fast": cool}) as client:
        health = client.get("/api/health").json()
        assert [m["name"] for m in health["models"]] == ["default", "fast"]
        means = {}
        for name in ("default", "fast", ""):
            response = post(client, png_bytes(), model=name)
            assert response.status_code == 200, response.text
            means[name] = np.asarray(Image.open(io.BytesIO(response.content))).mean((0, 1))
        assert means["default"][0] > means["default"][2]  # a+ b+: warm (red over blue)
        assert means["fast"][0] < means["fast"][2]  # a- b-: cool
        assert np.array_equal(means[""], means["default"])
        assert_json_error(post(client, png_bytes(), model="effunet"), 400, "no model called")


def test_text_upload_is_400(client: TestClient) -> None:
    response = client.post("/api/colorize", files={"image": ("notes.txt", b"hello", "text/plain")})
    assert_json_error(response, 400, "not an image file")


def test_truncated_image_is_400(client: TestClient) -> None:
    data = png_bytes(96, 64, noise=True)
    assert_json_error(post(client, data[: len(data) // 2]), 400, "truncated")


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"size": "10"}, "size must be"),
        ({"size": "big"}, "size must be"),
        ({"upscale": "5"}, "upscale must be"),
    ],
)
def test_bad_options_are_400(client: TestClient, fields: dict, fragment: str) -> None:
    assert_json_error(post(client, png_bytes(), **fields), 400, fragment)


def test_form_without_image_is_400(client: TestClient) -> None:
    assert_json_error(client.post("/api/colorize", data={"size": "64"}), 400, "'image'")
    response = client.post(
        "/api/colorize", content=b"{}", headers={"content-type": "application/json"}
    )
    assert_json_error(response, 400, "multipart/form-data")


@pytest.mark.parametrize("extra", [1, 200_000], ids=["just-over", "content-length"])
def test_oversized_upload_is_413(colorizer: Colorizer, extra: int) -> None:
    limit = 10_000
    with make_client(colorizer, max_upload_bytes=limit) as client:
        response = post(client, b"\x89PNG" + bytes(limit + extra - 4))
    assert_json_error(response, 413, "upload too large")


def test_oversized_stream_stops_reading_at_the_limit(colorizer: Colorizer) -> None:
    """Without Content-Length the server must stop pulling the body once past the limit.

    Driven through raw ASGI: the test client would buffer the whole body first.
    """
    boundary = "pixcolorboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; '
        'filename="big.png"\r\nContent-Type: image/png\r\n\r\n'
    ).encode()
    pulled, sent = 0, []

    async def receive() -> dict:
        nonlocal pulled
        pulled += 1  # 1000 chunks of 4 KiB (4 MB) if read to the end
        body = head if pulled == 1 else bytes(4096)
        return {"type": "http.request", "body": body, "more_body": pulled < 1000}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/colorize",
        "raw_path": b"/api/colorize",
        "query_string": b"",
        "root_path": "",
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", f"multipart/form-data; boundary={boundary}".encode()),
        ],
    }
    app = create_app(colorizer, WebOptions(max_upload_bytes=10_000))
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 413
    assert b"upload too large" in sent[1]["body"]
    assert pulled * 4096 < 10_000 + FORM_OVERHEAD_BYTES + 2 * 4096  # stopped at the limit


def test_too_many_pixels_is_413(colorizer: Colorizer) -> None:
    with make_client(colorizer, max_pixels=1000) as client:
        assert_json_error(post(client, png_bytes(96, 64)), 413, "too large")


class FakeUpscaler:
    """Nearest-neighbour enlargement standing in for SRCNN."""

    def upscale(self, image: Image.Image, scale: int) -> Image.Image:
        return image.resize((image.width * scale, image.height * scale), Image.NEAREST)


def test_upscaler_is_loaded_once_per_scale(colorizer: Colorizer) -> None:
    loads: list[int] = []

    def loader(scale: int) -> FakeUpscaler:
        loads.append(scale)
        return FakeUpscaler()

    with make_client(ModelSet({"default": colorizer}, loader)) as client:
        for upscale, size in (
            ("3", (120, 90)),
            ("3", (120, 90)),
            ("2", (80, 60)),
            ("none", (40, 30)),
        ):
            response = post(client, png_bytes(40, 30), upscale=upscale)
            assert response.status_code == 200, response.text
            assert Image.open(io.BytesIO(response.content)).size == size
    assert loads == [3, 2]


def test_upscale_error_is_400(colorizer: Colorizer) -> None:
    def loader(scale: int) -> FakeUpscaler:
        raise PixcolorError(f"no shipped SRCNN weights for x{scale}")

    with make_client(ModelSet({"default": colorizer}, loader)) as client:
        assert_json_error(post(client, png_bytes(), upscale="2"), 400, "no shipped SRCNN weights")


def test_upscale_over_pixel_limit_is_413(colorizer: Colorizer) -> None:
    with make_client(colorizer, max_pixels=96 * 64 * 3) as client:
        assert_json_error(post(client, png_bytes(96, 64), upscale="2"), 413, "smaller factor")


def test_saturated_queue_answers_503() -> None:
    slow = SlowColorizer()
    results: list[int] = []

    def send(client: TestClient) -> None:
        results.append(post(client, png_bytes()).status_code)

    with make_client(slow, max_queue=2, workers=1) as client:
        threads = [threading.Thread(target=send, args=(client,)) for _ in range(2)]
        try:
            for thread in threads:
                thread.start()
            deadline = time.monotonic() + 10
            while client.get("/api/health").json()["busy"] < 2:
                assert time.monotonic() < deadline, "requests never reached the queue"
                time.sleep(0.01)
            response = post(client, png_bytes())
            assert_json_error(response, 503, "busy")
            assert int(response.headers["retry-after"]) > 0
        finally:
            slow.gate.set()
            for thread in threads:
                thread.join(timeout=30)
        assert results == [200, 200]
        assert client.get("/api/health").json()["busy"] == 0
        assert post(client, png_bytes()).status_code == 200


def test_concurrent_requests_all_complete(colorizer: Colorizer) -> None:
    sizes = [(64 + 8 * i, 48 + 4 * i) for i in range(6)]
    results: dict[int, tuple[int, tuple[int, int]]] = {}

    def send(client: TestClient, i: int) -> None:
        response = post(client, png_bytes(*sizes[i]))
        results[i] = (response.status_code, Image.open(io.BytesIO(response.content)).size)

    with make_client(colorizer, max_queue=len(sizes), workers=2) as client:
        threads = [threading.Thread(target=send, args=(client, i)) for i in range(len(sizes))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert results == {i: (200, size) for i, size in enumerate(sizes)}


def test_create_app_checks_its_arguments(colorizer: Colorizer) -> None:
    with pytest.raises(ValueError, match="max_queue"):
        WebOptions(max_queue=0)
    with pytest.raises(ValueError, match="body_timeout_s"):
        WebOptions(body_timeout_s=-1.0)
    with pytest.raises(TypeError, match="not a Colorizer"):
        create_app(42)  # type: ignore[arg-type]


def test_serve_command_checks_port_loads_and_serves(
    colorizer: Colorizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pixcolor.cli import main
    from pixcolor.web import models, server

    loaded, served = [], []

    def load_models(names: list[str], *, device: str | None, log: object) -> ModelSet:
        loaded.append((names, device))
        return ModelSet({"tiny": colorizer})

    class FakeServer:
        def __init__(self, app: object) -> None:
            self.app = app

        def run(self, sockets: list) -> None:
            served.append((self.app, sockets[0].getsockname()))

    monkeypatch.setattr(models, "load_models", load_models)
    monkeypatch.setattr(server, "build_server", lambda app, options, **_: FakeServer(app))
    argv = ["serve", "--model", "tiny", "--device", "cpu", "--port", "0", "--max-upload-mb", "1"]
    assert main([*argv, "--max-pixels", "5000", "--queue", "1"]) == 0
    assert loaded == [(["tiny"], "cpu")]
    app, (host, port) = served[0]
    assert host == "127.0.0.1" and port > 0
    with TestClient(app, base_url=BASE_URL) as client:
        health = client.get("/api/health").json()
        assert client.get("/api/health", headers={"host": "evil.example"}).status_code == 421
    assert health["model"] == "tiny"
    assert (health["max_upload_bytes"], health["max_pixels"], health["max_queue"]) == (
        2**20,
        5000,
        1,
    )


def test_serve_refuses_a_taken_port_before_loading(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    from pixcolor.cli import main
    from pixcolor.web import models

    monkeypatch.setattr(models, "load_models", lambda *a, **k: pytest.fail("loaded a model"))
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    err = capsys.readouterr().err.strip()
    assert f"port {port} on 127.0.0.1 is already in use" in err and len(err.splitlines()) == 1


def test_serve_without_web_extra_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from pixcolor.cli import main

    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn -> ModuleNotFoundError
    for name in [m for m in sys.modules if m.startswith("pixcolor.web")]:
        monkeypatch.delitem(sys.modules, name)  # imported afresh, without uvicorn
    assert main(["serve"]) == 2
    assert "pip install 'pixcolor[web]'" in capsys.readouterr().err


def chroma(data: bytes) -> float:
    """Mean |R-G| + |G-B| of an encoded image (0 for gray)."""
    r, g, b = np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int).transpose(2, 0, 1)
    return float(np.abs(r - g).mean() + np.abs(g - b).mean())


class CountingAB(ConstantAB):
    """ConstantAB that counts its runs."""

    def __init__(self) -> None:
        super().__init__()
        self.runs: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.runs.append(x.shape[0])
        return super().forward(x)


def test_saturation_and_jpeg_without_rerunning_the_model() -> None:
    network = CountingAB()
    runs = network.runs
    colorizer = Colorizer(network, {"arch": "constant", "size": 64}, device="cpu")
    with make_client(colorizer) as client:
        response = post(client, png_bytes(96, 64), size="64")
        assert response.status_code == 200 and len(runs) == 1
        key = response.headers["x-result-id"]
        assert response.headers["x-image-size"] == "96x64"
        base = chroma(response.content)
        answers = {
            s: client.get(f"/api/results/{key}", params={"saturation": s})
            for s in ("0", "0.5", "2")
        }
        assert len(runs) == 1  # no model run per colour-strength change
        assert all(a.status_code == 200 for a in answers.values())
        assert chroma(answers["0"].content) < 1.5  # gray
        assert 0.35 * base < chroma(answers["0.5"].content) < 0.65 * base
        assert chroma(answers["2"].content) > 1.2 * base  # stronger, within the gamut
        jpeg = client.get(f"/api/results/{key}", params={"format": "jpeg"})
        assert jpeg.headers["content-type"] == "image/jpeg"
        assert Image.open(io.BytesIO(jpeg.content)).format == "JPEG"
        direct = post(client, png_bytes(96, 64), size="64", format="jpg", saturation="0")
        assert direct.headers["content-type"] == "image/jpeg" and chroma(direct.content) < 2.5
        assert_json_error(client.get("/api/results/nope"), 404, "no longer kept")
        bad = client.get(f"/api/results/{key}", params={"saturation": "3"})
        assert_json_error(bad, 400, "saturation must be")
        assert_json_error(post(client, png_bytes(), format="gif"), 400, "format must be")


def test_preview_is_small_and_keeps_the_aspect(colorizer: Colorizer) -> None:
    with make_client(colorizer) as client:
        key = post(client, png_bytes(2000, 1000), size="64").headers["x-result-id"]
        preview = client.get(f"/api/results/{key}", params={"preview": "1", "saturation": "1.5"})
        assert preview.headers["content-type"] == "image/jpeg"
        assert Image.open(io.BytesIO(preview.content)).size == (1024, 512)


def test_old_results_are_dropped_within_the_pixel_budget(colorizer: Colorizer) -> None:
    # Each result counts twice: the result and the photo's copy kept for hint previews.
    with make_client(colorizer, kept_result_pixels=2 * 3 * 96 * 64) as client:
        keys = [post(client, png_bytes(96, 64)).headers["x-result-id"] for _ in range(4)]
        codes = [client.get(f"/api/results/{k}").status_code for k in keys]
        assert codes == [404, 200, 200, 200]
        big = post(client, png_bytes(200, 100))
        assert big.status_code == 200 and "x-result-id" not in big.headers


def test_resaturate_keeps_lightness_and_scales_chroma(colorizer: Colorizer) -> None:
    from pixcolor.color import rgb_to_lab
    from pixcolor.web.photo import KeptResult, resaturate

    y, x = np.mgrid[0:40, 0:50]  # a smooth colour ramp: its chroma survives any resampling
    rgb = np.stack([100 + 2 * x, 120 + y, 160 - x], axis=-1).astype(np.uint8)
    kept = KeptResult(rgb)

    def lab(pixels: np.ndarray) -> torch.Tensor:
        return rgb_to_lab(torch.from_numpy(pixels).permute(2, 0, 1).float() / 255)

    assert resaturate(colorizer, rgb, kept.chroma, 1.0) is rgb
    for factor in (0.0, 0.5, 2.0):
        out = resaturate(colorizer, rgb, kept.chroma, factor)
        assert (lab(out)[0] - lab(rgb)[0]).abs().max() < 0.8, factor  # L to 8-bit rounding
        if factor < 2:  # within the gamut: the chroma is scaled
            assert torch.allclose(lab(out)[1:], factor * lab(rgb)[1:], atol=1.2), factor
    gray = resaturate(colorizer, rgb, kept.chroma, 0.0).astype(int)
    assert np.abs(gray[..., 0] - gray[..., 1]).max() <= 1


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("127.0.0.1:8000", 200),
        ("localhost", 200),
        ("[::1]:8000", 200),
        ("LOCALHOST:1", 200),
        ("evil.example", 421),
        ("evil.example:8000", 421),
        ("127.0.0.1.evil.example", 421),
        ("", 421),
    ],
)
def test_host_header_is_checked_against_dns_rebinding(
    client: TestClient, host: str, status: int
) -> None:
    response = client.get("/api/health", headers={"host": host})
    assert response.status_code == status
    if status == 421:
        assert "answers only to" in response.json()["error"]


def test_allowed_hosts_follow_the_bind_address() -> None:
    from pixcolor.web.security import HostCheck, allowed_hosts

    lan = HostCheck(None, allowed_hosts("192.168.1.20", ["photos.lan"]))  # type: ignore[arg-type]
    assert lan.accepts("192.168.1.20:8000") and lan.accepts("photos.lan")
    assert not lan.accepts("10.0.0.1") and not lan.accepts("evil.example")
    every = HostCheck(None, allowed_hosts("0.0.0.0"))  # type: ignore[arg-type]
    assert every.accepts("10.0.0.1:8000") and every.accepts("[fe80::1]")
    assert not every.accepts("evil.example")


@pytest.mark.parametrize("device", ["nonsense", "cuda:7"])
def test_serve_with_an_unusable_device_says_so_in_one_line(
    device: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from pixcolor.cli import main
    from pixcolor.web import models

    if device.startswith("cuda") and torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    monkeypatch.setattr(models, "load_models", lambda *a, **k: pytest.fail("loaded a model"))
    assert main(["serve", "--port", "0", "--device", device]) == 2
    err = capsys.readouterr().err.strip()
    assert f"device '{device}'" in err and "available: " in err and err.endswith("cpu")
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_downloads_keep_the_uploads_exif_and_icc(client: TestClient, fmt: str) -> None:
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: applied to the pixels, so not kept
    exif[0x010E] = "Grandma, 1952"  # ImageDescription
    exif.get_ifd(0x8769)[0x9003] = "1952:07:14 10:30:00"  # DateTimeOriginal
    upload = io.BytesIO()
    Image.fromarray(np.full((40, 60, 3), 128, np.uint8)).save(
        upload, format="JPEG", exif=exif, icc_profile=icc
    )
    response = client.post(
        "/api/colorize",
        files={"image": ("g.jpg", upload.getvalue(), "image/jpeg")},
        data={"size": "64", "format": fmt},
    )
    assert response.status_code == 200, response.text
    with Image.open(io.BytesIO(response.content)) as out:
        assert out.size == (40, 60)  # rotated as the EXIF said
        assert out.info.get("icc_profile") == icc
        back = out.getexif()
        assert back.get(0x010E) == "Grandma, 1952" and 0x0112 not in back
        assert back.get_ifd(0x8769).get(0x9003) == "1952:07:14 10:30:00"
    key = response.headers["X-Result-Id"]
    preview = client.get(f"/api/results/{key}", params={"preview": "1", "saturation": "1.5"})
    assert (
        preview.status_code == 200
        and "icc_profile" not in Image.open(io.BytesIO(preview.content)).info
    )
