"""Render the contact sheet of docs/views.md: one synthetic clothed person's six true views, colour over normal.

Run with the project's venv (CPU, ~30 s):

    .venv/bin/python docs/media/render_views_sheet.py [docs/media/views_contact_sheet.png] [--folder DIR]

It makes seed 3 with a shirt, a skirt and a hood (:mod:`strata.core.reconstruct.synthetic_clothed`), renders
the six views at 384 px, writes them as a views folder when ``--folder`` is given (the input of
``strata reconstruct --views``), and labels each column with the view's name and azimuth.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from strata.core.body import get_body_model
from strata.core.reconstruct.synthetic_clothed import make_clothed_person, render_views
from strata.core.render.views_io import encode_normals, write_views
from strata.core.views import PSHUMAN_VIEWS

REPO = Path(__file__).resolve().parents[2]


def _over_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    return (rgb * alpha[..., None] + 255 * (1 - alpha[..., None])).astype(np.uint8)


def main(argv: list[str]) -> None:
    out = Path(argv[0]) if argv and not argv[0].startswith("--") else REPO / "docs/media/views_contact_sheet.png"
    person = make_clothed_person(get_body_model("anny"), 3, garments=("shirt", "skirt", "hood"))
    views = render_views(person, 384)
    if "--folder" in argv:
        write_views(argv[argv.index("--folder") + 1], views)
    cols = []
    for v in views:
        colour = _over_white(v.image.astype(np.float32), v.mask)
        normal = _over_white(encode_normals(v.normal).astype(np.float32), v.mask)
        cell = Image.fromarray(np.concatenate([colour, normal], 0))
        ImageDraw.Draw(cell).text((8, 6), f"{v.name} (az {PSHUMAN_VIEWS[v.name]:.0f})", fill=(0, 0, 0))
        cols.append(np.asarray(cell))
    Image.fromarray(np.concatenate(cols, 1)).save(out, optimize=True)
    print(out)


if __name__ == "__main__":
    main(sys.argv[1:])
