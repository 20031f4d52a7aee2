"""The app's service: settings from environment variables, the guard on server paths, and what a
prediction becomes on the page (the answer in words, the frames with their skeletons).

| variable | default | meaning |
| --- | --- | --- |
| ``VIDCLF_ENABLE_TRAINING`` | off | ``1`` turns the Train tab on (a public Space must not let strangers burn its CPU) |
| ``VIDCLF_DATA_ROOTS`` | none | folders (``os.pathsep``-separated) the Train tab may read datasets from |
| ``VIDCLF_HUB_MODEL`` | none | ``owner/repo`` or ``owner/repo/file.pt``: a Hub checkpoint to offer too |
| ``VIDCLF_MAX_UPLOAD_MB`` | 200 | largest upload accepted |
| ``VIDCLF_MAX_SECONDS`` | 600 | longest clip classified; longer clips are refused with a message |
| ``VIDCLF_RUNS_DIR`` | ``runs`` | where the Train tab writes its runs |
| ``VIDCLF_CONCURRENCY`` | 2 | predictions run at once (2 CPU cores: more only adds latency) |
| ``VIDCLF_QUEUE_SIZE`` | 64 | requests waiting at most; past that a request is refused at once ("queue is full") |
| ``VIDCLF_MAX_LIVE`` | 2 | webcam sessions in live mode at once; past that the page says the server is full |
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from collections.abc import Callable, Sequence

import cv2
import numpy as np

from vidclf.answer import (
    answer_title,
    count_words,
    log_words,
    lower_name,
    plain_name,
    reps_words,
    sureness,
    workout_words,
)
from vidclf.errors import VidclfError

if TYPE_CHECKING:
    from vidclf.config import Config
    from vidclf.catalog import ModelEntry
    from vidclf.engine import WorkoutLog
    from vidclf.predict import Prediction
    from vidclf.video import VideoInfo

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class ServeSettings:
    training_enabled: bool = False
    data_roots: tuple[Path, ...] = ()
    hub_model: str | None = None
    max_upload_mb: int = 200
    max_seconds: float = 600.0
    runs_dir: Path = ROOT / "runs"
    concurrency: int = 2
    queue_size: int = 64
    max_live: int = 2

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> ServeSettings:
        env = dict(os.environ if env is None else env)
        roots = tuple(
            Path(p).expanduser().resolve() for p in env.get("VIDCLF_DATA_ROOTS", "").split(os.pathsep) if p.strip()
        )
        try:
            return cls(
                training_enabled=env.get("VIDCLF_ENABLE_TRAINING", "").lower() in ("1", "true", "yes", "on"),
                data_roots=roots,
                hub_model=env.get("VIDCLF_HUB_MODEL") or None,
                max_upload_mb=int(env.get("VIDCLF_MAX_UPLOAD_MB", 200)),
                max_seconds=float(env.get("VIDCLF_MAX_SECONDS", 600)),
                runs_dir=Path(env.get("VIDCLF_RUNS_DIR", ROOT / "runs")).expanduser().resolve(),
                concurrency=int(env.get("VIDCLF_CONCURRENCY", 2)),
                queue_size=int(env.get("VIDCLF_QUEUE_SIZE", 64)),
                max_live=int(env.get("VIDCLF_MAX_LIVE", 2)),
            )
        except ValueError as e:
            raise VidclfError(f"bad VIDCLF_* environment variable: {e}") from None


def resolve_inside(path: str | os.PathLike, roots: tuple[Path, ...]) -> Path:
    """``path`` with symlinks and ``..`` resolved, if it lies inside one of ``roots``; else :class:`VidclfError`."""
    if not roots:
        raise VidclfError("no server data folders are configured (set VIDCLF_DATA_ROOTS)")
    resolved = Path(path).expanduser().resolve()
    for root in roots:
        if resolved == root or resolved.is_relative_to(root):
            return resolved
    raise VidclfError(f"{path} is outside the allowed data folders: {', '.join(map(str, roots))}")


def answer_markdown(p: Prediction, entry: ModelEntry, log: WorkoutLog | None = None) -> str:
    """The answer as it leads the page (Markdown): the exercise in plain words, said as sure as the model is
    (:func:`vidclf.answer.answer_title`), the count and the time it took in the clip; or "not one of these"
    with the closest. With the clip's workout ``log``, the count is the log's (the page shows one count, its
    table's). The internals are :func:`details_markdown`'s."""
    n = len(entry.classes)
    if p.known:
        lines = [f"### {answer_title(p.probs)}"]
    else:
        why = (
            "no person was found in any frame it looked at: is the whole body in view?"
            if p.pose_found == 0
            else f"the movement doesn't look like {lower_name(p.label)}: the body moves unlike the clips of it the "
            "model learned from (which joints move, how, and in what posture)"
            if p.movement_refused
            else "it looks more like the other actions the model learned to tell apart from these (other exercises, "
            "sports, everyday movements) than 95% of the clips of them it was checked on"
            if p.learned_other
            else "the model's evidence for every one of them is weaker than for "
            # with the movement check the evidence alone answers more than the 95% the pair answers
            + ("nearly all" if p.movement_threshold is not None else "95%")
            + " of the clips of them it was checked on"
        )
        lines = [f"### Not one of the {n} actions this model knows", f"Closest: **{lower_name(p.label)}**, but {why}."]
    count = count_words(log, p.reps) if (p.known or (log is not None and log.exercises)) else ""
    workout = workout_words(log) if log is not None and p.known else None
    if workout is not None:  # one label for the clip would hide all but one of its exercises
        lines[0], count = f"### {workout[0]}", workout[1]
    if count:
        span = _exercise_span(log, p)
        lines.append(f"**{count}**" + (f" in {span:.1f} s" if span else ""))
    if entry.synthetic:
        lines.append("These are SYNTHETIC classes (stick figures made by vidclf).")
    return "  \n".join(lines)


def _exercise_span(log: WorkoutLog | None, p: Prediction) -> float | None:
    """Seconds from the first repetition's start to the last's end (the log's sets, else the clip's count)."""
    times = log.rep_times if log is not None else (p.reps.times if p.reps is not None else [])
    return times[-1][1] - times[0][0] if times else None


def details_markdown(
    p: Prediction, entry: ModelEntry, log: WorkoutLog | None = None, *, seconds: float | None = None
) -> str:
    """What lies behind the answer, for the page's "Details": the probability in numbers, the count's pace,
    which stream decided, how often a body was found, the model, the frames sampled and the time taken."""
    band = {"sure": "sure", "probably": "fairly sure", "unsure": "not sure"}[sureness(p.probs)]
    runner = p.top(2)[1:] if len(p.probs) > 1 else []
    second = f"; next: {lower_name(runner[0][0])} {runner[0][1]:.0%}" if runner else ""
    lines = [f"The model's probabilities: **{lower_name(p.label)} {p.confidence:.0%}**{second} ({band})."]
    if log is not None:
        if log.exercises or p.known:
            lines.append(log_words(log))
    elif p.known and p.reps is not None:
        lines.append(reps_words(p.reps))
    if p.deciding_stream:
        parts = ", ".join(f"{name}: {probs[p.label]:.0%}" for name, probs in p.streams.items())
        lines.append(
            f"Decided mostly by the **{_stream_words(p.deciding_stream)}** stream ({lower_name(p.label)} per stream: "
            f"{parts})."
        )
    if p.pose_found is not None:
        lines.append(f"A person was found in {p.pose_found:.0%} of the frames the pose stream looked at.")
    taken = f"; {seconds:.1f} s in all" if seconds is not None else ""
    lines.append(
        f"*{entry.description}*. {len(p.indices)} frames sampled from {p.info.num_frames} ({p.info.duration_s:.1f} s "
        f"at {p.info.fps:.0f} fps, {p.info.width}x{p.info.height}){taken}."
    )
    return "  \n".join(lines)


def answer_json(p: Prediction, entry: ModelEntry) -> dict:
    """What ``predict --json`` gives for the clip (identifiers, numbers), with the class in words, how sure
    the model is (:func:`vidclf.answer.sureness`) and the model's label: the API's JSON output."""
    return {"model": entry.label, "name": plain_name(p.label), "sureness": sureness(p.probs), **p.to_dict()}


def _stream_words(backbone: str) -> str:
    return "body pose" if backbone == "pose" else f"motion ({backbone})"


def model_markdown(entry: ModelEntry) -> str:
    """What a person should know before recording: the actions this model knows, what it looks at, how it scored."""
    names = ", ".join(plain_name(c) for c in entry.classes)
    kind = (
        "SYNTHETIC actions (stick figures made by vidclf; real people are not one of these)"
        if entry.synthetic
        else "actions"
    )
    score = (
        f" It scored {entry.val_acc:.0%} ({entry.score_kind}, on UCF-101 groups it never trained on)."
        if entry.val_acc is not None and not entry.synthetic
        else ""
    )
    tip = (
        ""
        if entry.synthetic
        else "  \nWorks best with **one person, the whole body in view**, doing the exercise for a few seconds. "
        'Anything else gets "not one of these".'
    )
    return f"**Knows {len(entry.classes)} {kind}:** {names}.  \nLooks at: {entry.sees or entry.backbone}.{score}{tip}"


# Frame rates above this are not believed when judging a clip's length: a header that claims 1000 fps would
# make a long clip look short.
PLAUSIBLE_FPS = 120.0


def check_length(info: VideoInfo, max_seconds: float) -> None:
    """Refuse a clip longer than ``max_seconds``, judging its length at no more than :data:`PLAUSIBLE_FPS`."""
    seconds = max(info.duration_s, info.num_frames / PLAUSIBLE_FPS)
    if seconds > max_seconds:
        raise VidclfError(
            f"the clip is {seconds:.0f} s long; this server classifies clips up to {max_seconds:.0f} s: "
            "cut it and try again"
        )


class FrameStore:
    """The files a page shows, in a private folder of this process (``mkdtemp``: not a name in the shared temp
    folder that another user could take or fill): the frames as JPEG files, each named by its content and
    written atomically (Gradio serves files by path, and two identical requests at once must never see a
    half-written file), and the player's H.264 copies of clips a browser cannot play. Files older than
    ``max_age_s`` (and writes cut short) are swept away now and then; a frame handed out again is young again.
    """

    def __init__(self, max_age_s: float = 3600.0, sweep_every_s: float = 600.0, max_previews: int = 4096):
        self.root = Path(tempfile.mkdtemp(prefix="vidclf-frames-"))
        self.max_age_s = max_age_s
        self.sweep_every_s = sweep_every_s
        self.max_previews = max_previews
        self._last_sweep = time.time()
        self._lock = threading.Lock()
        # a preview's file name -> (its content's hash, the upload it copies)
        self._previews: OrderedDict[str, tuple[str, Path]] = OrderedDict()

    def write(self, frames: Sequence[np.ndarray], captions: Sequence[str]) -> list[tuple[str, str]]:
        """uint8 RGB frames -> ``[(file, caption)]`` for a ``gr.Gallery``."""
        out = []
        for frame, caption in zip(frames, captions):
            data = cv2.imencode(
                ".jpg", cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90]
            )[1].tobytes()
            path = self.root / f"{hashlib.sha1(data).hexdigest()}.jpg"
            try:
                os.utime(path)  # the sweep judges age by modification time: this answer needs the file an hour more
            except FileNotFoundError:
                tmp = path.with_name(f"{path.stem}.{os.getpid()}-{threading.get_ident()}.tmp")
                tmp.write_bytes(data)
                os.replace(tmp, path)
            out.append((str(path), caption))
        self._maybe_sweep()
        return out

    def preview(self, path: str | os.PathLike) -> Path | None:
        """A copy of ``path`` the player can show (see :func:`browser_preview`), or None when it plays as it is.
        The copy is remembered, so that a Predict on the player's value classifies the upload, not the copy."""
        copy = browser_preview(path, self.root)
        if copy is not None:
            digest = _file_sha1(copy)
            with self._lock:
                self._previews[copy.name] = (digest, Path(path))
                self._previews.move_to_end(copy.name)
                while len(self._previews) > self.max_previews:
                    self._previews.popitem(last=False)
        self._maybe_sweep()
        return copy

    def source_of(self, video: str) -> str:
        """The clip to classify for the player's value ``video``: the upload itself where the player shows a
        preview copy of it (the copy is cut to 60 s and 640 px), else ``video``."""
        with self._lock:
            known = self._previews.get(Path(video).name)
        # the name alone could be anyone's upload: only the copy itself (Gradio hands it back byte for byte)
        # stands for the upload it was made from
        if known is None or not Path(video).is_file() or _file_sha1(video) != known[0]:
            return video
        original = known[1]
        if not original.is_file():
            raise VidclfError(
                "the player shows a preview copy of a clip that has expired from this server: upload the clip again"
            )
        return str(original)

    def _maybe_sweep(self) -> None:
        if time.time() - self._last_sweep > self.sweep_every_s:
            self.sweep()

    def sweep(self) -> int:
        """Remove files older than ``max_age_s``; returns how many."""
        now = self._last_sweep = time.time()
        gone = 0
        for pattern in ("*.jpg", "*.mp4", "*.webm", "*.tmp"):
            for old in list(self.root.glob(pattern)):
                try:
                    if now - old.stat().st_mtime > self.max_age_s:
                        old.unlink()
                        gone += 1
                except OSError:
                    continue  # another thread swept it first
        return gone


def _file_sha1(path: str | os.PathLike) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


_SERVER_PATH = re.compile(r"(?:[A-Za-z]:)?[\\/](?:[^\s\\/:;,'\"()]+[\\/])+([^\s\\/:;,'\"()]+)")


def public_message(error: BaseException) -> str:
    """An error's message as a web page may show it: every server path cut to its file name."""
    return _SERVER_PATH.sub(lambda m: m.group(1), str(error))


# Containers and codecs every current browser plays in a <video> element.
_PLAYABLE_SUFFIXES = (".mp4", ".m4v", ".webm", ".mov")
_PLAYABLE_CODECS = ("avc1", "h264", "vp80", "vp90", "vp09", "av01")


def browser_playable(path: str | os.PathLike) -> bool:
    """Whether a browser can play the file as it is (H.264 / VP8 / VP9 / AV1 in MP4 or WebM)."""
    p = Path(path)
    if p.suffix.lower() not in _PLAYABLE_SUFFIXES:
        return False
    cap = cv2.VideoCapture(str(p))
    try:
        code = int(cap.get(cv2.CAP_PROP_FOURCC))
    finally:
        cap.release()
    fourcc = "".join(chr((code >> 8 * i) & 0xFF) for i in range(4)).lower()
    return fourcc in _PLAYABLE_CODECS or p.suffix.lower() == ".webm"


def browser_preview(
    path: str | os.PathLike, out_dir: str | os.PathLike, *, max_seconds: float = 60.0, max_side: int = 640
) -> Path | None:
    """A copy of ``path`` for the page's player, or None when the clip plays as it is or no FFmpeg is at hand
    (the PyPI package ``imageio-ffmpeg`` brings one):

    - a WebM (a webcam recording: the browser's MediaRecorder writes no duration, and the player showed
      "0:00 / Infinity:NaN:NaN") is copied stream for stream into a WebM that has one;
    - a clip a browser cannot play (XviD AVI, HEVC, MPEG-4 Part 2, GIF, ...) becomes an H.264 MP4 of at most
      ``max_side`` pixels, no sound.

    Either is at most ``max_seconds`` long."""
    remux = Path(path).suffix.lower() == ".webm"
    if not remux and browser_playable(path):
        return None
    try:
        import imageio_ffmpeg

        ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        return None
    name = hashlib.sha1(str(path).encode()).hexdigest()[:16]
    out = Path(out_dir) / f"{name}{'.webm' if remux else '.mp4'}"
    scale = (
        f"scale='min({max_side},iw)':'min({max_side},ih)':force_original_aspect_ratio=decrease,"
        "scale=trunc(iw/2)*2:trunc(ih/2)*2"
    )
    if remux:
        codec = ["-c", "copy"]
    else:
        codec = ["-an", "-vf", scale, "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p"]
        codec += ["-movflags", "+faststart"]
    cmd = [ffmpeg, "-loglevel", "error", "-y", "-t", str(max_seconds), "-i", str(path), *codec, str(out)]
    # At the lowest CPU priority: a phone's HEVC clip costs FFmpeg 11-13 CPU seconds for 15 s of 1080p, and it must
    # not slow the predictions it runs beside (docs/benchmarks.md, "The app's extra time").
    nice = shutil.which("nice")
    if nice is not None:
        cmd = [nice, "-n", "19", *cmd]
    try:
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    except (OSError, subprocess.SubprocessError):
        return None
    return out


TRAIN_FORM_FIELDS = (
    "source",
    "folder",
    "classes",
    "split",
    "val_fraction",
    "backbone",
    "pretrained",
    "freeze",
    "views",
    "frame_input",
    "epochs",
    "lr",
    "batch_size",
    "num_frames",
    "img_size",
)
SYNTHETIC_SOURCE = "Synthetic (generated, SYNTHETIC stick figures)"


def training_request(
    form: dict, settings: ServeSettings, synthetic_root: Path
) -> tuple[Config, Callable[[], None] | None, str]:
    """The Train tab's form (hostile until checked) -> ``(config, prepare, what it trains on)``.

    Numbers must be numbers, a folder must lie inside ``settings.data_roots``, classes are names (never read
    as files), and everything else is checked by the config itself; any problem is a :class:`VidclfError`.
    ``prepare`` writes the synthetic set the first time it is used.
    """
    from vidclf.config import apply_overrides, load_config
    from vidclf.data.synthetic import make_synthetic_dataset

    def number(name: str, kind: type) -> Any:
        try:
            return kind(form[name])
        except (KeyError, TypeError, ValueError):
            raise VidclfError(
                f"the Train form's {name.replace('_', ' ')} must be a number, got {form.get(name)!r}"
            ) from None

    synthetic = str(form.get("source") or "").startswith("Synthetic")
    prepare: Callable[[], None] | None = None
    if synthetic:
        root, class_list = synthetic_root, None

        def prepare() -> None:
            if not (synthetic_root / "README.txt").exists():
                make_synthetic_dataset(synthetic_root)
    else:
        root = resolve_inside(str(form.get("folder") or ""), settings.data_roots)
        text = str(form.get("classes") or "")
        class_list = [c.strip() for c in text.replace(",", " ").split() if c.strip()] or None
    backbone = str(form.get("backbone") or "")
    out_dir = settings.runs_dir / "app" / f"{time.strftime('%Y%m%d-%H%M%S')}-{backbone}"
    config = apply_overrides(
        load_config(),
        {
            "data_root": str(root),
            "classes": class_list,
            "num_classes": 0 if synthetic else 10,
            "split": number("split", int),
            "val_fraction": number("val_fraction", float),
            "backbone": backbone,
            "use_pretrained": bool(form.get("pretrained")),
            "freeze_backbone": bool(form.get("freeze")),
            "feature_views": number("views", int),
            "frame_input": str(form.get("frame_input") or ""),
            "epochs": number("epochs", int),
            "lr": number("lr", float),
            "batch_size": number("batch_size", int),
            "num_frames": number("num_frames", int),
            "img_size": number("img_size", int),
            "out_dir": str(out_dir),
        },
    )
    return config, prepare, "the SYNTHETIC set" if synthetic else str(root)
