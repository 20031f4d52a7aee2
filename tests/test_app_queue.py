"""A full queue answers 'busy' at once, and the requests it accepted are all answered."""

import pytest

from bench.app_server import AppServer
from conftest import ARTIFACTS, ROOT

gradio_client = pytest.importorskip("gradio_client")


def test_full_queue_says_busy_and_loses_nothing_it_accepted(tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    with AppServer(
        tmp_path / "runs", ARTIFACTS / "app_queue.log", VIDCLF_QUEUE_SIZE="1", VIDCLF_CONCURRENCY="1"
    ) as server:
        client = gradio_client.Client(server.url, verbose=False)
        clip = gradio_client.handle_file(str(ROOT / "examples" / "synthetic_sequence_Wave_JumpingJack_Squat.mp4"))
        jobs = [client.submit(clip, "synthetic", api_name="/predict") for _ in range(4)]
        answered, busy = 0, 0
        for job in jobs:
            try:
                out = job.result(timeout=180)
            except Exception as e:  # gradio_client raises QueueError for a refused request
                assert "Queue is full" in str(e), e
                busy += 1
            else:
                assert out[0]["label"].startswith("Synth")
                answered += 1
        assert busy >= 1 and answered >= 1 and busy + answered == 4
        # and it serves again once the burst is over
        assert (
            client.predict(
                gradio_client.handle_file(str(ROOT / "examples" / "synthetic_Walk.mp4")),
                "synthetic",
                api_name="/predict",
            )[0]["label"]
            == "SynthWalk"
        )
