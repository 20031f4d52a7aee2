"""The app's API through gradio_client, as a program would call it."""

import pytest

from conftest import ROOT, needs_shared

gradio_client = pytest.importorskip("gradio_client")


@pytest.fixture(scope="module")
def client(app_url):
    return gradio_client.Client(app_url, verbose=False)


def test_predict_api_on_a_synthetic_example(client):
    label, chart, frames, timeline, details, log = client.predict(
        gradio_client.handle_file(str(ROOT / "examples" / "synthetic_Wave.mp4")), "synthetic", api_name="/predict"
    )
    assert label["label"] == "SynthWave"
    assert len(label["confidences"]) == 5
    assert len(frames) == 8  # the synthetic model samples 8 frames
    assert "SYNTHETIC" in details


def test_timeline_for_a_long_clip(client):
    out = client.predict(
        gradio_client.handle_file(str(ROOT / "examples" / "synthetic_sequence_Wave_JumpingJack_Squat.mp4")),
        "synthetic",
        api_name="/predict",
    )
    timeline = out[3]
    assert timeline["visible"] is True and timeline["value"]["type"] == "plotly"


@needs_shared
def test_predict_api_on_a_real_clip(client, jumping_jack_clip):
    label, chart, frames, timeline, answer, log = client.predict(
        gradio_client.handle_file(str(jumping_jack_clip)), "fusion", api_name="/predict"
    )
    confidences = [c["confidence"] for c in label["confidences"]]
    assert len(confidences) == 5 and confidences == sorted(confidences, reverse=True) and 0 < confidences[-1]
    assert label["label"] == label["confidences"][0]["label"] == "JumpingJack"
    assert "JumpingJack" in answer and "Decided mostly by the" in answer and len(frames) == 32
    # the workout log: one set of jumping jacks, the same count as the answer's
    table = log["value"]
    assert log["visible"] is True and table["headers"] == ["exercise", "from - to", "reps", "pace"]
    sets = [row for row in table["data"] if row[0] == "Jumping Jack"]
    assert len(sets) == 1 and f"**{sets[0][2]} repetition" in answer


def test_bad_file_gives_a_clear_error_and_the_app_keeps_serving(client, tmp_path):
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video at all")
    with pytest.raises(Exception, match="cannot open notes.mp4 as a video"):
        client.predict(gradio_client.handle_file(str(bad)), "synthetic", api_name="/predict")
    label, *_ = client.predict(
        gradio_client.handle_file(str(ROOT / "examples" / "synthetic_Squat.mp4")), "synthetic", api_name="/predict"
    )
    assert label["label"] == "SynthSquat"


def test_sixteen_concurrent_predictions_all_answered_correctly(client):
    examples = ["Wave", "Squat", "Walk", "JumpingJack", "RaiseArms", "LowerArms"]
    jobs = []
    for i in range(16):
        name = examples[i % len(examples)]
        jobs.append(
            (
                name,
                client.submit(
                    gradio_client.handle_file(str(ROOT / "examples" / f"synthetic_{name}.mp4")),
                    "synthetic",
                    api_name="/predict",
                ),
            )
        )
    answers = [(name, job.result(timeout=180)) for name, job in jobs]
    assert len(answers) == 16
    for name, out in answers:
        assert out[0]["label"] == f"Synth{name}"
