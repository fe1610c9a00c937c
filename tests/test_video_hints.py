"""Hints on video: the keyframe file format, tracking along the motion, cuts, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("cv2")

import cv2
from hint_helpers import save_tiny_hint_model
from skimage import data

from pixcolor.cli import main
from pixcolor.hints import Hint, HintError
from pixcolor.pipeline import load_model
from pixcolor.video import colorize_frames
from pixcolor.video.consistency import lab_of
from pixcolor.video.frames import working_l
from pixcolor.video.hints import (
    HintTracker,
    VideoHints,
    load_video_hints,
    parse_video_hints,
    video_hints_to_json,
)
from pixcolor.video.synth import write_frames
from pixcolor.video.temporal import MotionEstimator

W, H, SIDE = 128, 96, 40  # frame size and the moving object's side
START = (50, 20)  # the object's top-left corner on frame 0
CENTRE = (START[0] + SIDE // 2, START[1] + SIDE // 2)  # a hint on the object, frame 0
RED = (200, 30, 40)
BACKGROUND = cv2.resize(data.coffee(), (W + 60, H + 60), interpolation=cv2.INTER_AREA)
OBJECT = cv2.resize(data.astronaut()[40:240, 140:340], (SIDE, SIDE), interpolation=cv2.INTER_AREA)
OTHER = cv2.resize(data.chelsea(), (W, H), interpolation=cv2.INTER_AREA)


def frame(i: int, dx: int, dy: int, *, pan: int = 1, cut_at: int | None = None) -> np.ndarray:
    """Frame ``i``: the background pans ``pan`` px left a frame, the object moves (dx, dy)."""
    if cut_at is not None and i >= cut_at:
        return OTHER.copy()
    out = BACKGROUND[10 : 10 + H, 10 + pan * i : 10 + pan * i + W].copy()
    x, y = START[0] + dx * i, START[1] + dy * i
    x0, y0, x1, y1 = max(0, x), max(0, y), min(W, x + SIDE), min(H, y + SIDE)
    if x1 > x0 and y1 > y0:
        out[y0:y1, x0:x1] = OBJECT[y0 - y : y1 - y, x0 - x : x1 - x]
    return out


def track(frames: list[np.ndarray], hints: VideoHints, scale: float = 1.0) -> list[list[Hint]]:
    """The tracker's points on each frame, with the motion at ``scale`` times the frame size."""
    motion_of, tracker, out = MotionEstimator(), HintTracker(hints), []
    for rgb in frames:
        L = lab_of(rgb)[0]
        if scale != 1.0:
            L = cv2.resize(L, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        out.append(tracker(motion_of(L), rgb.shape[:2]))
    return out


def on_object(*points: tuple[float, float]) -> VideoHints:
    return VideoHints({0: tuple(Hint(x, y, RED) for x, y in points)})


# on the object: its centre, and points 8-12 px inside its edges
ON_OBJECT = [CENTRE, (CENTRE[0] - 8, CENTRE[1] + 6), (CENTRE[0] - 12, CENTRE[1] + 10),
             (CENTRE[0] + 10, CENTRE[1] - 10)]  # fmt: skip


@pytest.mark.parametrize("scale", [1.0, 0.5])
@pytest.mark.parametrize("motion", [(3, 2), (-2, 1), (4, -1)])
def test_a_hint_follows_its_object(motion, scale):
    dx, dy = motion
    frames = [frame(i, dx, dy) for i in range(10)]
    tracks = track(frames, on_object(*ON_OBJECT), scale)
    for i, points in enumerate(tracks):
        assert len(points) == len(ON_OBJECT), f"frame {i}"
        for p, (x0, y0) in zip(points, ON_OBJECT, strict=True):
            # within 1 px of the object's own motion, while the background pans the other way
            # (measured: at most 0.01 px at full size, 0.41 px with the flow at half size)
            assert np.hypot(p.x - x0 - dx * i, p.y - y0 - dy * i) < 1.0, f"frame {i}"
            assert p.rgb == RED and p.radius == 3


def test_a_cut_drops_the_hints_unless_it_is_a_keyframe():
    frames = [frame(i, 3, 2, cut_at=5) for i in range(8)]
    tracks = track(frames, on_object(CENTRE))
    assert [len(p) for p in tracks] == [1, 1, 1, 1, 1, 0, 0, 0]
    again = Hint(30, 40, (20, 60, 200))
    hints = VideoHints({0: (Hint(*CENTRE, RED),), 5: (again,)})
    assert track(frames, hints)[5:] == [[again]] * 3  # the chelsea clip holds still


def test_a_hint_is_dropped_when_its_object_leaves_the_frame():
    frames = [frame(i, 6, 0, pan=0) for i in range(14)]
    tracks = track(frames, on_object(CENTRE))
    inside = [i for i in range(14) if CENTRE[0] + 6 * i < W]  # true position inside
    for i, points in enumerate(tracks):
        if i + 2 < len(inside):  # the object whole in the frame: tracked
            assert len(points) == 1 and abs(points[0].x - CENTRE[0] - 6 * i) < 1.0
        if i not in inside:
            assert points == [], f"frame {i}"


def test_an_occluded_background_hint_is_dropped():
    # a hint on the still background that the object moves over
    frames = [frame(i, 5, 0, pan=0) for i in range(12)]
    spot = (START[0] + SIDE + 12, CENTRE[1])
    tracks = track(frames, on_object(spot))
    assert np.hypot(tracks[1][0].x - spot[0], tracks[1][0].y - spot[1]) < 0.5  # still
    covered = next(i for i in range(12) if START[0] + 5 * i + SIDE > spot[0] + 3)
    assert all(t == [] for t in tracks[covered:]), [len(t) for t in tracks]


def test_keyframes_replace_and_clear_the_hints():
    frames = [frame(i, 2, 1) for i in range(7)]
    other = Hint(10, 80, (20, 60, 200))
    hints = VideoHints({0: (Hint(*CENTRE, RED),), 2: (other,), 4: ()})
    tracks = track(frames, hints)
    blue = other.rgb
    assert [[p.rgb for p in t] for t in tracks] == [[RED], [RED], [blue], [blue], [], [], []]


def test_file_format_good_cases(tmp_path):
    data_ = {
        "frames": [
            {"frame": 240, "points": []},
            {"frame": 0, "points": [{"x": 120, "y": 45, "rgb": [200, 30, 40], "radius": 5}]},
            {"frame": 3.0, "points": [[1.5, 2, [0, 0, 255]]]},
        ]
    }
    hints = parse_video_hints(data_, "reel.json")
    assert list(hints.keyframes) == [0, 3, 240]
    assert hints.keyframes[0] == (Hint(120.0, 45.0, (200, 30, 40), 5),)
    assert hints.keyframes[3] == (Hint(1.5, 2.0, (0, 0, 255), 3),)
    assert hints.keyframes[240] == ()
    path = tmp_path / "reel.json"
    path.write_text(json.dumps(video_hints_to_json(hints)))
    assert load_video_hints(path).keyframes == hints.keyframes
    photo = parse_video_hints({"points": [{"x": 1, "y": 2, "rgb": [1, 2, 3]}]})
    assert photo.keyframes == {0: (Hint(1.0, 2.0, (1, 2, 3)),)}  # a photo file: frame 0


@pytest.mark.parametrize(
    ("data_", "message"),
    [
        ([], "no 'frames' list"),
        ({"frames": {}}, "'frames' must be a list"),
        ({"frames": [], "extra": 1}, "unknown key 'extra'"),
        ({"frames": [5]}, "frames entry 1: expected"),
        ({"frames": [{"frame": 0}]}, "frames entry 1: missing 'points'"),
        ({"frames": [{"frame": 0, "points": [], "when": 1}]}, "unknown key 'when'"),
        ({"frames": [{"frame": -1, "points": []}]}, "whole number >= 0, got -1"),
        ({"frames": [{"frame": 1.5, "points": []}]}, "whole number >= 0, got 1.5"),
        ({"frames": [{"frame": "3", "points": []}]}, "whole number >= 0, got '3'"),
        ({"frames": [{"frame": True, "points": []}]}, "whole number >= 0, got True"),
        ({"frames": [{"frame": 2, "points": []}, {"frame": 2.0, "points": []}]},
         "frame 2 is given twice"),
        ({"frames": [{"frame": 7, "points": [{"x": 1, "y": 2, "rgb": [300, 0, 0]}]}]},
         "frame 7: point 1: rgb must be"),
        ({"frames": [{"frame": 7, "points": {"x": 1}}]}, "frame 7: 'points' must be a list"),
    ],
)  # fmt: skip
def test_file_format_bad_cases_are_one_line_naming_the_file(data_, message):
    with pytest.raises(HintError, match=r"^reel\.json: ") as info:
        parse_video_hints(data_, "reel.json")
    assert message in str(info.value) and "\n" not in str(info.value)


def test_bad_files_name_the_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(HintError, match=r"bad.json: not valid JSON"):
        load_video_hints(bad)
    with pytest.raises(HintError, match=r"missing.json: cannot read hints"):
        load_video_hints(tmp_path / "missing.json")


def test_a_point_outside_the_frames_fails_at_the_first_frame():
    hints = VideoHints({9: (Hint(W + 5, 10, RED),)}, "reel.json")
    with pytest.raises(HintError, match=r"^reel.json: frame 9: point 1 \(133, 10\) is outside"):
        track([frame(0, 1, 1)], hints)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return save_tiny_hint_model(tmp_path_factory.mktemp("tiny") / "hm", size=64)


def test_each_frame_is_coloured_as_colorize_with_its_hints(tiny_model):
    model = load_model(tiny_model, device="cpu")
    frames = [frame(i, 3, 2) for i in range(4)]
    hints = on_object(CENTRE)
    outs = list(colorize_frames(model, frames, consistent=False, hints=hints))
    motion_of, tracker = MotionEstimator(), HintTracker(hints)  # on L as colorize_frames has it
    tracked = [tracker(motion_of(working_l(model, rgb)[0, 0].numpy()), rgb.shape[:2])
               for rgb in frames]  # fmt: skip
    for rgb, points, out in zip(frames, tracked, outs, strict=True):
        assert len(points) == 1
        np.testing.assert_array_equal(out, np.asarray(model.colorize(rgb, hints=points)))


def mean_ab(rgb: np.ndarray, x: float, y: float, r: int = 4) -> np.ndarray:
    return lab_of(rgb)[1:, int(y) - r : int(y) + r + 1, int(x) - r : int(x) + r + 1].mean((1, 2))


def test_cli_hints_colour_the_object_on_later_frames(tmp_path, tiny_model, capsys):
    frames = [frame(i, 3, 2) for i in range(8)]
    write_frames(iter(frames), tmp_path / "reel")
    hints = tmp_path / "reel.json"
    hints.write_text(json.dumps({"frames": [{"frame": 0, "points": [
        {"x": CENTRE[0], "y": CENTRE[1], "rgb": [200, 30, 40], "radius": 6}]}]}))  # fmt: skip
    base = ["video", str(tmp_path / "reel"), "--model", str(tiny_model), "--device", "cpu"]
    assert main([*base, "-o", str(tmp_path / "plain")]) == 0
    assert main([*base, "-o", str(tmp_path / "hinted"), "--hints", str(hints)]) == 0

    def read(run: str, i: int) -> np.ndarray:
        return cv2.imread(str(tmp_path / run / "reel" / f"frame_{i:05d}.png"))[..., ::-1]

    for i in (0, 6):
        x, y = CENTRE[0] + 3 * i, CENTRE[1] + 2 * i
        plain, hinted = mean_ab(read("plain", i), x, y), mean_ab(read("hinted", i), x, y)
        assert np.abs(hinted - plain).sum() > 5.0, (i, plain, hinted)
        assert hinted[0] > plain[0]  # redder (a up) where the red hint went
    capsys.readouterr()


def test_cli_bad_hints_file_is_one_line_and_exit_1(tmp_path, tiny_model, capsys):
    write_frames(iter([frame(i, 3, 2) for i in range(2)]), tmp_path / "reel")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"frames": [{"frame": -2, "points": []}]}))
    args = ["video", str(tmp_path / "reel"), "-o", str(tmp_path / "out"), "--model",
            str(tiny_model), "--device", "cpu"]  # fmt: skip
    assert main([*args, "--hints", str(bad)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.json: frames entry 1: 'frame' must be" in err[0]
    assert not (tmp_path / "out" / "reel").exists()
    assert main([*args, "--hints", str(tmp_path / "none.json")]) == 2
    assert "no such hints file" in capsys.readouterr().err


def test_evaluate_video_scores_simulated_hints(tmp_path, tiny_model, capsys):
    write_frames(iter([frame(i, 3, 2) for i in range(5)]), tmp_path / "clips" / "a")
    args = ["evaluate-video", str(tmp_path / "clips"), "--model", str(tiny_model)]
    out_json = tmp_path / "s.json"
    assert main([*args, "--device", "cpu", "--hints", "5", "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "hinted vs consistent: PSNR" in out
    scores = json.loads(out_json.read_text())["overall"]["scores"]
    assert list(scores) == ["gray", "per-frame", "consistent", "hinted", "truth"]
    assert scores["hinted"]["psnr"] != scores["consistent"]["psnr"]
