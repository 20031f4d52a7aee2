"""Count the repetitions of a repeated movement, with no counting labels to learn from.

A clip's per-frame signal (every frame, shrunk to a small grey image: what moves changes it) is reduced to
its main directions of change (PCA). A repeated movement makes them periodic: the **period** is the first
strong peak of their autocorrelation (the 1-D view of RepNet's temporal self-similarity), its height the
**confidence**, and each **repetition** is one peak of the most periodic component, at least 0.6 periods
after the previous one.

One repetition has no period: a clip without one is searched for a **single movement** instead, the main
direction of change leaving a level and coming back to it (one squat, one pull-up). Neither a period nor a
single movement is "no repetition found".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from vidclf.models.pose import COUNT_JOINTS, LEFT_HIP, LEFT_SHOULDER, RIGHT_HIP, RIGHT_SHOULDER

SIGNAL_SIZE = (24, 32)  # (H, W) of the grey frames the signal is made of
MIN_CONFIDENCE = 0.3
# A single movement: its direction carries this share of all change (noise spreads over every direction),
# it goes this far from the clip's ends (a share of its range) and comes back this close to where it began.
SINGLE_MIN_SHARE = 0.3
SINGLE_MIN_EXCURSION = 0.6
SINGLE_MAX_END_GAP = 0.4


@dataclass(frozen=True)
class Repetitions:
    """``count`` repetitions, each ``(start_s, end_s)`` in ``times``; ``period_s`` the typical one;
    ``confidence`` in [0, 1] (the autocorrelation at the period). ``count == 0``: none found."""

    count: int
    times: list[tuple[float, float]] = field(default_factory=list)
    period_s: float | None = None
    confidence: float = 0.0
    source: str = "pixels"  # what was counted: "pixels" (the picture's motion) or "pose" (the body's joints)

    @property
    def found(self) -> bool:
        return self.count > 0

    def to_dict(self) -> dict:
        return {
            "reps": self.count,
            "rep_times": [[round(a, 2), round(b, 2)] for a, b in self.times],
            "rep_period_s": None if self.period_s is None else round(self.period_s, 3),
            "rep_confidence": round(self.confidence, 3),
            "rep_source": self.source,
        }


def frame_signal(frames: np.ndarray) -> np.ndarray:
    """uint8 RGB frames ``[T, H, W, 3]`` -> ``[T, D]`` float signal: small grey images, each frame's mean
    brightness removed (a flicker of the light is not a movement)."""
    return grey_signal(np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]))


def grey_signal(grey: np.ndarray) -> np.ndarray:
    """uint8 grey frames ``[T, H, W]`` -> ``[T, D]``, the signal of :func:`frame_signal` (which is this of
    the frames' grey pictures)."""
    h, w = SIGNAL_SIZE
    small = np.stack([cv2.resize(g, (w, h), interpolation=cv2.INTER_AREA) for g in grey])
    x = small.reshape(len(grey), -1).astype(np.float32)
    return x - x.mean(1, keepdims=True)


def _principal(signal: np.ndarray, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """``[T, D]`` -> the directions of change over time ``[min(T, D), T]`` (largest first) and each one's share
    of all change, the signal smoothed over ~0.1 s first (sensor noise is not a movement)."""
    x = signal - signal.mean(0)
    width = max(1, int(round(0.1 * fps)))
    if width > 1:
        kernel = np.ones(width) / width
        x = np.apply_along_axis(lambda c: np.convolve(c, kernel, mode="same"), 0, x)
    u, s, _ = np.linalg.svd(x, full_matrices=False)
    total = float((s**2).sum())
    return (u * s).T, (s**2) / total if total > 0 else np.zeros_like(s)


def _components(principal: np.ndarray, fps: float, max_period_s: float, k: int = 3) -> np.ndarray:
    """The directions of change ``[min(T, D), T]`` (:func:`_principal`) -> ``[k, T]``: the main ones, slow
    drift removed."""
    comps = principal[:k].copy()
    # remove drift slower than the longest period (a hand-held camera that wanders, a person who shifts)
    win = int(round(2 * max_period_s * fps)) | 1
    if win < comps.shape[1]:
        pad = win // 2
        kernel = np.ones(win) / win
        for c in comps:
            trend = np.convolve(np.pad(c, pad, mode="edge"), kernel, mode="valid")
            c -= trend
    elif comps.shape[1] >= 3:
        # a clip shorter than the drift window drifts too: its straight line is slower than any period it can
        # hold (at most 2/3 of it), and left in, it hides the period of a short clip's two or three repetitions
        t = np.arange(comps.shape[1], dtype=np.float64)
        for c in comps:
            c -= np.polyval(np.polyfit(t, c, 1), t)
    return comps


def _autocorrelation(c: np.ndarray) -> np.ndarray:
    c = c - c.mean()
    n = len(c)
    spec = np.fft.rfft(c, 2 * n)
    ac = np.fft.irfft(spec * np.conj(spec))[:n]
    # unbiased: divide by the overlap, then normalise to 1 at lag 0
    ac = ac / np.arange(n, 0, -1)
    return ac / ac[0] if ac[0] > 0 else np.zeros(n)


def count_repetitions(
    signal: np.ndarray, fps: float, *, min_period_s: float = 0.25, max_period_s: float = 6.0
) -> Repetitions:
    """Repetitions in a per-frame signal ``[T, D]`` sampled at ``fps`` (see :func:`frame_signal`)."""
    t = len(signal)
    max_lag = min(int(max_period_s * fps), (2 * t) // 3)  # two repetitions in a clip: a period up to 2/3 of it
    min_lag = max(2, int(round(min_period_s * fps)))
    if t < 8:
        return Repetitions(0)
    principal, share = _principal(signal, fps)  # one decomposition, for a period and a single movement alike
    if max_lag <= min_lag:
        return _single_movement(principal, share, fps)
    comps = _components(principal, fps, max_period_s)
    energy = (comps**2).sum(1)
    if energy.sum() <= 1e-9:
        return Repetitions(0)
    acs = np.stack([_autocorrelation(c) for c in comps])
    weights = energy / energy.sum()
    ac = (weights[:, None] * acs).sum(0)
    lags = np.arange(min_lag, max_lag + 1)
    window = ac[min_lag : max_lag + 1]
    peaks = [
        i
        for i in range(1, len(window) - 1)
        if window[i] >= window[i - 1] and window[i] >= window[i + 1] and window[i] > 0
    ]
    if not peaks:
        return _single_movement(principal, share, fps)
    best = max(window[i] for i in peaks)
    # the first peak nearly as high as the highest: a period, not a multiple of it
    first = next(i for i in peaks if window[i] >= 0.8 * best)
    period = int(lags[first])
    confidence = float(np.clip(window[first], 0.0, 1.0))
    if confidence < MIN_CONFIDENCE:
        return _single_movement(principal, share, fps)
    # The main component less its mean over one period: a slow drift or a shift under the movement (a person
    # coming closer, a step into position) would lift some repetitions' peaks above the others' level.
    main = _minus_mean_over(comps[int(np.argmax([a[period] * w for a, w in zip(acs, weights)]))], period)
    # a repetition is one peak of the main component, whichever of its two extremes is the sharper
    peaks = _peaks(main, period) if _sharpness(main) >= _sharpness(-main) else _peaks(-main, period)
    if len(peaks) < 2:
        return _single_movement(principal, share, fps)
    # The movement spans from half a period before its first peak to half a period after its last (within
    # the clip); the count is that span in periods. Counting peaks alone would count the rest pose at both
    # ends of a clip of whole repetitions, which is one more than the repetitions.
    exact = min_lag + _refined(window, first)  # the period to a fraction of a frame: the count adds it up
    start, end = max(0.0, peaks[0] - exact / 2), min(float(t - 1), peaks[-1] + exact / 2)
    count = max(1, int(round((end - start) / exact)))
    bounds: list[tuple[float, float]]
    if len(peaks) == count + 1:  # peaks at the rest pose: each repetition runs from one to the next
        bounds = [(float(peaks[i]), float(peaks[i + 1])) for i in range(count)]
    else:
        step = (end - start) / count
        bounds = [(start + i * step, start + (i + 1) * step) for i in range(count)]
    return Repetitions(count, [(a / fps, b / fps) for a, b in bounds], exact / fps, confidence)


def _single_movement(principal: np.ndarray, share: np.ndarray, fps: float) -> Repetitions:
    """One repetition if the main direction of change (``principal[0]``, ``share[0]`` of all change) leaves the
    level of the clip's ends and comes back to it, else none. Its confidence is how far it goes (a share of
    its range) beyond the ends' level."""
    c = principal[0]
    t, k = len(c), max(2, len(c) // 10)
    span = float(c.max() - c.min())
    if share[0] < SINGLE_MIN_SHARE or span <= 1e-6:
        return Repetitions(0)
    c = (c - c.min()) / span
    start, end = float(c[:k].mean()), float(c[-k:].mean())
    level = (start + end) / 2
    d = c - level if (c - level).max() >= (level - c).max() else level - c  # the movement's side of the level
    top = int(np.argmax(d))
    excursion = float(d[top] - max(d[:k].mean(), d[-k:].mean()))
    if abs(start - end) > SINGLE_MAX_END_GAP or excursion < SINGLE_MIN_EXCURSION or not 0.15 * t <= top <= 0.85 * t:
        return Repetitions(0)
    # it lasts while it is more than half-way out
    half = d[top] / 2
    a, b = top, top
    while a > 0 and d[a - 1] > half:
        a -= 1
    while b < t - 1 and d[b + 1] > half:
        b += 1
    return Repetitions(1, [(a / fps, (b + 1) / fps)], None, min(1.0, excursion))


def surer(pixels: Repetitions, pose: Repetitions | None) -> Repetitions:
    """The count from the body's joints where it is at least as sure as the count from the picture's motion.
    The joints ignore the camera and the room, but not every clip shows a person: both are counted, and the
    more periodic wins (measured on the hand-counted clips, docs/counting.md)."""
    if pose is None or pose.confidence < pixels.confidence:
        return pixels
    return pose


def _refined(ac: np.ndarray, i: int) -> float:
    """The index of the peak of ``ac`` ``[L]`` at ``i`` to a fraction of a sample (the vertex of the parabola
    through it and its two neighbours). A period of whole frames is up to half a frame off, and a count of
    25 periods adds that error up 25 times (a jump every 14.7 frames read as 15: 29 of 30)."""
    if not 0 < i < len(ac) - 1:
        return float(i)
    a, b, c = ac[i - 1], ac[i], ac[i + 1]
    bend = a - 2 * b + c
    return float(i) if bend >= 0 else i + float(np.clip(0.5 * (a - c) / bend, -0.5, 0.5))


def _minus_mean_over(c: np.ndarray, period: int) -> np.ndarray:
    """``c`` ``[T]`` less its moving mean over ``period`` samples: what repeats at that period stays (its mean
    over a period is its level), what is slower goes."""
    if period < 2 or period >= len(c):
        return c
    padded = np.pad(c, (period // 2, period - 1 - period // 2), mode="edge")
    return c - np.convolve(padded, np.ones(period) / period, mode="valid")


def _sharpness(c: np.ndarray) -> float:
    return float(c.max() - np.median(c))


def _peaks(c: np.ndarray, period: int) -> list[int]:
    """Indices of peaks of ``c`` at least 0.6 periods apart, each higher than the middle of the signal's range."""
    level = np.median(c) + 0.25 * (c.max() - np.median(c))
    candidates = [
        i
        for i in range(len(c))
        if c[i] > level and (i == 0 or c[i] >= c[i - 1]) and (i == len(c) - 1 or c[i] >= c[i + 1])
    ]
    chosen: list[int] = []
    for i in sorted(candidates, key=lambda j: -c[j]):
        if all(abs(i - j) >= 0.6 * period for j in chosen):
            chosen.append(i)
    return sorted(chosen)


class RepCounter:
    """Online repetitions of one movement: events found in the signal as it comes, each with its own start and
    end, never an even split of a span.

    Two signals come in: the body's joints (``add_joints``: landmarks ``[33, 4]`` at the engine's rate) and
    the picture (``add_pixels``: every frame's small grey image, :func:`frame_signal`). Once
    :data:`RepCounter.CHOOSE_AFTER_S` of signal is in, one is chosen for the whole movement: the joints where
    a person is found in most samples, unless the movement repeats too fast for their samples (three a
    period), else the picture. Its main direction of change (PCA over the last :attr:`window_s`) is
    followed with two thresholds (30 % and 70 % of its 10th-90th percentile range, over the window and, once
    repetitions are counted, over the last two of them or 3 s): a repetition is a trip
    to the other side and back (every second crossing), whichever side the movement starts on. So a pause
    adds nothing (nothing crosses), the tempo may change, a half repetition at either end is not counted,
    and a count, once made, stays.
    """

    CHOOSE_AFTER_S = 2.0
    JOINT_MIN_RANGE = 0.3  # torso lengths along the main direction: less is the tracker's jitter
    PIXEL_MIN_RANGE = 40.0  # grey levels along the main direction (24 x 32 image)
    LOW, HIGH = 0.3, 0.7
    RANGE_REPS, RANGE_MIN_S = 2.0, 3.0  # the thresholds' range, once repetitions are counted (_range_s)

    def __init__(self, *, window_s: float = 6.0, min_period_s: float = 0.1, history_s: float = 30.0):
        self.window_s, self.min_period_s, self.history_s = window_s, min_period_s, history_s
        self._joints: list[tuple[float, np.ndarray | None]] = []
        self._pixels: list[tuple[float, np.ndarray]] = []
        self.source: str | None = None
        self.times: list[tuple[float, float]] = []
        self._done = 0  # samples of the chosen signal already followed
        self._dir: np.ndarray | None = None
        self._side: int | None = None  # 0: below the low threshold, 1: above the high one
        self._crossings = 0
        self._left_t = 0.0  # when the signal was last on the side it left
        self._last_t = 0.0

    @property
    def count(self) -> int:
        return len(self.times)

    def buffered(self) -> int:
        """Samples held (at most ``history_s`` of each signal)."""
        return len(self._joints) + len(self._pixels)

    def add_joints(self, t: float, landmarks: np.ndarray) -> None:
        """Landmarks ``[33, 4]`` (NaN: nobody) at ``t`` seconds."""
        xy = landmarks[list(COUNT_JOINTS), :2].astype(np.float64)
        if np.isnan(xy).any():
            self._joints.append((t, None))
        else:
            torso = float(
                np.linalg.norm(
                    landmarks[[LEFT_SHOULDER, RIGHT_SHOULDER], :2].mean(0)
                    - landmarks[[LEFT_HIP, RIGHT_HIP], :2].mean(0)
                )
            )
            self._joints.append((t, np.concatenate([xy.reshape(-1), [max(torso, 1e-3)]])))
        self._trim(self._joints)

    def add_pixels(self, t: float, grey: np.ndarray) -> None:
        """One frame's signal ``[D]`` (:func:`frame_signal`) at ``t`` seconds."""
        self._pixels.append((t, grey))
        self._trim(self._pixels)

    def _trim(self, buf: list) -> None:
        # keep what is followed and not yet followed: a long set holds history_s of signal at most
        if len(buf) > 8 and buf[-1][0] - buf[0][0] > self.history_s:
            cut = next(i for i, (t, _) in enumerate(buf) if buf[-1][0] - t <= self.history_s)
            if buf is self._signal_buffer():
                cut = min(cut, self._done)
                self._done -= cut
            del buf[:cut]

    def _signal_buffer(self) -> list | None:
        return self._joints if self.source == "pose" else self._pixels if self.source == "pixels" else None

    def _choose(self, final: bool) -> None:
        both = self._joints or self._pixels
        if not both or (both[-1][0] - both[0][0] < self.CHOOSE_AFTER_S and not final):
            return
        found = sum(x is not None for _, x in self._joints)
        if self._joints and found >= 0.7 * len(self._joints) and found >= 8:
            rate = (len(self._joints) - 1) / max(self._joints[-1][0] - self._joints[0][0], 1e-6)
            fast = False
            fps = (len(self._pixels) - 1) / max(self._pixels[-1][0] - self._pixels[0][0], 1e-6) if self._pixels else 0
            if fps > 1.5 * rate:  # the picture is sampled finer: is it a movement too fast for the joints?
                pix = count_repetitions(np.stack([g for _, g in self._pixels]), fps)
                fast = pix.period_s is not None and pix.confidence >= 0.5 and pix.period_s < 3 / rate
            self.source = "pixels" if fast else "pose"
        else:
            self.source = "pixels"

    def _values(self, buf: list) -> tuple[np.ndarray, np.ndarray]:
        """The followed signal's times ``[N]`` and vectors ``[N, D]`` (joints in torso lengths; samples with
        nobody take the last found one's)."""
        if self.source == "pixels":
            return np.array([t for t, _ in buf]), np.stack([g for _, g in buf]).astype(np.float64)
        found = [x for _, x in buf if x is not None]
        if not found:
            return np.zeros(0), np.zeros((0, 1))
        rows, last = [], found[0]
        for _, x in buf:
            last = x if x is not None else last
            rows.append(last)
        arr = np.stack(rows)
        torso = float(np.median(arr[:, -1]))
        return np.array([t for t, _ in buf]), arr[:, :-1] / torso

    def _range_s(self) -> float:
        """How far back the thresholds' range reaches: the window until a repetition is counted, then
        :attr:`RANGE_REPS` median repetitions (at least :attr:`RANGE_MIN_S`, at most the window)."""
        if not self.times:
            return self.window_s
        typical = float(np.median([b - a for a, b in self.times]))
        return min(self.window_s, max(self.RANGE_MIN_S, self.RANGE_REPS * typical))

    def update(self, *, final: bool = False) -> list[tuple[float, float]]:
        """Follow the signal that came since the last update; the repetitions completed in it."""
        if self.source is None:
            self._choose(final)
            if self.source is None:
                return []
        buf = self._signal_buffer()
        assert buf is not None
        ts, x = self._values(buf)
        if len(ts) < 4:
            return []
        done = self._done
        recent = ts >= ts[-1] - self.window_s
        w = x[recent]
        centre = w.mean(0)
        _, sv, vt = np.linalg.svd(w - centre, full_matrices=False)
        direction = vt[0]
        if self._dir is not None and float(direction @ self._dir) < 0:
            direction = -direction
        self._dir = direction
        proj = (x - centre) @ direction
        fps = (len(ts) - 1) / max(ts[-1] - ts[0], 1e-6)
        k = max(1, int(round(0.1 * fps))) if self.source == "pixels" else 1
        # The thresholds come from the range of the last few repetitions once there are some (at least
        # RANGE_MIN_S, RANGE_REPS of the median repetition, at most the window): a step inside the window (a
        # camera cut, a kick up into a handstand) would otherwise widen the range past the repetitions after it
        # for a whole window. The 10th-90th percentiles: a jump into position is not the range.
        lately = ts >= ts[-1] - self._range_s()
        lo_p, hi_p = np.percentile(proj[lately], [10, 90])
        span = hi_p - lo_p
        least = self.JOINT_MIN_RANGE if self.source == "pose" else self.PIXEL_MIN_RANGE
        new: list[tuple[float, float]] = []
        lo, hi = lo_p + self.LOW * span, lo_p + self.HIGH * span
        for i in range(done, len(ts)):
            v = float(proj[max(0, i - k + 1) : i + 1].mean())
            if span < least:
                continue
            level = 0 if v <= lo else 1 if v >= hi else None
            if level is None:
                continue
            if self._side is not None and level != self._side:
                # a crossing to the other side: every second one completes a repetition (a trip out and back,
                # whichever side the movement started on)
                self._crossings += 1
                if self._crossings % 2 == 1:
                    self._left_t = self._last_t
                elif ts[i] - self._left_t >= self.min_period_s:
                    new.append((self._left_t, float(ts[i])))
                else:
                    self._crossings -= 2  # too quick to be a repetition: the tracker's jitter
            self._side = level
            self._last_t = float(ts[i])
        self._done = len(ts)
        self.times.extend(new)
        return new
