"""Open a rendered report in headless Chromium: every image must decode and the page must log no errors.

    python benchmarks/report_browser_check.py                      # render the synthetic fixture report
    python benchmarks/report_browser_check.py outputs/demo/report.html --screenshot shot.png

A copy of the page gets a small probe script (the report itself has none) that records script errors,
console errors and failed resource loads, and on `load` writes a JSON verdict into the document title:
image count, images with naturalWidth 0, errors, page height. `--dump-dom` returns it; a second run
takes a full-height screenshot for a person to look at. Exit code 0 when clean, 1 when not, and 0 with
a note when Chromium is not installed (Debian: `apt-get install chromium`).
"""

from __future__ import annotations

import argparse
import html
import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
MAX_SCREENSHOT_HEIGHT = 30000
WIDTH = 1400

# Flags for a quiet, offline, sandbox-free headless run (containers lack the namespaces the sandbox needs).
BASE_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
    "--mute-audio",
    "--virtual-time-budget=10000",
]

PROBE = """<script>
(function () {
  var errors = [];
  window.addEventListener('error', function (e) {
    var t = e.target;
    errors.push(t && t !== window && (t.src || t.href) ? 'failed to load ' + (t.tagName || '') + ' ' + String(t.src || t.href).slice(0, 80)
                                                      : 'script error: ' + e.message);
  }, true);
  var original = console.error;
  console.error = function () { errors.push('console.error: ' + Array.prototype.join.call(arguments, ' ')); original.apply(console, arguments); };
  window.addEventListener('load', function () {
    var images = Array.prototype.slice.call(document.images);
    var broken = images.filter(function (i) { return !i.complete || i.naturalWidth === 0; }).map(function (i) { return i.alt || '(no alt)'; });
    document.title = 'PROBE' + JSON.stringify({images: images.length, broken: broken, errors: errors,
                                              height: document.documentElement.scrollHeight,
                                              overflowing: document.documentElement.scrollWidth > window.innerWidth});
  });
})();
</script>"""


@dataclass
class BrowserCheck:
    images: int
    broken: list[str]
    errors: list[str]
    height: int
    overflowing: bool
    screenshot: Path | None = None
    console: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.images > 0 and not self.broken and not self.errors and not self.console


def find_chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _run(chromium: str, args: list[str], profile: Path, timeout: float) -> subprocess.CompletedProcess:
    cmd = [chromium, *BASE_FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def _console_errors(stderr: str) -> list[str]:
    """Page console messages at error level from Chromium's log (its own start-up noise is ignored)."""
    out = []
    for line in stderr.splitlines():
        if "CONSOLE" in line and ("Uncaught" in line or "Error" in line or ":ERROR:" in line):
            out.append(line.strip()[:300])
    return out


def check_report(report: Path, screenshot: Path | None = None, chromium: str | None = None,
                 timeout: float = 120.0) -> BrowserCheck:
    chromium = chromium or find_chromium()
    if chromium is None:
        raise FileNotFoundError("Chromium is not installed")
    text = report.read_text(encoding="utf-8")
    probed = re.sub(r"<head>", "<head>" + PROBE, text, count=1)
    with tempfile.TemporaryDirectory(prefix="report-check-") as tmp:
        tmp = Path(tmp)
        # The report is self-contained (images are data URIs), so the probed copy can live anywhere.
        page = tmp / "probe.html"
        page.write_text(probed, encoding="utf-8")
        dom = _run(chromium, ["--dump-dom", page.as_uri()], tmp / "profile-dom", timeout)
        match = re.search(r"<title>PROBE(.*?)</title>", dom.stdout, re.S)
        if not match:
            raise RuntimeError(f"the probe did not report (Chromium exit {dom.returncode}): {dom.stderr[-2000:]}")
        verdict = json.loads(html.unescape(match.group(1)))
        result = BrowserCheck(images=verdict["images"], broken=verdict["broken"], errors=verdict["errors"],
                              height=int(verdict["height"]), overflowing=bool(verdict["overflowing"]),
                              console=_console_errors(dom.stderr))
        if screenshot is not None:
            height = min(result.height + 40, MAX_SCREENSHOT_HEIGHT)
            shot = _run(chromium, [f"--screenshot={screenshot}", f"--window-size={WIDTH},{height}", report.as_uri()],
                        tmp / "profile-shot", timeout)
            if not screenshot.is_file():
                raise RuntimeError(f"no screenshot written (Chromium exit {shot.returncode}): {shot.stderr[-2000:]}")
            result.screenshot = screenshot
    return result


def render_fixture_report(directory: Path) -> Path:
    """Build the synthetic output directory the tests use and render its report."""
    sys.path.insert(0, str(ROOT / "tests"))
    from report_fixture import make_output_dir  # noqa: E402  (a test helper, not an installed module)

    from reports import render_report

    out = make_output_dir(directory)
    return render_report(out).report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", nargs="?", type=Path, help="report.html (default: render the synthetic fixture)")
    parser.add_argument("--screenshot", type=Path, default=None, help="where to save the full-page PNG")
    parser.add_argument("--workdir", type=Path, default=None, help="where to build the fixture (default: a temp dir)")
    args = parser.parse_args(argv)
    chromium = find_chromium()
    if chromium is None:
        print("skipped: Chromium is not installed (Debian: apt-get install chromium)")
        return 0
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="report-fixture-"))
    report = args.report.resolve() if args.report else render_fixture_report(workdir)
    screenshot = (args.screenshot or report.with_name(report.stem + "_screenshot.png")).resolve()
    result = check_report(report, screenshot, chromium)
    print(f"report: {report}")
    print(f"images: {result.images}, broken: {len(result.broken)} {result.broken or ''}")
    print(f"page errors: {len(result.errors) + len(result.console)} {result.errors + result.console or ''}")
    print(f"page height: {result.height} px at width {WIDTH}; horizontal overflow: {result.overflowing}")
    print(f"screenshot: {result.screenshot}")
    print("OK" if result.ok else "FAILED")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
