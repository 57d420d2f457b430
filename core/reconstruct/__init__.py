"""Photo -> rigged, textured human: the reconstruction stages (pure compute, CPU, no downloaded weights).

Modules:

* :mod:`.stages`: the stage interfaces and :func:`~.stages.choose_backends` (quality presets).
* :mod:`.fit`: anny's shape + pose and an orthographic camera fitted to MediaPipe landmarks and the mask.
* :mod:`.keypoints`: where MediaPipe's 33 landmarks sit on anny (calibrated by :mod:`.calibrate`).
* :mod:`.posing`: pose a skeleton from bone directions (fit initialisation, synthetic people).
* :mod:`.surface` / :mod:`.texture`: the clothed surface and the UV texture.
* :mod:`.rigging`: the fitted pose on another anny skeleton.
* :mod:`.synthetic` / :mod:`.evaluate`: synthetic people with known geometry and the quality metrics.

The whole job is :func:`strata.core.pipelines.reconstruct.reconstruct`. Submodules import torch lazily
where they can; import them directly (this package imports nothing at load time).
"""
