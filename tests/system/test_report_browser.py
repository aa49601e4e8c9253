"""`twentyday report --html` rendered by a real browser (Debian's chromium, headless).

The screenshot is decoded (tests/png.py) and must show the page: many colours, and the bars of
the timeline in their own colours (so the inline style, allowed by its hash under the page's
Content-Security-Policy, was applied). The SVG must have exactly one row per chat conversation.
Chromium is required: CI installs it (.ci/run); without it the test fails and says so.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.png import pixels
from tests.scenario import AS_OF, autumn
from twentyday.cli import cli
from twentyday.store.archive import Archive

SPAN_BLUE = (0x2F, 0x6F, 0xB0)
HOLE_PINK = (0xF3, 0xC4, 0xC4)


class Timeline(HTMLParser):
    """The conversations each SVG draws a row for, and whether the page holds any script."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.tags: Counter[str] = Counter()
        self.handlers: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] += 1
        found = dict(attrs)
        self.handlers.extend(name for name, _ in attrs if name.startswith("on"))
        if tag == "svg":
            self.rows.append([])
        if tag == "g" and found.get("class") == "conversation":
            self.rows[-1].append(found.get("data-conversation") or "")


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("chromium is not installed: 'apt-get install -y chromium' (.ci/run does it in CI)")
    return found


def screenshot(page: Path, png: Path) -> None:
    result = subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={png}",
                             "--window-size=1200,900", "--hide-scrollbars", page.as_uri()],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and png.exists(), result.stderr[-2000:]


def close(colour: tuple[int, int, int], wanted: tuple[int, int, int]) -> bool:
    return all(abs(a - b) <= 8 for a, b in zip(colour, wanted, strict=True))


def test_the_report_renders_in_chromium_with_one_row_per_conversation(archive: Archive, archive_dir: Path,
                                                                      tmp_path: Path) -> None:
    autumn(archive, tmp_path / "exports")
    page = tmp_path / "report.html"
    result = CliRunner().invoke(cli, ["--config", str(archive_dir / "twentyday.toml"), "report", "--html", str(page),
                                      "--as-of", AS_OF.isoformat(), "--evidence", "jdoe"])
    assert result.exit_code == 0, result.output
    assert page.stat().st_mode & 0o777 == 0o600
    parsed = Timeline()
    parsed.feed(page.read_text())
    assert parsed.rows == [["Budget Team", "Ops"]]  # the two chat conversations; mail threads have none
    assert (parsed.tags["script"], parsed.handlers) == (0, [])

    png = tmp_path / "report.png"
    screenshot(page, png)
    width, height, seen = pixels(png)
    assert (width, height) == (1200, 900)
    colours = Counter(seen)
    background, share = colours.most_common(1)[0][0], colours.most_common(1)[0][1] / len(seen)
    assert share < 0.95, f"the page is blank: {share:.0%} of it is {background}"
    assert len(colours) > 50, f"only {len(colours)} colours: nothing rendered"
    assert sum(n for colour, n in colours.items() if close(colour, SPAN_BLUE)) > 500, "no coverage bar drawn"
    assert sum(n for colour, n in colours.items() if close(colour, HOLE_PINK)) > 500, "no hole drawn"
