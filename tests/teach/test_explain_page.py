"""explain --export page.html in a real browser: Debian's chromium, headless, opens the page
with #selftest, which steps the kernel with the buttons and the slider, hovers over p, and
writes what the page then shows; that must be the walkthrough's own numbers. Skipped when no
browser is installed (apt-get install -y chromium; .ci/run installs it)."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from convcli.cli import app
from convcli.teach import walkthrough
from convcli.teach.arrays import flipped_footprint
from convcli.teach.page import MAX_OUTPUTS, explorer_data, page
from convcli.teach.text import fmt

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")
needs_browser = pytest.mark.skipif(BROWSER is None, reason="no browser: Debian's chromium is not "
                                   "installed (apt-get install -y chromium)")
SAMPLES = Path(__file__).resolve().parents[2] / "samples"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=8000"]


def selftest(path: Path) -> dict:
    result = subprocess.run([BROWSER, *FLAGS, "--dump-dom", f"file://{path}#selftest"],
                            capture_output=True, text=True, timeout=120, check=False)
    found = re.search(r'<pre id="selftest">([^<]*)</pre>', result.stdout)
    assert found, result.stderr[-2000:]
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))


CASES = {
    "article": [],
    "stride 2": ["--stride", "2", "--pixel", "2,1"],
    "two channels": ["--image", "{x2}", "--kernel", "{w2}", "--pixel", "1,2,2"],
    "a real image": ["--image", str(SAMPLES / "camera.png"), "--kernel", "sobel-x", "--pixel",
                     "100,80"],
}


@needs_browser
@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_the_page_shows_the_walkthroughs_numbers(tmp_path, case):
    x2 = tmp_path / "x2.npy"
    np.save(x2, (np.arange(50.0).reshape(2, 5, 5) % 7) + 1)
    w2 = tmp_path / "w2.npy"
    np.save(w2, np.arange(24.0).reshape(3, 2, 2, 2) - 9)
    args = [a.format(x2=x2, w2=w2) for a in CASES[case]]
    out = tmp_path / "page.html"
    result = CliRunner().invoke(app, ["explain", *args, "--export", str(out)])
    assert result.exit_code == 0, result.output
    document = out.read_text(encoding="utf-8")
    assert not re.search(r'(src|href)="https?:', document) and 'url("http' not in document
    report = selftest(out)
    assert report["after_next"] == 1 and report["after_prev"] == 0 and report["font"]
    # the same walkthrough, rebuilt from the arguments, says what the page must show
    options = dict(zip(args[::2], args[1::2]))
    walk = _walk(options)
    data = explorer_data(walk)
    window = data["windows"][report["window"]]
    assert report["caption"] == window["caption"]
    assert report["now"] == [window["output"]]
    assert sorted(report["window_cells"]) == sorted(c[:2] for c in window["cells"])
    c, pi, pj = walk.pixel
    p_cell = data["p"][0]
    assert [c2[:2] for c2 in window["cells"]].count(p_cell) == 1     # p's window is shown
    a = walk.arrays
    group_channels = a["w"].shape[1]
    o = (c // group_channels) * (a["w"].shape[0] // walk.groups)
    rows0 = _first(data, "y_labels")
    expected = sorted([oi - rows0[0], oj - rows0[1]] for oo, oi, oj, *_ in
                      flipped_footprint(walk.pixel, a["w"].shape, walk.geometry, walk.groups)
                      if oo == o and 0 <= oi - rows0[0] < MAX_OUTPUTS
                      and 0 <= oj - rows0[1] < MAX_OUTPUTS)
    assert sorted(report["touched"]) == expected and expected
    value = fmt(a["x"][0, c, pi, pj])
    assert report["hover"].startswith(f"x({pi},{pj}) = {value} touches {len(expected)} output")


def _first(data, key):
    label = data[key][0][0]                                   # "y(i,j)" of the crop's corner
    return tuple(int(v) for v in label[2:-1].split(","))


def _walk(options):
    from convcli.images import load_image
    from convcli.kernels import load_kernel

    pixel = tuple(int(v) for v in options.get("--pixel", "0,0").split(","))
    stride = int(options.get("--stride", 1))
    if "--image" not in options:
        return walkthrough(stride=stride, pixel=pixel)
    x = load_image(options["--image"]).array[0]
    w, _ = load_kernel(options["--kernel"])
    w = w if w.ndim == 4 else w.reshape((1, 1) + w.shape[-2:])
    if w.shape[1] != x.shape[0]:
        w = np.tile(w, (x.shape[0], 1, 1, 1))
        return walkthrough(x, w, pixel=pixel, stride=stride, groups=x.shape[0])
    return walkthrough(x, w, pixel=pixel, stride=stride)


@needs_browser
@pytest.mark.slow
def test_a_screenshot_shows_the_window_and_the_footprint(tmp_path):
    out = tmp_path / "page.html"
    out.write_text(page(walkthrough()), encoding="utf-8")
    shot = tmp_path / "page.png"
    subprocess.run([BROWSER, *FLAGS, "--hide-scrollbars", f"--screenshot={shot}",
                    "--window-size=1100,800", f"file://{out}"], capture_output=True,
                   timeout=120, check=True)
    pixels = np.asarray(Image.open(shot).convert("RGB")).reshape(-1, 3)
    colours = {tuple(p) for p in pixels[::7]}
    assert (214, 40, 40) in colours and (30, 90, 200) in colours      # window, footprint
