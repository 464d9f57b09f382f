"""Tags of a project."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UTCDateTime, utcnow


class Tag(Base):
    __tablename__ = "tag"
    __table_args__ = (
        UniqueConstraint("project_id", "name_key"),
        UniqueConstraint("project_id", "hotkey"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("project.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    # Lower-cased name: names are unique per project regardless of case.
    name_key: Mapped[str] = mapped_column(String(100))
    color: Mapped[str] = mapped_column(String(7), default="#4f7cff")
    hotkey: Mapped[str | None] = mapped_column(String(1), nullable=True)
    # Tags sharing a group exclude each other on one image; tags without a group are independent.
    group: Mapped[str | None] = mapped_column(String(100), nullable=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
