"""Teach a trained model one more action from a few clips, on a CPU, in a minute, without forgetting the others.

Every stream of the base model stays frozen: its CNN or pose estimator, its LSTM, and the rows of its last
linear layer that score the classes it knows. Only one new row (a weight vector and a bias per stream) is
learned: a logistic regression on the LSTM's summary ``[H]`` (:meth:`vidclf.models.cnn_lstm.CNNLSTM.summarize`)
of the new clips' views (the clip, stretches of it, mirrored and jittered copies) against the summaries of clips
of the known classes. Those come from an *anchor file* shipped beside the base checkpoint
(``<name>.anchors.npz``, written by :func:`write_anchors` from the clips the base model was trained on), so
that teaching needs none of the original clips. The known classes' logits are the base model's to the last
bit: a clip of one of them changes its answer only where the new class outscores it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vidclf.catalog import ModelEntry
from vidclf.checkpoint import Checkpoint, fusion_checkpoint, load_checkpoint, save_checkpoint
from vidclf.data.index import VideoRecord
from vidclf.errors import DatasetError, VidclfError
from vidclf.sampling import paired, uniform_indices
from vidclf.serving import ServeSettings, check_length
from vidclf.video import load_clip, probe

log = logging.getLogger(__name__)

MIN_CLIPS, MAX_CLIPS = 3, 12
VIEWS = 24  # summaries per new clip: the clip as prediction sees it, and augmented copies
Estimator = Callable[[np.ndarray], np.ndarray]  # frames [T, H, W, 3] -> landmarks [T, 33, 4]


def anchors_path(checkpoint: str | Path) -> Path:
    """Where a checkpoint's anchor file lies: beside it, ``<name>.anchors.npz``."""
    return Path(checkpoint).with_suffix(".anchors.npz")


def _streams(ck: Checkpoint) -> list[tuple[Checkpoint, float]]:
    return list(ck.streams) if ck.is_fusion else [(ck, 1.0)]


def fingerprint(ck: Checkpoint) -> str:
    """A hash of one stream's weights: anchors of other weights are never used."""
    h = hashlib.sha1()
    for name, tensor in sorted(ck.state_dict.items()):
        h.update(name.encode())
        h.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _pose_raw(path: Path, frames: int, estimator: Estimator | None) -> np.ndarray:
    from vidclf.data.landmarks import POSE_MAX_SIDE
    from vidclf.models.pose import PoseEstimator

    clip = load_clip(path, frames, None, max_side=POSE_MAX_SIDE).frames
    if estimator is not None:
        return estimator(clip)
    est = PoseEstimator()
    try:
        return est(clip)
    finally:
        est.close()


@torch.inference_mode()
def clip_summaries(
    stream: Checkpoint,
    path: Path,
    *,
    views: int,
    seed: int = 0,
    estimator: Estimator | None = None,
    landmarks: dict | None = None,
) -> tuple[torch.Tensor, float]:
    """One stream's summaries ``[views, H]`` of a clip (view 0: the frames prediction reads) and, for a pose
    stream, the share of frames with a person (1.0 for a pixel stream). ``landmarks``: a dict that keeps each
    clip's estimated landmarks for the next stream (an ensemble's seeds read the same frames)."""
    assert stream.input is not None
    spec = stream.input
    model = stream.build_model()
    rng = np.random.default_rng([seed, len(path.name)])
    if spec.features == "landmarks":
        from vidclf.models.pose import augment_landmarks, found_mask, normalize_landmarks

        # three times the frames, so that stretches keep their detail; the middle one of each three is the very
        # frame prediction reads (uniform_indices(n, 3k)[1::3] == uniform_indices(n, k))
        key = (str(path), spec.num_frames * 3)
        memo = {} if landmarks is None else landmarks
        if key not in memo:
            memo[key] = _pose_raw(path, spec.num_frames * 3, estimator)
        raw = memo[key]
        found = float(found_mask(raw).mean())
        own = raw[1::3]
        x = [normalize_landmarks(own)] + [
            normalize_landmarks(augment_landmarks(raw, rng, num_frames=spec.num_frames)) for _ in range(views - 1)
        ]
        feats = torch.from_numpy(np.stack(x))
    else:
        info = probe(path)
        gap = spec.pair_gap_at(info.fps)
        size = (spec.img_size, spec.img_size)
        plain, augmented = spec.transform(), dataclasses.replace(spec.transform(), augment=True)
        clips = []
        for v in range(views):
            if v == 0:
                sampler = paired(uniform_indices, gap)
            else:  # a random 65-100 % stretch of the clip
                share = rng.uniform(0.65, 1.0)

                def sampler(n: int, k: int, share=share, start=rng.uniform(0, 1 - share)) -> list[int]:
                    a, m = int(start * n), max(1, int(share * n))
                    return [a + i for i in paired(uniform_indices, gap)(m, k)]

            frames = load_clip(path, spec.num_frames, size, sampler=sampler, info=info).frames
            clips.append(plain(frames) if v == 0 else augmented(frames, rng))
        feats = model.forward_features(torch.stack(clips))
        found = 1.0
    return model.summarize(feats).float(), found


def write_anchors(checkpoint: str | Path, records: Sequence[VideoRecord], *, cache_dir: str | None) -> Path:
    """Write ``checkpoint``'s anchor file: every stream's summaries of ``records`` (clips of its classes, labels
    in its class order; the clips it was trained on), in fp16. Landmarks and frames are read through
    ``cache_dir``."""
    from vidclf.runtime import make_loader, resolve_device

    ck = load_checkpoint(checkpoint)
    out: dict[str, np.ndarray] = {"labels": np.array([r.label for r in records]), "classes": np.array(ck.classes)}
    for i, (stream, _) in enumerate(_streams(ck)):
        assert stream.input is not None
        model = stream.build_model()
        if stream.input.features == "landmarks":
            from vidclf.data.landmarks import LandmarkDataset, records_landmarks

            raw = records_landmarks(records, stream.input.num_frames, cache_dir, show_progress=False)
            ds: torch.utils.data.Dataset = LandmarkDataset(raw, [r.label for r in records])
            is_features = True
        else:
            from vidclf.evaluate import clip_dataset

            ds = clip_dataset(stream.input, records, cache_dir)
            is_features = False
        dev = resolve_device("cpu")
        rows = []
        with torch.inference_mode():
            for x, _ in make_loader(ds, 16, shuffle=False, num_workers=0, device=dev, seed=0):
                rows.append(model.summarize(x if is_features else model.forward_features(x)))
        out[f"summary_{i}"] = torch.cat(rows).numpy().astype(np.float16)
        out[f"fingerprint_{i}"] = np.array(fingerprint(stream))
    path = anchors_path(checkpoint)
    np.savez_compressed(path, **out)  # type: ignore[arg-type]
    return path


def load_stream(path: str | Path, i: int) -> Checkpoint:
    """Stream ``i`` of the checkpoint at ``path`` as written (fp16 weights where it was saved so)."""
    return _streams(load_checkpoint(path))[i][0]


def landmarks_cached(checkpoint: str | Path, records: Sequence[VideoRecord], cache_dir: str | None) -> list:
    """The ``records`` whose landmarks (at the pose stream's frame count) are in ``cache_dir`` already."""
    from vidclf.data.landmarks import _key, landmark_store
    from vidclf.models.pose import NUM_LANDMARKS

    stream = _streams(load_checkpoint(checkpoint))[0][0]
    store = landmark_store(cache_dir)
    if store is None or stream.input is None or stream.input.features != "landmarks":
        raise DatasetError("--cached-only reads a pose model's landmarks from --cache-dir")
    shape = (stream.input.num_frames, NUM_LANDMARKS, 4)
    return [r for r in records if store.load(_key(r.path, stream.input.num_frames), shape, np.float32) is not None]


def read_anchors(checkpoint: str | Path, ck: Checkpoint) -> dict[str, np.ndarray]:
    path = anchors_path(checkpoint)
    if not path.is_file():
        raise DatasetError(
            f"{Path(checkpoint).name} cannot be taught new actions: it has no anchor file beside it "
            f"({path.name}; `train_cli.py anchors` writes one)"
        )
    with np.load(path, allow_pickle=False) as z:
        anchors = {k: z[k] for k in z.files}
    for i, (stream, _) in enumerate(_streams(ck)):
        if str(anchors.get(f"fingerprint_{i}")) != fingerprint(stream):
            raise DatasetError(f"{path.name} was written for other weights than {Path(checkpoint).name}'s")
    return anchors


def _new_row(fc: nn.Linear, known: torch.Tensor, known_labels: torch.Tensor, new: torch.Tensor) -> nn.Linear:
    """``fc`` with one more output, learned on summaries ``known`` ``[N, H]`` (labels ``[N]``) and ``new``
    ``[M, H]``; its first rows are ``fc``'s, untouched."""
    k = fc.out_features
    w = torch.zeros(1, fc.in_features, requires_grad=True)
    b = torch.full((1,), -5.0, requires_grad=True)
    x = torch.cat([known, new])
    y = torch.cat([known_labels, torch.full((len(new),), k)])
    # both sides weigh the same in total: a few new clips against hundreds of anchors
    weight = torch.cat([torch.full((len(known),), 0.5 / len(known)), torch.full((len(new),), 0.5 / len(new))])
    opt = torch.optim.Adam([w, b], lr=0.05)
    old_w, old_b = fc.weight.detach(), fc.bias.detach()
    for _ in range(300):
        logits = torch.cat([x @ old_w.T + old_b, x @ w.T + b], 1)
        loss = (nn.functional.cross_entropy(logits, y, reduction="none") * weight).sum() + 1e-3 * (w**2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    out = nn.Linear(fc.in_features, k + 1)
    with torch.no_grad():
        out.weight.copy_(torch.cat([old_w, w.detach()]))
        out.bias.copy_(torch.cat([old_b, b.detach()]))
    return out


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()[:40] or "action"


def teach(
    base: str | Path,
    name: str,
    clips: Sequence[str | Path],
    out: str | Path,
    *,
    estimator: Estimator | None = None,
    views: int = VIEWS,
    on_progress: Callable[[float, str], None] | None = None,
) -> dict:
    """Teach the model ``base`` (a checkpoint with an anchor file) the action ``name`` from ``clips`` (3-12
    files) and write the model of one more class to ``out``. Returns a summary: ``classes``, ``clips``,
    ``answered`` (how many of the new clips the new model answers with ``name``), ``out``."""
    name = " ".join(str(name).split())
    if not name or len(name) > 60:
        raise DatasetError("name the new action (1-60 characters)")
    if not MIN_CLIPS <= len(clips) <= MAX_CLIPS:
        raise DatasetError(f"give {MIN_CLIPS}-{MAX_CLIPS} clips of the new action, not {len(clips)}")
    ck = load_checkpoint(base)
    if ck.has_other:
        raise DatasetError(f"{Path(base).name} has an 'other' output: teach its streams' model instead")
    if name.lower() in (c.lower() for c in ck.classes):
        raise DatasetError(f"{Path(base).name} already knows {name!r}: pick a new name")
    anchors = read_anchors(base, ck)
    labels = torch.from_numpy(anchors["labels"].astype(np.int64))
    say = on_progress or (lambda share, words: None)
    streams, found_all, first_views, new_summaries = [], [], [], []
    k_old = len(ck.classes)
    estimated: dict = {}
    parts = _streams(ck)
    for i, (stream, weight) in enumerate(parts):
        summaries = []
        for j, clip in enumerate(clips):
            say((i * len(clips) + j) / (len(parts) * len(clips)), f"reading clip {j + 1} of {len(clips)}")
            s, found = clip_summaries(stream, Path(clip), views=views, seed=j, estimator=estimator, landmarks=estimated)
            summaries.append(s)
            if i == 0:
                found_all.append(found)
        new = torch.cat(summaries)
        new_summaries.append(new)
        known = torch.from_numpy(anchors[f"summary_{i}"].astype(np.float32))
        model = stream.build_model()
        model.fc = _new_row(model.fc, known, labels, new)
        with torch.no_grad():  # each clip as prediction reads it (its view 0), through the new layer
            first_views.append(model.fc(torch.stack([v[0] for v in summaries])))
        assert stream.model is not None
        streams.append(
            (
                dataclasses.replace(
                    stream,
                    classes=(*stream.classes, name),
                    state_dict={k: v.detach().clone() for k, v in model.state_dict().items()},
                    info={**stream.info, **_gate(stream, name, found_all)},
                    train_state=None,
                    history=[],
                ),
                weight,
            )
        )
    pose = parts[0][0].input is not None and parts[0][0].input.features == "landmarks"
    if pose and min(found_all) == 0:
        raise DatasetError(
            "no person was found in "
            f"{sum(f == 0 for f in found_all)} of the clips: film the whole body, in good light, and try again"
        )
    info = {
        "taught": {"name": name, "clips": len(clips), "base": Path(base).name, "views_per_clip": views},
        "reject_calibration": f"{Path(base).name}'s, unchanged (the known classes' scores are its own)",
    }
    if ck.info.get("movement_profile"):  # the base's movement check, for its own classes (it abstains on the new one)
        info["movement_profile"] = ck.info["movement_profile"]
    metrics = {"taught_from": Path(base).name}
    if len(streams) > 1:
        new_ck = fusion_checkpoint(streams, reject_threshold=ck.reject_threshold, metrics=metrics, info=info)
    else:
        only = streams[0][0]
        new_ck = dataclasses.replace(
            only, reject_threshold=ck.reject_threshold, metrics=metrics, info={**only.info, **info}
        )
    save_checkpoint(out, new_ck, half=True)
    # the taught model's own anchors (the base's and the new clips' summaries): it can be taught again
    grown: dict[str, np.ndarray] = {
        "labels": np.concatenate([anchors["labels"], np.full(len(clips) * views, k_old)]),
        "classes": np.array(new_ck.classes),
    }
    for i in range(len(streams)):
        grown[f"summary_{i}"] = np.concatenate([anchors[f"summary_{i}"], new_summaries[i].numpy().astype(np.float16)])
        grown[f"fingerprint_{i}"] = np.array(fingerprint(load_stream(out, i)))
    np.savez_compressed(anchors_path(out), **grown)  # type: ignore[arg-type]
    from vidclf.predict import Predictor
    from vidclf.verdict import combine

    # the new model's answer on each clip, by the rule prediction answers by (the threshold, the person gate)
    judge = Predictor(out, device="cpu", pose_estimator=estimator)
    k = len(new_ck.classes)
    fused = combine(first_views, [w for _, w in parts], [False] * len(parts), k)
    answered = 0
    for j in range(len(clips)):
        probs, yes, _ = judge.verdict(fused[j], found_all[j] if pose else None)
        answered += int(yes and int(probs.argmax()) == k - 1)
    return {"classes": list(new_ck.classes), "clips": len(clips), "answered": answered, "out": str(out)}


def _gate(stream: Checkpoint, name: str, found: list[float]) -> dict:
    """The person gate of the taught stream: the base's classes', and the new one where its clips show a person."""
    if stream.input is None or stream.input.features != "landmarks":
        return {}
    gate = list(stream.info.get("person_gate") or stream.classes)
    if found and min(found) > 0:
        gate.append(name)
    return {"person_gate": gate}


# The Teach tab's requests: checked here, on the training side, so that serving never imports training.
TEACH_MAX_SECONDS = 120.0  # a clip to teach from shows the one exercise: two minutes are plenty
_TEACHING = threading.Lock()  # one teaching at a time: it takes both cores for a minute


def teachable(entries: Sequence[ModelEntry]) -> list[ModelEntry]:
    """The models the Teach tab can extend: those with an anchor file beside them (shipped or taught)."""
    return [m for m in entries if anchors_path(m.path).is_file()]


def teach_request(
    base: ModelEntry,
    name: str | None,
    clips: Sequence[str],
    settings: ServeSettings,
    *,
    on_progress: Callable[[float, str], None] | None = None,
) -> tuple[str, str]:
    """The Teach tab's request (hostile until checked): teach ``base`` the action ``name`` from the uploaded or
    recorded ``clips``, write the new model under the runs folder, and return ``(its label in the model list, the
    outcome in words)``. Any problem is a :class:`VidclfError`."""
    if not settings.training_enabled:
        raise VidclfError("Teaching is turned off on this server (set VIDCLF_ENABLE_TRAINING=1).")
    paths = [Path(c) for c in clips if c]
    if not MIN_CLIPS <= len(paths) <= MAX_CLIPS:
        raise VidclfError(f"give {MIN_CLIPS}-{MAX_CLIPS} clips of the new exercise (you gave {len(paths)})")
    for p in paths:
        if not p.is_file() or p.stat().st_size > settings.max_upload_mb * 2**20:
            raise VidclfError(f"{p.name} is missing or larger than {settings.max_upload_mb} MB")
        check_length(probe(p), min(settings.max_seconds, TEACH_MAX_SECONDS))
    words = " ".join(str(name or "").split())
    if not _TEACHING.acquire(blocking=False):
        raise VidclfError("another exercise is being taught right now: try again in a minute")
    try:
        out_dir = settings.runs_dir / "taught" / f"{slug(words)}-{time.strftime('%Y%m%d-%H%M%S')}"
        r = teach(base.path, words, [str(p) for p in paths], out_dir / "last.pt", on_progress=on_progress)
    finally:
        _TEACHING.release()
    label = "run: " + str(out_dir.relative_to(settings.runs_dir))
    known = ", ".join(r["classes"][:-1])
    text = (
        f"### Learned **{words}**\nThe new model knows {len(r['classes'])} actions: {known} and **{words}**. "
        f"It answers {r['answered']} of your {r['clips']} clips with {words}. It is selected in the Predict tab "
        f"as **{label}**. The {len(r['classes']) - 1} it knew keep their own scores: the model only learned one "
        "more row of its last layer, against stored summaries of the clips it was trained on."
    )
    return label, text
