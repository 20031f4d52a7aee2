"""How a checkpoint's streams' logits become one answer: the classes' probabilities, and whether the clip is
one of the classes at all ("not one of these" otherwise). :meth:`vidclf.predict.Predictor.verdict` and
``evaluate`` decide through these two functions and nothing else.

A stream trained on clips of other actions has one more output than the checkpoint has classes (its last,
"other"). Fused logits are then ``[..., K + 1]``: the weighted sum of every stream's known-class logits, and
last the log-odds of "other" in the mean logits of the streams that have that output (a pixel stream that
never saw other actions has no say in it). Without such a stream fused logits are ``[..., K]``.

A checkpoint may also carry a movement profile (:mod:`vidclf.novelty`): a clip whose body moves unlike its
answer's training clips is refused too, whatever the logits say ("the movement doesn't look like it"); with
the profile's odds of another action, how unlike and how unsure the answer is are weighed together.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def combine(
    logits: Sequence[torch.Tensor], weights: Sequence[float], other: Sequence[bool], num_classes: int
) -> torch.Tensor:
    """Streams' logits (each ``[..., K]``, or ``[..., K + 1]`` where ``other`` says it has an "other" output)
    with their fusion ``weights`` -> fused logits ``[..., K]`` or ``[..., K + 1]`` (see the module's text)."""
    k = num_classes
    fused = sum(w * lg[..., :k] for w, lg in zip(weights, logits))
    assert isinstance(fused, torch.Tensor)
    votes = [(w, lg) for w, lg, o in zip(weights, logits, other) if o]
    if not votes:
        return fused
    total = sum(w for w, _ in votes)
    share = [w / total if total > 0 else 1.0 / len(votes) for w, _ in votes]
    mean = sum(s * lg for s, (_, lg) in zip(share, votes))
    assert isinstance(mean, torch.Tensor)
    log_odds = mean[..., k] - torch.logsumexp(mean[..., :k], -1)
    return torch.cat([fused, log_odds[..., None]], -1)


def known_score(fused: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``[..., K(+1)]`` fused logits -> ``[...]``: how surely the clip is one of the classes. With an "other"
    output, one minus its probability (0-1); without, the evidence, the log-sum-exp of the logits (the
    negative energy of Liu et al., 2020)."""
    if fused.shape[-1] == num_classes + 1:
        return torch.sigmoid(-fused[..., num_classes])
    return torch.logsumexp(fused, -1)


def decide(
    fused: torch.Tensor,
    num_classes: int,
    threshold: float | None,
    pose_found: torch.Tensor | float | None = None,
    *,
    movement_score: torch.Tensor | float | None = None,
    movement_threshold: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fused logits ``[..., K(+1)]`` -> class probabilities ``[..., K]``, known (bool ``[...]``) and the score it
    was judged on (``[...]``). ``pose_found``: the share of the pose stream's frames with a person (``[...]`` or
    a number); a model that reads the body refuses a clip with nobody in it. ``movement_score``: the movement
    check's score (:meth:`vidclf.novelty.MovementProfile.check_score`: how far the clip's movement is from its
    answer's class, or the log-odds that it is another action; ``[...]`` or a number; NaN where the check
    abstains); above ``movement_threshold`` the clip is refused whatever its score."""
    probs = fused[..., :num_classes].softmax(-1)
    score = known_score(fused, num_classes)
    known = score >= threshold if threshold is not None else torch.ones_like(score, dtype=torch.bool)
    if pose_found is not None:
        known = known & (torch.as_tensor(pose_found) > 0)
    if movement_score is not None and movement_threshold is not None:
        # NaN > t is False: a clip without a movement signature is left to the other rules
        known = known & ~(torch.as_tensor(movement_score, dtype=torch.float64) > movement_threshold)
    return probs, known, score
