"""Strata's compute core: pure compute (no bpy, no zmq), importable only as ``strata.core``.

Why the guard: the repository's folder is named ``core`` and the working directory is often on
``sys.path`` (pytest, ``python -m``), so ``import core`` would load a second copy of every module, with
its own caches and classes that ``isinstance`` does not recognise across the two copies.
"""

if __name__ != "strata.core":
    raise ImportError(f"the compute core is imported as {__name__!r}; import it as 'strata.core' "
                      "(install the project: pip install -e .)")
