"""The app's API through gradio_client, as a program would call it."""

import pytest

from conftest import ROOT, needs_shared

gradio_client = pytest.importorskip("gradio_client")


@pytest.fixture(scope="module")
def client(app_url):
    return gradio_client.Client(app_url, verbose=False)


def test_the_api_lists_what_each_endpoint_is(client):
    api = client.view_api(print_info=False, return_format="dict")
    assert sorted(api["named_endpoints"]) == ["/models", "/predict", "/stop_training", "/teach", "/train"]
    returns = [r["label"] for r in api["named_endpoints"]["/predict"]["returns"]]
    assert returns[0] == "The answer as the API returns it" and len(returns) == 7


def test_predict_api_on_a_synthetic_example(client):
    result, answer, details, timeline, log, chart, frames = client.predict(
        gradio_client.handle_file(str(ROOT / "examples" / "synthetic_Wave.mp4")), "synthetic", api_name="/predict"
    )
    assert result["label"] == "SynthWave" and result["name"] == "Synth wave" and result["model"] == "synthetic"
    assert len(result["top"]) == 5 and abs(sum(result["probs"].values()) - 1) < 1e-4
    assert len(frames) == 8 == len(result["frame_indices"])  # the synthetic model samples 8 frames
    assert "SYNTHETIC" in answer


def test_a_workout_clip_gets_its_workout_chart(client):
    """The chart of the clip's time axis (segments coloured, repetitions ticked) reaches an API user as a plot."""
    out = client.predict(
        gradio_client.handle_file(str(ROOT / "examples" / "synthetic_sequence_Wave_JumpingJack_Squat.mp4")),
        "synthetic",
        api_name="/predict",
    )
    chart = out[3]
    assert chart["visible"] is True and chart["value"]["type"] == "plotly"


@needs_shared
def test_predict_api_on_a_real_clip(client, jumping_jack_clip):
    result, answer, details, timeline, log, chart, frames = client.predict(
        gradio_client.handle_file(str(jumping_jack_clip)), "fusion", api_name="/predict"
    )
    # the numbers a program wants, as `predict --json` gives them: identifiers, not words
    probs = [t["prob"] for t in result["top"]]
    assert len(probs) == 5 and probs == sorted(probs, reverse=True) and 0 < probs[-1]
    assert result["label"] == result["top"][0]["class"] == "JumpingJack" and result["known"] is True
    assert isinstance(result["reps"], int) and result["reps"] > 0 and len(result["rep_times"]) == result["reps"]
    assert [s["label"] for s in result["segments"] if s["known"]] == ["JumpingJack"]
    assert answer.startswith("### Jumping jacks") and "Decided mostly by the" in details and len(frames) == 32
    # the workout log: one set of jumping jacks, the same count as the answer's and the JSON's
    table = log["value"]
    assert log["visible"] is True and table["headers"] == ["exercise", "from - to", "reps", "pace"]
    sets = [row for row in table["data"] if row[0] == "Jumping jacks"]
    assert len(sets) == 1 and f"**{sets[0][2]} repetition" in answer and int(sets[0][2]) == result["reps"]


def test_bad_file_gives_a_clear_error_and_the_app_keeps_serving(client, tmp_path):
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video at all")
    with pytest.raises(Exception, match="cannot open notes.mp4 as a video"):
        client.predict(gradio_client.handle_file(str(bad)), "synthetic", api_name="/predict")
    result, *_ = client.predict(
        gradio_client.handle_file(str(ROOT / "examples" / "synthetic_Squat.mp4")), "synthetic", api_name="/predict"
    )
    assert result["label"] == "SynthSquat"


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
