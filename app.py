"""vidclf's Gradio app: classify a clip (upload or webcam) and train a model. Wiring and presentation only:
the work is done by ``vidclf`` (catalog, predict, plots, training.job, serving, hub).

Run: ``python app.py`` (port 7860, or $PORT / $GRADIO_SERVER_PORT). Settings: see ``vidclf/serving.py``.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import gradio as gr

from vidclf import hub
from vidclf.answer import lower_name, plain_name
from vidclf.catalog import ModelEntry, PredictorPool, find_models
from vidclf.config import load_config
from vidclf.errors import VidclfError
from vidclf.live import LOG_COLUMN_WIDTHS, LOG_HEADERS, LiveSessions, workout_view
from vidclf.models.registry import BACKBONES
from vidclf.plots import confidence_figure, curves_figure
from vidclf.overlay import skeleton_frames
from vidclf.serving import (
    FrameStore,
    ServeSettings,
    answer_json,
    answer_markdown,
    check_length,
    details_markdown,
    model_markdown,
    public_message,
    TRAIN_FORM_FIELDS,
    SYNTHETIC_SOURCE,
)
from vidclf.training.job import TrainingJob
from vidclf.training.teach import teach_request, teachable
from vidclf.training.train_request import (
    CHOOSE,
    OWN,
    RECIPE_CHOICES,
    RECIPE_HELP,
    quick_words,
    start_request,
    status_markdown,
)
from vidclf.video import VIDEO_EXTENSIONS, probe

ROOT = Path(__file__).resolve().parent
EXAMPLES_DIR = ROOT / "examples"
SYNTHETIC_ROOT = ROOT / ".cache" / "vidclf" / "synthetic-dataset"

FRAMES = FrameStore()
PLAYER_MAX_HEIGHT = 480
# The dropdown's arrow sits over the end of a long choice: keep the text clear of it, with an ellipsis.
CSS = (
    ".secondary-wrap input[role=combobox] { padding-right: 1.8rem !important; text-overflow: ellipsis; }"
    ".checkbox-container .label-text { white-space: normal; }"
    # every frame in view (no scrolling inside the panel), below the panel's floating label
    # (and no empty band under them: the panel's own minimum height is 450 px)
    "#frames .grid-wrap { padding-top: 2.4rem; max-height: none !important; height: auto !important;"
    " min-height: 0 !important; overflow: visible !important; }"
    # as many columns as fit (a fixed 8 ran off a phone's screen, showing 3 of every 8 frames)
    "#frames .grid-container { grid-template-columns: repeat(auto-fill, minmax(92px, 1fr)) !important; }"
    # a portrait clip would make the player as tall as its width allows (about 1,070 px on a desktop), pushing
    # everything under it off the screen
    f"#clip video {{ max-height: {PLAYER_MAX_HEIGHT}px; }}"
    # on a phone the charts' toolbars sat on top of their titles (the charts have nothing to zoom anyway)
    "@media (max-width: 640px) { #workout-chart .modebar-container, #confidence .modebar-container"
    " { display: none !important; } }"
)
# The browser's own "Video not playable" for an upload it cannot decode is not an error of the clip: the clip
# is classified, and the player gets a playable copy.
#
# One upload box for every file vidclf reads: the player's box takes only video/* (a GIF is image/gif, some AVI
# or MKV files come with no type at all), so its files are relabelled as video before Gradio checks them, and
# its file picker offers the other formats too.
HEAD = """<script>
new MutationObserver(() => {
  document.querySelectorAll("[data-testid=toast-text]").forEach(t => {
    if (t.innerText.trim() === "Video not playable") { const item = t.closest(".toast-item"); if (item) item.remove(); }
  });
  document.querySelectorAll("#clip input[type=file]").forEach(i => {
    if (!i.accept.includes(".gif")) i.accept = "video/*,image/gif,EXTENSIONS";
  });
}).observe(document.documentElement, {childList: true, subtree: true});
const vidclfAsVideo = files => {
  if (files.every(f => f.type.startsWith("video/"))) return null;
  const dt = new DataTransfer();
  files.forEach(f => dt.items.add(f.type.startsWith("video/") ? f :
    new File([f], f.name, {type: "video/" + (f.name.split(".").pop() || "unknown").toLowerCase()})));
  return dt;
};
document.addEventListener("change", e => {
  const i = e.target;
  if (!(i instanceof HTMLInputElement) || i.type !== "file" || !i.closest("#clip") || !i.files) return;
  const dt = vidclfAsVideo([...i.files]);
  if (dt) i.files = dt.files;
}, true);
document.addEventListener("drop", e => {
  if (!(e.target instanceof Element) || !e.target.closest("#clip") || !e.dataTransfer) return;
  const dt = vidclfAsVideo([...e.dataTransfer.files]);
  if (!dt) return;
  e.preventDefault(); e.stopImmediatePropagation();
  e.target.dispatchEvent(new DragEvent("drop", {dataTransfer: dt, bubbles: true, cancelable: true}));
}, true);
</script>""".replace("EXTENSIONS", ",".join(VIDEO_EXTENSIONS))
# When the answer comes, it is brought into view where it is not (on a phone it sits two screens below the player)
SHOW_ANSWER_JS = """() => {
  const a = document.getElementById("answer");
  if (!a) return;
  const r = a.getBoundingClientRect();
  if (r.top < 0 || r.top > window.innerHeight * 0.5) a.scrollIntoView({behavior: "smooth", block: "start"});
}"""

log = logging.getLogger("vidclf.app")
SETTINGS = ServeSettings.from_env()
POOL = PredictorPool()
JOB = TrainingJob()
_hub_state: dict[str, object] = {}


def live_engine():
    """A workout engine for one live session, on the best shipped model."""
    from vidclf.engine import EngineSettings, WorkoutEngine

    return WorkoutEngine(POOL.get(models()[0].path), EngineSettings())


LIVE = LiveSessions(live_engine, max_sessions=SETTINGS.max_live)


def hub_checkpoints() -> list[Path]:
    """The configured Hub checkpoint, downloaded once per process; a failure is remembered and shown."""
    if not SETTINGS.hub_model:
        return []
    if "path" not in _hub_state and "error" not in _hub_state:
        try:
            _hub_state["path"] = hub.download_checkpoint(SETTINGS.hub_model)
        except VidclfError as e:
            _hub_state["error"] = public_message(e)
            log.warning("Hub model %s not loaded: %s", SETTINGS.hub_model, _hub_state["error"])
    return [_hub_state["path"]] if "path" in _hub_state else []


def user_error(error: BaseException | str) -> gr.Error:
    """A user's mistake: one log line, and a message that stays on the page (no server paths, no traceback)."""
    message = public_message(error) if isinstance(error, BaseException) else error
    log.info("request refused: %s", message)
    return gr.Error(message, duration=None, print_exception=False, title="Could not do that")


def models() -> list[ModelEntry]:
    return find_models(runs_dir=SETTINGS.runs_dir, extra=hub_checkpoints())


def model_choices() -> list[tuple[str, str]]:
    return [(m.description, m.label) for m in models()]


def entry_for(label: str | None) -> ModelEntry:
    for m in models():
        if m.label == label:
            return m
    raise user_error(f"model {label!r} is not available (any more): pick another one")


def predict(video: str | None, model_label: str | None, progress=gr.Progress()):
    """(video file, model label) -> the answer as JSON (what ``predict --json`` gives), the answer in words, its
    details, the workout chart, the workout log table, the confidence chart, the frames."""
    if not video:
        raise user_error("Upload a clip or record one with the webcam first.")
    entry = entry_for(model_label)
    try:
        t0 = time.perf_counter()
        progress(0.02, desc="reading the clip")
        video = FRAMES.source_of(video)  # the player may show a preview copy: the upload is what is classified
        info = probe(video)
        check_length(info, SETTINGS.max_seconds)
        progress(0.05, desc="loading the model")
        predictor = POOL.get(entry.path)

        def told(share: float, words: str) -> None:
            progress(0.1 + 0.85 * share, desc=f"watching the body and counting: {words}")

        progress(0.1, desc="decoding the clip")
        p = predictor.predict(video, info=info, progress=told)  # the workout log rides on the same pass
        assert p.workout is not None
        log = p.workout
        progress(0.97, desc="drawing the frames")
        gallery = FRAMES.write(skeleton_frames(p.frames, p.landmarks), [f"{i / p.info.fps:.1f} s" for i in p.indices])
        seconds = time.perf_counter() - t0
    except VidclfError as e:
        raise user_error(e) from None
    figure, title, table = workout_view(log)
    return (
        answer_json(p, entry),
        answer_markdown(p, entry, log),
        details_markdown(p, entry, log, seconds=seconds),
        gr.Plot(figure, label=title, visible=True),
        gr.Dataframe(table, headers=LOG_HEADERS, visible=True),
        confidence_figure({plain_name(c): q for c, q in p.probs.items()}),
        gallery,
    )


def predict_on_page(video: str | None, model_label: str | None, progress=gr.Progress()):
    """:func:`predict` for the page: a user's mistake replaces the previous answer with what went wrong, in
    words that stay where the answer was (an error would leave the old answer up, under red badges)."""
    try:
        return predict(video, model_label, progress)
    except gr.Error as e:
        message = f"### Could not use this clip\n{e.message}"
        return None, message, "", gr.Plot(None, visible=False), gr.Dataframe(None, visible=False), None, []


def preview(video: str | None):
    """The player's clip, replaced by a copy the browser can play (H.264 for what it cannot decode, a WebM
    with its duration for a webcam recording)."""
    copy = FRAMES.preview(video) if video else None
    return str(copy) if copy is not None else gr.skip()


def live_step(frame, request: gr.Request):
    """One webcam frame of a live session -> the frame with the skeleton, what is happening now, the log."""
    if frame is None or request.session_hash is None:
        return gr.skip(), gr.skip(), gr.skip()
    try:
        view = LIVE.step(request.session_hash, frame)
    except VidclfError as e:
        return gr.skip(), f"### Live mode stopped\n{public_message(e)}", gr.skip()
    if view is None:  # the page already shows the latest the engine has handled
        return gr.skip(), gr.skip(), gr.skip()
    return view.image, view.status, gr.skip() if view.table is None else view.table


def live_end(request: gr.Request):
    """The stream was cleared or the page went away: its session ends, its slot is free."""
    if request.session_hash:
        LIVE.close(request.session_hash)


def describe_model(label: str | None) -> str:
    try:
        return model_markdown(entry_for(label))
    except gr.Error:
        return "Pick a model."


def refresh_models(current: str | None):
    choices = model_choices()
    labels = [label for _, label in choices]
    return gr.Dropdown(choices=choices, value=current if current in labels else (labels[0] if labels else None))


def example_rows(choices: list[tuple[str, str]]) -> tuple[list[list[str]], list[str]]:
    """Every clip in examples/ and a readable label for each: synthetic_* clips go with the model trained on
    the synthetic set (the real models need a real person)."""
    labels = [label for _, label in choices]
    synthetic = next((label for label in labels if "synthetic" in label.lower()), None)
    rows, names = [], []
    for clip in sorted(EXAMPLES_DIR.glob("*")):
        if clip.suffix.lower() in VIDEO_EXTENSIONS and labels:
            is_synthetic = clip.name.startswith("synthetic") and synthetic is not None
            rows.append([str(clip), synthetic if is_synthetic else labels[0]])
            parts = clip.stem.removeprefix("synthetic_").replace("sequence_", "").split("_")
            words = ", ".join(lower_name(part) for part in parts if part)
            names.append(f"SYNTHETIC stick figure: {words.lower()}" if is_synthetic else words)
    return rows, names


def start_training(request: gr.Request, recipe: str, quick: bool, *values):
    """The Train form's recipe, quick setting and values (``TRAIN_FORM_FIELDS`` order) -> a run (the recipe
    chooser, a preset or the form's own settings), owned by this page's session."""
    if not SETTINGS.training_enabled:
        raise user_error("Training is turned off on this server (set VIDCLF_ENABLE_TRAINING=1).")
    form = dict(zip(TRAIN_FORM_FIELDS, values)) | {"recipe": recipe, "quick": quick}
    try:
        # only this page may stop it
        return start_request(JOB, form, SETTINGS, SYNTHETIC_ROOT, owner=request.session_hash), ""
    except VidclfError as e:
        raise user_error(e) from None


def stop_training(request: gr.Request):
    try:
        JOB.stop(owner=request.session_hash)
    except VidclfError as e:
        raise user_error(e) from None
    return (
        "Stopping after the current step. A training run keeps the checkpoints of its finished epochs (last.pt: the "
        "last one); a recipe choice stopped before its end chooses nothing."
    )


def teach_choices() -> list[tuple[str, str]]:
    return [(m.description, m.label) for m in teachable(models())]


def add_recording(recorded: list[str], clip: str | None):
    """The webcam recording just made joins the clips to teach from; the recorder is cleared for the next."""
    clips = [*recorded, clip] if clip else recorded
    return clips, None, f"{len(clips)} recording{'s' if len(clips) != 1 else ''} added"


def teach_on_page(
    base_label: str | None,
    name: str | None,
    files: list[str] | None,
    recorded: list[str],
    progress=gr.Progress(),
):
    """The Teach tab: a new model of one more action, selected in the Predict tab's model list."""
    base = entry_for(base_label)
    clips = [*(files or []), *recorded]
    try:
        label, text = teach_request(
            base, name, clips, SETTINGS, on_progress=lambda share, words: progress(share, desc=words)
        )
    except VidclfError as e:
        raise user_error(e) from None
    return text, refresh_models(label), gr.Dropdown(choices=teach_choices(), value=base_label), [], "0 recordings added"


def poll_training(seen_runs: int, current_model: str | None):
    """Timer tick: status text, the chooser's table, curves, and a fresh model list once a run has finished."""
    s = JOB.status()
    live = s.running
    label = "Training curves (live)" if live else "Training curves"
    if s.kind == "choose" and s.stage and live:
        label = f"{label}: {s.stage}"
    curves = gr.Plot(curves_figure(s.history), label=label) if s.history else gr.skip()
    models_update = refresh_models(current_model) if s.finished_runs != seen_runs else gr.skip()
    # The timer ticks only while a run is going: an idle page sends nothing through the queue.
    text = status_markdown(s, SETTINGS.runs_dir)
    return text, s.choice, curves, models_update, s.finished_runs, gr.Timer(active=live)


def log_table(label: str, *, elem_id: str, visible: bool = True) -> gr.Dataframe:
    """A workout log's table (a file's on the Predict tab, the live session's on the Live tab)."""
    return gr.Dataframe(
        headers=LOG_HEADERS,
        column_widths=LOG_COLUMN_WIDTHS,
        label=label,
        interactive=False,
        elem_id=elem_id,
        wrap=True,
        buttons=["copy"],
        visible=visible,
    )


def build_app() -> gr.Blocks:
    choices = model_choices()
    defaults = load_config()
    # delete_cache: uploaded and recorded clips are removed from the server an hour after their request.
    with gr.Blocks(title="vidclf: action classification", delete_cache=(600, 3600)) as demo:
        gr.Markdown(
            "# vidclf: which exercise is in this clip?\nRecord yourself with the webcam or upload a short clip of "
            "one person exercising. The default model reads the body's pose (BlazePose) and the motion (a CNN + "
            "LSTM), and says so when a clip is none of the exercises it knows."
        )
        if "error" in _hub_state:
            gr.Markdown(f"**The Hub model {SETTINGS.hub_model} could not be loaded:** {_hub_state['error']}")
        with gr.Tab("Predict"):
            with gr.Row():
                with gr.Column(scale=1):
                    # one way in: any video file (the page lets a GIF, AVI, MKV... through, see HEAD) or the
                    # webcam; what the browser cannot play is shown from a copy (``preview``)
                    video = gr.Video(sources=["upload", "webcam"], label="Clip", elem_id="clip")
                    button = gr.Button("Predict", variant="primary")
                    model = gr.Dropdown(
                        choices=choices,
                        value=choices[0][1] if choices else None,
                        label="Model",
                        info="best first: what each model looks at, and how it scored",
                    )
                    about = gr.Markdown(model_markdown(models()[0]) if choices else "No model found in weights/.")
                with gr.Column(scale=1):
                    answer = gr.Markdown(
                        "The answer shows here: upload a clip or record one.", elem_id="answer", min_height=60
                    )
                    with gr.Accordion("Details", open=False, elem_id="details"):
                        details = gr.Markdown(elem_id="answer-details")
                        result = gr.JSON(label="The answer as the API returns it", elem_id="answer-json")
            # the workout: what happens when, and the log of its sets
            timeline = gr.Plot(label="When does each exercise happen?", visible=False, elem_id="workout-chart")
            workout = log_table("Workout log", elem_id="workout-log", visible=False)
            chart = gr.Plot(label="Confidence per class", elem_id="confidence")
            frames = gr.Gallery(
                label="Frames the model saw", columns=8, height="auto", object_fit="contain", elem_id="frames"
            )
            outputs = [result, answer, details, timeline, workout, chart, frames]
            model.change(describe_model, model, about, api_name=False, show_progress="hidden")
            # One listener for the button, an upload and the end of a webcam recording, in one queue; on a phone
            # the answer is brought into view when it comes. The API's /predict is the same function without
            # the page's error display.
            gr.on(
                [button.click, video.upload, video.stop_recording],
                predict_on_page,
                [video, model],
                outputs,
                api_name=False,
                concurrency_id="predict",
            ).then(None, None, None, js=SHOW_ANSWER_JS, api_name=False, show_progress="hidden")
            api = gr.Button(visible=False)
            api.click(predict, [video, model], outputs, api_name="predict", concurrency_id="predict")
            # A clip the browser cannot play (XviD AVI, HEVC, GIF, ...) is shown from an H.264 copy, a webcam
            # recording from a copy that knows its duration. FFmpeg runs at the lowest CPU priority beside the
            # prediction, one copy at a time in a group of its own: it neither takes a prediction's slot nor
            # delays its answer.
            gr.on(
                [video.upload, video.stop_recording],
                preview,
                video,
                video,
                api_name=False,
                show_progress="hidden",
                concurrency_id="preview",
                concurrency_limit=1,
            )
            rows, names = example_rows(choices)
            if rows:
                gr.Examples(
                    rows,
                    [video, model],
                    example_labels=names,
                    label="Examples: SYNTHETIC stick figures made by vidclf, for the synthetic model. "
                    "The real models need a real person: record yourself or upload a clip.",
                )

        with gr.Tab("Live"):
            gr.Markdown(
                "Stand back so that the camera sees your **whole body**, press the camera button and exercise: "
                "vidclf says which exercise it sees (or *resting*, or *not one of these*), counts the repetitions "
                "as you go and keeps a log of your sets. Frames are handled as they come and not kept."
            )
            with gr.Row():
                cam = gr.Image(sources=["webcam"], streaming=True, label="Webcam", elem_id="live-cam")
                with gr.Column():
                    live_status = gr.Markdown("### Not started\nPress the camera button.", elem_id="live-status")
                    live_image = gr.Image(
                        label="What vidclf sees", interactive=False, elem_id="live-view", format="jpeg"
                    )
            live_log = log_table("Your sets so far", elem_id="live-log")
            # the live group runs at most as many frames at once as there are live sessions; a file prediction
            # waits in its own group, not behind the frames
            cam.stream(
                live_step,
                cam,
                [live_image, live_status, live_log],
                stream_every=0.1,
                time_limit=int(SETTINGS.max_seconds),
                concurrency_limit=max(1, SETTINGS.max_live),
                concurrency_id="live",
                show_progress="hidden",
                api_name=False,
            )
            cam.clear(live_end, None, None, api_name=False, show_progress="hidden")

        with gr.Tab("Train"):
            if not SETTINGS.training_enabled:
                gr.Markdown(
                    "**Training is turned off on this server.** Start the app with "
                    "`VIDCLF_ENABLE_TRAINING=1` to turn it on (and `VIDCLF_DATA_ROOTS` to allow dataset folders)."
                )
            gr.Markdown(RECIPE_HELP)
            with gr.Row():
                recipe = gr.Radio(list(RECIPE_CHOICES), value=CHOOSE, label="Recipe", elem_id="recipe")
                with gr.Column(min_width=300):
                    quick = gr.Checkbox(value=True, label="Quick setting (a few minutes on 2 CPU cores)")
                    gr.Markdown(quick_words(), elem_id="quick-words")
            with gr.Row():
                source = gr.Radio(
                    [SYNTHETIC_SOURCE, "Server folder"],
                    value=SYNTHETIC_SOURCE,
                    label="Data",
                )
                folder = gr.Textbox(
                    label="Dataset folder on the server (UCF-101 layout or folder per class)",
                    placeholder=", ".join(map(str, SETTINGS.data_roots)) or "no folders allowed",
                    interactive=False,
                )
                classes = gr.Textbox(label="Classes (optional, comma separated; default: first 10)", interactive=False)
                split = gr.Dropdown([1, 2, 3], value=defaults.data.split, label="UCF-101 split", interactive=False)
            with gr.Accordion("My own settings (used by that recipe only)", open=False) as own:
                with gr.Row():
                    val_fraction = gr.Slider(
                        0.0,
                        0.5,
                        value=defaults.data.val_fraction,
                        step=0.05,
                        label="Validation share (by group; the presets use it too)",
                    )
                    backbone = gr.Dropdown(list(BACKBONES), value=defaults.model.backbone, label="Backbone")
                    # each in a column wide enough for its words: on a phone each takes a line instead of clipping
                    with gr.Column(min_width=300):
                        pretrained = gr.Checkbox(
                            value=False, label="ImageNet weights (efficientnet_lite0: offline; resnet18: download)"
                        )
                    with gr.Column(min_width=300):
                        freeze = gr.Checkbox(value=False, label="Freeze backbone (features computed once, cached)")
                    views = gr.Number(
                        value=defaults.train.feature_views,
                        precision=0,
                        minimum=1,
                        label="Views per clip (frozen backbone: augmented copies, cached)",
                    )
                    frame_input = gr.Radio(
                        [("RGB frames", "rgb"), ("Frame differences (motion)", "diff")],
                        label="Input",
                        value=defaults.data.frame_input,
                    )
                with gr.Row():
                    epochs = gr.Number(value=10, precision=0, minimum=1, label="Epochs")
                    lr = gr.Number(value=1e-3, label="Learning rate")
                    batch_size = gr.Number(value=defaults.train.batch_size, precision=0, minimum=1, label="Batch size")
                    num_frames = gr.Number(value=8, precision=0, minimum=1, label="Frames per clip")
                    img_size = gr.Number(value=64, precision=0, minimum=32, label="Frame size (px)")
            with gr.Row():
                start = gr.Button("Start training", variant="primary", interactive=SETTINGS.training_enabled)
                stop = gr.Button("Stop", interactive=SETTINGS.training_enabled)
            status = gr.Markdown("No training run yet.", elem_id="train-status")
            choice = gr.Markdown(elem_id="choice")
            curves = gr.Plot(label="Training curves")
            seen_runs = gr.State(0)
            # the synthetic set has its own classes and splits: those fields apply to a server folder only
            source.change(
                lambda src: [gr.update(interactive=not src.startswith("Synthetic"))] * 3,
                source,
                [folder, classes, split],
                api_name=False,
                show_progress="hidden",
            )
            recipe.change(lambda r: gr.Accordion(open=r == OWN), recipe, own, api_name=False, show_progress="hidden")
            start.click(
                start_training,
                [
                    recipe,
                    quick,
                    source,
                    folder,
                    classes,
                    split,
                    val_fraction,
                    backbone,
                    pretrained,
                    freeze,
                    views,
                    frame_input,
                    epochs,
                    lr,
                    batch_size,
                    num_frames,
                    img_size,
                ],
                [status, choice],
                api_name="train" if SETTINGS.training_enabled else False,
            )
            stop.click(stop_training, None, status, api_name="stop_training" if SETTINGS.training_enabled else False)
            timer = gr.Timer(1.0, active=SETTINGS.training_enabled and JOB.status().running)
            timer.tick(
                poll_training,
                [seen_runs, model],
                [status, choice, curves, model, seen_runs, timer],
                api_name=False,
                show_progress="hidden",
            )
            # starting a run turns the timer on; its last tick, after the run, turns it off
            start.click(lambda: gr.Timer(active=True), None, timer, api_name=False, show_progress="hidden")
        with gr.Tab("Teach"):
            gr.Markdown(
                "### Teach a model a new exercise\nUpload or record **3-5 clips** of one exercise the model doesn't "
                "know (the whole body in view, a few repetitions each), name it, and press Teach. About a minute on "
                "the CPU later, a model that knows it too appears in the Predict tab's model list; the exercises it "
                "knew keep their own scores."
                + ("" if SETTINGS.training_enabled else "\n\n**Teaching is turned off on this server.**")
            )
            teachables = teach_choices()
            with gr.Row():
                teach_base = gr.Dropdown(teachables, value=teachables[0][1] if teachables else None, label="Start from")
                teach_name = gr.Textbox(label="Name of the new exercise", max_length=60, elem_id="teach-name")
            with gr.Row():
                teach_files = gr.File(
                    label="Clips of it (3-5)", file_count="multiple", file_types=["video"], elem_id="teach-files"
                )
                with gr.Column():
                    teach_cam = gr.Video(sources=["webcam", "upload"], label="Or record them one by one")
                    teach_add = gr.Button("Add this recording")
                    teach_count = gr.Markdown("0 recordings added")
            teach_go = gr.Button("Teach", variant="primary", interactive=SETTINGS.training_enabled)
            teach_status = gr.Markdown(elem_id="teach-status")
            recorded = gr.State([])
            teach_add.click(add_recording, [recorded, teach_cam], [recorded, teach_cam, teach_count], api_name=False)
            teach_go.click(
                teach_on_page,
                [teach_base, teach_name, teach_files, recorded],
                [teach_status, model, teach_base, recorded, teach_count],
                api_name="teach" if SETTINGS.training_enabled else False,
            )
            demo.load(
                lambda current: gr.Dropdown(choices=teach_choices(), value=current),
                teach_base,
                teach_base,
                api_name=False,
                show_progress="hidden",
            )
        demo.load(refresh_models, model, model, api_name="models")
        demo.unload(live_end)
    demo.queue(default_concurrency_limit=SETTINGS.concurrency, max_size=SETTINGS.queue_size)
    return demo


if __name__ == "__main__":
    LIVE.start_reaper()
    for default in models()[:1]:  # the default model loaded and its graphs started before the first request
        POOL.get(default.path).warm_up()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    port = int(os.environ.get("PORT", os.environ.get("GRADIO_SERVER_PORT", 7860)))
    build_app().launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "0.0.0.0"),
        server_port=port,
        max_file_size=f"{SETTINGS.max_upload_mb}mb",
        theme=gr.themes.Soft(),
        css=CSS,
        head=HEAD,
    )
