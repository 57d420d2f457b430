"""Where the user's SMPL-X files are, and what to say when they are not (no torch: the server's capability
probe and `welcome` call it).
"""

from __future__ import annotations

from pathlib import Path

from .base import BodyModelError

GENDERS = ("neutral", "female", "male")
SITE = "https://smpl-x.is.tue.mpg.de"


def expected_layout(folder: Path | str | None) -> str:
    """What the SMPL-X folder must hold, and where the files come from (for every error about them)."""
    where = f"{folder}" if folder else "DIR"
    return (f"SMPL-X needs your own model files: {where}/smplx/SMPLX_NEUTRAL.npz (and SMPLX_FEMALE.npz, "
            f"SMPLX_MALE.npz for those genders). Register at {SITE}, accept the licence, download "
            "'SMPL-X v1.1 (NPZ+PKL)' and unpack its models/smplx folder there; then start the server with "
            "--smplx-dir DIR (or set STRATA_SMPLX_DIR, or the add-on's preference). Strata never downloads them.")


def model_file(folder: Path | str | None, gender: str = "neutral") -> Path:
    """The ``.npz`` for ``gender`` under ``folder`` (``folder/smplx/`` or ``folder`` itself), or a
    :class:`BodyModelError` saying what is missing and where to get it."""
    if gender not in GENDERS:
        raise ValueError(f"gender must be one of {GENDERS}, got {gender!r}")
    if not folder:
        raise BodyModelError("no SMPL-X folder is set. " + expected_layout(None))
    name = f"SMPLX_{gender.upper()}.npz"
    for candidate in (Path(folder) / "smplx" / name, Path(folder) / name):
        if candidate.is_file():
            return candidate
    found = sorted(p.name for p in Path(folder).rglob("*.npz"))[:6] if Path(folder).is_dir() else []
    seen = f" (it holds {', '.join(found)})" if found else (" (it does not exist)" if not Path(folder).is_dir()
                                                            else " (it holds no .npz)")
    raise BodyModelError(f"{name} is not in {folder}{seen}. " + expected_layout(folder))
