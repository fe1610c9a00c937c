"""The web page in a real headless Chromium, against the real server (uvicorn) and a tiny model.

Needs the system Chromium at /usr/bin/chromium and the ``playwright`` package (only its driver:
never ``playwright install``); ``scripts/ci_browser_deps.sh`` installs both. Screenshots go to
``$PIXCOLOR_SCREENSHOT_DIR`` (default: the test's tmp_path).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
# Seconds to wait for the page to finish a photo (tiny model, CPU: well under one).
COLORIZE_TIMEOUT_MS = 60_000

if not CHROMIUM.is_file():
    pytest.skip(f"{CHROMIUM} not found (run scripts/ci_browser_deps.sh)", allow_module_level=True)
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (run scripts/ci_browser_deps.sh)"
)
uvicorn = pytest.importorskip("uvicorn", reason="the web extra is not installed")
pytest.importorskip("fastapi", reason="the web extra is not installed")

from pixcolor.models import create_generator  # noqa: E402
from pixcolor.pipeline import Colorizer  # noqa: E402
from pixcolor.web import create_app  # noqa: E402


class TintedTinyUNet(nn.Module):
    """The tiny U-Net plus a fixed ab offset: untrained, its output alone is almost gray."""

    stride = 32

    def __init__(self) -> None:
        super().__init__()
        self.unet = create_generator("unet", base_channels=8, num_downs=5)
        self.register_buffer("tint", torch.tensor([0.25, 0.35]).view(1, 2, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B,1,H,W) L -> (B,2,H,W) ab/110
        return (self.unet(x) + self.tint).clamp(-1, 1)


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    """The real app under uvicorn on 127.0.0.1 and a free port, in a background thread."""
    torch.manual_seed(0)
    colorizer = Colorizer(TintedTinyUNet(), {"arch": "unet", "size": 64}, device="cpu")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(colorizer), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def screenshot_dir(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("PIXCOLOR_SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A grayscale 480x320 PNG: scikit-image's cameraman, cropped to 3:2."""
    from skimage import data

    path = tmp_path_factory.mktemp("photo") / "cameraman.png"
    Image.fromarray(data.camera()[96:416, 16:496]).save(path)
    return path


# Page JS: the result image's natural size and its mean |R-G| + |G-B| per pixel (0 = gray).
RESULT_STATS_JS = """(img) => {
  const canvas = document.createElement("canvas");
  canvas.width = img.naturalWidth;
  canvas.height = img.naturalHeight;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(img, 0, 0);
  const px = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  let chroma = 0;
  for (let i = 0; i < px.length; i += 4) {
    chroma += Math.abs(px[i] - px[i + 1]) + Math.abs(px[i + 1] - px[i + 2]);
  }
  return {width: img.naturalWidth, height: img.naturalHeight, chroma: chroma / (px.length / 4)};
}"""


def colorize_in_page(browser, url: str, photo: Path, viewport: dict):
    """Open the page at ``viewport``, upload ``photo`` and wait for the result."""
    page = browser.new_page(viewport=viewport)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
    page.goto(url)
    sync_api.expect(page.locator("#model-info")).to_contain_text("Model default on cpu")
    page.set_input_files("#file", str(photo))
    page.locator("body[data-state='done']").wait_for(timeout=COLORIZE_TIMEOUT_MS)
    assert page.locator("#error").is_hidden(), page.locator("#error").text_content()
    assert errors == []
    return page


def test_upload_gives_colour_result_at_full_size(
    browser, server_url: str, photo: Path, screenshot_dir: Path
) -> None:
    page = colorize_in_page(browser, server_url, photo, DESKTOP)
    stats = page.locator("#after").evaluate(RESULT_STATS_JS)
    with Image.open(photo) as original:
        assert (stats["width"], stats["height"]) == original.size
    assert stats["chroma"] > 10, f"result looks gray: {stats}"
    assert page.get_attribute("#download", "href").startswith("blob:")
    assert page.get_attribute("#download", "download") == "cameraman-color.png"
    assert page.locator("#result-info").text_content().startswith("480 × 320 px")

    page.locator("#split").fill("30")  # drag the before/after divider
    position = page.locator("#compare").evaluate("(el) => el.style.getPropertyValue('--pos')")
    assert position == "30%"
    page.screenshot(path=screenshot_dir / "web-desktop.png", full_page=True)
    page.close()


def test_phone_width_layout(browser, server_url: str, photo: Path, screenshot_dir: Path) -> None:
    page = colorize_in_page(browser, server_url, photo, PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    box = page.locator("#compare").bounding_box()
    assert box is not None and box["width"] <= PHONE["width"]
    page.screenshot(path=screenshot_dir / "web-phone.png", full_page=True)
    page.close()


def test_api_error_is_shown_as_a_message(browser, server_url: str) -> None:
    page = browser.new_page(viewport=DESKTOP)
    page.goto(server_url)
    notes = {"name": "notes.png", "mimeType": "image/png", "buffer": b"not a photo"}
    page.set_input_files("#file", files=[notes])
    error = page.locator("#error")
    sync_api.expect(error).to_be_visible(timeout=COLORIZE_TIMEOUT_MS)
    sync_api.expect(error).to_contain_text("cannot read the upload as an image")
    assert page.evaluate("document.body.dataset.state") == "idle"
    page.close()


def test_page_uses_no_outside_network(browser, server_url: str) -> None:
    page = browser.new_page(viewport=DESKTOP)
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(server_url)
    page.wait_for_load_state("networkidle")
    outside = [u for u in requested if not u.startswith((server_url, "data:", "blob:"))]
    assert outside == []
    page.close()
