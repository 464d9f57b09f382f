"""The trainer is a library: no database, no broker, and from ``app`` only evaluation and
preprocessing."""

from __future__ import annotations

import json
import subprocess
import sys

ALLOWED_APP_MODULES = ("app.evaluation", "app.inference.preprocess")


def _modules_after(statement: str) -> list[str]:
    script = f"import json, sys; {statement}; print(json.dumps(sorted(sys.modules)))"
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    modules: list[str] = json.loads(completed.stdout)
    return modules


def test_importing_the_trainer_pulls_in_no_database_broker_or_web_code() -> None:
    modules = _modules_after("import worker.training.loop, worker.training.export")

    assert not [m for m in modules if m.split(".")[0] in ("sqlalchemy", "celery", "fastapi")]
    app_modules = [m for m in modules if m == "app" or m.startswith("app.")]
    unexpected = [
        m for m in app_modules
        if m not in ("app", "app.inference") and not m.startswith(ALLOWED_APP_MODULES)
    ]  # fmt: skip
    assert unexpected == []
    assert "app.evaluation" in app_modules and "app.inference.preprocess" in app_modules


def test_the_config_and_estimates_load_without_torch() -> None:
    modules = _modules_after("import worker.training.config, worker.training.estimate")

    assert "torch" not in modules and "timm" not in modules
