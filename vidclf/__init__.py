"""vidclf: video action classification with a CNN + LSTM.

Where things are: frames are decoded in ``video``, sampled in ``sampling``; datasets are indexed in
``data.index`` and turned into tensors in ``data.dataset``; the model is built in ``models``; checkpoints
are written and read in ``checkpoint``; the training loop is ``training.loop``; ``predict`` classifies files.
"""

__version__ = "0.1.0"

import os as _os

# FFmpeg's own log lines ("moov atom not found") would duplicate the clear VideoError vidclf raises; must be
# set before OpenCV loads FFmpeg.
_os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
# Torch's OpenMP threads sleep as soon as their work ends instead of spinning for the next: a prediction runs
# torch beside its decoder, BlazePose's graphs and the workout engine on few cores, where a spinning thread
# takes a core another thread needs (docs/benchmarks.md, "Phone-sized clips, third round"). Read when libgomp
# loads: effective where vidclf is imported before torch.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
