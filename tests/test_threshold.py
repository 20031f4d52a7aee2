"""Every trained model can say no: training ends with a "not one of these" threshold set on clips it never
trained on (its validation groups, and clips of other actions where the user gives them), and prediction
refuses a clip of an action it never saw by it."""

import shutil

import numpy as np

from vidclf.fusion import open_set_threshold, rejection_threshold_of_scores

KNOWN = ["SynthSquat", "SynthWave", "SynthRaiseArms", "SynthLowerArms"]


def test_the_open_set_threshold_answers_known_clips_and_refuses_the_others():
    known = np.array([5.0, 5.1, 4.9, 3.0, 5.2, 5.3, 4.8, 5.0, 5.1, 5.0])
    other = np.array([2.0, 2.5, 3.5, 2.2])
    t = open_set_threshold(known, other, min_answered=0.9)
    assert 3.5 < t <= 4.8  # all other clips refused, one known clip given up (90 % still answered)
    assert open_set_threshold(known, other, min_answered=1.0) <= 3.0  # every known clip answered, whatever it costs
    gated = np.ones(10, bool)
    gated[0] = False  # the person gate refuses a known clip already: no second one may go
    assert open_set_threshold(known, other, known_passed=gated, min_answered=0.9) <= 3.0
    assert rejection_threshold_of_scores(known, answered=0.9) == 4.8


def _landmarks_of(clip):
    """A pose estimator that knows the synthetic figure's joints: each frame it is given (whole clips or one
    frame at a time, at any size) is matched to the nearest decoded frame of ``clip``."""
    import cv2

    marks = np.load(clip.with_suffix(".pose.npy"))
    cap = cv2.VideoCapture(str(clip))
    decoded = []
    while (ok := cap.read())[0]:
        decoded.append(cv2.cvtColor(ok[1], cv2.COLOR_BGR2RGB))
    cap.release()
    h, w = decoded[0].shape[:2]
    small = np.stack(decoded).astype(np.float32)

    def estimator(frames):
        out = []
        for f in frames:
            g = cv2.resize(f, (w, h)).astype(np.float32) if f.shape[:2] != (h, w) else f.astype(np.float32)
            i = int(np.abs(small - g).mean(axis=(1, 2, 3)).argmin())
            out.append(marks[round(i * (len(marks) - 1) / max(len(small) - 1, 1))])
        return np.stack(out)

    return estimator


def test_a_trained_model_carries_a_threshold_and_refuses_an_action_it_never_saw(synth_root, tmp_path, capsys):
    import train_cli
    from vidclf.checkpoint import load_checkpoint
    from vidclf.predict import Predictor

    other = tmp_path / "other" / "walking"  # clips of an action that is none of the classes: other actors
    other.mkdir(parents=True)
    for clip in (synth_root / "UCF-101" / "SynthWalk").glob("*_g0[123]_*"):
        shutil.copy(clip, other / clip.name)
    out = tmp_path / "run"
    args = ["train", "--data-root", str(synth_root), "--classes", *KNOWN, "--backbone", "pose", "--num-frames", "16"]
    args += ["--lr", "3e-3", "--batch-size", "8", "--epochs", "15", "--lr-schedule", "cosine", "--device", "cpu"]
    args += ["--out-dir", str(out), "--cache-dir", str(tmp_path / "cache"), "--no-progress"]
    assert train_cli.main([*args, "--other-root", str(tmp_path / "other")]) == 0
    said = capsys.readouterr().out
    assert "'not one of these': a known-class score below" in said and "refuses 100% of the other-action" in said
    ck = load_checkpoint(out / "last.pt")
    assert ck.reject_threshold is not None and "9 clips of other actions" in ck.info["reject_calibration"]
    assert ck.metrics["val_answered"] >= 0.9 and ck.metrics["other_refused"] == 1.0
    assert load_checkpoint(out / "best.pt").reject_threshold is not None

    walk = synth_root / "UCF-101" / "SynthWalk" / "v_SynthWalk_g05_c02.avi"  # an actor the threshold never saw
    squat = synth_root / "UCF-101" / "SynthSquat" / f"v_SynthSquat_{ck.info['val_groups'][0]}_c01.avi"
    refused = Predictor(out / "last.pt", pose_estimator=_landmarks_of(walk)).predict(walk)
    answered = Predictor(out / "last.pt", pose_estimator=_landmarks_of(squat)).predict(squat)
    assert not refused.known and refused.score < ck.reject_threshold
    assert answered.known and answered.label == "SynthSquat", (
        answered.label,
        answered.score,
        ck.reject_threshold,
        answered.pose_found if hasattr(answered, "pose_found") else None,
    )

    # without clips of other actions, the threshold answers 95 % of the validation clips
    assert train_cli.main([*args, "--epochs", "2", "--out-dir", str(tmp_path / "plain")]) == 0
    plain = load_checkpoint(tmp_path / "plain" / "last.pt")
    assert plain.reject_threshold is not None and "answer 95% of the" in plain.info["reject_calibration"]


def test_a_missing_other_root_is_refused_before_training(synth_root, tmp_path, capsys):
    import train_cli

    args = ["train", "--data-root", str(synth_root), "--out-dir", str(tmp_path / "run"), "--no-progress"]
    assert train_cli.main([*args, "--other-root", str(tmp_path / "nowhere")]) == 2
    assert "is not a folder of videos" in capsys.readouterr().err and not (tmp_path / "run").exists()
