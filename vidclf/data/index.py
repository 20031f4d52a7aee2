"""Index a dataset on disk: which clips exist, their class and their group. No decoding happens here.

Two layouts are understood:

* UCF-101 as distributed: ``ROOT/UCF-101/<Class>/v_<Class>_gXX_cYY.avi`` and ``ROOT/ucfTrainTestlist/``
  (``classInd.txt``, ``trainlist0N.txt``, ``testlist0N.txt``; CRLF line endings).
* Any folder-per-class tree: ``ROOT/<Class>/*.avi|mp4|...``.

A clip's *group* (UCF-101's ``gXX``: one actor and setting) is what validation splits on: clips of one
group look alike, so a split by clip lets the model recognise the room instead of the action.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Iterable, Sequence

import numpy as np

from vidclf.errors import DatasetError
from vidclf.video import VIDEO_EXTENSIONS

UCF_VIDEOS = "UCF-101"
UCF_LISTS = "ucfTrainTestlist"
_GROUP_RE = re.compile(r"_g(\d+)_c\d+", re.IGNORECASE)


@dataclass(frozen=True)
class VideoRecord:
    """One clip: its file, its label (index into the index's ``classes``) and its group id."""

    path: Path
    label: int
    group: str


@dataclass(frozen=True, kw_only=True)
class VideoIndex:
    """The clips of one dataset part, with the class list their labels index into."""

    classes: tuple[str, ...]
    records: tuple[VideoRecord, ...]
    missing: int = 0  # clips named by a split list but absent on disk
    other_classes: int = 0  # clips present (or listed) whose class is not in ``classes``
    source: str = ""  # a human description: "UCF-101 split 1 train", "folder tree"

    @property
    def groups(self) -> list[str]:
        return sorted({r.group for r in self.records})

    def subset(self, records: Iterable[VideoRecord], source: str) -> VideoIndex:
        return VideoIndex(classes=self.classes, records=tuple(records), source=source)


def group_of(path: Path) -> str:
    """``gXX`` from a UCF-style name (``v_JumpingJack_g08_c02.avi`` -> ``g08``); else the file's own stem."""
    m = _GROUP_RE.search(path.stem)
    return f"g{int(m.group(1)):02d}" if m else path.stem


def is_ucf101_root(root: Path) -> bool:
    return (root / UCF_VIDEOS).is_dir() and (root / UCF_LISTS / "classInd.txt").is_file()


def read_class_ind(path: Path) -> list[str]:
    """Class names in ``classInd.txt`` order (lines ``"1 ApplyEyeMakeup"``)."""
    names: list[tuple[int, str]] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise DatasetError(f"{path}:{n}: expected '<index> <ClassName>', got {line.strip()!r}")
        names.append((int(parts[0]), parts[1]))
    return [name for _, name in sorted(names)]


def read_split_list(path: Path) -> list[str]:
    """Relative clip paths from a ``trainlist0N.txt`` / ``testlist0N.txt`` (a train list's label column dropped)."""
    if not path.is_file():
        raise DatasetError(f"split list not found: {path}")
    return [line.split()[0] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@dataclass(frozen=True)
class UcfSplit:
    """One official UCF-101 split as its files define it, before looking at the disk."""

    classes: tuple[str, ...]  # classInd.txt order
    train: tuple[str, ...]  # relative paths "Class/v_Class_gXX_cYY.avi"
    test: tuple[str, ...]


def read_ucf101_split(lists_dir: str | Path, split: int) -> UcfSplit:
    """Parse ``classInd.txt``, ``trainlist0N.txt`` and ``testlist0N.txt`` (split ``N`` in 1-3)."""
    lists_dir = Path(lists_dir)
    if split not in (1, 2, 3):
        raise DatasetError(f"UCF-101 has splits 1, 2 and 3, not {split}")
    class_ind = lists_dir / "classInd.txt"
    if not class_ind.is_file():
        raise DatasetError(f"classInd.txt not found in {lists_dir}")
    return UcfSplit(
        tuple(read_class_ind(class_ind)),
        tuple(read_split_list(lists_dir / f"trainlist{split:02d}.txt")),
        tuple(read_split_list(lists_dir / f"testlist{split:02d}.txt")),
    )


def resolve_classes(available: Sequence[str], requested: Sequence[str] | None, num_classes: int) -> tuple[str, ...]:
    """The class subset: ``requested`` names, else the first ``num_classes`` (0 = all).

    Names are only ever names: a name that happens to be a file path is an unknown class, never a file to
    read (a class list from a file is the CLI's ``--classes-file``, see :func:`read_class_list`).
    Unknown names raise :class:`DatasetError` with the closest known names.
    """
    if requested:
        by_lower = {c.lower(): c for c in available}
        out = []
        for name in requested:
            if name.lower() not in by_lower:
                close = difflib.get_close_matches(name, list(available), n=3)
                raise DatasetError(
                    f"unknown class {name!r}"
                    + (
                        f"; did you mean {', '.join(close)}?"
                        if close
                        else f"; {len(available)} classes are available, e.g. {', '.join(available[:5])}"
                    )
                )
            out.append(by_lower[name.lower()])
        if len(set(out)) != len(out):
            raise DatasetError(f"a class is named twice in {list(requested)}")
        return tuple(out)
    if not available:
        raise DatasetError("no classes found")
    return tuple(available if num_classes == 0 else available[:num_classes])


def read_class_list(path: str | Path) -> tuple[str, ...]:
    """Class names from a text file, one per line (blank lines skipped): the CLI's ``--classes-file``."""
    p = Path(path)
    try:
        names = tuple(ln.strip() for ln in p.read_text(encoding="utf-8").splitlines() if ln.strip())
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"cannot read the class list {p}: {type(e).__name__}") from None
    if not names:
        raise DatasetError(f"the class list {p} names no classes (one class name per line)")
    return names


def _ucf_classes_on_disk(root: Path, class_ind: list[str]) -> list[str]:
    videos = root / UCF_VIDEOS
    return [c for c in class_ind if (videos / c).is_dir() and any((videos / c).iterdir())]


def ucf101_index(
    root: str | Path,
    subset: str,
    *,
    split: int = 1,
    classes: Sequence[str] | None = None,
    num_classes: int = 10,
) -> VideoIndex:
    """Clips of UCF-101's official ``split`` (1-3), ``subset`` "train" or "test", restricted to a class subset.

    With no explicit ``classes``, the first ``num_classes`` classes *present on disk* are taken in
    ``classInd.txt`` order, so a partial copy of UCF-101 works as it is. Clips the list names but the disk
    lacks are counted in ``missing`` and skipped.
    """
    root = Path(root)
    if subset not in ("train", "test"):
        raise ValueError(f"subset must be 'train' or 'test', got {subset!r}")
    lists = read_ucf101_split(root / UCF_LISTS, split)
    class_ind = list(lists.classes)
    chosen = resolve_classes(_ucf_classes_on_disk(root, class_ind) if not classes else class_ind, classes, num_classes)
    label_of = {c: i for i, c in enumerate(chosen)}
    listed = lists.train if subset == "train" else lists.test
    records, missing, other = [], 0, 0
    for rel in listed:
        class_name = rel.replace("\\", "/").split("/")[0]  # the folder, not the file name: v_HandStandPushups_ quirk
        if class_name not in label_of:
            other += 1
            continue
        path = root / UCF_VIDEOS / rel
        if not path.is_file():
            missing += 1
            continue
        records.append(VideoRecord(path, label_of[class_name], group_of(path)))
    if not records:
        raise DatasetError(
            f"no clips of classes {list(chosen)[:5]}... found for UCF-101 split {split} {subset} "
            f"under {root / UCF_VIDEOS}"
            f" ({missing} of the listed clips of these classes are missing on disk)"
        )
    return VideoIndex(
        classes=chosen,
        records=tuple(records),
        missing=missing,
        other_classes=other,
        source=f"UCF-101 split {split} {subset}",
    )


def folder_index(root: str | Path, classes: Sequence[str] | None = None, num_classes: int = 0) -> VideoIndex:
    """Every video under ``root/<Class>/`` (sorted class names). Empty class folders are an error."""
    root = Path(root)
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise DatasetError(f"{root} has no class folders: expected {root}/<ClassName>/<clip>.avi")
    clips_of = {
        d.name: sorted(f for f in d.rglob("*") if f.suffix.lower() in VIDEO_EXTENSIONS and f.is_file())
        for d in class_dirs
    }
    empty = [c for c, files in clips_of.items() if not files]
    if empty and not classes:
        raise DatasetError(
            f"class folder(s) with no videos ({', '.join(VIDEO_EXTENSIONS)}): {', '.join(empty)} in {root}; "
            "add clips or remove the folder"
        )
    chosen = resolve_classes(list(clips_of), classes, num_classes)
    for c in chosen:
        if not clips_of[c]:
            raise DatasetError(f"class folder {root / c} has no videos")
    records = [VideoRecord(f, i, group_of(f)) for i, c in enumerate(chosen) for f in clips_of[c]]
    other = sum(len(v) for c, v in clips_of.items() if c not in chosen)
    return VideoIndex(classes=chosen, records=tuple(records), other_classes=other, source="folder tree")


def build_index(
    data_root: str | Path | None,
    subset: str,
    *,
    split: int = 1,
    classes: Sequence[str] | None = None,
    num_classes: int = 10,
) -> VideoIndex:
    """Index ``data_root`` whatever its layout. A folder tree has no test list: both subsets are all its clips."""
    if data_root is None:
        raise DatasetError("no data root given: pass --data-root DIR (a UCF-101 root or a folder-per-class tree)")
    root = Path(data_root).expanduser()
    if not root.exists():
        raise DatasetError(f"data root not found: {root}")
    if not root.is_dir():
        raise DatasetError(f"data root is not a folder: {root}")
    if is_ucf101_root(root):
        index = ucf101_index(root, subset, split=split, classes=classes, num_classes=num_classes)
        readme = root / "README.txt"
        if readme.is_file() and "SYNTHETIC" in readme.read_text(errors="replace")[:200]:  # vidclf's own generated set
            index = dataclasses.replace(
                index, source=index.source.replace("UCF-101", "the SYNTHETIC set (UCF-101 layout),", 1)
            )
        return index
    if (root / UCF_VIDEOS).is_dir():
        raise DatasetError(f"{root} has {UCF_VIDEOS}/ but no {UCF_LISTS}/classInd.txt: add the official split files")
    return folder_index(root, classes, num_classes)


@dataclass(frozen=True)
class GroupSplit:
    train: VideoIndex
    val: VideoIndex
    val_groups: tuple[str, ...] = field(default=())


def split_by_group(index: VideoIndex, val_fraction: float, seed: int = 0) -> GroupSplit:
    """Hold out whole groups for validation: no group has clips on both sides.

    Groups are drawn at random with ``seed`` (the same seed gives the same split); ``round(val_fraction *
    groups)`` of them, at least one when ``val_fraction > 0`` and there are two groups or more.
    """
    groups = index.groups
    n_val = int(round(val_fraction * len(groups)))
    if val_fraction > 0 and len(groups) >= 2:
        n_val = min(max(n_val, 1), len(groups) - 1)
    else:
        n_val = 0
    rng = np.random.default_rng(seed)
    val_groups = tuple(sorted(rng.choice(groups, size=n_val, replace=False).tolist())) if n_val else ()
    held = set(val_groups)
    train = index.subset([r for r in index.records if r.group not in held], f"{index.source} (train groups)")
    val = index.subset(
        [r for r in index.records if r.group in held], f"{index.source} (validation groups {', '.join(val_groups)})"
    )
    return GroupSplit(train, val, val_groups)


def group_folds(index: VideoIndex, folds: int) -> list[GroupSplit]:
    """``folds`` train/validation splits whose validation groups partition all groups (group k-fold).

    Groups are dealt round-robin in sorted order, so fold ``i`` holds groups ``i, i + folds, ...``.
    """
    groups = index.groups
    if not 2 <= folds <= len(groups):
        raise DatasetError(f"cannot make {folds} folds of {len(groups)} groups")
    out = []
    for i in range(folds):
        held = set(groups[i::folds])
        train = index.subset([r for r in index.records if r.group not in held], f"{index.source} (fold {i + 1} train)")
        val = index.subset([r for r in index.records if r.group in held], f"{index.source} (fold {i + 1} validation)")
        out.append(GroupSplit(train, val, tuple(sorted(held))))
    return out
