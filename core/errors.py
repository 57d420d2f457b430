"""The two kinds of failure a user meets, kept apart: *unavailable here* and *bad input*.

Why two families: they ask different things of the user. "Unavailable" (a backend that needs CUDA on a CPU
server, weights that are not on disk, a package that is not installed, a body model without its files)
is fixed by changing the server, never by choosing another photo; the add-on shows it as a setup problem
and ``welcome`` lists it before anyone submits. Bad input (:class:`~strata.core.imaging.errors.PhotoError`:
no person, a corrupt file) is fixed by changing the input. Both carry a stable ``code`` that the server
forwards as the job error's code, a ``message`` that says what happened and a ``hint`` that says what to do.

Everything here is the standard library only.
"""

from __future__ import annotations

from typing import Any


class UnavailableError(RuntimeError):
    """A backend, model or job kind that cannot run on this server (wire code ``unavailable``).

    Subclasses name the part (body model, segmentation backend, rasterizer); catching this one class is
    enough to tell "set the server up differently" apart from "bad input" and from bugs.
    """

    code = "unavailable"

    def __init__(self, message: str, *, hint: str = "", **detail: Any) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.detail = {k: v for k, v in detail.items() if v is not None}

    def __str__(self) -> str:
        return f"{self.message} {self.hint}".strip()
