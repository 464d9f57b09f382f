"""Images of a project and their tags (annotations)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UTCDateTime, utcnow

SPLITS = ("auto", "train", "val", "test")
REVIEW_STATES = ("unlabeled", "labeled")
ANNOTATION_SOURCES = ("human", "import", "model")


class Asset(Base):
    __tablename__ = "asset"
    __table_args__ = (
        UniqueConstraint("project_id", "sha256"),
        Index("ix_asset_project_review", "project_id", "review_state"),
        Index("ix_asset_project_filename", "project_id", "original_filename"),
        # Covers the per-split and per-review counts of the overview and the annotator's
        # filters, which would otherwise read every row of a large project.
        Index("ix_asset_project_split_review", "project_id", "split", "review_state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    storage_key: Mapped[str] = mapped_column(String(512))
    thumb_key: Mapped[str | None] = mapped_column(String(512), nullable=True)
    original_filename: Mapped[str] = mapped_column(String(512))
    sha256: Mapped[str] = mapped_column(String(64))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    mime: Mapped[str] = mapped_column(String(64))
    bytes: Mapped[int] = mapped_column(Integer)
    source_id: Mapped[int | None] = mapped_column(
        ForeignKey("storage_source.id", ondelete="SET NULL"), nullable=True
    )
    split: Mapped[str] = mapped_column(String(8), default="auto")
    review_state: Mapped[str] = mapped_column(String(16), default="unlabeled")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Annotation(Base):
    __tablename__ = "annotation"
    __table_args__ = (UniqueConstraint("asset_id", "tag_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("asset.id", ondelete="CASCADE"))
    tag_id: Mapped[int] = mapped_column(ForeignKey("tag.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(String(8), default="human")
    author_id: Mapped[int | None] = mapped_column(
        ForeignKey("user.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
