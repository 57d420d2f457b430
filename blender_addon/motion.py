"""SMPL-X pose files (AMASS, SMPL-X fits) played on a Strata SMPL-X armature as an action.

Why it is this simple: in SMPL-X's T rest the rig's bones rest in SMPL-X's canonical frame (the rig's docs:
core/body/smplx_skeleton.py), so every joint's axis-angle is its pose bone's quaternion as it stands, the
MPI add-on's convention; a human stored in the A rest pose has its arms' rest frames turned, which is taken
out bone by bone. Only the root needs the file's world: AMASS is Z up, so its root rotation is
taken out of the pelvis bone's rest frame (and the armature object's turn); a fit is in SMPL-X's own
frame, which the armature already is. The pelvis moves by the file's translation relative to its first
frame, so the human starts where it stands.

Keys are written per F-curve with ``foreach_set`` (thousands of mocap frames in well under a second).
"""

from __future__ import annotations

from typing import Any

import bpy
import numpy as np

from ._lib.asset.smplx_motion import SMPLX_JOINT_NAMES, SMPLX_PARENTS, PoseSequence, rotation_to_quaternion

#: Joints an armature must have to play a pose file (the body; fingers, jaw and eyes are played if there).
REQUIRED = SMPLX_JOINT_NAMES[:22]


def is_smplx_armature(obj: Any) -> bool:
    """Whether ``obj`` is an armature with SMPL-X's body joints (a Strata ``--rig smplx`` human)."""
    return obj is not None and obj.type == "ARMATURE" and all(n in obj.data.bones for n in REQUIRED)


def play(armature: bpy.types.Object, seq: PoseSequence, *, start: int = 1, name: str = "SMPL-X motion",
         scene: bpy.types.Scene | None = None) -> bpy.types.Action:
    """Key ``seq`` on ``armature`` from frame ``start`` (one key per file frame, at the scene's frame rate)
    as a new action, and return it."""
    missing = [n for n in REQUIRED if n not in armature.data.bones]
    if missing:
        raise ValueError(f"{armature.name} is not an SMPL-X armature (no bones {', '.join(missing[:5])}...): "
                         "make the human with the SMPL-X rig")
    scene = scene or bpy.context.scene
    # 1. Each joint's local rotation. In SMPL-X's T rest every bone frame is the canonical one and a
    #    joint's rotation is the file's; a rest posed away from it (the A-pose's arms) takes the turn
    #    between the bone's and its parent's rest frames out first: L_j = B_j^T B_parent R_j.
    rotations = np.array(seq.rotations, np.float64)
    rest = {n: np.array(armature.data.bones[n].matrix_local.to_3x3(), np.float64) for _, n in _bones(armature)}
    for j, bone_name in _bones(armature):
        parent = SMPLX_JOINT_NAMES[SMPLX_PARENTS[j]] if SMPLX_PARENTS[j] >= 0 else None
        if parent in rest:
            rotations[:, j] = rest[bone_name].T @ rest[parent] @ rotations[:, j]
    # The root: from the file's world (AMASS: Z up) into the pelvis bone's rest frame (and the armature
    # object's turn); a fit's root is already in SMPL-X's own frame, which the pelvis bone rests in.
    root_rest = rest["pelvis"]
    turn = np.array(armature.matrix_world.to_3x3().normalized(), np.float64)
    if seq.up == "Z":
        rotations[:, 0] = root_rest.T @ turn.T @ rotations[:, 0]
    quaternions = rotation_to_quaternion(rotations)
    # 2. The pelvis's location, in its rest frame: the file's move since its first frame.
    delta = np.asarray(seq.translation, np.float64) - np.asarray(seq.translation[:1], np.float64)
    location = delta @ (turn @ root_rest) if seq.up == "Z" else delta  # (R^T d) row-wise: d @ R
    # 3. One key per file frame.
    frames = start + np.arange(seq.frames) * (scene.render.fps / scene.render.fps_base) / max(seq.fps, 1e-6)
    action = bpy.data.actions.new(name)
    armature.animation_data_create()
    armature.animation_data.action = action
    bones = _bones(armature)
    for j, bone_name in bones:
        bone = armature.pose.bones[bone_name]
        bone.rotation_mode = "QUATERNION"
        bone.rotation_quaternion = quaternions[0, j].tolist()
        bone.keyframe_insert("rotation_quaternion", frame=float(frames[0]), group=bone_name)
    root = armature.pose.bones["pelvis"]
    root.location = location[0].tolist()
    root.keyframe_insert("location", frame=float(frames[0]), group="pelvis")
    curves = {(c.data_path, c.array_index): c for c in _fcurves(armature)}
    for j, bone_name in bones:
        for i in range(4):
            _fill(curves[(f'pose.bones["{bone_name}"].rotation_quaternion', i)], frames, quaternions[:, j, i])
    for i in range(3):
        _fill(curves[('pose.bones["pelvis"].location', i)], frames, location[:, i])
    scene.frame_start, scene.frame_end = int(start), int(np.ceil(frames[-1]))
    action["strata_smplx_frames"] = seq.frames
    return action


def _bones(armature: bpy.types.Object) -> list[tuple[int, str]]:
    """(SMPL-X joint index, bone name) of the joints the armature has."""
    return [(j, n) for j, n in enumerate(SMPLX_JOINT_NAMES) if n in armature.data.bones]


def _fill(curve: Any, frames: np.ndarray, values: np.ndarray) -> None:
    """Replace ``curve``'s keys by one per frame (linear between them, as mocap is sampled)."""
    points = curve.keyframe_points
    points.add(len(frames) - len(points))
    co = np.stack([frames, values], axis=1).astype(np.float32).ravel()
    points.foreach_set("co", co)
    points.foreach_set("interpolation", np.full(len(frames), 1, np.int32))  # LINEAR
    curve.update()


def _fcurves(obj: bpy.types.Object) -> Any:
    """The F-curves of ``obj``'s action: its slot's channel bag (Blender 4.4+ layered actions), else the
    action's own list (4.3)."""
    data = obj.animation_data
    slot = getattr(data, "action_slot", None)
    action = data.action
    if slot is not None and getattr(action, "layers", None):
        return action.layers[0].strips[0].channelbag(slot).fcurves
    return action.fcurves
