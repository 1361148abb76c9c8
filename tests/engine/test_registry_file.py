"""The registry's SQLite file on its own (registry_file.py, split out of registry.py for issue 13): a damaged
file is set aside under a name no one reads and rebuilt through the registry's callback, once, and said."""

from __future__ import annotations

from workbench.engine.runs.registry_file import RegistryFile, ensure_table, has_table_runs


def test_a_damaged_file_is_set_aside_rebuilt_by_the_callback_and_reported(tmp_path):
    db_path = tmp_path / "registry.sqlite"
    db_path.write_bytes(b"this is not a database" * 200)
    warnings: list[str] = []
    rebuilt: list[int] = []

    def rebuild() -> int:
        with registry_file.connect() as db:
            ensure_table(db)
        rebuilt.append(1)
        return 3

    registry_file = RegistryFile(tmp_path, db_path, None, warn=warnings.append, rebuild=rebuild)
    assert registry_file.execute(has_table_runs) is True  # the work ran on the rebuilt file
    assert rebuilt == [1]
    aside = [p.name for p in tmp_path.iterdir() if p.name.startswith("registry.sqlite.damaged-")]
    assert len(aside) == 1 and (tmp_path / aside[0]).read_bytes().startswith(b"this is not a database")
    assert len(warnings) == 1 and "damaged" in warnings[0] and aside[0] in warnings[0] and "3" in warnings[0]
    assert registry_file.execute(has_table_runs) is True and rebuilt == [1]  # healthy now: no second rebuild


def test_a_read_only_home_refuses_writes_by_name_and_never_rebuilds(tmp_path):
    import pytest

    from workbench.engine.errors import WorkbenchError

    db_path = tmp_path / "registry.sqlite"
    registry_file = RegistryFile(
        tmp_path, db_path, "no files can be created in it", warn=lambda text: None, rebuild=lambda: 0
    )
    with pytest.raises(WorkbenchError, match="read-only here \\(no files can be created in it\\)"):
        registry_file.execute(ensure_table)
    assert not db_path.exists()
