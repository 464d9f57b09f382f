"""Match the file names in a label table to the images already in a project.

A row's file name is tried, in order: exactly; by its last path part (`train/cat.jpg` finds
`cat.jpg`), narrowed by path suffix when several images share that name; then the same two
ignoring case. A step that finds one image decides; a step that finds several, with nothing
to tell them apart, makes the name ambiguous rather than guessing. Label names are compared
with the project's tags ignoring case, so `Cat` in a file goes to an existing tag `cat`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from app.imports.tables import LabelRow, LabelTable, RowError

AssetId = TypeVar("AssetId")


@dataclass(slots=True)
class MatchResult(Generic[AssetId]):
    """Outcome of matching a table to a project, for the import preview.

    `matched` pairs rows with image ids; `unmatched` and `ambiguous` (name → candidates) are row
    file names; `conflicts` are rows naming an image that an earlier row already claimed;
    `label_map` gives, for every label of the table, the tag name to use (an existing tag's
    spelling, or the first spelling in the file), and `new_labels` the tags to create.
    """

    matched: list[tuple[LabelRow, AssetId]] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    ambiguous: dict[str, list[str]] = field(default_factory=dict)
    conflicts: list[RowError] = field(default_factory=list)
    new_labels: list[str] = field(default_factory=list)
    label_map: dict[str, str] = field(default_factory=dict)


def match_rows(
    table: LabelTable,
    known_filenames: Mapping[str, AssetId],
    *,
    existing_tags: Iterable[str] = (),
) -> MatchResult[AssetId]:
    """Match each row of `table` to an image id by file name and map labels to tag names."""
    result: MatchResult[AssetId] = MatchResult()
    index = _NameIndex(known_filenames)
    claimed: dict[str, LabelRow] = {}
    for row in table.rows:
        found = index.find(row.filename)
        if found is None:
            result.unmatched.append(row.filename)
        elif isinstance(found, list):
            result.ambiguous[row.filename] = found
        elif found in claimed:
            first = claimed[found]
            result.conflicts.append(RowError(
                row.row_number,
                f"'{row.filename}' is the same image ('{found}') as row {first.row_number} "
                f"('{first.filename}')",
            ))
        else:
            claimed[found] = row
            result.matched.append((row, known_filenames[found]))
    result.label_map, result.new_labels = map_labels(table.label_names, existing_tags)
    return result


def map_labels(
    label_names: Iterable[str], existing_tags: Iterable[str]
) -> tuple[dict[str, str], list[str]]:
    """Map each label to an existing tag (ignoring case) or a new one; return (map, new)."""
    spelled = {tag.casefold(): tag for tag in existing_tags}
    label_map: dict[str, str] = {}
    new_labels: list[str] = []
    for label in label_names:
        key = label.casefold()
        if key not in spelled:
            spelled[key] = label
            new_labels.append(label)
        label_map[label] = spelled[key]
    return label_map, new_labels


def basename(name: str) -> str:
    """The last part of a '/' or '\\' separated path."""
    return name.replace("\\", "/").rsplit("/", 1)[-1]


class _NameIndex:
    """Lookups of project file names by full name and by last part, exact and ignoring case."""

    def __init__(self, names: Iterable[str]) -> None:
        self._names = set(names)
        self._by_base: dict[str, list[str]] = {}
        self._by_folded: dict[str, list[str]] = {}
        self._by_folded_base: dict[str, list[str]] = {}
        for name in sorted(self._names):
            self._by_base.setdefault(basename(name), []).append(name)
            self._by_folded.setdefault(name.casefold(), []).append(name)
            self._by_folded_base.setdefault(basename(name).casefold(), []).append(name)

    def find(self, filename: str) -> str | list[str] | None:
        """One known name, several equally good candidates, or None."""
        if filename in self._names:
            return filename
        steps: list[tuple[dict[str, list[str]], str, Callable[[str], str]]] = [
            (self._by_base, basename(filename), _same),
            (self._by_folded, filename.casefold(), str.casefold),
            (self._by_folded_base, basename(filename).casefold(), str.casefold),
        ]
        for lookup, key, fold in steps:
            candidates = lookup.get(key, [])
            if len(candidates) == 1:
                return candidates[0]
            if candidates:
                return _narrow(candidates, fold(filename.replace("\\", "/")), fold)
        return None


def _narrow(candidates: list[str], path: str, fold: Callable[[str], str]) -> str | list[str]:
    """Among names sharing a last part, the one whose folders agree with the row's, if unique.

    Folders agree when one path ends with the other ('val/a.jpg' and 'data/val/a.jpg').
    """
    agreeing = [name for name in candidates if _nested(fold(name.replace("\\", "/")), path)]
    return agreeing[0] if len(agreeing) == 1 else candidates


def _nested(first: str, second: str) -> bool:
    shorter, longer = sorted((first, second), key=len)
    return longer == shorter or longer.endswith("/" + shorter)


def _same(text: str) -> str:
    return text
