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
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vidclf.video import write_video

SYNTH_CLASSES = ("SynthJumpingJack", "SynthSquat", "SynthWave", "SynthWalk", "SynthRaiseArms", "SynthLowerArms")


@dataclass(frozen=True)
class Pose:
    """Normalised pose: arm angles (0 = hanging, pi = overhead), leg spread 0-1, squat depth 0-1, x shift."""

    left_arm: float
    right_arm: float
    legs: float
    squat: float
    dx: float = 0.0
    dy: float = 0.0


def _pose(action: str, u: float, cycles: float) -> Pose:
    """Pose of ``action`` at normalised time ``u`` in [0, 1]."""
    wave = 0.5 - 0.5 * math.cos(2 * math.pi * cycles * u)
    if action == "SynthJumpingJack":
        return Pose(0.15 + 0.8 * math.pi * wave, 0.15 + 0.8 * math.pi * wave, wave, 0.0, dy=-0.08 * math.sin(math.pi * wave))
    if action == "SynthSquat":
        return Pose(math.pi / 2, math.pi / 2, 0.25, wave)
    if action == "SynthWave":
        return Pose(0.15, 0.65 * math.pi + 0.3 * math.pi * wave, 0.1, 0.0)
    if action == "SynthWalk":
        swing = math.sin(2 * math.pi * cycles * u)
        return Pose(0.3 + 0.25 * swing, 0.3 - 0.25 * swing, 0.5 + 0.5 * swing, 0.0, dx=-0.35 + 0.7 * u)
    if action == "SynthRaiseArms":
        # One slow raise with a quick start: asymmetric in time, so reversing it is a different motion.
        s = 1 - (1 - u) ** 2
        return Pose(0.1 + 0.9 * math.pi * s, 0.1 + 0.9 * math.pi * s, 0.15, 0.0)
    raise ValueError(f"unknown synthetic action {action!r}")


def _draw(canvas: np.ndarray, pose: Pose, cx: float, cy: float, scale: float, color: tuple, width: int) -> None:
    s = scale
    hip_y = cy + 0.25 * s * pose.squat
    hip = (cx + pose.dx * s * 2, hip_y + pose.dy * s)
    shoulder = (hip[0], hip[1] - 0.45 * s)
    head = (shoulder[0], shoulder[1] - 0.15 * s)
    feet_y = cy + 0.5 * s + pose.dy * s
    spread = 0.05 * s + 0.2 * s * pose.legs
    knee_out = 0.15 * s * pose.squat
    pts = lambda p: (int(round(p[0])), int(round(p[1])))  # noqa: E731
    for side in (-1, 1):
        knee = (hip[0] + side * (spread / 2 + knee_out), (hip[1] + feet_y) / 2)
        foot = (hip[0] + side * spread, feet_y)
        cv2.line(canvas, pts(hip), pts(knee), color, width, cv2.LINE_AA)
        cv2.line(canvas, pts(knee), pts(foot), color, width, cv2.LINE_AA)
        angle = pose.right_arm if side > 0 else pose.left_arm
        hand = (shoulder[0] + side * 0.32 * s * math.sin(angle), shoulder[1] + 0.32 * s * math.cos(angle))
        cv2.line(canvas, pts(shoulder), pts(hand), color, width, cv2.LINE_AA)
    cv2.line(canvas, pts(hip), pts(shoulder), color, width, cv2.LINE_AA)
    cv2.circle(canvas, pts(head), max(2, int(0.09 * s)), color, -1, cv2.LINE_AA)


def render_clip(action: str, group: int, clip: int, seed: int = 0, size: tuple[int, int] = (96, 96), num_frames: int = 32) -> np.ndarray:
    """uint8 RGB ``[T, H, W, 3]`` of one synthetic clip, a pure function of its arguments."""
    if action == "SynthLowerArms":
        # Exactly SynthRaiseArms played backwards: the same frames in reverse order.
        return render_clip("SynthRaiseArms", group, clip, seed, size, num_frames)[::-1].copy()
    h, w = size
    actor = np.random.default_rng([seed, group])  # the same "actor" (build, line width, room texture) per group
    rng = np.random.default_rng([seed, group, clip, SYNTH_CLASSES.index(action)])
    # Colours change from clip to clip, so that no class or group can be recognised by colour alone.
    # A light room with a dark figure or the reverse: the figure always stands out.
    dark, light = rng.integers(20, 90, size=3), rng.integers(165, 235, size=3)
    room, figure_rgb = (light, dark) if rng.random() < 0.5 else (dark, light)
    figure = tuple(int(c) for c in figure_rgb)
    scale = h * actor.uniform(0.45, 0.6)
    width = max(2, int(round(h / 32 * actor.uniform(1.0, 1.6))))
    texture = actor.normal(0, 6, size=(h, w, 1))
    cx = w / 2 + rng.uniform(-0.12, 0.12) * w
    cy = h * 0.45 + rng.uniform(-0.05, 0.05) * h
    cycles = rng.uniform(1.5, 3.0)
    frames = np.empty((num_frames, h, w, 3), np.uint8)
    for t in range(num_frames):
        u = t / (num_frames - 1)
        canvas = np.clip(room + texture + rng.normal(0, 3, size=(h, w, 1)), 0, 255).astype(np.uint8)
        _draw(canvas, _pose(action, u, cycles), cx, cy, scale, figure, width)
        frames[t] = canvas
    return frames


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

    ``out/UCF-101/<Class>/v_<Class>_gXX_cYY.avi`` plus ``out/ucfTrainTestlist/`` with ``classInd.txt`` and
    three splits: split ``s`` tests the groups ``g`` with ``(g - 1) % 3 == s - 1``, trains on the rest.
    """
    out = Path(out)
    unknown = [c for c in classes if c not in SYNTH_CLASSES]
    if unknown:
        raise ValueError(f"unknown synthetic classes {unknown}; choose from {SYNTH_CLASSES}")
    videos = out / "UCF-101"
    lists = out / "ucfTrainTestlist"
    lists.mkdir(parents=True, exist_ok=True)
    rel_paths: list[tuple[str, int, int]] = []
    for ci, action in enumerate(classes, 1):
        for g in range(1, groups + 1):
            for c in range(1, clips_per_group + 1):
                rel = f"{action}/v_{action}_g{g:02d}_c{c:02d}.avi"
                write_video(videos / rel, render_clip(action, g, c, seed, size, num_frames), fps=25)
                rel_paths.append((rel, ci, g))
    crlf = "\r\n"  # as UCF-101 distributes its lists
    (lists / "classInd.txt").write_text(crlf.join(f"{i} {c}" for i, c in enumerate(classes, 1)) + crlf)
    for s in (1, 2, 3):
        test = [(r, ci) for r, ci, g in rel_paths if (g - 1) % 3 == s - 1]
        train = [(r, ci) for r, ci, g in rel_paths if (g - 1) % 3 != s - 1]
        (lists / f"trainlist{s:02d}.txt").write_text(crlf.join(f"{r} {ci}" for r, ci in train) + crlf)
        (lists / f"testlist{s:02d}.txt").write_text(crlf.join(r for r, _ in test) + crlf)
    (out / "README.txt").write_text(
        "SYNTHETIC action dataset rendered by vidclf (vidclf.data.synthetic), not real video.\n"
        f"classes={list(classes)} groups={groups} clips_per_group={clips_per_group} seed={seed} "
        f"size={size} num_frames={num_frames}\n"
    )
    return out


def render_sequence(actions: tuple[str, ...], group: int, seed: int = 0, size: tuple[int, int] = (96, 96),
                    frames_per_action: int = 100) -> np.ndarray:
    """One long clip of several actions in a row (the same actor), for the app's timeline example."""
    return np.concatenate([render_clip(a, group, 1, seed, size, frames_per_action) for a in actions])


def write_examples(out: str | Path, group: int = 90, seed: int = 0) -> list[Path]:
    """Example clips for the app, from an actor (group) no synthetic training set contains.

    One 2-second clip per class, plus a 12-second clip of three actions in a row. File names start with
    ``synthetic_`` so that the app pairs them with a model trained on the synthetic set.
    """
    out = Path(out)
    paths = [write_video(out / f"synthetic_{a.removeprefix('Synth')}.mp4", render_clip(a, group, 1, seed, (96, 96), 50), 25)
             for a in SYNTH_CLASSES]
    seq = ("SynthWave", "SynthJumpingJack", "SynthSquat")
    paths.append(write_video(out / "synthetic_sequence_Wave_JumpingJack_Squat.mp4", render_sequence(seq, group, seed), 25))
    return paths
