"""Colour hints on the web page in a real headless Chromium, against the real server (uvicorn).

The model is the tiny hint EffUNet of tests/hint_helpers.py with one change that makes it an
ideal hint follower: around each hint (8 working-size cells) the output ab is the hint's own.
The page's hints must therefore show up, at the right place and in the right colour, in what
the page shows. Needs Chromium and playwright like tests/test_web_browser.py. Screenshots go to
``$PIXCOLOR_SCREENSHOT_DIR`` (default: the test's tmp_path).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from hint_helpers import TINY_KWARGS, tiny_hint_network
from server_helpers import serving
from test_web_browser import (
    COLORIZE_TIMEOUT_MS,
    DESKTOP,
    PHONE,
    open_page,
    sync_api,
    uvicorn,
    wait_done,
)
from torch import nn
from torch.nn import functional as F

from pixcolor.color import rgb_to_lab
from pixcolor.models.effunet import EffUNet
from pixcolor.pipeline import Colorizer
from pixcolor.web import create_app
from pixcolor.web.server import bind

SPREAD_CELLS = 8  # working-size cells around a hint that take its colour
GREEN = "#30b040"


class HintFollower(EffUNet):
    """The tiny hint EffUNet whose output takes each hint's ab within SPREAD_CELLS of it."""

    def forward(self, l_norm: torch.Tensor, hints: torch.Tensor | None = None) -> torch.Tensor:
        ab = super().forward(l_norm, hints)
        if hints is None:
            return ab
        size = 2 * SPREAD_CELLS + 1
        weight = F.avg_pool2d(hints[:, 2:], size, 1, SPREAD_CELLS, count_include_pad=False)
        spread = F.avg_pool2d(hints[:, :2], size, 1, SPREAD_CELLS, count_include_pad=False)
        return torch.where(weight > 0, spread / weight.clamp_min(1e-6), ab)


class ConstantAB(nn.Module):
    """A model that takes no hints."""

    stride = 32

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full((x.shape[0], 2, *x.shape[-2:]), 0.2)


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    """The app under uvicorn on 127.0.0.1: ``default`` follows hints, ``plain`` takes none."""
    net = HintFollower(**TINY_KWARGS).eval()
    net.load_state_dict(tiny_hint_network().state_dict())
    follower = Colorizer(net, {"arch": "effunet", "size": 64}, device="cpu")
    plain = Colorizer(ConstantAB(), {"arch": "constant", "size": 64}, device="cpu")
    app = create_app({"default": follower, "plain": plain})
    with serving(
        uvicorn.Server(uvicorn.Config(app, log_level="warning")), bind("127.0.0.1", 0)
    ) as url:
        yield url


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Gray photos from scikit-image: a 480x320 cameraman and a tall 240x420 astronaut."""
    from PIL import Image
    from skimage import data

    folder = tmp_path_factory.mktemp("photos")
    paths = {"camera": folder / "cameraman.png", "tall": folder / "astronaut.png"}
    Image.fromarray(data.camera()[96:416, 16:496]).save(paths["camera"])
    Image.fromarray(data.astronaut()[40:460, 120:360]).convert("L").save(paths["tall"])
    return paths


# Page JS: the shown result's pixels in a square around a point given as fractions of the photo.
REGION_JS = """(img, [fx, fy, half]) => {
  const canvas = document.createElement("canvas");
  canvas.width = img.naturalWidth;
  canvas.height = img.naturalHeight;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(img, 0, 0);
  const x = Math.round(fx * img.naturalWidth), y = Math.round(fy * img.naturalHeight);
  const data = ctx.getImageData(x - half, y - half, 2 * half + 1, 2 * half + 1).data;
  const out = [];
  for (let i = 0; i < data.length; i += 4) out.push([data[i], data[i + 1], data[i + 2]]);
  return out;
}"""


def mean_ab(pixels: list) -> tuple[float, float]:
    """Mean Lab (a, b) of a list of 0-255 RGB triples."""
    rgb = torch.tensor(pixels, dtype=torch.float32).T[:, :, None] / 255  # (3, N, 1)
    lab = rgb_to_lab(rgb)
    return float(lab[1].mean()), float(lab[2].mean())


def hue(ab: tuple[float, float]) -> float:
    return math.degrees(math.atan2(ab[1], ab[0]))


def hue_gap(first: float, second: float) -> float:
    return abs((first - second + 180) % 360 - 180)


def ab_gap(first: tuple[float, float], second: tuple[float, float]) -> float:
    """Distance in the Lab ab plane: how far apart two colours are, lightness aside."""
    return math.hypot(first[0] - second[0], first[1] - second[1])


def region(page, fx: float, fy: float, half: int = 4) -> list:
    return page.locator("#after").evaluate(REGION_JS, [fx, fy, half])


def wait_preview(page) -> None:
    """Wait until the shown image is the preview of the current hints."""
    page.wait_for_function(
        """() => {
          const after = document.getElementById("after");
          return state.selected && after.complete && !hints.timer && !hints.running &&
            after.dataset.hintVersion === String(state.selected.hintVersion);
        }""",
        timeout=COLORIZE_TIMEOUT_MS,
    )


def click_photo(page, fx: float, fy: float) -> None:
    box = page.locator("#hint-layer").bounding_box()
    page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])


def start_hints(browser, url: str, photo: Path, viewport: dict, *, phone: bool = False):
    page = open_page(browser, url, viewport, phone=phone)
    page.set_input_files("#file", str(photo))
    wait_done(page)
    page.click("#hints-toggle")
    sync_api.expect(page.locator("#hint-layer")).to_be_visible()
    return page


def test_a_clicked_hint_colours_the_preview_around_it(
    browser, server_url: str, photos: dict[str, Path], screenshot_dir: Path
) -> None:
    page = start_hints(browser, server_url, photos["camera"], DESKTOP)
    fx, fy = 0.3, 0.35
    plain = mean_ab(region(page, fx, fy))
    click_photo(page, fx, fy)
    popover = page.locator("#hint-popover")
    sync_api.expect(popover).to_be_visible()
    sync_api.expect(page.locator(".swatch")).to_have_count(8, timeout=COLORIZE_TIMEOUT_MS)
    assert page.locator(".swatch").first.get_attribute("aria-pressed") == "true"  # the likeliest
    page.locator("#hint-color").fill(GREEN)
    wait_preview(page)
    hinted = mean_ab(region(page, fx, fy))
    green = mean_ab([[0x30, 0xB0, 0x40]])
    assert hue_gap(hue(hinted), hue(green)) < 15, (hinted, green)
    assert ab_gap(plain, green) > 40, (plain, green)
    assert math.hypot(*hinted) > 20  # clearly coloured, not a trace
    far = mean_ab(region(page, 0.9, 0.9))  # beyond the hint's reach: the model's own colours
    assert ab_gap(far, green) > 40
    marker = page.locator(".hint-marker")
    assert marker.count() == 1 and "#30b040" in marker.get_attribute("aria-label")
    assert page.locator("#hint-info").text_content() == "1 hint"
    page.screenshot(path=screenshot_dir / "hints-desktop-popover.png")
    click_photo(page, 0.7, 0.6)  # a second hint, with the likeliest colour
    sync_api.expect(page.locator(".swatch")).to_have_count(8, timeout=COLORIZE_TIMEOUT_MS)
    page.click("#hint-done")
    wait_preview(page)
    assert popover.is_hidden() and page.locator(".hint-marker").count() == 2
    page.screenshot(path=screenshot_dir / "hints-desktop.png")
    with page.expect_download(timeout=COLORIZE_TIMEOUT_MS) as download:
        page.click("#download")
    from PIL import Image

    with Image.open(download.value.path()) as full:
        assert full.size == (480, 320)
        x, y = round(fx * 480), round(fy * 320)
        pixels = np.asarray(full.convert("RGB"))[y - 4 : y + 5, x - 4 : x + 5].reshape(-1, 3)
    assert hue_gap(hue(mean_ab(pixels.tolist())), hue(green)) < 15
    assert page.script_errors == []
    page.close()


def test_hints_drag_delete_save_load_and_clear(
    browser, server_url: str, photos: dict[str, Path], tmp_path: Path
) -> None:
    page = start_hints(browser, server_url, photos["camera"], DESKTOP)
    click_photo(page, 0.25, 0.25)
    sync_api.expect(page.locator(".swatch")).to_have_count(8, timeout=COLORIZE_TIMEOUT_MS)
    page.locator("#hint-color").fill(GREEN)
    wait_preview(page)
    marker = page.locator(".hint-marker")
    box = marker.bounding_box()
    layer = page.locator("#hint-layer").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(layer["x"] + 0.6 * layer["width"], layer["y"] + 0.7 * layer["height"], steps=8)
    page.mouse.up()
    wait_preview(page)
    label = marker.get_attribute("aria-label")  # "Hint at X, Y, colour #..."
    x, y = (int(v) for v in label.removeprefix("Hint at ").split(",")[:2])
    assert abs(x - 288) <= 1 and abs(y - 224) <= 1  # 0.6 * 480, 0.7 * 320
    green = mean_ab([[0x30, 0xB0, 0x40]])
    assert hue_gap(hue(mean_ab(region(page, 0.6, 0.7))), hue(green)) < 15  # the colour moved
    assert ab_gap(mean_ab(region(page, 0.25, 0.25)), green) > 40

    with page.expect_download() as download:
        page.click("#hints-save")
    assert download.value.suggested_filename == "cameraman-hints.json"
    saved = json.loads(Path(download.value.path()).read_text())
    assert saved == {"points": [{"x": x, "y": y, "rgb": [48, 176, 64], "radius": 3}]}

    marker.click()
    page.keyboard.press("Delete")
    sync_api.expect(page.locator(".hint-marker")).to_have_count(0)
    wait_preview(page)

    outside = tmp_path / "outside.json"
    outside.write_text(json.dumps({"points": [{"x": 999, "y": 5, "rgb": [1, 2, 3]}]}))
    page.set_input_files("#hints-file", str(outside))
    error = page.locator("#error")
    sync_api.expect(error).to_contain_text("outside.json: point 1 (999, 5) is outside the 480x320")
    assert page.locator(".hint-marker").count() == 0
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"points": [*saved["points"], {**saved["points"][0], "x": 40}]}))
    page.set_input_files("#hints-file", str(good))
    sync_api.expect(page.locator(".hint-marker")).to_have_count(2)
    wait_preview(page)
    assert hue_gap(hue(mean_ab(region(page, 0.6, 0.7))), hue(green)) < 15
    page.click("#hints-clear")
    sync_api.expect(page.locator(".hint-marker")).to_have_count(0)
    wait_preview(page)
    assert ab_gap(mean_ab(region(page, 0.6, 0.7)), green) > 40
    page.close()


def test_phone_places_a_hint_with_a_tap(
    browser, server_url: str, photos: dict[str, Path], screenshot_dir: Path
) -> None:
    page = start_hints(browser, server_url, photos["tall"], PHONE, phone=True)
    box = page.locator("#hint-layer").bounding_box()
    page.touchscreen.tap(box["x"] + 0.5 * box["width"], box["y"] + 0.3 * box["height"])
    sync_api.expect(page.locator(".swatch")).to_have_count(8, timeout=COLORIZE_TIMEOUT_MS)
    page.locator(".swatch").nth(3).click()
    wait_preview(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    popover = page.locator("#hint-popover").bounding_box()
    assert popover["x"] >= 0 and popover["x"] + popover["width"] <= PHONE["width"]
    page.screenshot(path=screenshot_dir / "hints-phone-popover.png")
    page.click("#hint-done")
    page.screenshot(path=screenshot_dir / "hints-phone.png", full_page=True)
    page.close()


def test_a_model_without_hints_says_so_and_offers_none(
    browser, server_url: str, photos: dict[str, Path], screenshot_dir: Path
) -> None:
    page = open_page(browser, server_url, DESKTOP)
    page.select_option("#model", "plain")
    page.set_input_files("#file", str(photos["camera"]))
    wait_done(page)
    assert page.locator("#hints-toggle").is_disabled()
    note = page.locator("#hint-note")
    sync_api.expect(note).to_contain_text("Colour hints are not available with this model")
    sync_api.expect(note).to_contain_text("takes no colour hints")
    assert page.locator("#hint-layer").is_hidden() and page.locator("#error").is_hidden()
    page.screenshot(path=screenshot_dir / "hints-unavailable.png")
    page.close()
