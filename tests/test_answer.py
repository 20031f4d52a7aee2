"""The words a person reads about a prediction: plain class names, how sure, the answer's headline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vidclf.answer import (
    PLAIN_NAMES,
    answer_title,
    count_words,
    lower_name,
    plain_name,
    sureness,
    workout_words,
)


def test_the_shipped_classes_have_hand_written_names():
    assert plain_name("BodyWeightSquats") == "Body-weight squats"
    assert plain_name("JumpingJack") == "Jumping jacks"
    assert plain_name("HandstandPushups") == "Handstand push-ups"
    assert plain_name("PullUps") == "Pull-ups" and plain_name("WallPushups") == "Wall push-ups"
    assert len(PLAIN_NAMES) == 10 and all(n == n[0] + n[1:].lower() for n in PLAIN_NAMES.values())  # sentence case


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("BoxJumps", "Box jumps"),
        ("farmer_walk", "Farmer walk"),
        ("kettlebell-swing", "Kettlebell swing"),
        ("HIITCardio", "HIIT cardio"),
        ("Squat2Press", "Squat 2 press"),
        ("SynthJumpingJack", "Synth jumping jack"),
        ("plank", "Plank"),
        ("My own exercise", "My own exercise"),
    ],
)
def test_a_users_own_class_names_become_words(name, words):
    assert plain_name(name) == words


def test_inside_a_sentence_names_are_lower_case_but_acronyms_are_not():
    assert lower_name("JumpingJack") == "jumping jacks"
    assert lower_name("HIITCardio") == "HIIT cardio"


def test_how_sure_is_said_in_words():
    assert sureness({"a": 0.95, "b": 0.03, "c": 0.02}) == "sure"
    assert sureness({"a": 0.80, "b": 0.35}) == "probably"  # high, but the runner-up is close
    assert sureness({"a": 0.55, "b": 0.45}) == "probably"
    assert sureness({"a": 0.38, "b": 0.30, "c": 0.32}) == "unsure"
    assert answer_title({"JumpingJack": 0.97, "Lunges": 0.03}) == "Jumping jacks"
    assert answer_title({"Lunges": 0.6, "JumpingJack": 0.4}) == "Probably lunges; not sure"
    assert answer_title({"Lunges": 0.38, "BodyWeightSquats": 0.32, "PushUps": 0.3}) == (
        "Not sure: maybe lunges, maybe body-weight squats"
    )


def test_the_count_is_said_with_its_sets():
    from vidclf.engine import Segment, WorkoutLog

    one = WorkoutLog([Segment("JumpingJack", True, 0.0, 8.0, reps=4, rep_times=[(0, 2), (2, 4), (4, 6), (6, 8)])], 8)
    assert count_words(one, None) == "4 repetitions"
    two = WorkoutLog(
        [
            Segment("JumpingJack", True, 0.0, 4.0, reps=2, rep_times=[(0, 2), (2, 4)]),
            Segment("rest", False, 4.0, 6.0),
            Segment("JumpingJack", True, 6.0, 8.0, reps=1, rep_times=[(6, 8)]),
        ],
        8,
    )
    assert count_words(two, None) == "3 repetitions in 2 sets"
    assert workout_words(two) is None  # one exercise in two sets
    mixed = WorkoutLog(
        [
            Segment("JumpingJack", True, 0.0, 4.0, reps=4, rep_times=[(0, 1), (1, 2), (2, 3), (3, 4)]),
            Segment("rest", False, 4.0, 6.0),
            Segment("BodyWeightSquats", True, 6.0, 12.0, reps=3, rep_times=[(6, 8), (8, 10), (10, 12)]),
        ],
        12,
    )
    assert workout_words(mixed) == ("Jumping jacks, then body-weight squats", "4 jumping jacks, 3 body-weight squats")
    assert count_words(WorkoutLog([Segment("rest", False, 0.0, 5.0)], 5.0), None) == "no repetition counted"


def _prediction(probs: dict[str, float], **kw):
    from vidclf.predict import Prediction
    from vidclf.video import VideoInfo

    info = VideoInfo(num_frames=100, fps=25.0, width=320, height=240, counted=False)
    frames = np.zeros((4, 24, 32, 3), np.uint8)
    return Prediction(probs=probs, frames=frames, indices=[0, 30, 60, 90], info=info, seconds=0.5, **kw)


def test_the_answer_leads_with_the_exercise_and_keeps_internals_for_the_details():
    from vidclf.catalog import ModelEntry
    from vidclf.engine import Segment, WorkoutLog
    from vidclf.serving import answer_json, answer_markdown, details_markdown

    entry = ModelEntry(
        label="fusion",
        path=Path("f.pt"),
        backbone="fusion",
        classes=("JumpingJack", "Lunges"),
        val_acc=0.8,
        source="shipped",
    )
    streams = {"pose": {"JumpingJack": 0.9, "Lunges": 0.1}, "efficientnet_lite0": {"JumpingJack": 0.8, "Lunges": 0.2}}
    p = _prediction(
        {"JumpingJack": 0.9, "Lunges": 0.1},
        streams=streams,
        weights={"pose": 1.0, "efficientnet_lite0": 1.0},
        pose_found=1.0,
    )
    log = WorkoutLog(
        [Segment("JumpingJack", True, 0.0, 4.0, reps=3, rep_times=[(0.5, 1.5), (1.5, 2.5), (2.5, 3.5)])], 4
    )
    head = answer_markdown(p, entry, log)
    assert head.startswith("### Jumping jacks  \n**3 repetitions** in 3.0 s")
    assert "JumpingJack" not in head and "%" not in head and "stream" not in head and "frames" not in head
    more = details_markdown(p, entry, log, seconds=1.25)
    assert "efficientnet_lite0: 80%" in more and "4 frames sampled from 100" in more and "1.2 s in all" in more
    unsure = answer_markdown(_prediction({"Lunges": 0.4, "JumpingJack": 0.35}), entry)
    assert unsure.startswith("### Not sure: maybe lunges, maybe jumping jacks")
    data = answer_json(p, entry)
    assert data["label"] == "JumpingJack" and data["name"] == "Jumping jacks" and data["sureness"] == "sure"
    assert data["model"] == "fusion" and data["known"] is True
