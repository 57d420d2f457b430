"""Typed errors of the photo front-end (loading, segmentation, pose).

Every failure a user can fix by choosing another photo is raised as a :class:`PhotoError` subclass with a
stable ``code`` string. The server forwards ``code`` to the Blender add-on, which keys its UI text and tests
on it, so codes are part of the wire contract: never rename one; add a new class instead. ``message`` says
what went wrong and ``hint`` what to do about it, both in plain words for the end user.
"""

from __future__ import annotations

from typing import Any, ClassVar

from ..errors import UnavailableError


class PhotoError(Exception):
    """Base class of every user-facing photo problem.

    Subclasses set ``code`` (stable, snake_case) and a default ``hint``. Callers catch ``PhotoError`` once
    and report ``code``/``message``/``hint``; anything else escaping the front-end is a bug, not bad input.
    """

    code: ClassVar[str] = "photo_error"
    default_hint: ClassVar[str] = "Try another photo."

    def __init__(self, message: str, *, hint: str | None = None, **details: Any) -> None:
        self.message = message
        self.hint = hint if hint is not None else self.default_hint
        self.details: dict[str, Any] = details
        super().__init__(f"{message} {self.hint}".strip())

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form for the wire (msgpack/JSON friendly as long as ``details`` is)."""
        return {"code": self.code, "message": self.message, "hint": self.hint, "details": dict(self.details)}


# --- loading ---------------------------------------------------------------------------------------------


class ImageNotFoundError(PhotoError):
    code = "file_not_found"
    default_hint = "Check the file path and that the file still exists."


class NotAnImageError(PhotoError):
    code = "not_an_image"
    default_hint = "Choose a photo saved as PNG, JPEG or WebP."


class UnsupportedFormatError(PhotoError):
    code = "unsupported_format"
    default_hint = "Convert the photo to PNG, JPEG or WebP and try again."


class TruncatedImageError(PhotoError):
    code = "truncated_image"
    default_hint = "The file is incomplete (interrupted download or copy?). Save or export it again."


class CorruptImageError(PhotoError):
    code = "corrupt_image"
    default_hint = "The file is damaged. Re-export it from the original, or choose another photo."


class ImageTooLargeError(PhotoError):
    code = "image_too_large"
    default_hint = "Downscale the photo (for example to 4000 px on the long side) and try again."


class ImageTooSmallError(PhotoError):
    code = "image_too_small"
    default_hint = "Use a larger photo: the person should be at least a few hundred pixels tall."


# --- backends (segmentation, pose) -----------------------------------------------------------------------


class BackendUnavailableError(UnavailableError):
    """A requested segmentation or pose backend cannot run here (package or weights missing).

    Not the photo's fault, so it is of the *unavailable* family (:mod:`strata.core.errors`), not a
    :class:`PhotoError`; its wire code stays ``backend_unavailable`` (codes are never renamed)."""

    code = "backend_unavailable"
    default_hint = "Choose another backend, or install what the message names."

    def __init__(self, message: str, *, hint: str | None = None, **details: Any) -> None:
        super().__init__(message, hint=hint if hint is not None else self.default_hint, **details)
        self.details: dict[str, Any] = details

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "hint": self.hint, "details": dict(self.details)}


class BackendFailedError(PhotoError):
    """A backend that should work raised at run time (corrupt weights, runtime library error)."""

    code = "backend_failed"
    default_hint = "Try again; if it keeps failing, choose another backend and report the error."


# --- people in the photo (segmentation) ------------------------------------------------------------------


class NoPersonError(PhotoError):
    code = "no_person"
    default_hint = "Use a photo that shows one person, whole body, large in the frame."


class PersonCutOffError(PhotoError):
    """The person's silhouette runs into the image border: part of the body is outside the photo.

    ``details["edges"]`` lists the edges ("top", "bottom", "left", "right").
    """

    code = "person_cut_off"
    default_hint = "Use a photo that shows the whole body from head to feet, with a little space around it."


class MultiplePeopleError(PhotoError):
    code = "multiple_people"
    default_hint = "Use a photo with only one person, or crop the photo to the person you want."


# --- pose ------------------------------------------------------------------------------------------------


class NoPoseError(PhotoError):
    code = "no_pose"
    default_hint = "Use a photo where the whole body is visible, facing the camera, in good light."


#: Every code the photo front-end can raise, for the server's and the add-on's tables.
ERROR_CODES: tuple[str, ...] = tuple(
    cls.code
    for cls in (
        ImageNotFoundError,
        NotAnImageError,
        UnsupportedFormatError,
        TruncatedImageError,
        CorruptImageError,
        ImageTooLargeError,
        ImageTooSmallError,
        BackendUnavailableError,
        BackendFailedError,
        NoPersonError,
        PersonCutOffError,
        MultiplePeopleError,
        NoPoseError,
    )
)
