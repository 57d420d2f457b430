"""From a foreground mask to the one person to reconstruct, with the checks a user can act on.

Segmenters return every foreground blob; this module decides who the subject is (the largest connected
component), counts the others, and refuses photos where the subject is missing, tiny, or cut off by the
image border, because a full-body reconstruction cannot invent a missing head or feet.

Cut-off test. Touching the border is not enough: cut-outs are often trimmed tight to the subject, so the
top of the head, a hand or the soles touch the edge without anything missing. What separates the two cases
is whether the body *continues* past the edge. Where a round extremity merely grazes the border, the mask
is much narrower on the border line than a little way inside; where the border slices through a limb or
the torso, the cross-section on the border is as wide as just inside. So for each edge we compare the
contact length with the mask width at a depth of 3 % of the person's height, over the same columns. On the
eight example photos, trimmed tight on all sides, the ratio was 0.02-0.44; cut at the ankles, knees, hips,
forehead, neck or 10 % into one side, it was 0.67-2.2. The threshold is 0.55.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np

from ..imaging.errors import MultiplePeopleError, NoPersonError, PersonCutOffError

EDGES = ("top", "bottom", "left", "right")
#: What is probably missing when the person runs into each edge (for messages).
_EDGE_PARTS = {
    "top": "the head or raised hands",
    "bottom": "the feet or legs",
    "left": "an arm or hand",
    "right": "an arm or hand",
}


@dataclass(frozen=True)
class PersonMask:
    """The chosen person.

    Attributes:
        mask: (H, W) float32 in [0, 1], soft mask of the chosen person only (other people removed).
        bbox: (x0, y0, x1, y1) of ``mask > threshold``, x1/y1 exclusive.
        count: number of people found (components large enough to be a person).
        area_fraction: the person's share of the image area.
        touching_edges: edges the person touches without being cut off (e.g. a tight cut-out).
        note: a sentence for the user when the result needed a judgement call (other people dropped),
            else None.
        backend: the segmenter that produced the mask, when known.
    """

    mask: np.ndarray
    bbox: tuple[int, int, int, int]
    count: int
    area_fraction: float
    touching_edges: tuple[str, ...] = ()
    note: str | None = None
    backend: str | None = None


def find_people(
    mask: np.ndarray,
    *,
    strict: bool = False,
    threshold: float = 0.5,
    min_area_fraction: float = 0.002,
    min_height_px: int = 200,
    other_person_ratio: float = 0.1,
    allow_cut_edges: Collection[str] = (),
    cut_ratio: float = 0.55,
    cut_depth_frac: float = 0.03,
) -> PersonMask:
    """Pick the largest person in a foreground mask and check that they are usable.

    Args:
        mask: (H, W) foreground mask, float in [0, 1] (or uint8 0-255 / bool).
        strict: raise ``MultiplePeopleError`` when more than one person is found; otherwise keep the
            largest and explain in ``note``.
        threshold: mask level that counts as foreground.
        min_area_fraction: the subject must cover at least this share of the image (0.2 %: a sanity floor
            that rejects specks; other blobs must pass it too to count as people).
        min_height_px: the subject's bbox must be at least this tall. This is the real "too small" test:
            the diffusion canvas draws the person 740 px tall, and below ~200 px the 3.7x upscale leaves
            too little detail for a texture.
        other_person_ratio: another blob counts as a person only if at least this fraction of the
            subject's area (smaller blobs are clutter or segmentation noise).
        allow_cut_edges: edges where running into the border is accepted (e.g. ``{"bottom"}`` for a
            knee-up photo). Default: none.
        cut_ratio, cut_depth_frac: cut-off test parameters (see the module docstring).

    Raises:
        NoPersonError: nothing in the mask, or the largest blob is too small.
        MultiplePeopleError: ``strict`` and more than one person.
        PersonCutOffError: the person continues past an image edge not in ``allow_cut_edges``.
    """
    from scipy import ndimage  # lazy: scipy import costs ~0.2 s

    unknown = set(allow_cut_edges) - set(EDGES)
    if unknown:
        raise ValueError(f"unknown edges {sorted(unknown)}; expected some of {EDGES}")
    soft = _as_unit(mask)
    if soft.ndim != 2:
        raise ValueError(f"expected an (H, W) mask, got {soft.shape}")
    h, w = soft.shape
    fg = soft > threshold

    labels, n = ndimage.label(fg, structure=np.ones((3, 3), bool))
    if n == 0:
        raise NoPersonError("No person was found in the photo.", count=0)
    areas = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    boxes = ndimage.find_objects(labels)
    main = int(np.argmax(areas))
    main_area = int(areas[main])
    main_box = boxes[main]
    main_h = main_box[0].stop - main_box[0].start

    total = h * w
    if main_area < min_area_fraction * total or main_h < min_height_px:
        raise NoPersonError(
            f"The person is too small in the photo ({main_area / total:.1%} of the image, {main_h} px tall).",
            hint="Use a photo where the person fills most of the frame's height.",
            area_fraction=main_area / total,
            height_px=main_h,
        )

    keep = [main]
    others = []
    person_min = max(min_area_fraction * total, other_person_ratio * main_area)
    for i in range(n):
        if i == main:
            continue
        if _mostly_inside(boxes[i], main_box):
            keep.append(i)  # a hand or foot split off by a thin gap: part of the subject
        elif areas[i] >= person_min:
            others.append(i)
    count = 1 + len(others)
    note = None
    if count > 1:
        if strict:
            raise MultiplePeopleError(f"{count} people were found in the photo.", count=count)
        note = f"{count} people were found; the largest one was kept."

    person = np.isin(labels, np.asarray(keep) + 1)
    cut, touching = _cut_edges(person, cut_ratio, cut_depth_frac)
    cut = [e for e in cut if e not in allow_cut_edges]
    if cut:
        parts = sorted({_EDGE_PARTS[e] for e in cut})
        raise PersonCutOffError(
            f"The person runs off the {' and '.join(cut)} edge{'s' if len(cut) > 1 else ''} of the photo, "
            f"so {' and '.join(parts)} {'are' if len(parts) > 1 else 'is'} probably outside the frame.",
            edges=tuple(cut),
        )

    # Keep soft matting edges: the person's pixels plus a thin ring of sub-threshold mask around them, but
    # never pixels that belong to another blob.
    ring = max(2, int(round(0.005 * max(h, w))))
    region = ndimage.binary_dilation(person, iterations=ring) & ~(fg & ~person)
    out = np.where(region, soft, 0.0).astype(np.float32)

    ys = np.flatnonzero(person.any(axis=1))
    xs = np.flatnonzero(person.any(axis=0))
    return PersonMask(
        mask=out,
        bbox=(int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1),
        count=count,
        area_fraction=float(person.sum()) / total,
        touching_edges=tuple(touching),
        note=note,
    )


def _as_unit(mask: np.ndarray) -> np.ndarray:
    m = np.asarray(mask)
    if m.dtype == np.uint8:
        return m.astype(np.float32) / 255.0
    return m.astype(np.float32)


def _mostly_inside(box: tuple[slice, slice], outer: tuple[slice, slice], frac: float = 0.8) -> bool:
    """At least ``frac`` of ``box``'s area lies inside ``outer``."""
    iy = max(0, min(box[0].stop, outer[0].stop) - max(box[0].start, outer[0].start))
    ix = max(0, min(box[1].stop, outer[1].stop) - max(box[1].start, outer[1].start))
    area = (box[0].stop - box[0].start) * (box[1].stop - box[1].start)
    return ix * iy >= frac * area


def _cut_edges(person: np.ndarray, cut_ratio: float, depth_frac: float) -> tuple[list[str], list[str]]:
    """(edges where the body continues past the border, edges merely touched)."""
    from scipy import ndimage

    rows = np.flatnonzero(person.any(axis=1))
    height = rows[-1] - rows[0] + 1
    views = {"top": person, "bottom": person[::-1], "left": person.T, "right": person.T[::-1]}
    cut, touching = [], []
    for edge in EDGES:
        v = views[edge]
        border = v[0]
        contact = int(border.sum())
        if contact == 0:
            continue
        depth = min(max(2, int(round(depth_frac * height))), v.shape[0] - 1)
        near = ndimage.binary_dilation(border, iterations=depth)
        inner = int((v[depth] & near).sum())
        # A couple of pixels (a hair strand, a fingertip) never count as a cut.
        min_contact = max(3, int(0.005 * v.shape[1]))
        if contact >= min_contact and contact >= cut_ratio * max(inner, 1):
            cut.append(edge)
        else:
            touching.append(edge)
    return cut, touching
