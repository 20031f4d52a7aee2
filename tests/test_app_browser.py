"""The app in a real browser: Debian's Chromium driven by Playwright (no browser download).

Screenshots land in test-artifacts/. In CI (CI=true) a missing Chromium is a failure, not a skip.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import ARTIFACTS, needs_shared

sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    if os.environ.get("CI"):
        raise RuntimeError("CI needs Debian's chromium for the browser tests (.ci/run installs it)")
    pytest.skip("Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True)


def write_y4m(src: Path, dst: Path, max_frames: int = 150) -> Path:
    """A .y4m (raw I420) of a real clip, the format Chromium's fake camera plays."""
    cap = cv2.VideoCapture(str(src))
    frames = []
    while len(frames) < max_frames:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    h, w = frames[0].shape[:2]
    with open(dst, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F25:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            f.write(b"FRAME\n")
            f.write(cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())
    return dst


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    # The fake camera plays a real jumping jack where ../shared is at hand, else a SYNTHETIC one: the tests that
    # need no real data (training, GIFs, an empty room) run either way.
    from conftest import UCF_ROOT
    from vidclf.data.synthetic import render_clip
    from vidclf.video import write_video

    cam = tmp_path_factory.mktemp("cam")
    clips = sorted((UCF_ROOT / "UCF-101" / "JumpingJack").glob("*.avi")) if UCF_ROOT.is_dir() else []
    source = (
        clips[0]
        if clips
        else write_video(cam / "synthetic.avi", render_clip("SynthJumpingJack", 90, 1, size=(240, 320), num_frames=75))
    )
    y4m = write_y4m(source, cam / "camera.y4m")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-video-capture={y4m}",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
            ],
        )
        yield b
        b.close()


@pytest.fixture
def page(browser, app_url):
    context = browser.new_context(viewport={"width": 1300, "height": 1600}, permissions=["camera", "microphone"])
    page = context.new_page()
    page.goto(app_url)
    page.wait_for_selector("input[type=file]", state="attached", timeout=60_000)
    yield page
    context.close()


def chart_data(page) -> tuple[list[str], list[float]]:
    return page.evaluate("() => { const d = document.querySelector('.js-plotly-plot').data[0]; return [d.y, d.x]; }")


def wait_for_prediction(page, timeout_s: float = 60) -> str:
    """The top class once the label and the confidence chart have both been drawn."""
    page.wait_for_function(
        "() => { const p = document.querySelector('.js-plotly-plot');"
        " const l = document.querySelector('[data-testid=label-output-value]');"
        " return p && p.data && l && l.innerText.trim().length > 0; }",
        timeout=timeout_s * 1000,
    )
    return page.locator("[data-testid=label-output-value]").inner_text()


def test_first_visit_the_best_model_is_chosen_and_says_what_it_knows(page):
    selected = page.get_by_label("Model").input_value()
    assert selected.startswith("fusion:") and "body pose + motion" in selected
    about = page.locator("p", has_text="Knows 10 actions").first
    about.wait_for(timeout=10_000)
    text = about.inner_text()
    assert "Jumping Jack" in text and "Wall Pushups" in text and "whole body in view" in page.content()
    page.screenshot(path=str(ARTIFACTS / "first_visit.png"), full_page=True)


@needs_shared
def test_upload_real_clip_and_predict(page, jumping_jack_clip):
    page.set_input_files("input[type=file]", str(jumping_jack_clip))  # an upload predicts by itself
    top = wait_for_prediction(page, timeout_s=120)
    classes, probs = chart_data(page)
    assert len(classes) == 10 and top in classes  # every class of the shipped UCF-101 model is charted
    assert abs(sum(probs) - 100) < 1e-2  # the bars are in %
    assert classes[int(np.argmax(probs))] == top == "JumpingJack"
    captions = page.locator("text=/^\\d+\\.\\d s$/")  # each frame captioned with its time in the clip
    page.screenshot(path=str(ARTIFACTS / "predict_upload.png"), full_page=True)
    assert captions.count() == 32  # the 32 frames the pose stream saw, its skeleton drawn on each
    assert page.get_by_role("heading", name=re.compile(r"^JumpingJack \(\d+%\)$")).count() == 1  # the answer line
    # an XviD AVI: the browser cannot play it, so the player gets an H.264 copy, and no error is shown
    page.wait_for_function(
        "() => { const v = document.querySelector('video[data-testid=Clip-player]');"
        " return v && (v.getAttribute('src') || '').endsWith('.mp4') && v.readyState >= 1 && !v.error; }",
        timeout=60_000,
    )
    assert page.get_by_text("Video not playable").count() == 0 and page.get_by_text("Error").count() == 0
    assert page.get_by_text(re.compile("Decided mostly by the")).count() == 1
    page.screenshot(path=str(ARTIFACTS / "predict_upload.png"), full_page=True)


def test_a_clip_without_a_person_is_not_one_of_these(page, tmp_path):
    from vidclf.video import write_video

    room = np.repeat((np.random.default_rng(0).random((1, 240, 320, 3)) * 255).astype(np.uint8), 75, axis=0)
    page.set_input_files("input[type=file]", str(write_video(tmp_path / "empty_room.mp4", room)))
    page.get_by_role("heading", name=re.compile("Not one of the 10 actions")).wait_for(timeout=120_000)
    assert page.get_by_text(re.compile("no person was found")).count() == 1
    page.screenshot(path=str(ARTIFACTS / "predict_unknown.png"), full_page=True)


@needs_shared
def test_record_with_webcam_and_predict(page):
    page.get_by_label("Capture from camera").click()
    page.get_by_text("Click to Access Webcam").click()
    page.wait_for_function(
        "() => { const v = document.querySelector('video[data-testid=webcam-video]');"
        " return v && v.readyState >= 2 && !v.paused; }",
        timeout=30_000,
    )
    page.get_by_label("start recording").click()
    time.sleep(3)
    # gr.Video plays the finished recording back from a file as the "<label>-player" video
    recorded = (
        "() => { const v = document.querySelector('video[data-testid=Clip-player]');"
        " return !!(v && v.getAttribute('src')); }"
    )
    assert not page.evaluate(recorded)  # while recording there is only the live webcam stream
    page.locator("button.capture-button", has_text="Stop").click()
    page.wait_for_function(recorded, timeout=30_000)
    top = wait_for_prediction(page, timeout_s=120)  # the end of a recording predicts by itself
    classes, probs = chart_data(page)
    assert top in classes and abs(sum(probs) - 100) < 1e-2
    page.screenshot(path=str(ARTIFACTS / "predict_webcam.png"), full_page=True)


def test_train_one_epoch_on_synthetic_and_use_the_model(page):
    page.get_by_role("tab", name="Train").click()
    epochs = page.get_by_label("Epochs")
    epochs.fill("1")
    page.get_by_role("button", name="Start training").click()
    page.get_by_text("finished").first.wait_for(timeout=240_000)
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length > 0")
    page.screenshot(path=str(ARTIFACTS / "train_tab.png"), full_page=True)
    page.get_by_role("tab", name="Predict").click()
    page.get_by_label("Model").click()
    option = page.get_by_role("option", name="run: app/")
    option.first.wait_for(timeout=10_000)
    assert "SYNTHETIC actions" in option.first.inner_text()


def test_a_gif_goes_through_the_any_file_box(page, tmp_path):
    from PIL import Image

    from vidclf.data.synthetic import render_clip

    frames = render_clip("SynthWave", 90, 1, num_frames=40)
    gif = tmp_path / "wave.gif"
    Image.fromarray(frames[0]).save(
        gif, save_all=True, append_images=[Image.fromarray(f) for f in frames[1:]], duration=40, loop=0
    )
    page.get_by_label("Model").click()
    page.get_by_role("option", name=re.compile("^synthetic:")).click()
    page.locator("input[type=file]").nth(1).set_input_files(str(gif))  # the player's own box accepts only video/*
    top = wait_for_prediction(page, timeout_s=60)
    assert top == "SynthWave"
    assert page.get_by_text("Video not playable").count() == 0
    page.screenshot(path=str(ARTIFACTS / "predict_gif.png"), full_page=True)


@needs_shared
def test_on_a_phone_the_answer_and_the_model_name_are_readable(browser, app_url, jumping_jack_clip):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.goto(app_url)
    page.wait_for_selector("input[type=file]", state="attached", timeout=60_000)
    model = page.get_by_label("Model")
    # the dropdown's arrow must not sit on the model's name
    assert page.evaluate("(e) => parseFloat(getComputedStyle(e).paddingRight)", model.element_handle()) >= 20
    page.set_input_files("input[type=file]", str(jumping_jack_clip))
    page.get_by_role("heading", name=re.compile(r"^JumpingJack \(\d+%\)$")).wait_for(timeout=120_000)
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390 + 1  # nothing wider than the phone: no sideways scrolling
    page.screenshot(path=str(ARTIFACTS / "phone_predict.png"), full_page=True)
    context.close()
