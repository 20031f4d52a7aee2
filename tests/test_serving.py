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
