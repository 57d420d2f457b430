"""The client side of Strata: the ``strata`` CLI, the folder batch, output writers (.strata, .glb, .blend,
.fbx), the terminal progress bar, the Blender export driver and the ``make demo`` driver.

It talks to a server through :mod:`strata.exchange.client` only, so a CLI-only install needs neither torch
nor the compute core.
"""
