"""The shipped models' outputs on the demo photos stay what they were when recorded.

``reference_outputs.json`` holds, for the ``default`` and ``fast`` models on each scikit-image
photo that ``pixcolor demo`` colorizes: the network's ab at the model's working size (SHA-256
of its float32 bytes and 6 x 6 block means per channel) and the final uint8 output (block
means per channel; for ``default``, averaged with its extra size, so re-recorded when that
came).
It was recorded once with ``python tests/test_reference_outputs.py --record`` on a 2-core AVX512
CPU with 2 threads, before the weights loader, input normalisation and model modules were
reorganised; code changes that are meant to keep behaviour must keep these values.

The ab must be bit-identical on the recording platform (same CPU capability, 2 threads, which
the test pins in a subprocess); elsewhere floating-point summation order differs, and block
means must agree within 1e-3 Lab units. The final image may move by a level at a few pixels
(the full-resolution recolour's rounding), so its block means must agree within 0.25 levels.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REFERENCE = Path(__file__).with_name("reference_outputs.json")
MODELS = ("default", "fast")
GRID = 6  # block means on a GRID x GRID grid per channel
THREADS = 2


def block_means(a: np.ndarray) -> list[list[float]]:
    """``GRID x GRID`` block means of each channel of ``a (C, H, W)``, flattened per channel."""
    c, h, w = a.shape
    ys = np.linspace(0, h, GRID + 1).astype(int)
    xs = np.linspace(0, w, GRID + 1).astype(int)
    return [
        [
            float(a[k, ys[i] : ys[i + 1], xs[j] : xs[j + 1]].astype(np.float64).mean())
            for i in range(GRID)
            for j in range(GRID)
        ]
        for k in range(c)
    ]


def measure() -> dict:
    """Run the shipped models on the demo photos (CPU) and summarise their outputs."""
    import torch

    from pixcolor.color import gray_uint8
    from pixcolor.commands.demo import load_samples
    from pixcolor.pipeline import load_model

    torch.set_num_threads(THREADS)
    out: dict = {"cpu_capability": torch.backends.cpu.get_cpu_capability(), "outputs": {}}
    samples = load_samples()
    for name in MODELS:
        model = load_model(name, device="cpu")
        for photo, rgb in samples.items():
            gray = gray_uint8(rgb)
            ab = model.predict_ab(model.working_l(gray, model.size))[0].numpy()
            final = np.asarray(model.colorize(gray)).transpose(2, 0, 1)
            out["outputs"][f"{name}/{photo}"] = {
                "ab_shape": list(ab.shape),
                "ab_sha256": hashlib.sha256(np.ascontiguousarray(ab).tobytes()).hexdigest(),
                "ab_blocks": block_means(ab),
                "final_shape": list(final.shape),
                "final_blocks": block_means(final),
            }
    return out


def dump(record: dict) -> str:
    """``record`` as JSON with one line per output, block means rounded to 1e-5."""
    lines = [f'{{"cpu_capability": {json.dumps(record["cpu_capability"])}, "outputs": {{']
    items = list(record["outputs"].items())
    for i, (key, out) in enumerate(items):
        out = {k: np.round(v, 5).tolist() if k.endswith("blocks") else v for k, v in out.items()}
        comma = "," if i + 1 < len(items) else ""
        lines.append(f"{json.dumps(key)}: {json.dumps(out)}{comma}")
    return "\n".join(lines) + "\n}}\n"


@pytest.mark.slow
def test_shipped_models_outputs_match_the_recorded_reference():
    ref = json.loads(REFERENCE.read_text())
    env = {**os.environ, "OMP_NUM_THREADS": str(THREADS)}
    proc = subprocess.run(
        [sys.executable, __file__, "--measure"], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    now = json.loads(proc.stdout)
    same_platform = now["cpu_capability"] == ref["cpu_capability"]
    assert sorted(now["outputs"]) == sorted(ref["outputs"])
    for key, r in ref["outputs"].items():
        n = now["outputs"][key]
        assert n["ab_shape"] == r["ab_shape"], key
        assert n["final_shape"] == r["final_shape"], key
        if same_platform:
            assert n["ab_sha256"] == r["ab_sha256"], f"{key}: working-size ab changed"
        np.testing.assert_allclose(n["ab_blocks"], r["ab_blocks"], atol=1e-3, err_msg=key)
        np.testing.assert_allclose(n["final_blocks"], r["final_blocks"], atol=0.25, err_msg=key)


if __name__ == "__main__":
    if sys.argv[1:] == ["--record"]:
        REFERENCE.write_text(dump(measure()))
    elif sys.argv[1:] == ["--measure"]:
        print(json.dumps(measure()))
    else:
        sys.exit("usage: test_reference_outputs.py --record | --measure")
