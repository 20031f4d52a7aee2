"""Classify videos with a trained checkpoint: load once, then predict file after file.

A checkpoint is one stream (a CNN-LSTM on pixels, or the pose stream's LSTM on BlazePose landmarks) or a
late fusion of several. Whatever the streams, a clip is probed once and decoded in one pass
(:func:`vidclf.video.decode_pass`): the frames every stream samples, at most :data:`DISPLAY_MAX_SIDE` pixels
on their longer side (each stream takes its own from them), and every frame in order for the workout engine
(:mod:`vidclf.engine`: the clip's segments and their repetitions, beside the whole clip's answer). A pose
model estimates each classified frame's landmarks once (:class:`_Marks`), on a thread beside the pass.
"""

from __future__ import annotations

import dataclasses
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch

from vidclf.checkpoint import Checkpoint, load_checkpoint
from vidclf.data.landmarks import POSE_MAX_SIDE
from vidclf.reps import Repetitions, count_repetitions, grey_signal, surer
from vidclf.runtime import autocast, resolve_device, resolve_precision
from vidclf.errors import VideoError
from vidclf.novelty import MovementProfile, movement_signature
from vidclf.verdict import combine, decide

if TYPE_CHECKING:
    from vidclf.engine import WorkoutLog
from vidclf.sampling import paired, uniform_indices
from vidclf.video import StreamEnded, VideoInfo, decode_pass, fit_within, probe, resize_frame, shrink_quick

if TYPE_CHECKING:
    from vidclf.models.pose import PoseEstimator, PoseTrackers

DISPLAY_MAX_SIDE = POSE_MAX_SIDE  # frames are decoded at most this large: what BlazePose is given in training too
SIGNAL_DECODE_SIZE = (48, 64)  # every frame is read this small for counting repetitions
# A set is counted whole (as well as online) in its first two minutes, in at most this many frames: a header
# that claims 999 fps must not decide a request's memory (7,200 frames at 48x64: 66 MB)
COUNT_MAX_SECONDS = 120.0
COUNT_MAX_FRAMES = 7200
# A set longer than this keeps its online events: two of the online counter's 6 s windows, past which it has
# settled (within the first it still learns the movement's range), and one period no longer describes a set
# whose tempo changes
LONG_SET_S = 12.0


@dataclass(frozen=True)
class Prediction:
    """Class probabilities of one clip, whether the clip is of a known class, and what the model saw.

    ``frames`` (uint8 ``[T, H, W, 3]``, the clip's aspect ratio kept) are the frames shown to a person;
    ``landmarks`` (``[T, 33, 4]``, NaN where no person was found) the pose stream's skeleton on them, or
    None without a pose stream. ``streams`` holds each stream's own probabilities for a fusion.
    """

    probs: dict[str, float]  # every class, in the checkpoint's class order; sums to 1
    frames: np.ndarray
    indices: list[int]
    info: VideoInfo
    seconds: float
    known: bool = True
    threshold: float | None = None  # on ``score``; below it the clip is "not one of these"
    landmarks: np.ndarray | None = None
    streams: dict[str, dict[str, float]] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    pose_found: float | None = None  # share of the pose stream's frames with a person
    score: float = 0.0  # how surely the clip is one of the classes (vidclf.verdict.known_score)
    learned_other: bool = False  # the score is 1 - P("other"), an output trained on clips of other actions
    reps: Repetitions | None = None  # the repetitions of the movement (vidclf.reps)
    workout: WorkoutLog | None = None  # the clip's segments and their repetitions (vidclf.engine)
    # how far the body's movement is from the answer's class (vidclf.novelty; None: no check or no signature),
    # the check's score (the novelty, or the log-odds of another action), the checkpoint's threshold on that
    # score, and whether the check alone refused the clip
    movement_novelty: float | None = None
    movement_score: float | None = None
    movement_threshold: float | None = None
    movement_refused: bool = False

    def top(self, k: int = 5) -> list[tuple[str, float]]:
        return sorted(self.probs.items(), key=lambda kv: -kv[1])[:k]

    @property
    def label(self) -> str:
        return self.top(1)[0][0]

    @property
    def confidence(self) -> float:
        return self.top(1)[0][1]

    @property
    def deciding_stream(self) -> str | None:
        """The stream whose weighted evidence moved the answer most (a fusion only): the one with the largest
        weighted log-probability margin of the answer over the runner-up."""
        if len(self.streams) < 2:
            return None
        first, second = (c for c, _ in self.top(2))
        margin = {
            name: self.weights[name] * (np.log(max(p[first], 1e-9)) - np.log(max(p[second], 1e-9)))
            for name, p in self.streams.items()
        }
        return max(margin, key=lambda n: margin[n])

    def to_dict(self, top: int = 5) -> dict:
        """The JSON-able answer of ``predict --json`` and the API."""
        # "label" is the closest class either way; "known": false says the clip is none of the classes.
        out = {
            "label": self.label,
            "confidence": self.confidence,
            "known": self.known,
            "evidence": self.score,
            "threshold": self.threshold,
            "top": [{"class": c, "prob": q} for c, q in self.top(top)],
            "probs": self.probs,
            "frame_indices": self.indices,
            "seconds": self.seconds,
        }
        if self.streams:
            out["streams"] = self.streams
            out["deciding_stream"] = self.deciding_stream
        if self.pose_found is not None:
            out["pose_found"] = self.pose_found
        # null where the checkpoint has no movement profile (or the clip shows too few frames with a person)
        out["movement_novelty"] = self.movement_novelty
        out["movement_score"] = self.movement_score
        out["movement_threshold"] = self.movement_threshold
        if self.reps is not None:
            out.update(self.reps.to_dict())
        if self.workout is not None:
            # the repetitions are the exercise segments' (a rest or "not one of these" counts none)
            out["segments"] = [s.to_dict() for s in self.workout.segments]
        return out


class _Stream:
    """One CNN-LSTM of a checkpoint, ready for inference, and which frames of a clip it reads."""

    def __init__(self, ck: Checkpoint, device: torch.device, precision: str):
        assert ck.input is not None
        self.name = ck.backbone
        self.spec = ck.input
        self.model = ck.build_model().to(device)
        self.device = device
        self.precision = precision
        self.pose = ck.input.features == "landmarks"
        self.other = ck.other_output  # one more output than the classes: "not one of these"
        if precision == "bf16" and not self.pose:
            self.model.use_channels_last()
        self.transform = ck.input.transform()

    def indices(self, length: int, fps: float) -> list[int]:
        """Frame indices this stream reads from a clip of ``length`` frames at ``fps`` (pairs for a motion input,
        the time apart that training took them)."""
        return paired(uniform_indices, self.gap(fps))(length, self.spec.num_frames)

    def gap(self, fps: float) -> int:
        """Frames between the two frames of a pair in a clip at ``fps``; 0 without pairs."""
        return 0 if self.pose else self.spec.pair_gap_at(fps)

    def pixels(self, frames: np.ndarray) -> torch.Tensor:
        """uint8 ``[T(*2), H, W, 3]`` -> the model's normalised input ``[T, C, S, S]``."""
        size = (self.spec.img_size, self.spec.img_size)
        return self.transform(np.stack([resize_frame(f, size) for f in frames]))

    @torch.inference_mode()
    def frame_features(self, frames: np.ndarray) -> torch.Tensor:
        """uint8 frames (pairs for a motion input) -> the CNN's per-frame features ``[T, D]``: each frame's alone,
        so a stream of frames can compute each once and classify any window of them (:meth:`logits` with
        ``features=True``)."""
        with autocast(self.device, self.precision):
            feats = self.model.forward_features(self.pixels(frames)[None].to(self.device))
        return feats[0].float().cpu()

    @torch.inference_mode()
    def head(self, features: torch.Tensor) -> torch.Tensor:
        """Per-frame features ``[B, T, D]`` -> ``[B, K]`` logits."""
        with autocast(self.device, self.precision):
            logits = self.model(features.to(self.device), features=True)
        return logits.float().cpu()

    @torch.inference_mode()
    def logits(self, inputs: torch.Tensor) -> torch.Tensor:
        """``[B, T, ...]`` model inputs -> ``[B, K]`` logits."""
        with autocast(self.device, self.precision):
            logits = self.model(inputs.to(self.device), features=self.pose)
        return logits.float().cpu()


class Predictor:
    """A checkpoint's model(s), ready for inference. ``precision="bf16"`` trades exactness for speed
    (``"auto"``: where the hardware has bf16 units); ``device="auto"`` takes a GPU where there is one."""

    def __init__(
        self,
        checkpoint: str | os.PathLike | Checkpoint,
        precision: str = "fp32",
        device: str = "auto",
        pose_estimator: Callable[[np.ndarray], np.ndarray] | None = None,
    ):
        self.checkpoint = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)
        parts = self.checkpoint.streams or ((self.checkpoint, 1.0),)
        self.streams = [(_Stream(ck, self.device, self.precision), float(w)) for ck, w in parts]
        self._estimator = pose_estimator  # frames [T, H, W, 3] -> landmarks [T, 33, 4]; BlazePose when None
        self._own_estimator: PoseEstimator | None = None  # the BlazePose built here, closed by close()
        self._trackers: PoseTrackers | None = None  # started tracking graphs, handed from one clip to the next
        self._person_gate = frozenset(self.checkpoint.person_gate)
        profile = self.checkpoint.info.get("movement_profile")
        self.movement: MovementProfile | None = MovementProfile.from_dict(profile) if profile else None
        self._estimator_lock = threading.Lock()

    @property
    def classes(self) -> tuple[str, ...]:
        return self.checkpoint.classes

    def _pose_estimator(self):
        with self._estimator_lock:
            if self._estimator is None:
                from vidclf.models.pose import PoseEstimator

                self._estimator = self._own_estimator = PoseEstimator()
            return self._estimator

    def close(self) -> None:
        """Close the pose estimator and trackers this predictor built (their MediaPipe graphs); an estimator
        passed in is the caller's."""
        with self._estimator_lock:
            if self._own_estimator is not None:
                self._own_estimator.close()
            if self._trackers is not None:
                self._trackers.close()
                self._trackers = None

    def warm_up(self) -> None:
        """Make the first request as fast as the next ones (a server calls this at start): the models run once
        on a blank input and the pose graphs start (BlazePose's static graph and one tracking graph)."""
        for stream, _ in self.streams:
            if stream.pose:
                from vidclf.models.pose import POSE_FEATURE_DIM

                stream.logits(torch.zeros(1, stream.spec.num_frames, POSE_FEATURE_DIM))
            else:
                blank = np.zeros((stream.spec.num_frames * (2 if stream.spec.pair_gap else 1), 64, 64, 3), np.uint8)
                stream.logits(stream.pixels(blank)[None])
        if self._has_pose:
            self._pose_estimator()(np.zeros((1, 64, 64, 3), np.uint8))
            trackers = self._tracker_pool()
            if trackers is not None:
                trackers.warm(1)

    def _tracker_pool(self) -> PoseTrackers | None:
        if self._estimator is not None and self._estimator is not self._own_estimator:
            return None  # a given estimator stands in for BlazePose
        with self._estimator_lock:
            if self._trackers is None:
                from vidclf.models.pose import PoseTrackers

                self._trackers = PoseTrackers()
            return self._trackers

    @property
    def _has_pose(self) -> bool:
        return any(stream.pose for stream, _ in self.streams)

    def _pose_indices(self, wanted: dict[int, list[int]]) -> set[int]:
        """The frames the pose streams classify (of :meth:`_wanted`)."""
        return {j for i, (stream, _) in enumerate(self.streams) if stream.pose for j in wanted[i]}

    def _wanted(self, info: VideoInfo) -> dict[int, list[int]]:
        """Per stream, the indices of the frames it classifies."""
        return {i: stream.indices(info.num_frames, info.fps) for i, (stream, _) in enumerate(self.streams)}

    def predict(
        self,
        path: str | os.PathLike,
        info: VideoInfo | None = None,
        *,
        progress: Callable[[float, str], None] | None = None,
    ) -> Prediction:
        """Sample, decode and classify one video file and log its workout (segments, repetitions), all from one
        decoding pass (``info``: the clip's probe, if the caller has it;
        ``progress(share, words)`` is told how far the pass got, about once a second of the clip). Raises
        ``VideoError`` for files that are not videos."""
        t0 = time.perf_counter()
        info = info or probe(path)
        try:
            return self._predict_file(path, info, t0=t0, progress=progress)
        except StreamEnded as e:
            # The header over-stated the length; the pass read to the true end: sample that length instead.
            if e.frames_read < 1:
                raise VideoError(f"{Path(path).name} has no decodable video frames (corrupt or truncated)") from None
            info = dataclasses.replace(info, num_frames=e.frames_read, counted=True)
            return self._predict_file(path, info, t0=t0, progress=progress)

    def _predict_file(
        self,
        path: str | os.PathLike,
        info: VideoInfo,
        *,
        t0: float,
        progress: Callable[[float, str], None] | None,
    ) -> Prediction:
        from vidclf.engine import FrameFeed, WorkoutEngine

        wanted = self._wanted(info)
        sample = {j for idx in wanted.values() for j in idx}
        # the frames classified whole are read at display size, the size training estimated the body at too
        sizes: dict[int, tuple[int, int] | None] = dict.fromkeys(sample, fit_within(info, DISPLAY_MAX_SIDE))
        limit = info.fps * _max_seconds()
        total = min(info.num_frames, limit)
        step = max(1, int(info.fps))
        tracked = _Recorded(self.new_tracker())
        # every frame's small grey picture for counting a set whole, the first COUNT_MAX_SECONDS of it at most (not
        # the engine's thinned one: counting the 42 short clips whole from that fell from 90 to 88 % within one)
        pictures: list[np.ndarray] = []
        most = min(int(COUNT_MAX_SECONDS * info.fps), COUNT_MAX_FRAMES)
        # the pose stream's frames are estimated on a second thread as they are decoded, beside the pass
        early = _EarlyMarks(self._pose_estimator, self._pose_indices(wanted)) if self._has_pose else None
        torch.get_num_threads()  # this thread's torch threads are set before the engine's thread sets its own
        try:
            with WorkoutEngine(self, tracker=tracked) as engine:  # the workout log rides on the same decoding pass

                def track(frame: np.ndarray, t: float) -> None:
                    tracked.t = t
                    engine.push(frame, t, bgr=True)

                with FrameFeed(track) as feed:  # the engine works behind the decoder, on the other core

                    def each(i: int, frame: np.ndarray) -> None:
                        if i < limit:
                            feed.put(frame, i / info.fps)
                            if i < most:
                                small = cv2.cvtColor(shrink_quick(frame, SIGNAL_DECODE_SIZE), cv2.COLOR_BGR2GRAY)
                                pictures.append(grey_signal(small[None])[0])  # reps.frame_signal of the RGB frame
                            if progress is not None and i % step == 0:
                                progress(min(1.0, i / max(total, 1)), _progress_words(i, total, info.fps, tracked))

                    kept, _ = decode_pass(
                        path,
                        sizes,
                        every_size=SIGNAL_DECODE_SIZE,
                        every_limit=0,
                        every_max_bytes=0,
                        each=each,
                        each_kept=early.offer if early is not None else None,
                    )
                    # the pixel streams classify the clip while the engine and the static pass finish their queues
                    ready = {
                        i: stream.logits(stream.pixels(np.stack([kept[j] for j in wanted[i]]))[None])[0]
                        for i, (stream, _) in enumerate(self.streams)
                        if not stream.pose
                    }
                    feed.close()
                log = engine.finish()
        finally:
            found = early.result() if early is not None else {}
        marks = _Marks(self._pose_estimator, kept.__getitem__, found) if self._has_pose else None
        p = self._classify(kept.__getitem__, wanted, info=info, t0=t0, marks=marks, ready=ready)
        log = _one_set_counted_whole(log, p, pictures=pictures, marks=tracked.marks, fps=info.fps)
        reps = _log_reps(log)
        return dataclasses.replace(p, reps=reps, workout=log, seconds=time.perf_counter() - t0)

    def predict_frames(self, frames: np.ndarray, fps: float = 25.0) -> Prediction:
        """Classify a clip already in memory: uint8 RGB ``[N, H, W, 3]``, every frame of it."""
        t0 = time.perf_counter()
        info = VideoInfo(num_frames=len(frames), fps=fps, width=frames.shape[2], height=frames.shape[1], counted=True)
        from vidclf.engine import WorkoutEngine

        marks = _Marks(self._pose_estimator, frames.__getitem__) if self._has_pose else None
        p = self._classify(frames.__getitem__, self._wanted(info), info=info, t0=t0, marks=marks)
        with WorkoutEngine(self) as engine:
            for i, frame in enumerate(frames):
                engine.push(frame, i / fps)
            log = engine.finish()
        return dataclasses.replace(p, reps=_log_reps(log), workout=log, seconds=time.perf_counter() - t0)

    def new_tracker(self) -> Callable[[np.ndarray], np.ndarray]:
        """A pose tracker for one stream of frames in time order (``[H, W, 3]`` -> ``[33, 4]``; close it when
        the stream ends): BlazePose in tracking mode, or the estimator this predictor was given, frame by frame."""
        trackers = self._tracker_pool()
        if trackers is None:
            estimate = self._estimator  # given by the caller (a test's stand-in): used frame by frame
            assert estimate is not None
            return lambda frame: estimate(frame[None])[0]
        return trackers.tracker()

    @property
    def pose_frames(self) -> int | None:
        """How many frames the pose stream classifies (what it was trained on), or None without one."""
        own = [stream.spec.num_frames for stream, _ in self.streams if stream.pose]
        return max(own) if own else None

    def window_logits(
        self,
        *,
        landmarks: np.ndarray | None,
        frames: np.ndarray | None,
        partners: np.ndarray | None = None,
        reuse: dict[int, torch.Tensor] | None = None,
        cache: list[dict[int, torch.Tensor]] | None = None,
    ) -> WindowLogits:
        """Fused logits ``[K]`` of one window of a stream of frames, for :meth:`verdict`.

        ``landmarks`` ``[N, 33, 4]`` are the window's samples in time order (a pose stream reads its own
        number of frames, spread uniformly over them); ``frames`` ``[N, H, W, 3]`` the same samples' frames and
        ``partners`` each one's partner a motion stream's gap later (a motion stream reads its number of
        pairs). A stream whose input is None takes its logits from ``reuse`` (an earlier window's
        :attr:`WindowLogits.per_stream`): the motion stream costs more than the pose stream, so a live
        window may reuse it. ``cache`` (one dict a sample, kept by the caller with its samples) holds each
        sample's CNN features by stream, so overlapping windows compute a frame's features once."""
        per_stream: dict[int, torch.Tensor] = {}
        pose_found = None
        for i, (stream, _) in enumerate(self.streams):
            if stream.pose and landmarks is not None and len(landmarks):
                from vidclf.models.pose import found_mask, normalize_landmarks

                picked = landmarks[uniform_indices(len(landmarks), stream.spec.num_frames)]
                pose_found = float(found_mask(picked).mean())
                lg = stream.logits(torch.from_numpy(normalize_landmarks(picked))[None])[0]
            elif not stream.pose and frames is not None and len(frames):
                idx = uniform_indices(len(frames), stream.spec.num_frames)
                other = partners if partners is not None else frames
                store = cache if cache is not None else [{} for _ in frames]
                missing = sorted({j for j in idx if i not in store[j]})
                if missing:
                    if stream.spec.pair_gap:
                        chosen = np.stack([f for j in missing for f in (frames[j], other[j])])
                    else:
                        chosen = frames[missing]
                    for j, feat in zip(missing, stream.frame_features(chosen)):
                        store[j][i] = feat
                lg = stream.head(torch.stack([store[j][i] for j in idx])[None])[0]
            elif reuse is not None and i in reuse:
                lg = reuse[i]
            else:
                raise ValueError(f"window_logits: no input for the {stream.name} stream")
            per_stream[i] = lg
        fused = self.fuse([per_stream[i] for i in range(len(self.streams))])
        return WindowLogits(fused=fused, per_stream=per_stream, pose_found=pose_found)

    def fuse(self, logits: list[torch.Tensor]) -> torch.Tensor:
        """The streams' logits (``[..., K]``, or ``[..., K + 1]`` for a stream with an "other" output), one per
        stream in :attr:`streams` order -> fused logits ``[..., K]`` or ``[..., K + 1]``
        (:func:`vidclf.verdict.combine`)."""
        return combine(
            logits,
            [w for _, w in self.streams],
            [s.other for s, _ in self.streams],
            len(self.classes),
        )

    def movement_novelty(self, landmarks: np.ndarray | None, fused: torch.Tensor) -> float | None:
        """How far the movement in raw landmarks ``[T, 33, 4]`` (the pose stream's frames) is from the class the
        fused logits ``[K(+1)]`` answer (:meth:`vidclf.novelty.MovementProfile.novelty`), for :meth:`verdict`;
        None without a movement profile, without landmarks, with too few frames with a person, or for a class
        the profile has not (the check abstains)."""
        if self.movement is None or landmarks is None:
            return None
        # by name: a model taught a class after its profile was fit has no profile for it (the check abstains)
        row = {c: i for i, c in enumerate(self.movement.classes)}.get(
            self.classes[int(fused[: len(self.classes)].argmax())]
        )
        if row is None:
            return None
        sig = movement_signature(landmarks)
        return None if sig is None else float(self.movement.novelty(sig, row))

    def movement_score(self, novelty: float | None, fused: torch.Tensor) -> float | None:
        """The movement check's score of a clip with this :meth:`movement_novelty` and fused logits ``[K(+1)]``
        (:meth:`vidclf.novelty.MovementProfile.check_score`: the novelty, or the log-odds of another action
        where the profile has them); None where the check abstains."""
        if self.movement is None or novelty is None:
            return None
        return float(self.movement.check_score(novelty, fused[: len(self.classes)].detach().float().numpy()))

    @property
    def movement_threshold(self) -> float | None:
        """Above this :meth:`movement_score` a clip is "not one of these" (None: no movement check)."""
        return self.movement.threshold if self.movement is not None else None

    def verdict(
        self, fused: torch.Tensor, pose_found: float | None, novelty: float | None = None
    ) -> tuple[torch.Tensor, bool, float]:
        """The one rule that turns fused logits ``[K]`` (``[K + 1]`` with an "other" output; :meth:`fuse`) into an
        answer: class probabilities ``[K]``, whether the clip is one of the classes ("not one of these"
        otherwise), and the score it was judged on (:func:`vidclf.verdict.known_score`). ``novelty``: the
        clip's :meth:`movement_novelty` (None: the movement is not checked). Every path that answers (a clip, the
        workout engine, ``evaluate``) decides through here."""
        probs, known, score = decide(
            fused,
            len(self.classes),
            self.checkpoint.reject_threshold,
            movement_score=float("nan") if novelty is None else self.movement_score(novelty, fused),
            movement_threshold=self.movement_threshold,
        )
        if pose_found is not None and pose_found == 0 and self.classes[int(probs.argmax())] in self._person_gate:
            # the person gate: a model that reads the body cannot vouch for a clip with no body in it, unless its
            # answer is a class whose own training clips mostly showed none (a rider on a horse)
            known = torch.tensor(False)
        return probs, bool(known), float(score)

    def _classify(
        self,
        frame_at: Callable[[int], np.ndarray],
        wanted: dict[int, list[int]],
        *,
        info: VideoInfo,
        t0: float,
        marks: _Marks | None,
        ready: dict[int, torch.Tensor] | None = None,
    ) -> Prediction:
        """Run every stream on its frames (``wanted[i]`` the indices of stream ``i``'s, ``frame_at(j)`` the
        decoded frame ``j``; ``marks`` their landmarks, for a pose stream) and fuse. ``ready[i]``: stream ``i``'s
        logits ``[K]``, computed already on the same frames."""
        ready = ready or {}
        outputs: list[torch.Tensor] = []
        per_stream: dict[str, dict[str, float]] = {}
        weights: dict[str, float] = {}
        landmarks, shown, pose_found = None, None, None
        by_name: dict[str, torch.Tensor] = {}
        for i, (stream, weight) in enumerate(self.streams):
            idx = wanted[i]
            frames = np.stack([frame_at(j) for j in idx])
            x: torch.Tensor | None
            if stream.pose:
                from vidclf.models.pose import found_mask, normalize_landmarks

                assert marks is not None
                landmarks = marks(idx)  # an ensemble's pose streams read the same frames: estimated once
                pose_found = float(found_mask(landmarks).mean())
                shown = (frames, idx)
                x = torch.from_numpy(normalize_landmarks(landmarks))[None]
            else:
                x = None if i in ready else stream.pixels(frames)[None]
                if shown is None:
                    step = 2 if stream.spec.pair_gap else 1  # a motion model saw pairs: show the first frame of each
                    shown = (frames[::step], idx[::step])
            lg = ready[i] if x is None else stream.logits(x)[0]
            outputs.append(lg)
            # an ensemble's seeds are one stream to a person: sum them under the backbone's name
            by_name[stream.name] = by_name.get(stream.name, 0) + weight * lg[: len(self.classes)]
            weights[stream.name] = weights.get(stream.name, 0.0) + weight
        for name, lp_sum in by_name.items():
            probs_of = (lp_sum / max(weights[name], 1e-9)).softmax(-1)
            per_stream[name] = {c: float(p) for c, p in zip(self.classes, probs_of.tolist())}
        fused = self.fuse(outputs)
        novelty = self.movement_novelty(landmarks, fused)
        probs, known, score = self.verdict(fused, pose_found, novelty)
        threshold = self.checkpoint.reject_threshold
        # the movement alone refused it: the same clip without the check would have been answered
        by_movement = not known and novelty is not None and self.verdict(fused, pose_found)[1]
        assert shown is not None
        return Prediction(
            probs={c: float(p) for c, p in zip(self.classes, probs.tolist())},
            frames=shown[0],
            indices=list(shown[1]),
            info=info,
            seconds=time.perf_counter() - t0,
            known=known,
            threshold=threshold,
            landmarks=landmarks,
            streams=per_stream if len(per_stream) > 1 else {},
            weights=weights,
            pose_found=pose_found,
            score=score,
            learned_other=self.checkpoint.has_other,
            movement_novelty=novelty,
            movement_score=self.movement_score(novelty, fused),
            movement_threshold=self.movement_threshold,
            movement_refused=by_movement,
        )


def _max_seconds() -> float:
    """The longest stretch of a clip the workout log reads (``VIDCLF_MAX_SECONDS``)."""
    return float(os.environ.get("VIDCLF_MAX_SECONDS", 600))


def _one_set_counted_whole(
    log: WorkoutLog, p: Prediction, *, pictures: list[np.ndarray], marks: list[tuple[float, np.ndarray]], fps: float
) -> WorkoutLog:
    """A file of one set, its repetitions counted over the whole set at once: the period of the movement
    (:func:`vidclf.reps.count_repetitions`) from the picture (``pictures``: every frame's
    :func:`vidclf.reps.frame_signal` ``[D]`` from the clip's start) and
    the joints the engine tracked (``marks``: ``(t_s, [33, 4])``), the surer of the two. Counted whole, a set
    gives its period more cycles than an online counter sees; between sets (a workout) the online events stand.

    One set is the log's exercise segments with nothing between them (no rest, no "not one of these"): a label
    that wavers within a set is still one set, and its repetitions go to its segments by time. A set longer
    than :data:`LONG_SET_S` keeps its online events where it has any: one period does not describe it (a
    minute of push-ups slows from 0.55 s a repetition to 2 s, and one period over it counted 115 of 76). A
    clip the engine found no exercise in, but whose whole-clip answer is one of the classes, is one set of
    that class from its first repetition to its last (a short clip ends before a decision holds)."""
    from vidclf.engine import Segment

    sets = log.exercises
    if not sets and not p.known:
        return log
    start, end = 0.0, log.duration_s
    if sets:
        known = [i for i, s in enumerate(log.segments) if s.known]
        if known != list(range(known[0], known[-1] + 1)):
            return log  # rest (or "not one of these") between two sets: a workout's sets keep their online events
        start, end = log.segments[known[0]].start_s, log.segments[known[-1]].end_s
    if end - start > LONG_SET_S and any(s.reps for s in sets):
        return log  # a long set counted online keeps its events; one the online counter found none in is counted whole
    counted = _counted_whole(pictures, marks, fps=fps, start=start, end=end)
    if not counted.found:
        return log
    times = [(x + start, y + start) for x, y in counted.times]
    if not sets:
        one = Segment(
            label=p.label,
            known=True,
            start_s=times[0][0],
            end_s=times[-1][1],
            reps=counted.count,
            rep_times=times,
            confidence=p.confidence,
            rep_source=counted.source,
        )
        return dataclasses.replace(log, segments=[one])
    # each repetition to the exercise segment its middle falls in, or the nearest one
    mine: dict[int, list[tuple[float, float]]] = {id(s): [] for s in sets}
    for a, b in times:
        mid = (a + b) / 2
        near = min(
            sets, key=lambda s: 0.0 if s.start_s <= mid <= s.end_s else min(abs(mid - s.start_s), abs(mid - s.end_s))
        )
        mine[id(near)].append((a, b))
    segments = [
        dataclasses.replace(
            s, reps=len(mine[id(s)]), rep_times=mine[id(s)], rep_source=counted.source if mine[id(s)] else ""
        )
        if id(s) in mine
        else s
        for s in log.segments
    ]
    return dataclasses.replace(log, segments=segments)


def _counted_whole(
    pictures: list[np.ndarray], marks: list[tuple[float, np.ndarray]], *, fps: float, start: float, end: float
) -> Repetitions:
    """The repetitions from ``start`` to ``end`` s counted at once, times from ``start``: from the picture
    (every frame's signal ``[D]``) and the joints (``(t_s, [33, 4])``), the surer of the two."""
    a, b = int(start * fps), min(len(pictures), int(np.ceil(end * fps)) + 1)
    counted = count_repetitions(np.stack(pictures[a:b]), fps) if b - a >= 8 else Repetitions(0)
    joints = [(t, lm) for t, lm in marks if start <= t <= end]
    if len(joints) >= 8 and not (counted.period_s is not None and counted.period_s < 3 * (joints[1][0] - joints[0][0])):
        from vidclf.models.pose import landmark_signal

        signal = landmark_signal(np.stack([lm for _, lm in joints]))
        if signal is not None:
            rate = (len(joints) - 1) / max(joints[-1][0] - joints[0][0], 1e-6)
            pose = count_repetitions(signal, rate, min_period_s=max(0.25, 3 / rate))
            shift = joints[0][0] - start
            counted = surer(
                counted, dataclasses.replace(pose, times=[(x + shift, y + shift) for x, y in pose.times], source="pose")
            )
    return counted


def _progress_words(i: int, total: float, fps: float, tracked: _Recorded) -> str:
    """How far the pass is, for a person waiting: "4 of 15 s; a body in 38 of 40 frames"."""
    words = f"{i / fps:.0f} of {total / fps:.0f} s"
    n = len(tracked.marks)
    return f"{words}; a body in {tracked.bodies} of {n} frames" if n else words


class _Recorded:
    """A pose tracker that remembers what it found: ``marks`` holds ``(t, landmarks [33, 4])`` of every frame it
    tracked, ``t`` set by the caller before each frame (at 10 a second: 5 KB a second of clip); ``bodies``
    counts those with a person."""

    def __init__(self, tracker: Callable[[np.ndarray], np.ndarray]):
        self._tracker, self.t = tracker, 0.0
        self.marks: list[tuple[float, np.ndarray]] = []
        self.bodies = 0

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        from vidclf.models.pose import found_mask

        lm = np.asarray(self._tracker(frame), np.float32)
        self.bodies += int(found_mask(lm[None])[0])
        self.marks.append((self.t, lm))
        return lm

    def close(self) -> None:
        closer = getattr(self._tracker, "close", None)
        if closer is not None:
            closer()


def _log_reps(log: WorkoutLog) -> Repetitions:
    """A workout log's repetitions as one :class:`Repetitions`: those of its exercise segments, each with its
    own times; the period is the median start-to-start time within a segment, the confidence the segments'
    (weighted by their repetitions), the source the one that counted the most."""
    times = log.rep_times
    if not times:
        return Repetitions(0)
    counted = [s for s in log.exercises if s.reps]
    sources: dict[str, int] = {}
    for s in counted:
        sources[s.rep_source] = sources.get(s.rep_source, 0) + s.reps
    confidence = sum(s.confidence * s.reps for s in counted) / max(1, log.reps)
    # the period: from one repetition's start to the next one's, within a segment
    gaps = [b[0] - a[0] for s in counted for a, b in zip(s.rep_times, s.rep_times[1:])]
    period = float(np.median(gaps)) if gaps else None
    return Repetitions(
        len(times), list(times), period_s=period, confidence=confidence, source=max(sources, key=lambda k: sources[k])
    )


@dataclass(frozen=True)
class WindowLogits:
    """One window's fused logits ``[K]``, each stream's own ``[K]`` by its index, and the share of the pose
    stream's frames with a person (None without a pose stream)."""

    fused: torch.Tensor
    per_stream: dict[int, torch.Tensor]
    pose_found: float | None


class _Marks:
    """Landmarks ``[33, 4]`` of a clip's frames by index, each frame estimated once however many pose streams
    (an ensemble's) read it. ``frame_at(i)`` gives the decoded frame ``i``; ``estimator()`` the pose estimator.
    Every frame is estimated at one size, the first's. Landmarks always come from the frames: a file beside
    an upload is never read (side files belong to training caches)."""

    def __init__(
        self,
        estimator: Callable[[], Callable[[np.ndarray], np.ndarray]],
        frame_at: Callable[[int], np.ndarray],
        found: dict[int, tuple[tuple[int, int], np.ndarray]] | None = None,
    ):
        self._estimator, self._frame_at = estimator, frame_at
        self._got: dict[int, np.ndarray] = {}
        self._size: tuple[int, int] | None = None
        for i, (size, lm) in sorted((found or {}).items()):  # estimated already (:class:`_EarlyMarks`)
            self._size = self._size or size
            if size == self._size:
                self._got[i] = lm

    def __call__(self, indices: list[int]) -> np.ndarray:
        """``[len(indices), 33, 4]``."""
        missing = sorted({i for i in indices if i not in self._got})
        if missing:
            frames = [self._frame_at(i) for i in missing]
            self._size = self._size or (frames[0].shape[0], frames[0].shape[1])
            found = self._estimator()(np.stack([resize_frame(f, self._size) for f in frames]))
            self._got.update(zip(missing, found))
        return np.stack([self._got[i] for i in indices])


class _EarlyMarks:
    """Landmarks of the frames ``wanted`` (the pose stream's), estimated on a thread of their own as the decoding
    pass :meth:`offer` s them, so that BlazePose's static graph runs beside the pass's decoding and tracking
    instead of after it. :meth:`result` waits for the last one: ``{index: ((H, W), landmarks [33, 4])}``; it
    raises what the estimator raised (MediaPipe missing, say)."""

    def __init__(self, estimator: Callable[[], Callable[[np.ndarray], np.ndarray]], wanted: set[int]):
        self._estimator, self._wanted = estimator, wanted
        self._queue: queue.SimpleQueue[tuple[int, np.ndarray] | None] = queue.SimpleQueue()
        self._found: dict[int, tuple[tuple[int, int], np.ndarray]] = {}
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="vidclf-pose", daemon=True)
        self._thread.start()

    def offer(self, i: int, frame: np.ndarray) -> None:
        """A decoded frame (uint8 RGB ``[H, W, 3]``): estimated if it is one of the wanted ones."""
        if i in self._wanted and self._error is None:
            self._queue.put((i, frame))

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is not None:
                continue
            i, frame = item
            try:
                self._found[i] = (frame.shape[:2], self._estimator()(frame[None])[0])
            except BaseException as e:  # given to the request's thread by result()
                self._error = e

    def result(self) -> dict[int, tuple[tuple[int, int], np.ndarray]]:
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._found
