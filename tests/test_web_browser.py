"""The web page in a real headless Chromium, against the real server (uvicorn) and a tiny model.

Needs Chromium and playwright (tests/browser_helpers.py); skipped without them. Screenshots go
to ``$PIXCOLOR_SCREENSHOT_DIR`` (default: the test's tmp_path).
"""

from __future__ import annotations

import io
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from browser_helpers import require_playwright
from PIL import Image
from server_helpers import serving
from torch import nn

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
# Seconds to wait for the page to finish a photo (tiny model, CPU: well under one).
COLORIZE_TIMEOUT_MS = 60_000

sync_api = require_playwright()
uvicorn = pytest.importorskip("uvicorn", reason="the web extra is not installed")
pytest.importorskip("fastapi", reason="the web extra is not installed")

from pixcolor.models import create_generator  # noqa: E402
from pixcolor.pipeline import Colorizer  # noqa: E402
from pixcolor.web import create_app  # noqa: E402
from pixcolor.web.server import bind  # noqa: E402


class TintedTinyUNet(nn.Module):
    """The tiny U-Net plus a fixed ab offset: untrained, its output alone is almost gray."""

    stride = 32

    def __init__(self) -> None:
        super().__init__()
        self.unet = create_generator("unet", base_channels=8, num_downs=5)
        self.register_buffer("tint", torch.tensor([0.25, 0.35]).view(1, 2, 1, 1))
        self.runs = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B,1,H,W) L -> (B,2,H,W) ab/110
        self.runs += 1
        return (self.unet(x) + self.tint).clamp(-1, 1)


class GatedColorizer:
    """The tiny colorizer behind a gate: each photo waits until the test opens it."""

    def __init__(self, inner: Colorizer) -> None:
        self.inner, self.device, self.size = inner, inner.device, inner.size
        self.gate = threading.Event()
        self.entered = threading.Event()

    def colorize(self, image: object, **kwargs: object) -> object:
        self.entered.set()
        if not self.gate.wait(timeout=30):
            raise RuntimeError("test gate never opened")
        return self.inner.colorize(image, **kwargs)


class Server:
    def __init__(self, url: str, tiny: TintedTinyUNet, slow: GatedColorizer) -> None:
        self.url, self.tiny, self.slow = url, tiny, slow


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    """The real app under uvicorn on 127.0.0.1 and a free port, in a background thread.

    It offers two models: ``default`` (the tiny U-Net) and ``slow`` (the same behind a gate).
    """
    torch.manual_seed(0)
    tiny = TintedTinyUNet()
    colorizer = Colorizer(tiny, {"arch": "unet", "size": 64}, device="cpu")
    slow = GatedColorizer(colorizer)
    app = create_app({"default": colorizer, "slow": slow})
    with serving(
        uvicorn.Server(uvicorn.Config(app, log_level="warning")), bind("127.0.0.1", 0)
    ) as url:
        try:
            yield Server(url, tiny, slow)
        finally:
            slow.gate.set()


@pytest.fixture
def gate(server: Server) -> Iterator[GatedColorizer]:
    """The slow model's gate, closed for the test and opened after it."""
    server.slow.gate.clear()
    server.slow.entered.clear()
    try:
        yield server.slow
    finally:
        server.slow.gate.set()


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Grayscale PNGs from scikit-image: a 480x320 cameraman, a tall 240x420 astronaut, and a
    1200x800 cameraman (a larger photo)."""
    from skimage import data

    folder = tmp_path_factory.mktemp("photos")
    camera = Image.fromarray(data.camera()[96:416, 16:496])
    tall = Image.fromarray(data.astronaut()[40:460, 120:360]).convert("L")
    paths = {"camera": folder / "cameraman.png", "tall": folder / "astronaut.png"}
    camera.save(paths["camera"])
    tall.save(paths["tall"])
    paths["big"] = folder / "big-cameraman.png"
    camera.resize((1200, 800), Image.BICUBIC).save(paths["big"])
    return paths


# Page JS: an image's natural size and its mean |R-G| + |G-B| per pixel (0 = gray).
IMAGE_STATS_JS = """(img) => {
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
  return {width: img.naturalWidth, height: img.naturalHeight, chroma: chroma / (px.length / 4),
          src: img.src};
}"""


def open_page(browser, url: str, viewport: dict, *, phone: bool = False):
    """A new page at ``viewport`` (a touch phone when ``phone``), failing on any script error."""
    context = browser.new_context(
        viewport=viewport, has_touch=phone, is_mobile=phone, accept_downloads=True
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
    page.goto(url)
    sync_api.expect(page.locator("#model-info")).to_contain_text("Model default on cpu")
    page.script_errors = errors
    return page


def wait_done(page, count: int = 1) -> None:
    """Wait until ``count`` photos are done and the selected one is shown."""
    if count > 1:
        done = page.locator(".queue-item[data-status='done']")
        sync_api.expect(done).to_have_count(count, timeout=COLORIZE_TIMEOUT_MS)
    page.locator("body[data-state='done']").wait_for(timeout=COLORIZE_TIMEOUT_MS)
    assert page.locator("#error").is_hidden(), page.locator("#error").text_content()
    assert page.script_errors == []


def stats(page, selector: str) -> dict:
    return page.locator(selector).evaluate(IMAGE_STATS_JS)


def test_upload_gives_colour_result_at_full_size(
    browser, server: Server, photos: dict[str, Path], screenshot_dir: Path
) -> None:
    page = open_page(browser, server.url, DESKTOP)
    page.set_input_files("#file", str(photos["camera"]))
    wait_done(page)
    after = stats(page, "#after")
    assert (after["width"], after["height"]) == (480, 320)
    assert after["chroma"] > 10, f"result looks gray: {after}"
    assert page.locator("#result-info").text_content() == "cameraman.png: 480 × 320 px"
    status = page.locator("#status")  # the live region: displayed, polite, and it spoke
    assert status.is_visible() and status.get_attribute("aria-live") == "polite"
    assert status.text_content() == "cameraman.png colorized: 480 × 320 px."
    with page.expect_download() as download:
        page.click("#download")
    assert download.value.suggested_filename == "cameraman-color.png"
    page.screenshot(path=screenshot_dir / "web-desktop.png")
    page.close()


def test_divider_keys_move_five_percent_and_home_end(
    browser, server: Server, photos: dict[str, Path]
) -> None:
    page = open_page(browser, server.url, DESKTOP)
    page.set_input_files("#file", str(photos["camera"]))
    wait_done(page)
    split = page.locator("#split")
    position = lambda: page.locator("#compare").evaluate("(e) => e.style.getPropertyValue('--pos')")  # noqa: E731
    split.focus()
    for key, expected in [
        ("ArrowRight", "55%"),
        ("ArrowRight", "60%"),
        ("ArrowLeft", "55%"),
        ("End", "100%"),
        ("ArrowRight", "100%"),
        ("Home", "0%"),
        ("ArrowUp", "5%"),
    ]:
        page.keyboard.press(key)
        assert position() == expected, key
    split.fill("30")  # dragging stays fine-grained
    assert position() == "30%"
    page.close()


def test_switching_photos_mid_job_never_mixes_them(
    browser, server: Server, gate: GatedColorizer, photos: dict[str, Path]
) -> None:
    page = open_page(browser, server.url, DESKTOP)
    page.select_option("#model", "slow")
    page.set_input_files("#file", str(photos["big"]))
    assert gate.entered.wait(timeout=20)  # the big photo's job is running
    page.set_input_files("#file", str(photos["camera"]))  # a new choice mid-job
    sync_api.expect(page.locator("#placeholder")).to_contain_text("cameraman.png is waiting")
    assert page.locator("#compare").is_hidden()
    gate.gate.set()
    wait_done(page, count=2)
    # The new choice is shown, with its own input on both sides and its own file name.
    before, after = stats(page, "#before"), stats(page, "#after")
    assert (before["width"], before["height"]) == (after["width"], after["height"]) == (480, 320)
    with page.expect_download() as download:
        page.click("#download")
    assert download.value.suggested_filename == "cameraman-color.png"
    page.locator(".queue-item", has_text="big-cameraman.png").click()
    page.locator("body[data-state='done']").wait_for()
    before, after = stats(page, "#before"), stats(page, "#after")
    assert (before["width"], before["height"]) == (after["width"], after["height"]) == (1200, 800)
    page.close()


def test_an_error_clears_the_previous_result(
    browser, server: Server, photos: dict[str, Path]
) -> None:
    page = open_page(browser, server.url, DESKTOP)
    page.set_input_files("#file", str(photos["camera"]))
    wait_done(page)
    assert page.locator("#download").is_visible()
    notes = {"name": "notes.png", "mimeType": "image/png", "buffer": b"not a photo"}
    page.set_input_files("#file", files=[notes])
    error = page.locator("#error")
    sync_api.expect(error).to_be_visible(timeout=COLORIZE_TIMEOUT_MS)
    sync_api.expect(error).to_contain_text("cannot read the upload as an image")
    assert page.locator("#compare").is_hidden() and page.locator("#download").is_hidden()
    sync_api.expect(page.locator("#status")).to_contain_text("notes.png failed")
    assert page.evaluate("document.body.dataset.state") == "idle"
    page.close()


def test_two_files_download_all_as_zip_and_jpeg(
    browser, server: Server, photos: dict[str, Path], tmp_path: Path
) -> None:
    page = open_page(browser, server.url, DESKTOP)
    page.set_input_files("#file", [str(photos["camera"]), str(photos["tall"])])
    wait_done(page, count=2)
    statuses = page.locator(".queue-status").all_text_contents()
    assert statuses == ["done", "done"]
    with page.expect_download() as download:
        page.click("#download-all")
    archive = tmp_path / download.value.suggested_filename
    download.value.save_as(archive)
    with zipfile.ZipFile(archive) as zf:
        assert zf.testzip() is None  # CRCs check out
        sizes = {n: Image.open(io.BytesIO(zf.read(n))).size for n in zf.namelist()}
    assert sizes == {"cameraman-color.png": (480, 320), "astronaut-color.png": (240, 420)}
    page.select_option("#format", "jpeg")
    sync_api.expect(page.locator("#download")).to_have_text("Download JPEG")
    with page.expect_download() as download:
        page.click("#download")
    assert download.value.suggested_filename == "cameraman-color.jpg"
    with Image.open(download.value.path()) as jpeg:
        assert (jpeg.format, jpeg.size) == ("JPEG", (480, 320))
    page.close()


def test_colour_strength_slider_changes_the_preview_without_the_model(
    browser, server: Server, photos: dict[str, Path], screenshot_dir: Path
) -> None:
    page = open_page(browser, server.url, DESKTOP)
    page.set_input_files("#file", str(photos["camera"]))
    wait_done(page)
    base = stats(page, "#after")
    runs = server.tiny.runs
    chroma = {}
    for percent in ("0", "200", "100"):
        shown = stats(page, "#after")["src"]
        page.locator("#strength").fill(percent)
        sync_api.expect(page.locator("#strength-value")).to_have_text(f"{percent}%")
        deadline = time.monotonic() + 20
        while page.locator("#after").evaluate("(i) => i.complete && i.src") in (shown, False):
            assert time.monotonic() < deadline, f"the preview never changed for {percent}%"
            time.sleep(0.05)
        chroma[percent] = stats(page, "#after")["chroma"]
    assert server.tiny.runs == runs  # the model did not run again
    assert chroma["0"] < 2 < base["chroma"] < chroma["200"]
    assert abs(chroma["100"] - base["chroma"]) < 1e-6
    page.locator("#strength").fill("50")
    page.wait_for_timeout(500)
    with page.expect_download() as download:
        page.click("#download")
    with Image.open(download.value.path()) as half:
        r, g, b = (channel.astype(int) for channel in np.asarray(half).transpose(2, 0, 1))
    assert 0.3 * base["chroma"] < (abs(r - g) + abs(g - b)).mean() < 0.7 * base["chroma"]
    page.screenshot(path=screenshot_dir / "web-desktop-strength.png")
    page.close()


def test_phone_layout_brings_the_result_into_view(
    browser, server: Server, photos: dict[str, Path], screenshot_dir: Path
) -> None:
    page = open_page(browser, server.url, PHONE, phone=True)
    drop_text = page.locator("#drop").inner_text().lower()
    assert "choose photos" in drop_text
    assert "drop" not in drop_text and "paste" not in drop_text
    page.screenshot(path=screenshot_dir / "web-phone-start.png")
    page.set_input_files("#file", str(photos["tall"]))
    wait_done(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    for selector in ("#compare", "#download"):
        box = page.locator(selector).bounding_box()
        assert box is not None and box["y"] >= 0, selector
        assert box["y"] + box["height"] <= PHONE["height"], f"{selector} below the fold: {box}"
    page.screenshot(path=screenshot_dir / "web-phone.png")
    page.close()


def test_cancel_stops_a_long_job(browser, server: Server, gate: GatedColorizer, photos) -> None:
    page = open_page(browser, server.url, DESKTOP)
    page.select_option("#model", "slow")
    page.set_input_files("#file", [str(photos["camera"]), str(photos["tall"])])
    assert gate.entered.wait(timeout=20)
    sync_api.expect(page.locator("#progress-box")).to_be_visible()
    page.click("#cancel")
    statuses = page.locator(".queue-status")
    sync_api.expect(statuses).to_have_text(["cancelled", "cancelled"])
    assert page.locator("#progress-box").is_hidden() and page.locator("#cancel").is_hidden()
    sync_api.expect(page.locator("#status")).to_have_text("Cancelled 2 photos.")
    sync_api.expect(page.locator("#placeholder")).to_contain_text("was cancelled")
    page.close()


def test_page_uses_no_outside_network(browser, server: Server) -> None:
    page = browser.new_page(viewport=DESKTOP)
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(server.url)
    page.wait_for_load_state("networkidle")
    outside = [u for u in requested if not u.startswith((server.url, "data:", "blob:"))]
    assert outside == []
    page.close()
