"""What a person reads about a prediction: class names in plain words, how sure the answer is (in words, not a
bare percentage), and the answer's headline (the exercise, the count, the time).

Identifiers (``BodyWeightSquats``) stay what the API, the JSON and the checkpoints use; only text meant for a
person goes through :func:`plain_name`.

How sure, from the fused class probabilities (top ``p1``, runner-up ``p2``):

| band | rule | the page says |
| --- | --- | --- |
| ``sure`` | ``p1 >= 0.80`` and ``p1 - p2 >= 0.50`` | "Jumping jacks" |
| ``probably`` | ``p1 >= 0.50`` (and not sure) | "Probably lunges; not sure" |
| ``unsure`` | ``p1 < 0.50`` | "Not sure: maybe lunges, maybe body-weight squats" |

On the 54 real clips of the ten classes that are not UCF-101 (``../shared/real/positive``, the fusion model),
"sure" was right 39 times in 40, "probably" 4 in 9, "unsure" 1 in 5: below "sure", the page says "not sure".

A clip refused as "not one of these" (:mod:`vidclf.verdict`) is said so whatever its band. The bands say how
the model weighs the classes against each other, not whether the clip is one of them: a clip of another
exercise can still be "sure" of the closest class (that is the refusal rule's job). ``bench/answer_bands.py``
measures how often each band is right on real clips.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vidclf.engine import WorkoutLog
    from vidclf.reps import Repetitions

# The shipped models' classes (UCF-101's identifiers) as a person says them
PLAIN_NAMES = {
    "BodyWeightSquats": "Body-weight squats",
    "HandstandPushups": "Handstand push-ups",
    "HandstandWalking": "Handstand walking",
    "JumpingJack": "Jumping jacks",
    "JumpRope": "Jump rope",
    "Lunges": "Lunges",
    "PullUps": "Pull-ups",
    "PushUps": "Push-ups",
    "TrampolineJumping": "Trampoline jumping",
    "WallPushups": "Wall push-ups",
}

SURE_PROB, SURE_MARGIN = 0.80, 0.50
PROBABLY_PROB = 0.50

# a word boundary inside an identifier: lower->Upper ("jumpRope"), ACRONYMWord ("HIITCardio"), letter<->digit
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])")


def plain_name(name: str) -> str:
    """A class identifier in words: the shipped classes as written in :data:`PLAIN_NAMES`, any other
    (a user's own classes) split at CamelCase, ``snake_case`` and ``kebab-case`` boundaries, in sentence case
    (``BoxJumps`` -> "Box jumps", ``farmer_walk`` -> "Farmer walk"); acronyms stay capitals ("HIIT cardio")."""
    if name in PLAIN_NAMES:
        return PLAIN_NAMES[name]
    words = [w for part in re.split(r"[\s_\-]+", name.strip()) for w in _CAMEL.split(part) if w]
    if not words:
        return name
    words = [w if (w.isupper() and len(w) > 1) else w.lower() for w in words]
    first = words[0]
    words[0] = first if first.isupper() else first[:1].upper() + first[1:]
    return " ".join(words)


def lower_name(name: str) -> str:
    """:func:`plain_name` inside a sentence ("probably jumping jacks"); acronyms keep their capitals."""
    words = plain_name(name)
    first, _, rest = words.partition(" ")
    first = first if (first.isupper() and len(first) > 1) else first.lower()
    return f"{first} {rest}" if rest else first


def sureness(probs: Mapping[str, float]) -> str:
    """``"sure"``, ``"probably"`` or ``"unsure"``: how clearly the top class leads (see the module's table)."""
    top = sorted(probs.values(), reverse=True)
    if not top:
        return "unsure"
    p1, p2 = top[0], (top[1] if len(top) > 1 else 0.0)
    if p1 >= SURE_PROB and p1 - p2 >= SURE_MARGIN:
        return "sure"
    return "probably" if p1 >= PROBABLY_PROB else "unsure"


def answer_title(probs: Mapping[str, float]) -> str:
    """The exercise as the answer's title says it, with how sure the model is in words."""
    ranked = sorted(probs.items(), key=lambda kv: -kv[1])
    if not ranked:
        return "No answer"
    band = sureness(probs)
    if band == "sure":
        return plain_name(ranked[0][0])
    if band == "probably":
        return f"Probably {lower_name(ranked[0][0])}; not sure"
    maybe = f", maybe {lower_name(ranked[1][0])}" if len(ranked) > 1 else ""
    return f"Not sure: maybe {lower_name(ranked[0][0])}{maybe}"


def workout_words(log: WorkoutLog) -> tuple[str, str] | None:
    """A workout of more than one exercise as the answer says it: the title ("Jumping jacks, then body-weight
    squats") and the count of each set ("4 jumping jacks, 3 body-weight squats"); None for one exercise."""
    sets = log.exercises
    labels = list(dict.fromkeys(s.label for s in sets))
    if len(labels) < 2:
        return None
    title = plain_name(labels[0]) + "".join(f", then {lower_name(label)}" for label in labels[1:])
    return title, ", ".join(f"{s.reps} {lower_name(s.label)}" for s in sets)


def count_words(log: WorkoutLog | None, reps: Repetitions | None) -> str:
    """The count as the answer's second line says it: "12 repetitions", "12 repetitions in 2 sets", or ""."""
    if log is not None:
        n, sets = log.reps, len(log.exercises)
        if not n:
            return "no repetition counted"
        words = f"{n} repetition{'s' if n != 1 else ''}"
        return words if sets <= 1 else f"{words} in {sets} sets"
    if reps is not None and reps.found:
        return f"{reps.count} repetition{'s' if reps.count != 1 else ''}"
    return ""


def log_words(log: WorkoutLog) -> str:
    """How many repetitions in how many sets, in a sentence (the workout log has the rest)."""
    sets = log.exercises
    if not log.reps:
        return "No repetition found."
    reps = f"**{log.reps} repetition{'s' if log.reps != 1 else ''}**"
    if len(sets) == 1 and len(sets[0].rep_times) > 1:
        (a, _), (_, b) = sets[0].rep_times[0], sets[0].rep_times[-1]
        return f"{reps}, about one every {(b - a) / len(sets[0].rep_times):.1f} s (the workout log has each one)."
    return f"{reps} in {len(sets)} set{'s' if len(sets) != 1 else ''} (the workout log has each one)."


def reps_words(reps: Repetitions, span_s: float | None = None) -> str:
    """How many repetitions, in a sentence, and what they were counted from (``span_s``: counted in the first
    this many seconds only)."""
    where = f" in the first {span_s:.0f} s, the most a request counts in" if span_s is not None else ""
    if not reps.found:
        return f"No repetition found{where}."
    source = "the body's joints" if reps.source == "pose" else "the motion in the picture"
    if reps.period_s is None:
        start, end = reps.times[0]
        return f"**1 repetition**, from {start:.1f} s to {end:.1f} s (counted from {source}{where})."
    return f"**{reps.count} repetitions**, about one every {reps.period_s:.1f} s (counted from {source}{where})."
