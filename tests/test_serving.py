import os

import pytest

from vidclf.errors import VidclfError
from vidclf.serving import ServeSettings, resolve_inside


def test_training_is_off_unless_turned_on():
    assert ServeSettings.from_env({}).training_enabled is False
    assert ServeSettings.from_env({"VIDCLF_ENABLE_TRAINING": "1"}).training_enabled is True
    with pytest.raises(VidclfError, match="VIDCLF_"):
        ServeSettings.from_env({"VIDCLF_MAX_SECONDS": "ten"})


def test_paths_are_confined_to_the_data_roots(tmp_path):
    root = tmp_path / "data"
    (root / "ucf").mkdir(parents=True)
    secret = tmp_path / "secret"
    secret.mkdir()
    (root / "link_out").symlink_to(secret)
    roots = (root.resolve(),)
    assert resolve_inside(root / "ucf", roots) == (root / "ucf").resolve()
    for bad in (secret, root / ".." / "secret", root / "link_out", "/etc"):
        with pytest.raises(VidclfError, match="outside the allowed"):
            resolve_inside(bad, roots)
    with pytest.raises(VidclfError, match="no server data folders"):
        resolve_inside(root, ())


def test_data_roots_from_env(tmp_path):
    s = ServeSettings.from_env({"VIDCLF_DATA_ROOTS": f"{tmp_path}{os.pathsep}{tmp_path / 'x'}"})
    assert s.data_roots == (tmp_path.resolve(), (tmp_path / "x").resolve())


def test_a_clip_the_browser_cannot_play_gets_an_h264_copy(tmp_path):
    import cv2
    import numpy as np

    from vidclf.serving import browser_playable, browser_preview
    from vidclf.video import probe, write_video

    frames = (np.random.default_rng(0).random((30, 120, 160, 3)) * 255).astype(np.uint8)
    xvid = write_video(tmp_path / "clip.avi", frames)
    assert not browser_playable(xvid)
    copy = browser_preview(xvid, tmp_path)
    assert copy is not None and copy.suffix == ".mp4" and browser_playable(copy)
    info = probe(copy)
    assert (info.width, info.height) == (160, 120) and abs(info.num_frames - 30) <= 1
    cap = cv2.VideoCapture(str(copy))
    code = int(cap.get(cv2.CAP_PROP_FOURCC))
    cap.release()
    assert "".join(chr((code >> 8 * i) & 0xFF) for i in range(4)).lower() in ("avc1", "h264")
    assert browser_preview(copy, tmp_path) is None  # already playable: left as it is


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="reads a process's priority from Linux /proc")
def test_the_players_copy_is_made_at_the_lowest_cpu_priority(tmp_path):
    """The copy runs beside the prediction: its FFmpeg must yield the CPU to it (nice 19), and still be made."""
    import threading

    import numpy as np

    from vidclf.serving import browser_playable, browser_preview
    from vidclf.video import write_video

    frames = (np.random.default_rng(0).random((96, 240, 320, 3)) * 255).astype(np.uint8)  # noise: slow to encode
    xvid = write_video(tmp_path / "clip.avi", frames)
    out = tmp_path / "out"
    out.mkdir()
    made: list = []
    worker = threading.Thread(target=lambda: made.append(browser_preview(xvid, out)))
    worker.start()
    seen: set[int] = set()
    while worker.is_alive():
        for pid in os.listdir("/proc"):
            try:
                cmdline = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
                stat = open(f"/proc/{pid}/stat").read()
            except (OSError, ValueError):
                continue
            if str(xvid).encode() in cmdline and "ffmpeg" in os.path.basename(cmdline[0].decode()):
                seen.add(int(stat[stat.rindex(")") + 2 :].split()[16]))
    worker.join()
    assert seen == {19}
    assert made[0] is not None and browser_playable(made[0])


def test_the_train_form_is_checked_like_any_hostile_input(tmp_path):
    from vidclf.serving import SYNTHETIC_SOURCE, TRAIN_FORM_FIELDS, ServeSettings, training_request

    roots = tmp_path / "data"
    (roots / "ucf" / "A").mkdir(parents=True)
    settings = ServeSettings(training_enabled=True, data_roots=(roots.resolve(),), runs_dir=tmp_path / "runs")
    good = dict(
        zip(TRAIN_FORM_FIELDS, [SYNTHETIC_SOURCE, "", "", 1, 0.2, "pose", False, False, 1, "diff", 3, 1e-3, 4, 8, 64])
    )
    config, prepare, where = training_request(good, settings, tmp_path / "synthetic")
    assert where == "the SYNTHETIC set" and config.data.num_classes == 0 and config.model.backbone == "pose"
    assert config.data.data_root == str(tmp_path / "synthetic") and prepare is not None
    assert config.train.out_dir.startswith(str(tmp_path / "runs" / "app"))
    with pytest.raises(VidclfError, match="split must be a number"):
        training_request({**good, "split": "1; rm -rf /"}, settings, tmp_path)
    with pytest.raises(VidclfError, match="outside the allowed"):
        training_request({**good, "source": "Server folder", "folder": "/etc"}, settings, tmp_path)
    with pytest.raises(VidclfError, match="backbone must be one of"):
        training_request({**good, "backbone": "../../evil"}, settings, tmp_path)
    folder = {**good, "source": "Server folder", "folder": str(roots / "ucf"), "classes": "/etc/passwd, A"}
    config, prepare, where = training_request(folder, settings, tmp_path)
    assert config.data.classes == ("/etc/passwd", "A") and prepare is None  # names, checked against the data later


def test_a_webcam_recording_gets_a_copy_that_knows_its_duration(tmp_path):
    import subprocess

    import imageio_ffmpeg

    from vidclf.serving import browser_preview

    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()

    def duration(path) -> str:
        said = subprocess.run([ffmpeg, "-i", str(path)], capture_output=True, text=True).stderr
        return said.split("Duration: ")[1].split(",")[0]

    # as a browser's MediaRecorder writes it: streamed, so no duration in the file
    recording = tmp_path / "sample.webm"
    with open(recording, "wb") as f:
        subprocess.run(
            [ffmpeg, "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=25:duration=2"]
            + ["-c:v", "libvpx", "-f", "webm", "pipe:1"],
            stdout=f,
            check=True,
        )
    assert duration(recording) == "N/A"
    (tmp_path / "out").mkdir()
    copy = browser_preview(recording, tmp_path / "out")
    assert copy is not None and copy.suffix == ".webm"
    assert duration(copy).startswith("00:00:02")
