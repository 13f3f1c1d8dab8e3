"""Open an HTML file in headless Chromium: a screenshot, and which images failed to render.

The page is copied with a probe script injected first in <head>: it records window errors
(image load errors included: they are captured on the way down) and console.error calls, and on
load writes {"images", "broken", "errors"} into a <pre id="ese-probe"> that --dump-dom returns.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

_PROBE = """<script>
window.__eseErrors = [];
window.addEventListener('error', function (e) {
  var t = e.target;
  window.__eseErrors.push(t && t.tagName ? 'failed to load <' + t.tagName.toLowerCase() + '> ' + (t.alt || '')
                                           : String(e.message));
}, true);
(function () { var ce = console.error; console.error = function () {
  window.__eseErrors.push(Array.prototype.join.call(arguments, ' ')); ce.apply(console, arguments); }; })();
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var out = {images: imgs.length,
             broken: imgs.filter(function (i) { return !i.complete || i.naturalWidth === 0; })
                         .map(function (i) { return i.alt; }),
             sizes: imgs.map(function (i) { return [i.naturalWidth, i.naturalHeight]; }),
             errors: window.__eseErrors};
  var pre = document.createElement('pre'); pre.id = 'ese-probe'; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def chromium() -> str:
    """The chromium binary, or skip (fail under CI, which installs it: scripts/setup.sh)."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; scripts/setup.sh installs Debian's chromium package")
        pytest.skip("chromium is not installed (Debian package chromium; scripts/setup.sh installs it)")
    return exe


def _run(args: list[str], tmp: Path) -> subprocess.CompletedProcess:
    exe = chromium()
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
             "--disable-dev-shm-usage", f"--user-data-dir={tmp / 'chromium-profile'}"]
    return subprocess.run([exe, *flags, *args], capture_output=True, text=True, timeout=180,
                          env={**os.environ, "HOME": str(tmp)})


def probe(page: Path, tmp: Path) -> dict:
    """{"images": n, "broken": [alt...], "sizes": [[w, h]...], "errors": [...]} of ``page``."""
    text = page.read_text(encoding="utf-8")
    probed = tmp / "probed.html"
    probed.write_text(re.sub(r"<head>", "<head>" + _PROBE, text, count=1), encoding="utf-8")
    proc = _run(["--dump-dom", "--virtual-time-budget=10000", probed.resolve().as_uri()], tmp)
    m = re.search(r'<pre id="ese-probe">(.*?)</pre>', proc.stdout, re.S)
    assert m, f"chromium did not run the probe (exit {proc.returncode}): {proc.stderr[-2000:]}"
    return json.loads(html.unescape(m.group(1)))


def screenshot(page: Path, out: Path, tmp: Path, size: tuple[int, int] = (1200, 8000)) -> Path:
    proc = _run([f"--window-size={size[0]},{size[1]}", f"--screenshot={out}", page.resolve().as_uri()], tmp)
    assert out.is_file() and out.stat().st_size > 0, f"no screenshot (exit {proc.returncode}): {proc.stderr[-2000:]}"
    return out
