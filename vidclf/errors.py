"""The project's own error types.

Every error a user can cause (a bad path, an unreadable clip, a mangled config, a checkpoint from another
model) is raised as a :class:`VidclfError` subclass whose message says what is wrong and how to fix it. The
CLI prints it as one line and the app shows it as a ``gr.Error``; anything else is a bug.
"""


class VidclfError(Exception):
    """Base class: a problem with the user's input, not a bug in vidclf."""


class ConfigError(VidclfError):
    """A config file or override that does not fit the config schema."""


class VideoError(VidclfError):
    """A file that cannot be decoded as a video (missing, empty, corrupt, no video stream)."""


class DatasetError(VidclfError):
    """A dataset root or split that cannot be indexed (missing folders, empty classes, unknown names)."""


class CheckpointError(VidclfError):
    """A checkpoint that cannot be loaded (not ours, another format version, mismatched model)."""


class BackboneWeightsError(VidclfError):
    """Pretrained backbone weights that cannot be downloaded or read."""
