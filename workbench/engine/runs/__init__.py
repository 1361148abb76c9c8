"""Run folders and the SQLite registry that lists them.

Each run owns `runs/<run-id>/` (run.json, config.json, dataset.json, history.json, checkpoints/) and one row in
`registry.sqlite` beside it. A training process holds an exclusive lock on `runs/<run-id>/.lock` for as
long as it runs; a row still marked `running` whose lock is free belongs to a dead process and is shown
as `interrupted` — so a killed run never stays `running`.

The registry is an index, the run folders are the truth it can be rebuilt from:
- a run's folder is always `<registry root>/runs/<run-id>` and its checkpoint a path inside that folder, whatever
  an older registry stored, so a copied or moved home works on its own files and never writes or deletes outside;
- `run.json` in each folder mirrors the row (name, model, dataset roots, status, numbers), so a damaged
  `registry.sqlite` is set aside as `registry.sqlite.damaged-<time>` and rebuilt, a damaged row is repaired, and
  either is reported in `RunRegistry.warnings`;
- a row whose folder is gone is listed as `missing`, one that cannot be repaired as `damaged`;
- a home that cannot be written is opened read-only: listing and loading work, writing fails naming the folder.
"""

from workbench.engine.runs.handle import FollowerRunHandle, RunHandle
from workbench.engine.runs.registry import RunRegistry
from workbench.engine.runs.rows import DAMAGED, MISSING, STATUSES, RunRecord, printable

__all__ = ["DAMAGED", "MISSING", "STATUSES", "FollowerRunHandle", "RunHandle", "RunRecord", "RunRegistry", "printable"]
