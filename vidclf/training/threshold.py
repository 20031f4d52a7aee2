"""The "no" of a trained model: its "not one of these" threshold, set when training ends.

A model answers every clip unless its checkpoint carries a threshold on its known-class score
(:func:`vidclf.verdict.known_score`). Training sets it on clips the weights never trained on: the validation
groups it held out (so that 95 % of them are still answered) and, where the user gives clips of other actions
(``other_root``), those too (the threshold that best answers the first and refuses the second, still answering
90 % of the first). The person gate of a pose model counts as it does in :meth:`vidclf.predict.Predictor.verdict`:
a clip with no person found is refused whatever its score, unless its top class is one the gate is off for.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from vidclf.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from vidclf.data.index import VideoRecord, build_index, is_ucf101_root
from vidclf.errors import DatasetError
from vidclf.fusion import open_set_threshold, rejection_threshold_of_scores
from vidclf.runtime import collect_logits, make_loader, resolve_device
from vidclf.verdict import known_score
from vidclf.video import VIDEO_EXTENSIONS

log = logging.getLogger(__name__)

ANSWERED = 0.95  # share of the validation clips of known classes still answered (no other-action clips given)
MIN_ANSWERED = 0.9  # with other-action clips: never answer fewer of the known clips than this


def other_records(root: str | Path) -> list[VideoRecord]:
    """Every clip under ``root`` (a UCF-101 root: all its clips of both lists; else any video in any folder)."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetError(f"--other-root {root} is not a folder of videos")
    if is_ucf101_root(root):
        seen: dict[Path, VideoRecord] = {}
        for subset in ("train", "test"):
            for r in build_index(root, subset, num_classes=0).records:
                seen.setdefault(r.path, VideoRecord(r.path, -1, r.group))
        records = list(seen.values())
    else:
        files = sorted(f for f in root.rglob("*") if f.suffix.lower() in VIDEO_EXTENSIONS and f.is_file())
        records = [VideoRecord(f, -1, f.parent.name) for f in files]
    if not records:
        raise DatasetError(f"--other-root {root} holds no videos ({', '.join(VIDEO_EXTENSIONS)})")
    return records


def _gate_passed(ck: Checkpoint, logits: np.ndarray, found: np.ndarray | None) -> np.ndarray:
    """bool ``[N]``: the clips the person gate lets through (all of them for a model without a pose stream)."""
    if found is None:
        return np.ones(len(logits), bool)
    top = np.asarray(ck.classes)[logits[:, : len(ck.classes)].argmax(1)]
    return found | ~np.isin(top, ck.person_gate)


def _val_logits(ck: Checkpoint, val: Dataset, *, features: bool, batch_size: int, device: str) -> np.ndarray:
    dev = resolve_device(device)
    loader = make_loader(val, batch_size, shuffle=False, num_workers=0, device=dev, seed=0)
    logits, _ = collect_logits(ck.build_model().to(dev), loader, dev, "fp32", features=features)
    return logits.numpy()


def _found(raw: np.ndarray | None) -> np.ndarray | None:
    """Per clip of raw landmarks ``[N, T, 33, 4]``: whether some frame shows a person."""
    if raw is None:
        return None
    from vidclf.models.pose import found_mask

    return np.asarray(found_mask(raw).any(axis=1))


def set_run_threshold(config, result, fallback_val: Dataset | None) -> dict | None:
    """:func:`set_threshold` for the checkpoints of a finished :func:`vidclf.training.loop.fit` (``result``) of
    ``config``; ``fallback_val``: the validation dataset, where the run kept no inputs of its own (interrupted)."""
    val, features = result.val_inputs, result.val_features
    if val is None:
        from vidclf.data.landmarks import LandmarkDataset

        val, features = fallback_val, isinstance(fallback_val, LandmarkDataset)
    other = other_records(config.data.other_root) if config.data.other_root else []
    return set_threshold(
        [result.last_path, result.best_path],
        val,
        features=features,
        other=other,
        cache_dir=config.data.cache_dir,
        batch_size=config.train.batch_size,
        device=config.train.device,
    )


def set_threshold(
    checkpoints: Sequence[str | Path],
    val: Dataset | None,
    *,
    features: bool,
    other: Sequence[VideoRecord] = (),
    cache_dir: str | None = None,
    batch_size: int = 8,
    device: str = "auto",
) -> dict | None:
    """Give each checkpoint of a run (``last.pt``, ``best.pt``) its threshold, set on the run's validation inputs
    ``val`` (what the epochs were validated on; ``features``: whether they are features or landmarks) and on the
    ``other`` clips; written into the files. Returns what ``checkpoints[0]`` got (``threshold``, ``answered``,
    ``other_refused``, ``calibration``), or None where there are no validation clips to set it on."""
    if val is None or len(val) == 0:  # type: ignore[arg-type]
        log.warning("no validation groups held out: no 'not one of these' threshold, the model answers every clip")
        return None
    from vidclf.data.landmarks import LandmarkDataset

    val_found = _found(val.raw) if isinstance(val, LandmarkDataset) else None
    first: dict | None = None
    for path in checkpoints:
        if not Path(path).is_file():
            continue
        ck = load_checkpoint(path)
        assert ck.input is not None
        k = len(ck.classes)
        lk = _val_logits(ck, val, features=features, batch_size=batch_size, device=device)
        sk = known_score(torch.from_numpy(lk), k).numpy()
        pk = _gate_passed(ck, lk, val_found)
        if other:
            from vidclf.evaluate import stream_logits

            lo = stream_logits(ck, other, batch_size=batch_size, cache_dir=cache_dir, device=device).numpy()
            so = known_score(torch.from_numpy(lo), k).numpy()
            other_found = None
            if ck.input.features == "landmarks":
                from vidclf.data.landmarks import records_landmarks

                other_found = _found(records_landmarks(other, ck.input.num_frames, cache_dir, show_progress=False))
            po = _gate_passed(ck, lo, other_found)
            threshold = open_set_threshold(sk, so, known_passed=pk, other_passed=po, min_answered=MIN_ANSWERED)
            refused = float((~((so >= threshold) & po)).mean())
            how = (
                f"set on the {len(sk)} clips of the validation groups and {len(so)} clips of other actions "
                f"(answers the most of the first and refuses the most of the second, never fewer than "
                f"{MIN_ANSWERED:.0%} of the first answered)"
            )
        else:
            threshold, refused = rejection_threshold_of_scores(sk, answered=ANSWERED, passed=pk), None
            how = f"set to answer {ANSWERED:.0%} of the {len(sk)} clips of the validation groups"
        answered = float(((sk >= threshold) & pk).mean())
        result = {"threshold": threshold, "answered": answered, "other_refused": refused, "calibration": how}
        metrics = {**ck.metrics, "val_answered": answered}
        if refused is not None:
            metrics["other_refused"] = refused
        if len(sk) < 20:
            how += f"; only {len(sk)} clips: a rough threshold"
        info = {**ck.info, "reject_calibration": how}
        save_checkpoint(path, dataclasses.replace(ck, reject_threshold=threshold, metrics=metrics, info=info))
        first = first or result
    return first


def threshold_words(r: dict) -> str:
    """One line saying what :func:`set_threshold` gave a run's checkpoint."""
    refused = f", refuses {r['other_refused']:.0%} of the other-action clips" if r["other_refused"] is not None else ""
    return (
        f"'not one of these': a known-class score below {r['threshold']:.3f} is refused ({r['calibration']}); "
        f"answers {r['answered']:.0%} of the validation clips{refused}"
    )
