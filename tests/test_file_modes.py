"""Files that ``explain`` and ``ablate`` write are readable as any new file under the umask (0644
with the usual 022), not 0600 as ``tempfile.mkstemp`` makes them."""

from __future__ import annotations

import os
import stat

import pandas as pd
import pytest

from hmviz.atomic import atomic_output, new_file_mode


@pytest.fixture(params=[0o022, 0o077])
def umask(request):
    before = os.umask(request.param)
    yield request.param
    os.umask(before)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_explain_and_ablate_tables_follow_the_umask(tmp_path, umask) -> None:
    from hmviz.cli.explain import write_table

    for name in ("attributions.csv", "attributions.tsv", "ablation.csv"):
        path = write_table(pd.DataFrame({"gene": ["a"], "attribution": [0.5]}), tmp_path / name)
        assert _mode(path) == 0o666 & ~umask
    assert new_file_mode() == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ablation.csv", "attributions.csv", "attributions.tsv"]


def test_ablation_run_records_follow_the_umask(tmp_path, umask) -> None:
    import pandas as pd

    from hmviz.studies.runner import _write_table_atomic, write_json_atomic

    path = tmp_path / "run.json"
    write_json_atomic(path, {"auroc": 0.8})
    assert _mode(path) == 0o666 & ~umask
    assert path.read_text() == '{\n "auroc": 0.8\n}\n'
    _write_table_atomic(pd.DataFrame({"a": [1]}), tmp_path, "results")
    assert _mode(tmp_path / "results.csv") == _mode(tmp_path / "results.parquet") == 0o666 & ~umask


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path) -> None:
    path = tmp_path / "table.csv"
    path.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_output(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk full")
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv"]
