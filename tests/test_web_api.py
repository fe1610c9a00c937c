"""The web API (``pixcolor.web.create_app``) through FastAPI's test client, with tiny models."""

from __future__ import annotations

import asyncio
import io
import sys
import threading
import time
import types

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
from pixcolor.web import create_app


class ConstantAB(nn.Module):
    """A "generator" whose output is the same non-gray ab everywhere (ab/110 = 0.3)."""

    stride = 32

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full((x.shape[0], 2, *x.shape[-2:]), 0.3)


class SlowColorizer:
    """Duck-typed colorizer that blocks every call until ``gate`` is set."""

    name, device, size = "slow", "cpu", 64

    def __init__(self) -> None:
        self.gate = threading.Event()

    def colorize(self, image: Image.Image, **_kwargs: object) -> Image.Image:
        if not self.gate.wait(timeout=30):
            raise RuntimeError("test gate never opened")
        return image


@pytest.fixture
def colorizer() -> Colorizer:
    return Colorizer(ConstantAB(), {"arch": "constant", "size": 64}, device="cpu")


@pytest.fixture
def client(colorizer: Colorizer):
    with TestClient(create_app(colorizer)) as test_client:
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
    assert (health["model"], health["device"], health["size"]) == ("constant", "cpu", 64)
    assert health["busy"] == 0 and health["max_queue"] == 4


def test_page_and_static_files_are_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert 'type="file"' in page.text and 'name="viewport"' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for name in ("app.js", "style.css"):
        assert client.get(f"/static/{name}").status_code == 200
    assert "http" not in page.text.replace('href="/static', "")  # no external assets


def test_loader_is_called_once_at_startup(colorizer: Colorizer) -> None:
    calls = []

    def loader() -> Colorizer:
        calls.append(1)
        return colorizer

    with TestClient(create_app(loader)) as client:
        assert calls == [1]
        assert post(client, png_bytes()).status_code == 200
        assert client.get("/api/health").json()["model"] == "constant"
    assert calls == [1]


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
    with TestClient(create_app(colorizer, max_upload_bytes=limit)) as client:
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
        "headers": [(b"content-type", f"multipart/form-data; boundary={boundary}".encode())],
    }
    asyncio.run(create_app(colorizer, max_upload_bytes=10_000)(scope, receive, send))
    assert sent[0]["status"] == 413
    assert b"upload too large" in sent[1]["body"]
    assert pulled < 10


def test_too_many_pixels_is_413(colorizer: Colorizer) -> None:
    with TestClient(create_app(colorizer, max_pixels=1000)) as client:
        assert_json_error(post(client, png_bytes(96, 64)), 413, "too large")


def test_upscale_calls_sr_lazily(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def upscale(image: Image.Image, scale: int = 2, **kwargs: object) -> Image.Image:
        calls.append((scale, kwargs))
        return image.resize((image.width * scale, image.height * scale))

    monkeypatch.setitem(sys.modules, "pixcolor.sr", types.SimpleNamespace(upscale=upscale))
    response = post(client, png_bytes(40, 30), upscale="3")
    assert response.status_code == 200, response.text
    assert Image.open(io.BytesIO(response.content)).size == (120, 90)
    assert calls == [(3, {"device": torch.device("cpu")})]
    assert post(client, png_bytes(40, 30), upscale="none").status_code == 200
    assert len(calls) == 1


def test_upscale_error_is_400(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    def upscale(image: Image.Image, scale: int = 2, **_kwargs: object) -> Image.Image:
        raise PixcolorError(f"no shipped SRCNN weights for x{scale}")

    monkeypatch.setitem(sys.modules, "pixcolor.sr", types.SimpleNamespace(upscale=upscale))
    assert_json_error(post(client, png_bytes(), upscale="2"), 400, "no shipped SRCNN weights")


def test_upscale_over_pixel_limit_is_413(colorizer: Colorizer) -> None:
    with TestClient(create_app(colorizer, max_pixels=96 * 64 * 3)) as client:
        assert_json_error(post(client, png_bytes(96, 64), upscale="2"), 413, "smaller factor")


def test_saturated_queue_answers_503() -> None:
    slow = SlowColorizer()
    results: list[int] = []

    def send(client: TestClient) -> None:
        results.append(post(client, png_bytes()).status_code)

    with TestClient(create_app(slow, max_queue=2, workers=1)) as client:
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

    with TestClient(create_app(colorizer, max_queue=len(sizes), workers=2)) as client:
        threads = [threading.Thread(target=send, args=(client, i)) for i in range(len(sizes))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert results == {i: (200, size) for i, size in enumerate(sizes)}


def test_create_app_checks_its_arguments(colorizer: Colorizer) -> None:
    with pytest.raises(ValueError, match="max_queue"):
        create_app(colorizer, max_queue=0)
    with pytest.raises(TypeError, match="Colorizer"):
        create_app(42)  # type: ignore[arg-type]


def test_serve_command_passes_its_options(
    colorizer: Colorizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    from pixcolor import pipeline
    from pixcolor.cli import main

    loaded, served = [], []

    def load_model(name: str | None, device: str | None = None) -> Colorizer:
        loaded.append((name, device))
        return colorizer

    monkeypatch.setattr(pipeline, "load_model", load_model)
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: served.append((app, kwargs)))
    argv = ["serve", "--model", "tiny", "--device", "cpu", "--port", "8123", "--max-upload-mb", "1"]
    assert main([*argv, "--max-pixels", "5000", "--queue", "1"]) == 0
    assert loaded == [("tiny", "cpu")]
    app, kwargs = served[0]
    assert kwargs["host"] == "127.0.0.1" and kwargs["port"] == 8123
    with TestClient(app) as client:
        health = client.get("/api/health").json()
    assert (health["max_upload_bytes"], health["max_pixels"], health["max_queue"]) == (
        2**20,
        5000,
        1,
    )


def test_serve_without_web_extra_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from pixcolor.cli import main

    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn -> ModuleNotFoundError
    assert main(["serve"]) == 2
    assert "pip install 'pixcolor[web]'" in capsys.readouterr().err
