"""Plotly figures for the app: class confidences, training curves, a workout's log on its time axis."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go


FONT = dict(size=14)


def confidence_figure(probs: dict[str, float]) -> go.Figure:
    """Horizontal bars in %, most likely class on top; tall enough to read 101 classes. No title: the
    component's label is the title."""
    items = sorted(probs.items(), key=lambda kv: kv[1])  # plotly draws the first bar at the bottom
    names = [k for k, _ in items]
    values = [100 * v for _, v in items]
    top = names[-1] if names else None
    fig = go.Figure(
        go.Bar(
            x=values,
            y=names,
            orientation="h",
            marker_color=["#4f46e5" if n == top else "#a5b4fc" for n in names],
            text=[f"{v:.0f}%" if v >= 1 else "" for v in values],
            textposition="auto",
            insidetextanchor="end",
            hovertemplate="%{y}: %{x:.1f}%<extra></extra>",
        )
    )
    fig.update_layout(
        height=max(300, 80 + 26 * len(names)),
        margin=dict(l=10, r=20, t=44, b=40),
        font=FONT,
        xaxis=dict(range=[0, 100], ticksuffix="%", title="probability", fixedrange=True),
        yaxis=dict(automargin=True, dtick=1, fixedrange=True),
        template="plotly_white",
    )
    return fig


def curves_figure(history: Sequence[dict]) -> go.Figure:
    """Loss (left axis) and accuracy (right axis) per epoch, train and validation. No title: the component's
    label is the title."""
    epochs = [h["epoch"] for h in history]
    fig = go.Figure()
    for key, name, dash, axis in (
        ("train_loss", "train loss", "solid", "y"),
        ("val_loss", "val loss", "dash", "y"),
        ("train_acc", "train acc", "solid", "y2"),
        ("val_acc", "val acc", "dash", "y2"),
    ):
        ys = [h.get(key) for h in history]
        if any(y is not None for y in ys):
            fig.add_trace(go.Scatter(x=epochs, y=ys, name=name, mode="lines+markers", line=dict(dash=dash), yaxis=axis))
    fig.update_layout(
        height=340,
        template="plotly_white",
        font=FONT,
        margin=dict(l=10, r=10, t=50, b=30),
        # fixed axes: no zoom and pan buttons, whose toolbar covered the panel's label on a phone
        xaxis=dict(title="epoch", dtick=1 if len(epochs) < 20 else None, fixedrange=True),
        yaxis=dict(title="loss", fixedrange=True),
        yaxis2=dict(title="accuracy", overlaying="y", side="right", range=[0, 1], fixedrange=True),
        legend=dict(orientation="h", y=-0.2),
    )
    return fig


REST_COLOUR, UNKNOWN_COLOUR = "#e5e7eb", "#fcd34d"
EXERCISE_COLOURS = ("#6366f1", "#10b981", "#f97316", "#0ea5e9", "#ec4899", "#84cc16", "#a855f7", "#14b8a6")


def workout_figure(duration_s: float, segments: Sequence) -> go.Figure:
    """The clip's time axis with its workout log on it: each segment a coloured span (one colour per exercise,
    grey for rest, amber for "not one of these"), each repetition ticked and numbered within its set.

    ``segments``: rows with ``what`` (words), ``kind`` ("exercise", "rest", "unknown"), ``start_s``, ``end_s``
    and ``rep_times`` (``[(start, end)]`` in seconds), as :func:`vidclf.live.log_rows` makes them.
    """
    fig = go.Figure()
    colours: dict[str, str] = {}
    for s in segments:
        if s.what not in colours:
            exercises = sum(1 for k in colours if k not in ("resting", "not one of these"))
            colours[s.what] = (
                REST_COLOUR
                if s.kind == "rest"
                else UNKNOWN_COLOUR
                if s.kind == "unknown"
                else EXERCISE_COLOURS[exercises % len(EXERCISE_COLOURS)]
            )
        reps = f", {s.reps} repetitions" if s.kind == "exercise" else ""
        fig.add_trace(
            go.Bar(
                x=[max(s.end_s - s.start_s, 1e-3)],
                base=[s.start_s],
                y=[0],
                width=[0.7],
                orientation="h",
                marker=dict(color=colours[s.what], line=dict(width=0)),
                name=s.what,
                legendgroup=s.what,
                showlegend=s.what not in {t.name for t in fig.data},
                hovertemplate=f"{s.what}: {s.start_s:.1f}-{s.end_s:.1f} s{reps}<extra></extra>",
            )
        )
    ticks = [(s, i, b) for s in segments if s.kind == "exercise" for i, (_, b) in enumerate(s.rep_times)]
    if ticks:
        every = 1 if max(len(s.rep_times) for s in segments) <= 30 else 5
        fig.add_trace(
            go.Scatter(
                x=[b for _, _, b in ticks],
                y=[0] * len(ticks),
                mode="markers+text",
                marker=dict(symbol="line-ns-open", size=30, line=dict(width=2, color="#111827")),
                text=[str(i + 1) if (i + 1) % every == 0 or i == 0 else "" for _, i, _ in ticks],
                textposition="top center",
                textfont=dict(size=11),
                name="repetition",
                showlegend=False,
                hovertemplate=[f"{s.what}: repetition {i + 1} at %{{x:.1f}} s<extra></extra>" for s, i, _ in ticks],
            )
        )
    fig.update_layout(
        height=230,
        template="plotly_white",
        font=FONT,
        barmode="overlay",
        bargap=0,
        xaxis=dict(title="time in the clip (s)", range=[0, max(duration_s, 1e-3)], fixedrange=True),
        yaxis=dict(visible=False, range=[-0.6, 0.9], fixedrange=True),
        margin=dict(l=10, r=10, t=50, b=40),  # room above for the panel's label and toolbar
        legend=dict(orientation="h", yanchor="top", y=-0.45, x=0),
    )
    return fig
