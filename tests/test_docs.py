"""The README says what the shipped models say: each model's figure in its table comes from the checkpoint
the app reads (one source for each number), and no placeholder is left."""

import re

from conftest import ROOT


def test_the_readme_model_table_matches_the_shipped_checkpoints():
    from vidclf.catalog import find_models

    readme = (ROOT / "README.md").read_text()
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\s*\| `(\w+)`[^|]*\|[^|]*\| ([^|]*)\|", readme, re.M)}
    shipped = [m for m in find_models() if m.source == "shipped" and not m.synthetic]
    assert shipped and {m.label for m in shipped} <= set(rows)
    for m in shipped:
        assert f"{m.val_acc:.3f}" in rows[m.label], (m.label, m.val_acc, rows[m.label])


def test_no_placeholder_is_left_in_the_docs():
    for doc in [ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "weights").glob("*.md")]:
        assert not re.search(r"\b(TODO|TBD|XXX|FIXME|[A-Z]+_CV)\b", doc.read_text()), doc.name
