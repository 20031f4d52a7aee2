"""The movement check in the one rule: a clip whose body moves unlike its answer's class is "not one of these"
(vidclf.verdict.decide, Predictor.verdict, the page and ``predict --json``), and one that moves like it is not."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from vidclf.checkpoint import Checkpoint, InputSpec, save_checkpoint
from vidclf.config import apply_overrides, load_config
from vidclf.data.synthetic import render_clip_with_landmarks
from vidclf.novelty import MovementProfile, movement_signature
from vidclf.verdict import decide

ROOT = Path(__file__).resolve().parent.parent
KNOWN = ("SynthJumpingJack", "SynthSquat", "SynthRaiseArms")
SQUAT = KNOWN.index("SynthSquat")


def test_decide_refuses_a_movement_far_from_its_answer_and_passes_the_rest():
    fused = torch.tensor([[0.0, 6.0, 0.0]] * 4)  # every clip answered class 1, with plenty of evidence
    novelty = torch.tensor([0.8, 2.5, float("nan"), 1.9])
    _, known, score = decide(fused, 3, 5.0, movement_score=novelty, movement_threshold=1.9)
    assert known.tolist() == [True, False, True, True]  # NaN: no signature, the check abstains; 1.9 is at it
    assert torch.allclose(score, torch.logsumexp(fused, 1))  # the score stays the evidence
    # without a movement threshold (an old checkpoint) the novelty has no say
    assert decide(fused, 3, 5.0, movement_score=novelty)[1].all()
    # the evidence and the person gate still refuse on their own
    _, known, _ = decide(fused, 3, 7.0, pose_found=torch.tensor([1.0, 1.0, 0.0, 1.0]), movement_score=novelty * 0)
    assert known.tolist() == [False] * 4
    _, known, _ = decide(fused, 3, 5.0, pose_found=torch.tensor([1.0, 1.0, 0.0, 1.0]), movement_score=novelty * 0)
    assert known.tolist() == [True, True, False, True]


def _clip(action: str, group: int, clip: int = 0) -> tuple[np.ndarray, np.ndarray]:
    return render_clip_with_landmarks(action, group, clip, size=(48, 48), num_frames=32)


class _KnownLandmarks:
    """A pose estimator that gives each rendered frame the landmarks it was drawn from."""

    def __init__(self, *clips: tuple[np.ndarray, np.ndarray]):
        self.marks = {hashlib.sha1(f.tobytes()).hexdigest(): lm for frames, raw in clips for f, lm in zip(frames, raw)}

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        return np.stack([self.marks[hashlib.sha1(f.tobytes()).hexdigest()] for f in frames])


@pytest.fixture(scope="module")
def squat_model(tmp_path_factory):
    """A pose checkpoint that answers "SynthSquat" to anything (its head's bias), with a movement profile fit on
    synthetic clips of its three classes."""
    cfg = apply_overrides(
        load_config(ROOT / "presets" / "pose.json"), {"num_frames": 32, "hidden_size": 16, "num_layers": 1}
    )
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, classes=KNOWN, num_classes=len(KNOWN)))
    spec = InputSpec.from_config(cfg)
    from vidclf.models.cnn_lstm import build_model

    model = build_model(cfg.model, len(KNOWN), load_pretrained=False)
    with torch.no_grad():
        model.fc.weight.zero_()
        model.fc.bias.copy_(torch.tensor([0.0, 8.0, 0.0]))
    sigs, labels = [], []
    for g in range(4):
        for c in range(3):
            for k, action in enumerate(KNOWN):
                sig = movement_signature(_clip(action, g, c)[1])
                assert sig is not None
                sigs.append(sig)
                labels.append(k)
    profile = dataclasses.replace(MovementProfile.fit(np.stack(sigs), np.array(labels), KNOWN), threshold=3.0)
    ck = Checkpoint(
        model=cfg.model,
        classes=KNOWN,
        input=spec,
        state_dict=model.state_dict(),
        reject_threshold=5.0,
        info={"movement_profile": profile.to_dict()},
    )
    return save_checkpoint(tmp_path_factory.mktemp("movement") / "pose_movement.pt", ck)


def test_the_predictor_refuses_a_walk_answered_as_squats_and_answers_a_squat(squat_model):
    from vidclf.predict import Predictor

    squat, walk = _clip("SynthSquat", 11), _clip("SynthWalk", 11)
    predictor = Predictor(squat_model, device="cpu", pose_estimator=_KnownLandmarks(squat, walk))
    assert predictor.movement_threshold == 3.0
    fused = torch.tensor([0.0, 8.0, 0.0])
    far = predictor.movement_novelty(walk[1], fused)
    near = predictor.movement_novelty(squat[1], fused)
    assert far is not None and near is not None and near < 3.0 < far
    assert predictor.verdict(fused, 1.0, near)[1] is True
    assert predictor.verdict(fused, 1.0, far)[1] is False
    assert predictor.verdict(fused, 1.0)[1] is True  # not checked: the evidence alone decides
    assert predictor.movement_novelty(np.full_like(walk[1], np.nan), fused) is None  # nobody: the check abstains

    p = predictor.predict_frames(walk[0])
    assert p.label == "SynthSquat" and not p.known and p.movement_refused
    assert p.movement_novelty == pytest.approx(far) and p.movement_threshold == 3.0
    out = p.to_dict()
    assert out["known"] is False and out["movement_novelty"] == pytest.approx(far) and out["movement_threshold"] == 3.0
    q = predictor.predict_frames(squat[0])
    assert q.known and not q.movement_refused and q.movement_novelty == pytest.approx(near)


def test_the_page_says_the_movement_alone_refused(squat_model):
    from vidclf.catalog import ModelEntry
    from vidclf.predict import Predictor
    from vidclf.serving import answer_json, answer_markdown

    walk = _clip("SynthWalk", 11)
    p = Predictor(squat_model, device="cpu", pose_estimator=_KnownLandmarks(walk)).predict_frames(walk[0])
    entry = ModelEntry(label="pose", path=Path("p.pt"), backbone="pose", classes=KNOWN, val_acc=None, source="shipped")
    head = answer_markdown(p, entry)
    assert head.startswith("### Not one of the 3 actions") and "the movement doesn't look like" in head
    data = answer_json(p, entry)
    assert data["known"] is False and data["movement_novelty"] > data["movement_threshold"]


def test_a_checkpoint_without_a_profile_answers_as_before(squat_model, tmp_path):
    from vidclf.checkpoint import load_checkpoint
    from vidclf.predict import Predictor

    ck = load_checkpoint(squat_model)
    plain = save_checkpoint(tmp_path / "plain.pt", dataclasses.replace(ck, info={}))
    walk = _clip("SynthWalk", 11)
    predictor = Predictor(plain, device="cpu", pose_estimator=_KnownLandmarks(walk))
    assert predictor.movement is None and predictor.movement_threshold is None
    p = predictor.predict_frames(walk[0])
    assert p.known and p.movement_novelty is None and not p.movement_refused
    assert p.to_dict()["movement_novelty"] is None


def test_the_two_thresholds_answer_their_shares():
    from vidclf.fusion import movement_thresholds

    evidence = np.linspace(1.0, 10.0, 100)  # the lowest 2 refused by the evidence at 98 %
    novelty = np.linspace(3.0, 0.0, 100)  # the most novel are the least evident: a share of them overlaps
    novelty[50] = np.nan  # no signature: never refused by the movement
    t_e, t_n = movement_thresholds(evidence, novelty, answered=0.95, evidence_answered=0.98)
    assert t_e == pytest.approx(evidence[2])
    ok = (evidence >= t_e) & ~(novelty > t_n)
    assert ok.mean() == 0.95
    gate = np.ones(100, bool)
    gate[60:63] = False  # the person gate refuses three: the movement check then refuses fewer
    t_e2, t_n2 = movement_thresholds(evidence, novelty, gate, answered=0.95, evidence_answered=0.98)
    assert t_e2 < t_e and t_n2 > t_n and (gate & (evidence >= t_e2) & ~(novelty > t_n2)).mean() == 0.95


def test_the_workout_engine_checks_the_movement_only_when_told(squat_model):
    """A walk answered as squats: one squats segment without the check (the default), none with it."""
    from vidclf.engine import EngineSettings, WorkoutEngine
    from vidclf.predict import Predictor

    walk = render_clip_with_landmarks("SynthWalk", 11, 0, size=(48, 48), num_frames=60, cycles=6)
    predictor = Predictor(squat_model, device="cpu", pose_estimator=_KnownLandmarks(walk))
    labels = {}
    for check in (False, True):
        with WorkoutEngine(predictor, EngineSettings(movement_check=check)) as engine:
            for i, frame in enumerate(walk[0]):
                engine.push(frame, i / 10.0)
            labels[check] = [s.label for s in engine.finish().segments if s.kind != "rest"]
    assert labels[False] == ["SynthSquat"]
    assert labels[True] and "SynthSquat" not in labels[True]


def test_calibrate_movement_fits_the_profile_and_sets_both_thresholds(tmp_path, capsys):
    """The command end to end on a synthetic UCF-101 layout and a tree laid out as ../shared/real (landmarks
    beside each clip: no pose estimator): the checkpoint gets its profile and thresholds, the other movements
    are refused, and every clip's scores are kept beside it."""
    import json

    from train_cli import main
    from vidclf.checkpoint import load_checkpoint
    from vidclf.data.synthetic import make_synthetic_dataset
    from vidclf.models.cnn_lstm import build_model
    from vidclf.training.open_set import load_open_set_data, mixed_folds

    ucf = make_synthetic_dataset(tmp_path / "ucf", classes=KNOWN, groups=9, clips_per_group=2, size=(32, 32))
    real = tmp_path / "real"
    rows = ["path\tlabel\tsource_repo"]
    for r in range(4):
        for action in KNOWN + ("SynthWave", "SynthWalk"):
            part = "positive" if action in KNOWN else "other"
            rel = f"{part}/{action}/repo{r}__clip.mp4"
            (real / rel).parent.mkdir(parents=True, exist_ok=True)
            np.save((real / rel).with_suffix(".pose.npy"), _clip(action, 20 + r)[1])
            rows.append(f"{rel}\t{action}\towner{r}/repo{r}")
    (real / "MANIFEST.tsv").write_text("\n".join(rows) + "\n")
    data = load_open_set_data(str(ucf), str(real), num_frames=32, cache_dir=None)
    on_ucf = data.kinds == "ucf"
    logits = np.full((int(on_ucf.sum()), len(KNOWN)), -3.0, np.float32)
    logits[np.arange(len(logits)), data.labels[on_ucf]] = 3.0
    np.savez(
        tmp_path / "pose.oof.npz",
        names=np.array([f"{Path(p).parent.name}/{Path(p).name}" for p in data.paths[on_ucf]]),
        folds=mixed_folds(data.groups, data.kinds, 6)[on_ucf],
        logits=logits,
    )
    cfg = apply_overrides(
        load_config(ROOT / "presets" / "pose.json"), {"num_frames": 32, "hidden_size": 16, "num_layers": 1}
    )
    torch.manual_seed(0)
    ck = Checkpoint(
        model=cfg.model,
        classes=KNOWN,
        input=InputSpec.from_config(cfg),
        state_dict=build_model(cfg.model, len(KNOWN), load_pretrained=False).state_dict(),
        reject_threshold=3.0,
    )
    path = save_checkpoint(tmp_path / "pose.pt", ck)
    argv = ["calibrate-movement", "--checkpoint", str(path), "--ucf-root", str(ucf), "--real-root", str(real)]
    assert main([*argv, "--json", str(tmp_path / "m.json")]) == 0
    assert "movement threshold" in capsys.readouterr().out
    r = json.loads((tmp_path / "m.json").read_text())
    assert r["clips"] == {"ucf": int(on_ucf.sum()), "real": 12, "other": 8}
    assert 0.92 <= r["rule"]["known_answered"] <= 0.95
    # an untrained model answers the real clips at random: only the movement check refuses other movements
    assert r["rule"]["other_refused"] >= r["evidence_alone"]["other_refused"] + 0.25
    assert r["threshold_before"] == 3.0 and len(r["nested_other_refused_by_fold"]["rule"]) == 4
    back = load_checkpoint(path)
    assert back.reject_threshold == pytest.approx(r["evidence_threshold"])
    assert back.info["movement_profile"]["threshold"] == pytest.approx(r["movement_threshold"])
    from vidclf.predict import Predictor

    assert Predictor(back, device="cpu").movement_threshold == pytest.approx(r["movement_threshold"])
    with np.load(tmp_path / "pose.movement.npz") as z:
        assert len(z["names"]) == len(data.paths) and (z["source"][z["kinds"] == "ucf"] == "oof").all()
        assert np.isfinite(z["novelty"][z["kinds"] != "other"]).all()
        score, kinds = z["movement_score"], z["kinds"]
    # the check judged the odds of another action, learned from the other/ clips, each scored out of fold
    assert r["check"] == "odds of another action" and back.info["movement_profile"]["odds"] is not None
    assert np.nanmedian(score[kinds == "other"]) > r["movement_threshold"] >= np.nanmedian(score[kinds == "ucf"])
    assert r["nested_rule"]["other_refused"] is not None
    # --no-odds: the novelty alone, as before
    assert main([*argv, "--no-odds", "--json", str(tmp_path / "n.json")]) == 0
    n = json.loads((tmp_path / "n.json").read_text())
    assert n["check"] == "novelty" and load_checkpoint(path).info["movement_profile"]["odds"] is None


def test_a_class_the_profile_lacks_is_left_to_the_other_rules(squat_model, tmp_path):
    """A model taught a class after its profile was fit (the profile knows the classes by name): the check
    abstains on the new class and still judges the old ones."""
    from vidclf.checkpoint import load_checkpoint
    from vidclf.models.cnn_lstm import build_model
    from vidclf.predict import Predictor

    ck = load_checkpoint(squat_model)
    assert ck.model is not None
    grown = build_model(ck.model, len(KNOWN) + 1, load_pretrained=False)
    taught = save_checkpoint(
        tmp_path / "taught.pt",
        dataclasses.replace(ck, classes=(*KNOWN, "SynthWalk"), state_dict=grown.state_dict()),
    )
    predictor = Predictor(taught, device="cpu")
    walk = _clip("SynthWalk", 11)[1]
    assert predictor.movement_novelty(walk, torch.tensor([0.0, 0.0, 0.0, 9.0])) is None
    assert predictor.movement_novelty(walk, torch.tensor([0.0, 9.0, 0.0, 0.0])) > 3.0


def test_calibrating_the_evidence_alone_removes_the_movement_check(squat_model, tmp_path, monkeypatch):
    """A threshold set for the evidence alone breaks the pair's calibration: `calibrate` drops the check and
    says to run calibrate-movement again."""
    import shutil

    import vidclf.calibration as calibration
    from vidclf.calibration import calibrate
    from vidclf.checkpoint import load_checkpoint

    said: list[str] = []
    monkeypatch.setattr(calibration.log, "warning", lambda msg, *a: said.append(msg % a))

    path = Path(shutil.copy(squat_model, tmp_path / "pose.pt"))
    logits = np.eye(3, dtype=np.float32)[np.arange(12) % 3] * 4
    np.savez(
        tmp_path / "oof.npz",
        paths=np.array([f"c{i}.avi" for i in range(12)]),
        labels=np.arange(12) % 3,
        folds=np.arange(12) % 2,
        logits_last=logits,
        logits_best=logits,
    )
    calibrate(path, oof=tmp_path / "oof.npz", cache_dir=None)
    back = load_checkpoint(path)
    assert "movement_profile" not in back.info and back.reject_threshold is not None
    assert any("calibrate-movement" in m and "pose.pt" in m for m in said)


def _odds_clips(groups: range) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Synthetic clips of the known classes (answered right, surely) and of other movements (answered as a
    known class, less surely): each clip's novelty to its answer's profile, its logits, and whether it is
    another action."""
    sigs, labels = [], []
    for g in range(4):
        for k, action in enumerate(KNOWN):
            sig = movement_signature(_clip(action, g)[1])
            assert sig is not None
            sigs.append(sig)
            labels.append(k)
    profile = MovementProfile.fit(np.stack(sigs), np.array(labels), KNOWN)
    rng = np.random.default_rng(groups.start)
    novelty, logits, other = [], [], []
    for g in groups:
        for action in (*KNOWN, "SynthWalk", "SynthWave"):
            answer = KNOWN.index(action) if action in KNOWN else int(rng.integers(len(KNOWN)))
            lg = np.zeros(len(KNOWN))
            lg[answer] = rng.uniform(3.0, 8.0) if action in KNOWN else rng.uniform(1.0, 6.0)  # overlapping
            sig = movement_signature(_clip(action, g)[1])
            assert sig is not None
            novelty.append(float(profile.novelty(sig, answer)))
            logits.append(lg)
            other.append(action not in KNOWN)
    return np.array(novelty), np.stack(logits), np.array(other)


def test_the_odds_of_another_action_refuse_a_trained_other_and_answer_known_clips():
    """Odds learned from clips of other movements refuse held-out clips of them (other groups) and answer
    held-out clips of the classes, at a threshold set to answer the training known clips."""
    from vidclf.fusion import movement_thresholds
    from vidclf.novelty import OtherActionOdds, odds_inputs

    nov, lg, other = _odds_clips(range(20, 30))
    odds = OtherActionOdds.fit(odds_inputs(nov, lg), other)
    score = odds.log_odds(odds_inputs(nov, lg))
    evidence = np.log(np.exp(lg).sum(1))
    _, t = movement_thresholds(evidence[~other], score[~other], answered=0.95, evidence_answered=1.0)
    held_nov, held_lg, held_other = _odds_clips(range(40, 46))
    held = odds.log_odds(odds_inputs(held_nov, held_lg))
    assert (held[held_other] > t).mean() >= 0.9
    assert (held[~held_other] <= t).mean() >= 0.85
    # both inputs count: the same novelty is more suspect with a less sure answer
    sure, unsure = np.array([0.0, 8.0, 0.0]), np.array([0.0, 2.0, 0.0])
    assert odds.log_odds(odds_inputs(1.5, unsure)) > odds.log_odds(odds_inputs(1.5, sure))
    assert odds.log_odds(odds_inputs(3.0, sure)) > odds.log_odds(odds_inputs(1.0, sure))
    with pytest.raises(ValueError, match="clips of other actions"):
        OtherActionOdds.fit(odds_inputs(nov, lg)[~other], other[~other])


def test_the_predictor_judges_by_the_odds_when_the_profile_has_them(squat_model, tmp_path):
    """The profile's odds and threshold travel in the checkpoint; the predictor's one rule judges the odds
    (a walk answered as squats refused, a squat answered), and says the score it judged beside the novelty."""
    from vidclf.checkpoint import load_checkpoint
    from vidclf.novelty import OtherActionOdds, odds_inputs
    from vidclf.predict import Predictor

    nov, lg, other = _odds_clips(range(20, 30))
    odds = OtherActionOdds.fit(odds_inputs(nov, lg), other)
    ck = load_checkpoint(squat_model)
    profile = MovementProfile.from_dict(ck.info["movement_profile"])
    path = save_checkpoint(
        tmp_path / "odds.pt",
        dataclasses.replace(
            ck, info={"movement_profile": dataclasses.replace(profile, odds=odds, threshold=0.0).to_dict()}
        ),
    )
    squat, walk = _clip("SynthSquat", 11), _clip("SynthWalk", 11)
    predictor = Predictor(path, device="cpu", pose_estimator=_KnownLandmarks(squat, walk))
    assert predictor.movement is not None and predictor.movement.odds is not None
    fused = torch.tensor([0.0, 8.0, 0.0])
    far, near = predictor.movement_novelty(walk[1], fused), predictor.movement_novelty(squat[1], fused)
    assert predictor.movement_score(far, fused) > 0.0 >= predictor.movement_score(near, fused)
    assert predictor.verdict(fused, 1.0, far)[1] is False and predictor.verdict(fused, 1.0, near)[1] is True
    assert predictor.movement_score(None, fused) is None  # no signature: the check abstains
    p = predictor.predict_frames(walk[0])
    assert not p.known and p.movement_refused
    out = p.to_dict()
    assert out["movement_score"] == pytest.approx(predictor.movement_score(far, fused), abs=1e-4)
    assert out["movement_novelty"] == pytest.approx(far)
    # a profile made for other odds inputs is refused on load, not misread
    bad = dataclasses.replace(profile, odds=odds).to_dict()
    bad["odds"]["inputs"] = ["novelty"]
    with pytest.raises(ValueError, match="fit them again"):
        MovementProfile.from_dict(bad)
    with pytest.raises(ValueError, match="logits"):
        dataclasses.replace(profile, odds=odds).judge(walk[1], SQUAT)
