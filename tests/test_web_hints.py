"""Colour hints through the web API: the ``hints`` form field, hint previews and suggestions,
with a tiny hint model (tests/hint_helpers.py) and, for refusals, a model that takes none."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from hint_helpers import save_tiny_hint_model
from PIL import Image
from torch import nn

pytest.importorskip("fastapi", reason="the web extra is not installed")
pytest.importorskip("python_multipart", reason="the web extra is not installed")
from fastapi.testclient import TestClient

from pixcolor import load_model
from pixcolor.color import rgb_to_lab
from pixcolor.pipeline import Colorizer
from pixcolor.web import WebOptions, create_app

BASE_URL = "http://127.0.0.1:8000"  # a Host: the app accepts
RED = [200, 30, 40]
POINT = {"x": 30, "y": 20, "rgb": RED, "radius": 3}


class ConstantAB(nn.Module):
    """A model without hints: the same ab everywhere."""

    stride = 32

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full((x.shape[0], 2, *x.shape[-2:]), 0.3)


@pytest.fixture(scope="module")
def hint_colorizer(tmp_path_factory: pytest.TempPathFactory) -> Colorizer:
    return load_model(save_tiny_hint_model(tmp_path_factory.mktemp("hint-model")), device="cpu")


@pytest.fixture
def client(hint_colorizer: Colorizer):
    plain = Colorizer(ConstantAB(), {"arch": "constant", "size": 64}, device="cpu")
    app = create_app({"hints": hint_colorizer, "plain": plain}, WebOptions())
    with TestClient(app, base_url=BASE_URL) as test_client:
        yield test_client


def gray_photo(width: int = 96, height: int = 64) -> np.ndarray:
    """``(H, W)`` uint8: a horizontal gradient."""
    return np.tile(np.linspace(60, 200, width).astype(np.uint8), (height, 1))


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def post(client: TestClient, pixels: np.ndarray, **fields: str):
    files = {"image": ("photo.png", png(pixels), "image/png")}
    return client.post("/api/colorize", files=files, data=fields)


def rgb_of(response) -> np.ndarray:
    assert response.status_code == 200, response.text
    return np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB")).astype(int)


def assert_error(response, status: int, fragment: str) -> None:
    assert response.status_code == status, response.text
    assert fragment in response.json()["error"], response.json()


def lightness(rgb: np.ndarray) -> np.ndarray:
    """Lab L of ``(H, W, 3)`` 0-255 RGB."""
    return rgb_to_lab(torch.from_numpy(rgb).permute(2, 0, 1).float() / 255)[0].numpy()


def hints_json(*points: dict) -> str:
    return json.dumps({"points": list(points)})


def test_health_says_which_models_take_hints(client: TestClient) -> None:
    models = {m["name"]: m for m in client.get("/api/health").json()["models"]}
    assert models["hints"]["hints"] is True and "hints_note" not in models["hints"]
    assert models["plain"]["hints"] is False
    assert "takes no colour hints" in models["plain"]["hints_note"]


def test_a_hint_changes_the_colour_near_its_point(client: TestClient) -> None:
    photo = gray_photo()
    plain = rgb_of(post(client, photo, model="hints"))
    hinted_response = post(client, photo, model="hints", hints=hints_json(POINT))
    hinted = rgb_of(hinted_response)
    assert hinted_response.headers["x-source-size"] == "96x64"
    assert "x-result-id" not in hinted_response.headers  # a download: the page keeps the plain one
    near = (slice(15, 26), slice(25, 36))
    assert np.abs(hinted[near] - plain[near]).mean() > 5
    # The lightness stays the photo's: only the chroma follows the hint.
    assert np.abs(lightness(hinted) - lightness(plain)).max() < 1.5
    empty = rgb_of(post(client, photo, model="hints", hints='{"points": []}'))
    assert np.array_equal(empty, plain)


@pytest.mark.parametrize(
    ("hints", "fragment"),
    [
        ("{not json", "hints: not valid JSON"),
        (hints_json({**POINT, "x": 96}), "point 1 (96, 20) is outside the 96x64"),
        (hints_json({**POINT, "rgb": [300, 0, 0]}), "point 1: rgb must be three numbers 0-255"),
        (hints_json({**POINT, "rgb": "red"}), "rgb must be three numbers"),
        (hints_json({**POINT, "colour": 1}), "unknown key 'colour'"),
        ('{"dots": []}', "no 'points' list"),
        (json.dumps({"points": [POINT] * 1001}), "1001 points, at most 1000"),
        ("x" * 70_000, "a form field is too long (hints at most 64 KiB"),
    ],
)
def test_bad_hints_field_is_400_naming_the_problem(
    client: TestClient, hints: str, fragment: str
) -> None:
    assert_error(post(client, gray_photo(), model="hints", hints=hints), 400, fragment)


def test_other_fields_stay_short(client: TestClient) -> None:
    response = post(client, gray_photo(), model="m" * 2000)
    assert_error(response, 400, "form field 'model' is too long")


def test_hints_for_a_model_without_hints_is_400(client: TestClient) -> None:
    response = post(client, gray_photo(), model="plain", hints=hints_json(POINT))
    assert_error(response, 400, "takes no colour hints")
    key = post(client, gray_photo(), model="plain").headers["x-result-id"]
    preview = client.post(f"/api/results/{key}/preview", json={"hints": {"points": [POINT]}})
    assert_error(preview, 400, "takes no colour hints")
    suggest = client.post(f"/api/results/{key}/suggest", json={"x": 3, "y": 4})
    assert_error(suggest, 400, "takes no colour hints")


def test_preview_with_hints_matches_the_download(client: TestClient) -> None:
    photo = gray_photo()
    key = post(client, photo, model="hints").headers["x-result-id"]
    hints = {"points": [POINT]}
    response = client.post(f"/api/results/{key}/preview", json={"hints": hints})
    assert response.headers["content-type"] == "image/jpeg"
    assert response.headers["x-image-size"] == "96x64"
    preview = rgb_of(response)
    download = rgb_of(post(client, photo, model="hints", hints=json.dumps(hints)))
    plain = rgb_of(post(client, photo, model="hints"))
    near = (slice(15, 26), slice(25, 36))
    # The same photo and hints, JPEG's 4:2:0 chroma aside.
    assert np.abs(preview - download).mean() < 6
    assert (
        np.abs(preview[near] - download[near]).mean() < np.abs(preview[near] - plain[near]).mean()
    )
    half = rgb_of(
        client.post(f"/api/results/{key}/preview", json={"hints": hints, "saturation": 0})
    )
    assert np.abs(half[..., 0] - half[..., 1]).mean() < 2  # saturation 0: gray


def test_preview_of_a_large_photo_is_screen_size_with_hints_scaled(client: TestClient) -> None:
    photo = gray_photo(2048, 1024)
    key = post(client, photo, model="hints").headers["x-result-id"]
    url = f"/api/results/{key}/preview"
    plain = rgb_of(client.post(url, json={"hints": None}))
    point = {"x": 640, "y": 320, "rgb": RED, "radius": 12}
    response = client.post(url, json={"hints": {"points": [point]}})
    assert response.headers["x-image-size"] == "1024x512"
    hinted = rgb_of(response)
    near = (slice(150, 170), slice(310, 330))  # (640, 320) / 2
    assert np.abs(hinted[near] - plain[near]).mean() > 5
    outside = {"points": [{**point, "x": 2048}]}
    assert_error(client.post(url, json={"hints": outside}), 400, "outside the 2048x1024 photo")


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"hints": {"points": [{**POINT, "rgb": [1, 2]}]}}, 400, "rgb must be three numbers"),
        ({"hints": "{bad"}, 400, "hints: not valid JSON"),
        ({"hints": {"points": [POINT]}, "saturation": 5}, 400, "saturation must be"),
    ],
)
def test_bad_preview_requests_are_4xx(client: TestClient, body: dict, status: int, fragment: str):
    key = post(client, gray_photo(), model="hints").headers["x-result-id"]
    assert_error(client.post(f"/api/results/{key}/preview", json=body), status, fragment)


def test_preview_body_must_be_small_json(client: TestClient) -> None:
    key = post(client, gray_photo(), model="hints").headers["x-result-id"]
    url = f"/api/results/{key}/preview"
    assert_error(client.post(url, content=b"[1, 2"), 400, "not valid JSON")
    assert_error(client.post(url, content=b"[1, 2]"), 400, "must be a JSON object")
    assert_error(client.post(url, content=b" " * 100_000), 413, "over the limit")
    assert_error(client.post("/api/results/nope/preview", json={}), 404, "no longer kept")


def test_suggestions_are_the_models_palette(client: TestClient, hint_colorizer: Colorizer) -> None:
    photo = gray_photo()
    key = post(client, photo, model="hints").headers["x-result-id"]
    url = f"/api/results/{key}/suggest"
    colours = client.post(url, json={"x": 30, "y": 20}).json()["colors"]
    assert colours == [list(c) for c in hint_colorizer.suggest_colors(photo, 30, 20, k=8)]
    assert len(colours) == 8 and all(0 <= c <= 255 for rgb in colours for c in rgb)
    other = {**POINT, "x": 70, "y": 40, "rgb": [30, 60, 200]}
    given = client.post(url, json={"x": 30, "y": 20, "hints": {"points": [other]}}).json()
    expected = hint_colorizer.suggest_colors(photo, 30, 20, k=8, hints={"points": [other]})
    assert given["colors"] == [list(c) for c in expected] != colours
    assert len(client.post(url, json={"x": 30, "y": 20, "k": 3}).json()["colors"]) == 3


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"x": 96, "y": 20}, "the point (96, 20) is outside the 96x64 photo"),
        ({"x": "3", "y": 20}, "x must be a number"),
        ({"x": 3}, "y must be a number"),
        ({"x": 3, "y": 4, "k": 0}, "k must be a whole number"),
        ({"x": 3, "y": 4, "hints": {"points": [{"x": 1}]}}, "missing 'y'"),
    ],
)
def test_bad_suggestion_requests_are_400(client: TestClient, body: dict, fragment: str) -> None:
    key = post(client, gray_photo(), model="hints").headers["x-result-id"]
    assert_error(client.post(f"/api/results/{key}/suggest", json=body), 400, fragment)


def test_the_page_has_the_hint_tools(client: TestClient) -> None:
    page = client.get("/").text
    for element in ('id="hint-layer"', 'id="hint-popover"', 'type="color"', 'id="hints-file"'):
        assert element in page
    for name in ("hints.js", "hint-preview.js"):
        assert client.get(f"/static/{name}").status_code == 200


def test_the_server_loads_each_hint_model_once_and_shares_it(tmp_path) -> None:
    from pixcolor.checkpoint import save_model
    from pixcolor.models import create_generator
    from pixcolor.web import load_models

    unet = {"base_channels": 8, "num_downs": 5}
    for name in ("a", "b"):  # two models that name the shipped hint model, like default and fast
        extra = {"size": 64, "hints_model": "hints"}
        save_model(create_generator("unet", **unet), tmp_path / name, "unet", unet, extra=extra)
    lines: list[str] = []
    names = [str(tmp_path / "a"), str(tmp_path / "b"), "hints"]
    models = load_models(names, device="cpu", log=lines.append)
    a, b, hints = (models.colorizer(name) for name in ("a", "b", "hints"))
    assert a.hint_colorizer() is b.hint_colorizer() is hints
    assert sum(line.endswith(" hints ...") for line in lines) == 1, lines


def test_the_server_keeps_two_model_folders_of_one_name_apart(tmp_path) -> None:
    from pixcolor.checkpoint import save_model
    from pixcolor.models import create_generator
    from pixcolor.web import load_models

    unet = {"base_channels": 8, "num_downs": 5}
    for folder in ("x", "y"):
        save_model(create_generator("unet", **unet), tmp_path / folder / "best", "unet", unet,
                   extra={"size": 64})  # fmt: skip
    x, y = str(tmp_path / "x" / "best"), str(tmp_path / "y" / "best")
    models = load_models([x, y, x], device="cpu", log=lambda line: None)
    assert list(models.colorizers) == ["best", y]  # the repeated x is loaded once
    assert models.colorizer("best") is not models.colorizer(y)
