"""Schemas of label imports (preview, confirm) and label exports."""

from __future__ import annotations

from pydantic import BaseModel, Field


class RowErrorRead(BaseModel):
    """A row that cannot be imported (row 0: about the file as a whole)."""

    row: int
    message: str


class MatchedRowRead(BaseModel):
    row: int
    filename: str
    asset_id: int | None = Field(description="The image the row applies to; null for an image "
                                             "of an index.csv zip that is not imported yet")
    labels: list[str]
    split: str | None


class CocoCategoryRead(BaseModel):
    id: int
    name: str
    image_count: int


class LabelImportPreviewRead(BaseModel):
    """What confirming would do. Lists are cut to 500 entries; the counts are complete."""

    import_id: str
    format: str
    filename: str
    rows: int
    matched_count: int
    matched: list[MatchedRowRead]
    unmatched_count: int
    unmatched: list[str]
    new_tags: list[str]
    label_names: list[str]
    errors: list[RowErrorRead]
    warnings: list[RowErrorRead]
    categories: list[CocoCategoryRead]
    selected_categories: list[str] | None
    unlisted_images_count: int
    unlisted_images: list[str] = Field(description="Images of an index.csv zip that no row "
                                                   "lists; they are imported without labels")
    can_confirm: bool


class LabelImportOptions(BaseModel):
    categories: list[str] | None = Field(
        default=None, description="COCO: the categories that become tags (null: all)"
    )


class LabelImportResultRead(BaseModel):
    labeled: int
    annotations: int
    tags_created: list[str]
    images_created: int
    images_duplicate: int
