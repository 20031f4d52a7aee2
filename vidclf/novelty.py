"""Is this movement shaped like the class the model answered? A check of the body's movement on top of a
classifier: "not one of these" for a clip whose movement is far from every training clip of its answer.

A classifier maps any moving person near some class (a plank comes back as push-ups, arm circles as jumping
jacks). The clip's **movement signature** (:func:`movement_signature`) says what moves and how: which joints
move (in torso lengths), whether the body is upright, horizontal or upside down, how the main joint angles
range, how periodic the movement is. A :class:`MovementProfile` holds each class's training clips'
signatures; a clip's **novelty** is the distance of its signature to its answer's nearest training clips,
in units of the training clips' own distances (:meth:`MovementProfile.novelty`); the rule refuses a clip
whose novelty is above a threshold calibrated on out-of-fold known-class clips.

A profile may also carry :class:`OtherActionOdds`: a logistic regression, trained on known-class clips
against clips of other actions, of the log-odds that a clip is of another action from its novelty and the
classifier's confidence (evidence, top probability, margin, entropy). The check's score is then those
log-odds (:meth:`MovementProfile.check_score`), and the threshold applies to them: a clip whose movement is
a little off *and* whose answer is unsure is refused, where either alone would pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from vidclf.fusion import evidence
from vidclf.models.pose import found_mask

# BlazePose indices (see vidclf.models.pose): shoulders, elbows, wrists, hips, knees, ankles, nose.
_SHOULDERS, _ELBOWS, _WRISTS = (11, 12), (13, 14), (15, 16)
_HIPS, _KNEES, _ANKLES, _NOSE = (23, 24), (25, 26), (27, 28), 0
# The joint angles, left and right, at the middle landmark: elbows, shoulders, hips, knees.
_ANGLE_PAIRS = (
    ((11, 13, 15), (12, 14, 16)),
    ((13, 11, 23), (14, 12, 24)),
    ((11, 23, 25), (12, 24, 26)),
    ((23, 25, 27), (24, 26, 28)),
)
# A signature needs a person in at least this many sampled frames; below it the check abstains.
MIN_FOUND_FRAMES = 4

SIGNATURE_NAMES = (
    "found",
    "upright_mean",
    "upright_min",
    "upright_max",
    "sideways_mean",
    *(f"move_{j}" for j in ("wrists", "elbows", "knees", "ankles", "nose", "shoulders")),
    "hip_path_x",
    "hip_path_y",
    *(f"angle_range_{a}" for a in ("elbow", "shoulder", "hip", "knee")),
    *(f"angle_mean_{a}" for a in ("elbow", "shoulder", "hip", "knee")),
    "wrists_above_nose",
    "ankle_spread_range",
    "period_strength",
    "period",
)
SIGNATURE_DIM = len(SIGNATURE_NAMES)


def _filled(xy: np.ndarray, found: np.ndarray) -> np.ndarray:
    """``[T, J, 2]`` with frames without a person (``found`` False) filled in from the frames around them."""
    t = np.arange(len(xy))
    out = xy.copy()
    for j in range(xy.shape[1]):
        for d in range(2):
            out[:, j, d] = np.interp(t, t[found], xy[found, j, d])
    return out


def _angle(xy: np.ndarray, a: int, b: int, c: int) -> np.ndarray:
    u, v = xy[:, a] - xy[:, b], xy[:, c] - xy[:, b]
    cos = (u * v).sum(1) / np.maximum(np.linalg.norm(u, axis=1) * np.linalg.norm(v, axis=1), 1e-9)
    return np.arccos(np.clip(cos, -1.0, 1.0))


def _periodicity(signal: np.ndarray) -> tuple[float, float]:
    """``[T, D]`` -> (strength, period in frames): the highest normalised autocorrelation of the movement's
    first principal component at a lag of 2 to T/2 frames, and that lag (0 and 0 for a still body)."""
    x = signal - signal.mean(0)
    if not np.isfinite(x).all() or np.abs(x).max() < 1e-6:
        return 0.0, 0.0
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    p = x @ vt[0]
    p = p / max(float(np.sqrt((p**2).sum())), 1e-9)
    lags = range(2, max(3, len(p) // 2 + 1))
    ac = np.array([(p[:-lag] * p[lag:]).sum() * len(p) / (len(p) - lag) for lag in lags])
    best = int(np.argmax(ac))
    return float(max(ac[best], 0.0)), float(list(lags)[best] / len(p))


def movement_signature(raw: np.ndarray) -> np.ndarray | None:
    """Raw landmarks ``[T, 33, 4]`` (NaN rows: no person) -> float64 ``[SIGNATURE_DIM]`` (see
    :data:`SIGNATURE_NAMES`), or None when a person is found in fewer than :data:`MIN_FOUND_FRAMES` frames.

    Positions are hip-centred and in the clip's median torso lengths, so the camera's distance cancels;
    left and right are pooled (a mirrored clip has the same signature); motion energies are logs of the
    joints' spread over time."""
    found = found_mask(raw)
    if found.sum() < MIN_FOUND_FRAMES:
        return None
    xy = _filled(raw[:, :, :2].astype(np.float64), found)
    hip = xy[:, _HIPS].mean(1)
    shoulder = xy[:, _SHOULDERS].mean(1)
    torso_v = shoulder - hip
    torso = np.linalg.norm(torso_v, axis=1)
    scale = max(float(np.median(torso[found])), 1e-3)
    rel = (xy - hip[:, None]) / scale
    up = torso_v / np.maximum(torso, 1e-9)[:, None]
    upright = -up[:, 1]  # image y grows downwards: 1 upright, 0 lying, -1 upside down

    def energy(joints: tuple[int, ...] | int) -> float:
        p = rel[:, list(joints) if isinstance(joints, tuple) else [joints]]
        return float(np.log(0.01 + np.sqrt(p.var(0).sum(-1)).mean()))

    hip_path = (hip - hip.mean(0)) / scale
    ranges, means = [], []
    for left, right in _ANGLE_PAIRS:
        angles = [_angle(xy, *left), _angle(xy, *right)]
        ranges.append(max(float(np.percentile(a, 90) - np.percentile(a, 10)) for a in angles))
        means.append(float(np.mean([a.mean() for a in angles])))
    wrists_above = float((rel[:, list(_WRISTS), 1].min(1) < rel[:, _NOSE, 1]).mean())
    spread = np.abs(rel[:, _ANKLES[0], 0] - rel[:, _ANKLES[1], 0])
    joints = (_NOSE, *_SHOULDERS, *_ELBOWS, *_WRISTS, *_HIPS, *_KNEES, *_ANKLES)
    strength, period = _periodicity(np.concatenate([rel[:, joints].reshape(len(rel), -1), hip_path], 1))
    return np.array(
        [
            float(found.mean()),
            float(upright.mean()),
            float(upright.min()),
            float(upright.max()),
            float(np.abs(up[:, 0]).mean()),
            energy(_WRISTS),
            energy(_ELBOWS),
            energy(_KNEES),
            energy(_ANKLES),
            energy(_NOSE),
            energy(_SHOULDERS),
            float(np.log(0.01 + hip_path[:, 0].std())),
            float(np.log(0.01 + hip_path[:, 1].std())),
            *ranges,
            *means,
            wrists_above,
            float(np.percentile(spread, 90) - np.percentile(spread, 10)),
            strength,
            period,
        ]
    )


# What :class:`OtherActionOdds` reads, in this order.
ODDS_INPUTS = ("log_novelty", "evidence", "top_probability", "margin", "entropy")


def odds_inputs(novelty: np.ndarray | float, logits: np.ndarray) -> np.ndarray:
    """A clip's novelty (``[...]``) and the classifier's known-class logits ``[..., K]`` -> ``[..., 5]`` (see
    :data:`ODDS_INPUTS`): the novelty's logarithm (a distance's tail is long: one far-off clip must not set the
    scale), the evidence (log-sum-exp of the logits), the top softmax probability, its margin over the
    runner-up, and the softmax's entropy."""
    lg = np.asarray(logits, np.float64)
    e = np.exp(lg - lg.max(-1, keepdims=True))
    p = e / e.sum(-1, keepdims=True)
    top2 = np.sort(p, -1)[..., -2:]
    nov = np.broadcast_to(np.asarray(novelty, np.float64), lg.shape[:-1])
    return np.stack(
        [
            np.log(np.maximum(nov, 1e-3)),
            evidence(lg),
            top2[..., 1],
            top2[..., 1] - top2[..., 0],
            -(p * np.log(np.maximum(p, 1e-12))).sum(-1),
        ],
        -1,
    )


@dataclass(frozen=True)
class OtherActionOdds:
    """The log-odds that a clip is of another action than the classes: a logistic regression on
    :func:`odds_inputs` standardised by ``center`` and ``scale`` (``[5]``), with ``coef [5]`` and ``bias``."""

    center: np.ndarray  # [5]
    scale: np.ndarray  # [5]
    coef: np.ndarray  # [5]
    bias: float

    @classmethod
    def fit(cls, inputs: np.ndarray, other: np.ndarray, *, l2: float = 0.01) -> OtherActionOdds:
        """Inputs ``[N, 5]`` (:func:`odds_inputs`) of known-class clips and of clips of other actions (``other``,
        bool ``[N]``). The two kinds weigh the same in all (a few dozen other clips beside hundreds of known
        ones); the loss is the weighted mean cross-entropy plus ``l2`` times the squared coefficients,
        minimised by Newton's method (five numbers: a few steps)."""
        x, y = np.asarray(inputs, np.float64), np.asarray(other, bool)
        if y.all() or not y.any():
            raise ValueError("the odds of another action need clips of the classes and clips of other actions")
        center, scale = x.mean(0), x.std(0) + 1e-6
        a = np.c_[(x - center) / scale, np.ones(len(x))]
        w = np.where(y, (~y).sum() / y.sum(), 1.0)
        w = w / w.mean()
        reg = np.full(a.shape[1], 2 * l2)
        reg[-1] = 0.0  # the bias is not shrunk
        beta = np.zeros(a.shape[1])
        for _ in range(100):
            p = 1.0 / (1.0 + np.exp(-(a @ beta)))
            grad = a.T @ (w * (p - y)) / len(x) + reg * beta
            hess = (a * (w * p * (1 - p))[:, None]).T @ a / len(x) + np.diag(reg)
            step = np.linalg.solve(hess, grad)
            beta = beta - step
            if np.abs(step).max() < 1e-10:
                break
        return cls(center, scale, beta[:-1], float(beta[-1]))

    def log_odds(self, inputs: np.ndarray) -> np.ndarray:
        """Inputs ``[..., 5]`` -> ``[...]``: above 0, more likely another action."""
        return ((np.asarray(inputs, np.float64) - self.center) / self.scale) @ self.coef + self.bias

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": list(ODDS_INPUTS),
            "center": self.center.tolist(),
            "scale": self.scale.tolist(),
            "coef": self.coef.tolist(),
            "bias": self.bias,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OtherActionOdds:
        if list(d.get("inputs", [])) != list(ODDS_INPUTS):
            raise ValueError("these odds of another action read other inputs; fit them again")
        return cls(
            center=np.asarray(d["center"], np.float64),
            scale=np.asarray(d["scale"], np.float64),
            coef=np.asarray(d["coef"], np.float64),
            bias=float(d["bias"]),
        )


@dataclass(frozen=True)
class MovementProfile:
    """Each class's movement signatures as a Gaussian: ``mean [K, D]`` and ``precision [K, D, D]`` of the
    standardised signatures (``center``, ``scale`` ``[D]``: the training clips' mean and spread), each class's
    covariance shrunk towards the classes' pooled one (a few dozen clips a class cannot fill 25 x 25 numbers).
    ``threshold``: a clip whose check score (:meth:`check_score`: the novelty, or with ``odds`` the log-odds of
    another action) is above it is "not one of these" (None: the profile only measures)."""

    classes: tuple[str, ...]
    center: np.ndarray  # [D]
    scale: np.ndarray  # [D]
    mean: np.ndarray  # [K, D]
    precision: np.ndarray  # [K, D, D]
    threshold: float | None = None
    shrink: float = 0.5
    odds: OtherActionOdds | None = None

    @classmethod
    def fit(
        cls, signatures: np.ndarray, labels: np.ndarray, classes: tuple[str, ...], *, shrink: float = 0.5
    ) -> MovementProfile:
        """Signatures ``[N, D]`` (rows of NaN: no signature, left out) of clips of ``classes`` (``labels [N]``)."""
        ok = ~np.isnan(signatures).any(1) & (labels >= 0) & (labels < len(classes))
        x, y = signatures[ok], labels[ok]
        missing = [c for k, c in enumerate(classes) if (y == k).sum() < 3]
        if missing:
            raise ValueError(f"a movement profile needs at least 3 clips with a person per class; too few: {missing}")
        center, scale = x.mean(0), x.std(0) + 0.05  # a feature constant in training must not weigh infinitely
        z = (x - center) / scale
        d = z.shape[1]
        means = np.stack([z[y == k].mean(0) for k in range(len(classes))])
        pooled = np.cov((z - means[y]).T)
        precision = []
        for k in range(len(classes)):
            cov = (1 - shrink) * np.cov(z[y == k].T) + shrink * pooled
            cov = cov + 1e-3 * np.trace(cov) / d * np.eye(d)  # never singular
            precision.append(np.linalg.inv(cov))
        return cls(
            classes=classes, center=center, scale=scale, mean=means, precision=np.stack(precision), shrink=shrink
        )

    def novelty(self, signature: np.ndarray, cls: int | np.ndarray) -> np.ndarray:
        """Signatures ``[..., D]`` and the answered class (an index, or ``[...]``) -> ``[...]``: the Mahalanobis
        distance of each signature to that class's Gaussian, per dimension (about 1 for a typical clip)."""
        z = (np.asarray(signature, np.float64) - self.center) / self.scale
        c = np.broadcast_to(np.asarray(cls), z.shape[:-1])
        diff = z - self.mean[c]
        m2 = np.einsum("...d,...de,...e->...", diff, self.precision[c], diff)
        return np.sqrt(np.maximum(m2, 0.0) / z.shape[-1])

    def check_score(self, novelty: np.ndarray | float, logits: np.ndarray) -> np.ndarray:
        """The score :attr:`threshold` applies to, of clips with this ``novelty`` (``[...]``) whose classifier
        gave known-class ``logits`` (``[..., K]``): the novelty itself, or with :attr:`odds` the log-odds that
        the clip is of another action. NaN novelty (no signature) stays NaN: the check abstains."""
        nov = np.asarray(novelty, np.float64)
        if self.odds is None:
            return nov
        return np.where(np.isnan(nov), np.nan, self.odds.log_odds(odds_inputs(np.nan_to_num(nov), logits)))

    def judge(self, raw: np.ndarray, cls: int, logits: np.ndarray | None = None) -> tuple[bool, float | None]:
        """Raw landmarks ``[T, 33, 4]`` of a clip answered as class ``cls`` (its known-class ``logits`` ``[K]``,
        needed where the profile has :attr:`odds`) -> (whether its movement passes the check, its check score).
        A clip without enough frames with a person passes (the person gate decides it)."""
        sig = movement_signature(raw)
        if sig is None:
            return True, None
        if self.odds is not None and logits is None:
            raise ValueError("this profile's check reads the classifier's logits too: pass them")
        nov = float(self.novelty(sig, cls))
        score = nov if logits is None else float(self.check_score(nov, logits))
        return self.threshold is None or score <= self.threshold, score

    def to_dict(self) -> dict[str, Any]:
        """Plain lists and numbers (a checkpoint's ``info`` holds it; checkpoints load weights-only)."""
        return {
            "kind": "movement_gaussian",
            "signature": list(SIGNATURE_NAMES),
            "classes": list(self.classes),
            "center": self.center.tolist(),
            "scale": self.scale.tolist(),
            "mean": self.mean.tolist(),
            "precision": self.precision.tolist(),
            "threshold": self.threshold,
            "shrink": self.shrink,
            "odds": None if self.odds is None else self.odds.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MovementProfile:
        if d.get("kind") != "movement_gaussian" or list(d.get("signature", [])) != list(SIGNATURE_NAMES):
            raise ValueError("this movement profile was made with another movement signature; fit it again")
        t = d.get("threshold")
        return cls(
            classes=tuple(str(c) for c in d["classes"]),
            center=np.asarray(d["center"], np.float64),
            scale=np.asarray(d["scale"], np.float64),
            mean=np.asarray(d["mean"], np.float64),
            precision=np.asarray(d["precision"], np.float64),
            threshold=None if t is None else float(t),
            shrink=float(d.get("shrink", 0.5)),
            odds=OtherActionOdds.from_dict(d["odds"]) if d.get("odds") else None,
        )
