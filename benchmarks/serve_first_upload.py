"""A freshly started web page's first upload against its tenth.

Starts ``pixcolor serve`` in a fresh process (``sys.executable -m pixcolor serve --port 0``),
waits for its "ready" line (the model is loaded and warmed by then), and POSTs the same
generated 12 MP grayscale JPEG to ``/api/colorize`` ``--uploads`` times, one after another.
Prints the seconds to "ready", each upload's wall time (request sent to the last byte of the
PNG received), and ``ratio X`` = the first upload's time over the median of the others: 1.0
means the first photo pays nothing extra.

    python benchmarks/serve_first_upload.py [--model default] [--device cpu] [--uploads 10]
"""

from __future__ import annotations

import argparse
import http.client
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from first_photo import make_photo

BOUNDARY = "pixcolorbenchmark"


def form(photo: bytes) -> bytes:
    return (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"; '
            'filename="photo.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
        ).encode()
        + photo
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


def upload(port: int, body: bytes) -> float:
    """Seconds for one POST /api/colorize, response read in full; fails on any non-200."""
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    conn.request(
        "POST",
        "/api/colorize",
        body=body,
        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )
    response = conn.getresponse()
    data = response.read()
    conn.close()
    if response.status != 200:
        raise SystemExit(f"upload failed: {response.status} {data[:200]!r}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--uploads", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        body = form(make_photo(Path(tmp) / "photo.jpg").read_bytes())
        command = [sys.executable, "-m", "pixcolor", "serve", "--port", "0"]
        command += ["--model", args.model, "--device", args.device]
        started = time.perf_counter()
        server = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
        try:
            port = None
            assert server.stderr is not None
            for line in server.stderr:
                match = re.search(r"ready at http://127\.0\.0\.1:(\d+)/", line)
                if match:
                    port = int(match.group(1))
                    break
            if port is None:
                raise SystemExit(f"the server exited with {server.wait()} before it was ready")
            print(f"ready after {time.perf_counter() - started:.1f} s (load and warm-up)")
            times = []
            for i in range(args.uploads):
                times.append(upload(port, body))
                print(f"upload {i + 1:2d}: {times[-1]:.2f} s")
        finally:
            server.terminate()
            server.wait(timeout=30)
    rest = statistics.median(times[1:]) if len(times) > 1 else times[0]
    print(f"first {times[0]:.2f} s, median of the others {rest:.2f} s, ratio {times[0] / rest:.2f}")


if __name__ == "__main__":
    main()
