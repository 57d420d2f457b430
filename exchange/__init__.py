"""What the server, its clients and the Blender add-on exchange: one definition of each.

* :mod:`.wire`: the wire protocol (message framing, error codes) and the job specs (kinds, parameters).
* :mod:`.asset`: the HumanAsset schema, its validated frame codec, the ``.strata`` file, the glTF writer.
* :mod:`.client`: the one Python client of the protocol (the CLI, the batch runner and the add-on use it).

Why a package of its own: the Blender add-on carries a copy of this folder (``build_addon.py`` vendors it
whole as ``_lib/``), so everything here imports only the standard library, numpy, msgpack and zmq, and
its siblings *relatively*. ``strata.core`` builds on it (pipelines return HumanAssets); nothing here
imports from ``strata.core``, ``strata.server`` or ``strata.client``. This ``__init__`` imports nothing,
so ``strata.exchange.asset`` does not pull in zmq.
"""
