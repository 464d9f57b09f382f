"""Conversion of evaluation results to plain JSON values (NaN and infinity become None)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np


def json_ready(value: Any) -> Any:
    """Return ``value`` with numpy types turned into Python ones and non-finite floats into None.

    Standard JSON has no NaN or Infinity, and ``json.dumps`` would otherwise write them anyway.
    """
    if isinstance(value, np.ndarray):
        return json_ready(value.tolist())
    if isinstance(value, np.generic):
        return json_ready(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(key): json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(item) for item in value]
    return value
