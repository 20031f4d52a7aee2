import pytest

from conftest import UCF_ROOT, needs_shared
from vidclf.data.index import build_index, folder_index, read_ucf101_split, resolve_classes, split_by_group
from vidclf.errors import DatasetError
from vidclf.video import write_video
import numpy as np

LISTS = UCF_ROOT / "ucfTrainTestlist"


@needs_shared
@pytest.mark.parametrize("split, n_train, n_test", [(1, 9537, 3783), (2, 9586, 3734), (3, 9624, 3696)])
def test_official_split_lists(split, n_train, n_test):
    s = read_ucf101_split(LISTS, split)
    assert len(s.classes) == 101
    assert s.classes[0] == "ApplyEyeMakeup" and s.classes[-1] == "YoYo"
    assert (len(s.train), len(s.test)) == (n_train, n_test)
    assert not any("\r" in p for p in s.train + s.test)  # CRLF handled
    assert set(s.train).isdisjoint(s.test)


@needs_shared
def test_shared_subset_index_and_quirk():
    idx = build_index(UCF_ROOT, "train", split=1, num_classes=10)
    assert len(idx.classes) == 10 and len(idx.records) == 528
    assert "HandstandPushups" in idx.classes
    hsp = [r for r in idx.records if idx.classes[r.label] == "HandstandPushups"]
    assert len(hsp) == 55 and all("HandStandPushups" in r.path.name for r in hsp)
    assert idx.missing > 0  # the split list names clips this copy lacks: counted, not fatal
    assert {r.group for r in idx.records} == {f"g{g:02d}" for g in range(8, 26)}


@needs_shared
def test_shared_test_list_is_absent_and_said_so():
    with pytest.raises(DatasetError, match="missing on disk"):
        build_index(UCF_ROOT, "test", split=1)


@needs_shared
def test_validation_split_is_by_group():
    idx = build_index(UCF_ROOT, "train", split=1)
    s = split_by_group(idx, 0.2, seed=0)
    train_groups = {r.group for r in s.train.records}
    val_groups = {r.group for r in s.val.records}
    assert train_groups.isdisjoint(val_groups)
    assert len(val_groups) == 4 and len(s.train.records) + len(s.val.records) == 528
    assert split_by_group(idx, 0.2, seed=0).val_groups == s.val_groups  # fixed by the seed
    assert split_by_group(idx, 0.2, seed=1).val_groups != s.val_groups


def test_synthetic_index_and_splits(synth_root):
    train = build_index(synth_root, "train", split=1)
    test = build_index(synth_root, "test", split=1)
    assert len(train.classes) == 6
    assert {r.group for r in train.records}.isdisjoint({r.group for r in test.records})
    assert len(train.records) + len(test.records) == 6 * 6 * 3


def test_class_subset_by_name_file_and_count(synth_root, tmp_path):
    idx = build_index(synth_root, "train", classes=["SynthWave", "synthsquat"])
    assert idx.classes == ("SynthWave", "SynthSquat")
    assert {r.label for r in idx.records} == {0, 1}
    f = tmp_path / "classes.txt"
    f.write_text("SynthWalk\nSynthWave\n")
    from vidclf.data.index import read_class_list

    assert build_index(synth_root, "train", classes=read_class_list(f)).classes == ("SynthWalk", "SynthWave")
    assert build_index(synth_root, "train", num_classes=2).classes == ("SynthJumpingJack", "SynthSquat")


def test_unknown_class_suggests(synth_root):
    with pytest.raises(DatasetError, match="did you mean SynthWave"):
        build_index(synth_root, "train", classes=["SynthWav"])


def test_missing_root_and_not_a_dataset(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        build_index(tmp_path / "nope", "train")
    with pytest.raises(DatasetError, match="no class folders"):
        build_index(tmp_path, "train")
    with pytest.raises(DatasetError, match="no data root"):
        build_index(None, "train")


def test_folder_tree(tmp_path):
    frames = np.zeros((4, 32, 32, 3), np.uint8)
    for cls in ("Alpha", "Beta"):
        for i in range(2):
            write_video(tmp_path / cls / f"v_{cls}_g0{i + 1}_c01.avi", frames)
    idx = folder_index(tmp_path)
    assert idx.classes == ("Alpha", "Beta") and len(idx.records) == 4
    assert {r.group for r in idx.records} == {"g01", "g02"}
    (tmp_path / "Empty").mkdir()
    with pytest.raises(DatasetError, match="Empty"):
        folder_index(tmp_path)


def test_resolve_classes_rejects_duplicates():
    with pytest.raises(DatasetError, match="twice"):
        resolve_classes(["A", "B"], ["A", "a"], 0)


def test_group_folds_partition_the_groups(synth_root):
    from vidclf.data.index import group_folds

    idx = build_index(synth_root, "train", split=1)
    folds = group_folds(idx, 4)
    held = [g for f in folds for g in f.val_groups]
    assert sorted(held) == idx.groups and len(set(held)) == len(held)
    for f in folds:
        assert {r.group for r in f.train.records}.isdisjoint(f.val_groups)
        assert len(f.train.records) + len(f.val.records) == len(idx.records)
    with pytest.raises(DatasetError):
        group_folds(idx, 1)


def test_a_class_name_that_is_a_server_file_is_never_read(tmp_path, synth_root):
    """The Train tab's Classes box reaches resolve_classes: a path must be an unknown class, not a file to read."""
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0:TOP-SECRET\nSynthWave\n")
    with pytest.raises(DatasetError) as err:
        resolve_classes(["SynthWave", "SynthSquat"], [str(secret)], 0)
    assert "TOP-SECRET" not in str(err.value) and "unknown class" in str(err.value)
    with pytest.raises(DatasetError) as err:
        build_index(synth_root, "train", classes=[str(secret)])
    assert "TOP-SECRET" not in str(err.value)


def test_classes_file_is_the_cli_way_to_a_class_list(tmp_path, synth_root):
    from train_cli import build_parser, config_from_args

    listing = tmp_path / "classes.txt"
    listing.write_text("SynthWave\n\nSynthSquat\n")
    args = build_parser().parse_args(["train", "--data-root", str(synth_root), "--classes-file", str(listing)])
    assert config_from_args(args).data.classes == ("SynthWave", "SynthSquat")
    args = build_parser().parse_args(["train", "--classes-file", str(listing), "--classes", "SynthWalk"])
    with pytest.raises(Exception, match="not both"):
        config_from_args(args)
