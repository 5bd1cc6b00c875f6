"""explain's exports: the SVG and HTML carry their font (no network), and the notebook API
(_repr_html_, .step(i))."""

import base64
import io
import re

import pytest
from PIL import Image, ImageDraw, ImageFont
from typer.testing import CliRunner

from convcli.cli import app
from convcli.teach import walkthrough
from convcli.teach.exports import FONTS


def embedded_fonts(document: str) -> list[bytes]:
    return [base64.b64decode(m) for m in
            re.findall(r'url\("data:font/ttf;base64,([A-Za-z0-9+/=]+)"\)', document)]


def draws(font_bytes: bytes, character: str) -> bytes:
    font = ImageFont.truetype(io.BytesIO(font_bytes), 32)
    image = Image.new("L", (48, 48))
    ImageDraw.Draw(image).text((4, 4), character, font=font, fill=255)
    return image.tobytes()


def test_the_svg_embeds_a_font_that_has_every_character_it_draws(tmp_path):
    out = tmp_path / "walk.svg"
    result = CliRunner().invoke(app, ["explain", "--export", str(out)])
    assert result.exit_code == 0, result.output
    document = out.read_text(encoding="utf-8")
    assert "cdnjs" not in document and 'url("http' not in document
    assert "Fira Code" not in document and '"convcli mono"' in document
    fonts = embedded_fonts(document)
    assert len(fonts) == 2                                       # regular and bold
    missing = draws(fonts[0], "\ue000")                          # a private-use character
    shown = set(re.sub(r"<[^>]+>", "", document)) - set(" \n\t")
    for character in sorted(shown & set("⋆·ᵀ−…⋯✓✗–∂Σ‖×²°╭╮╰╯│─")):
        assert draws(fonts[0], character) != missing, character


def test_the_shipped_fonts_and_their_licence_are_there():
    assert (FONTS / "DejaVuSansMono-subset.ttf").stat().st_size < 40_000
    assert "Bitstream" in (FONTS / "LICENSE-DejaVu.txt").read_text(encoding="utf-8")


def test_a_notebook_shows_the_walkthrough_and_one_step():
    walk = walkthrough(stride=2, pixel=(1, 1))
    page = walk._repr_html_()
    assert page.startswith('<div class="convcli-walk">') and len(embedded_fonts(page)) == 2
    assert "1. Setup" in page and "10. Conclusion" in page and "20 of 20 checks pass" in page
    step = walk.step(3)
    html = step._repr_html_()
    assert "4. dL/dx for one pixel" in html and "5. dL/dx for all" not in html
    assert "1. Setup" in str(walk.step(0)) and "10. Conclusion" not in str(walk.step(0))
    assert repr(step) == "<step 3: 4. dL/dx for one pixel: p times the flipped kernel>"
    with pytest.raises(IndexError, match="steps 0..9"):
        walk.step(10)
