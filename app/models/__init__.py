"""All tables; importing this package registers them on `Base.metadata`."""

from app.models.assets import Annotation, Asset
from app.models.base import Base, utcnow
from app.models.evaluations import Deployment, Evaluation
from app.models.predictions import PredictionJob
from app.models.projects import Project
from app.models.runs import Checkpoint, RunLog, RunMetric, TrainingRun
from app.models.sources import SourceObject, StorageSource, SyncJob
from app.models.tags import Tag
from app.models.users import ApiKey, User
from app.models.workflows import Workflow

__all__ = [
    "Annotation",
    "ApiKey",
    "Asset",
    "Base",
    "Checkpoint",
    "Deployment",
    "Evaluation",
    "PredictionJob",
    "Project",
    "RunLog",
    "RunMetric",
    "SourceObject",
    "StorageSource",
    "SyncJob",
    "Tag",
    "TrainingRun",
    "User",
    "Workflow",
    "utcnow",
]
