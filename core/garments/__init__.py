"""Garment layers built from the body: the procedural library behind the `generate` job (docs/layers.md).

``frame`` reads a body for dressing (parts, limb coordinates, landmarks, by role); ``shell``, ``loft`` and
``hair`` are the three constructions; ``styles`` holds the style table and the :class:`~.styles.Dresser`
that stacks layers inner first; ``fabric`` paints textures; ``binding`` ties garments to body triangles for
refitting; ``metrics`` measures interpenetration at rest and in test poses. Numpy and scipy only.
"""
