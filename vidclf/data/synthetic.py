"""A SYNTHETIC action dataset that vidclf renders itself, in UCF-101's layout.

Stick figures do six actions in front of noisy "rooms". Each *group* is one "actor" (build, line width,
room texture); clips of a group vary in colours, position, speed, phase and noise, like UCF-101's
``gXX_cYY``. ``SynthRaiseArms`` and ``SynthLowerArms`` are the same motion played forwards and backwards:
every single frame of one could belong to the other, so only a model that uses frame order can tell them
apart. Used by the tests, the app's training tab and quick demos; every class name starts with ``Synth``
and the root holds a README saying what it is, so it is never mistaken for real data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vidclf.video import write_video

SYNTH_CLASSES = ("SynthJumpingJack", "SynthSquat", "SynthWave", "SynthWalk", "SynthRaiseArms", "SynthLowerArms")
# Movements no synthetic dataset holds unless asked for: a new action to teach a model trained on the six
SYNTH_EXTRA = ("SynthSideStep",)


@dataclass(frozen=True)
class Pose:
    """Normalised pose: arm angles (0 = hanging, pi = overhead), leg spread 0-1, squat depth 0-1, x shift."""

    left_arm: float
    right_arm: float
    legs: float
    squat: float
    dx: float = 0.0
    dy: float = 0.0


def _pose(action: str, u: float, cycles: float, phase: float = 0.0) -> Pose:
    """Pose of ``action`` at normalised time ``u`` in [0, 1]; ``phase`` (in cycles) shifts where it starts."""
    wave = 0.5 - 0.5 * math.cos(2 * math.pi * (cycles * u + phase))
    if action == "SynthJumpingJack":
        return Pose(
            0.15 + 0.8 * math.pi * wave, 0.15 + 0.8 * math.pi * wave, wave, 0.0, dy=-0.08 * math.sin(math.pi * wave)
        )
    if action == "SynthSquat":
        return Pose(math.pi / 2, math.pi / 2, 0.25, wave)
    if action == "SynthWave":
        return Pose(0.15, 0.65 * math.pi + 0.3 * math.pi * wave, 0.1, 0.0)
    if action == "SynthWalk":
        swing = math.sin(2 * math.pi * (cycles * u + phase))
        return Pose(0.3 + 0.25 * swing, 0.3 - 0.25 * swing, 0.5 + 0.5 * swing, 0.0, dx=-0.35 + 0.7 * u)
    if action == "SynthSideStep":
        # Arms held overhead, stepping from side to side: no other action keeps its hands up the whole time.
        step = math.sin(2 * math.pi * (cycles * u + phase))
        return Pose(0.95 * math.pi, 0.95 * math.pi, 0.3 + 0.3 * abs(step), 0.0, dx=0.2 * step)
    if action == "SynthRaiseArms":
        # One slow raise with a quick start: asymmetric in time, so reversing it is a different motion.
        s = 1 - (1 - u) ** 2
        return Pose(0.1 + 0.9 * math.pi * s, 0.1 + 0.9 * math.pi * s, 0.15, 0.0)
    raise ValueError(f"unknown synthetic action {action!r}")


def _joints(pose: Pose, cx: float, cy: float, scale: float) -> dict[str, tuple[float, float]]:
    """Pixel positions of the stick figure's joints. Side -1 is the image's left: the figure faces the
    camera, so that is its right side."""
    s = scale
    hip_y = cy + 0.25 * s * pose.squat
    hip = (cx + pose.dx * s * 2, hip_y + pose.dy * s)
    shoulder = (hip[0], hip[1] - 0.45 * s)
    out = {"hip": hip, "shoulder": shoulder, "head": (shoulder[0], shoulder[1] - 0.15 * s)}
    feet_y = cy + 0.5 * s + pose.dy * s
    spread = 0.05 * s + 0.2 * s * pose.legs
    knee_out = 0.15 * s * pose.squat
    for side, name in ((-1, "right"), (1, "left")):
        out[f"{name}_knee"] = (hip[0] + side * (spread / 2 + knee_out), (hip[1] + feet_y) / 2)
        out[f"{name}_foot"] = (hip[0] + side * spread, feet_y)
        angle = pose.left_arm if side > 0 else pose.right_arm
        out[f"{name}_hand"] = (
            shoulder[0] + side * 0.32 * s * math.sin(angle),
            shoulder[1] + 0.32 * s * math.cos(angle),
        )
    return out


def _draw(
    canvas: np.ndarray, joints: dict[str, tuple[float, float]], *, scale: float, color: tuple, width: int
) -> None:
    pts = lambda p: (int(round(p[0])), int(round(p[1])))  # noqa: E731
    hip, shoulder = joints["hip"], joints["shoulder"]
    for name in ("left", "right"):
        cv2.line(canvas, pts(hip), pts(joints[f"{name}_knee"]), color, width, cv2.LINE_AA)
        cv2.line(canvas, pts(joints[f"{name}_knee"]), pts(joints[f"{name}_foot"]), color, width, cv2.LINE_AA)
        cv2.line(canvas, pts(shoulder), pts(joints[f"{name}_hand"]), color, width, cv2.LINE_AA)
    cv2.line(canvas, pts(hip), pts(shoulder), color, width, cv2.LINE_AA)
    cv2.circle(canvas, pts(joints["head"]), max(2, int(0.09 * scale)), color, -1, cv2.LINE_AA)


def _landmarks(joints: dict[str, tuple[float, float]], scale: float, size: tuple[int, int]) -> np.ndarray:
    """The stick figure's joints as BlazePose would report them: ``[33, 4]`` in units of the longer side."""
    h, w = size
    side = float(max(h, w))
    half = 0.06 * scale  # a stick figure has one shoulder and one hip point: give them a body's width
    hip, shoulder, head = joints["hip"], joints["shoulder"], joints["head"]
    pts: dict[int, tuple[float, float]] = {i: head for i in range(11)}
    for sign, (sh, el, wr, hp, kn, an) in ((-1, (12, 14, 16, 24, 26, 28)), (1, (11, 13, 15, 23, 25, 27))):
        name = "left" if sign > 0 else "right"
        s_pt = (shoulder[0] + sign * half, shoulder[1])
        hand = joints[f"{name}_hand"]
        pts[sh], pts[wr] = s_pt, hand
        pts[el] = ((s_pt[0] + hand[0]) / 2, (s_pt[1] + hand[1]) / 2)
        for j in (wr + 2, wr + 4, wr + 6):  # pinky, index, thumb: at the hand
            pts[j] = hand
        pts[hp] = (hip[0] + sign * half, hip[1])
        pts[kn] = joints[f"{name}_knee"]
        pts[an] = joints[f"{name}_foot"]
        pts[an + 2] = pts[an + 4] = joints[f"{name}_foot"]  # heel, toe
    out = np.zeros((33, 4), np.float32)
    for i, (x, y) in pts.items():
        out[i] = (x / side, y / side, 0.0, 1.0)
    return out


def render_clip(
    action: str, group: int, clip: int, *, seed: int = 0, size: tuple[int, int] = (96, 96), num_frames: int = 32
) -> np.ndarray:
    """uint8 RGB ``[T, H, W, 3]`` of one synthetic clip, a pure function of its arguments."""
    return render_clip_with_landmarks(action, group, clip, seed=seed, size=size, num_frames=num_frames)[0]


def render_clip_with_landmarks(
    action: str,
    group: int,
    clip: int,
    *,
    seed: int = 0,
    size: tuple[int, int] = (96, 96),
    num_frames: int = 32,
    cycles: float | None = None,
    phase: float = 0.0,
    room: tuple[int, int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic clip, uint8 RGB ``[T, H, W, 3]``, and its figure's landmarks ``[T, 33, 4]`` (BlazePose's
    layout, as :class:`vidclf.models.pose.PoseEstimator` returns them).

    ``cycles`` fixes how many repetitions of the movement the clip holds (default: 1.5-3, drawn per clip) and
    ``phase`` (in cycles) where in a repetition it starts: clips with known repetition counts. ``room`` fixes the
    room's colour (RGB; the figure is then dark): a scene that tells classes apart where the movement does not.
    """
    if action == "SynthLowerArms":
        # Exactly SynthRaiseArms played backwards: the same frames in reverse order.
        frames, marks = render_clip_with_landmarks(
            "SynthRaiseArms", group, clip, seed=seed, size=size, num_frames=num_frames
        )
        return frames[::-1].copy(), marks[::-1].copy()
    h, w = size
    actor = np.random.default_rng([seed, group])  # the same "actor" (build, line width, room texture) per group
    rng = np.random.default_rng([seed, group, clip, (*SYNTH_CLASSES, *SYNTH_EXTRA).index(action)])
    # Colours change from clip to clip, so that no class or group can be recognised by colour alone.
    # A light room with a dark figure or the reverse: the figure always stands out.
    dark, light = rng.integers(20, 90, size=3), rng.integers(165, 235, size=3)
    room_rgb, figure_rgb = (light, dark) if rng.random() < 0.5 else (dark, light)
    if room is not None:
        room_rgb, figure_rgb = np.clip(np.array(room) + rng.integers(-15, 16, size=3), 0, 255), dark
    figure = tuple(int(c) for c in figure_rgb)
    scale = h * actor.uniform(0.45, 0.6)
    width = max(2, int(round(h / 32 * actor.uniform(1.0, 1.6))))
    texture = actor.normal(0, 6, size=(h, w, 1))
    cx = w / 2 + rng.uniform(-0.12, 0.12) * w
    cy = h * 0.45 + rng.uniform(-0.05, 0.05) * h
    drawn = rng.uniform(1.5, 3.0)
    cycles = drawn if cycles is None else cycles
    frames = np.empty((num_frames, h, w, 3), np.uint8)
    marks = np.empty((num_frames, 33, 4), np.float32)
    for t in range(num_frames):
        u = t / (num_frames - 1)
        canvas = np.clip(room_rgb + texture + rng.normal(0, 3, size=(h, w, 1)), 0, 255).astype(np.uint8)
        joints = _joints(_pose(action, u, cycles, phase), cx, cy, scale)
        _draw(canvas, joints, scale=scale, color=figure, width=width)
        frames[t] = canvas
        marks[t] = _landmarks(joints, scale, size)
    return frames, marks


def make_synthetic_dataset(
    out: str | Path,
    classes: tuple[str, ...] = SYNTH_CLASSES,
    groups: int = 6,
    clips_per_group: int = 3,
    seed: int = 0,
    size: tuple[int, int] = (96, 96),
    num_frames: int = 32,
) -> Path:
    """Write the synthetic set under ``out`` in UCF-101's layout and return ``out``.

    ``out/UCF-101/<Class>/v_<Class>_gXX_cYY.avi`` (with the figure's landmarks beside each clip as
    ``.pose.npy``) plus ``out/ucfTrainTestlist/`` with ``classInd.txt`` and
    three splits: split ``s`` tests the groups ``g`` with ``(g - 1) % 3 == s - 1``, trains on the rest.
    """
    out = Path(out)
    unknown = [c for c in classes if c not in (*SYNTH_CLASSES, *SYNTH_EXTRA)]
    if unknown:
        raise ValueError(f"unknown synthetic classes {unknown}; choose from {(*SYNTH_CLASSES, *SYNTH_EXTRA)}")
    videos = out / "UCF-101"
    lists = out / "ucfTrainTestlist"
    lists.mkdir(parents=True, exist_ok=True)
    rel_paths: list[tuple[str, int, int]] = []
    for ci, action in enumerate(classes, 1):
        for g in range(1, groups + 1):
            for c in range(1, clips_per_group + 1):
                rel = f"{action}/v_{action}_g{g:02d}_c{c:02d}.avi"
                frames, marks = render_clip_with_landmarks(action, g, c, seed=seed, size=size, num_frames=num_frames)
                write_video(videos / rel, frames, fps=25)
                np.save(
                    (videos / rel).with_suffix(".pose.npy"), marks
                )  # what the pose stream reads instead of BlazePose
                rel_paths.append((rel, ci, g))
    write_split_lists(lists, classes, rel_paths)
    (out / "README.txt").write_text(
        "SYNTHETIC action dataset rendered by vidclf (vidclf.data.synthetic), not real video.\n"
        f"classes={list(classes)} groups={groups} clips_per_group={clips_per_group} seed={seed} "
        f"size={size} num_frames={num_frames}\n"
    )
    return out


# Rooms of two colours: the classes of the scene dataset, whose figures all do the same movements
SCENE_ROOMS = {"SynthWarmRoom": (205, 110, 70), "SynthCoolRoom": (70, 120, 205)}


def make_scene_dataset(
    out: str | Path, groups: int = 6, clips_per_group: int = 3, seed: int = 0, size: tuple[int, int] = (96, 96)
) -> Path:
    """A SYNTHETIC set (UCF-101 layout, landmarks beside each clip) whose two classes differ only in the room's
    colour: every clip's figure does one of the same four movements, drawn at random, so the body's pose tells
    the classes apart no better than chance, and the pixels do."""
    out = Path(out)
    rng = np.random.default_rng(seed)
    classes = tuple(SCENE_ROOMS)
    rel_paths: list[tuple[str, int, int]] = []
    for ci, name in enumerate(classes, 1):
        for g in range(1, groups + 1):
            for c in range(1, clips_per_group + 1):
                action = SYNTH_CLASSES[int(rng.integers(0, 4))]
                rel = f"{name}/v_{name}_g{g:02d}_c{c:02d}.avi"
                frames, marks = render_clip_with_landmarks(
                    action, g, c + 10 * ci, seed=seed, size=size, room=SCENE_ROOMS[name]
                )
                write_video(out / "UCF-101" / rel, frames, fps=25)
                np.save((out / "UCF-101" / rel).with_suffix(".pose.npy"), marks)
                rel_paths.append((rel, ci, g))
    lists = out / "ucfTrainTestlist"
    lists.mkdir(parents=True, exist_ok=True)
    write_split_lists(lists, classes, rel_paths)
    (out / "README.txt").write_text(
        "SYNTHETIC scene dataset rendered by vidclf (vidclf.data.synthetic.make_scene_dataset), not real video: "
        f"classes {list(classes)} differ only in the room's colour. groups={groups} "
        f"clips_per_group={clips_per_group} seed={seed} size={size}\n"
    )
    return out


def render_sequence(
    actions: tuple[str, ...], group: int, seed: int = 0, size: tuple[int, int] = (96, 96), frames_per_action: int = 100
) -> np.ndarray:
    """One long clip of several actions in a row (the same actor), for the app's timeline example."""
    return np.concatenate(
        [render_clip(a, group, 1, seed=seed, size=size, num_frames=frames_per_action) for a in actions]
    )


def write_examples(out: str | Path, group: int = 90, seed: int = 0) -> list[Path]:
    """Example clips for the app, from an actor (group) no synthetic training set contains.

    One 2-second clip per class, plus a 12-second clip of three actions in a row. File names start with
    ``synthetic_`` so that the app pairs them with a model trained on the synthetic set.
    """
    out = Path(out)
    paths = [
        write_video(
            out / f"synthetic_{a.removeprefix('Synth')}.mp4",
            render_clip(a, group, 1, seed=seed, size=(96, 96), num_frames=50),
            25,
        )
        for a in SYNTH_CLASSES
    ]
    seq = ("SynthWave", "SynthJumpingJack", "SynthSquat")
    paths.append(
        write_video(out / "synthetic_sequence_Wave_JumpingJack_Squat.mp4", render_sequence(seq, group, seed), 25)
    )
    return paths


def write_split_lists(lists: Path, classes: Sequence[str], rel_paths: Sequence[tuple[str, int, int]]) -> None:
    """UCF-101's ``classInd.txt`` and three train/test splits for clips ``(relative path, class number, group)``:
    split ``s`` tests on the groups ``g`` with ``(g - 1) % 3 == s - 1``."""
    crlf = "\r\n"  # as UCF-101 distributes its lists
    (lists / "classInd.txt").write_text(crlf.join(f"{i} {c}" for i, c in enumerate(classes, 1)) + crlf)
    for s in (1, 2, 3):
        test = [(r, ci) for r, ci, g in rel_paths if (g - 1) % 3 == s - 1]
        train = [(r, ci) for r, ci, g in rel_paths if (g - 1) % 3 != s - 1]
        (lists / f"trainlist{s:02d}.txt").write_text(crlf.join(f"{r} {ci}" for r, ci in train) + crlf)
        (lists / f"testlist{s:02d}.txt").write_text(crlf.join(r for r, _ in test) + crlf)
