"""Storage sources of a project (S3 buckets, Azure containers, server folders) and their secrets.

Secrets (keys, connection strings, SAS tokens) are encrypted at rest with Fernet, under a key
derived from `settings.secret_key` with HKDF. They never leave this module in clear except to
build a client; the API shows masked hints only.
"""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import urlsplit

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.config import settings
from app.errors import InvalidInput, NotFound, PermissionDenied
from app.models import Project, StorageSource, User
from app.storage.sources import SourceClient, open_source

# Per kind: the settings and the secrets a source may have.
SETTINGS_FIELDS = {
    "s3": ("bucket", "region", "endpoint_url"),
    "azure": ("container", "account_url"),
    "folder": ("path",),
}
SECRET_FIELDS = {
    "s3": ("access_key_id", "secret_access_key"),
    "azure": ("connection_string", "account_key", "sas_token"),
    "folder": (),
}
REQUIRED = {"s3": "bucket", "azure": "container", "folder": "path"}
DESCRIBED = {"s3": "an S3 source", "azure": "an Azure source", "folder": "a folder source"}
_HKDF_INFO = b"polytag storage-source secrets v1"


def _fernet() -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(
        settings.secret_key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt_secrets(secrets: dict[str, str]) -> str:
    """Encrypt a source's secrets for storage ("" when there are none)."""
    if not secrets:
        return ""
    return _fernet().encrypt(json.dumps(secrets, sort_keys=True).encode()).decode()


def decrypt_secrets(token: str) -> dict[str, str]:
    """Decrypt stored secrets; fails plainly if the app secret changed since they were saved."""
    if not token:
        return {}
    try:
        return dict(json.loads(_fernet().decrypt(token.encode())))
    except InvalidToken:
        raise InvalidInput(
            "the source's credentials cannot be decrypted (POLYTAG_SECRET_KEY changed?); "
            "enter them again"
        ) from None


def mask(value: str) -> str:
    """A hint of a secret: its last 4 characters when it is long enough to spare them."""
    return f"••••{value[-4:]}" if len(value) >= 16 else "••••"


def secret_hints(source: StorageSource) -> dict[str, str]:
    """Masked hints of the secrets a source has (never the secrets)."""
    return {name: mask(value) for name, value in decrypt_secrets(source.secrets_encrypted).items()}


def get_all(*, session: Session, project: Project) -> list[StorageSource]:
    """The project's sources, oldest first."""
    return list(session.scalars(
        select(StorageSource).where(StorageSource.project_id == project.id)
        .order_by(StorageSource.id)
    ))


def get(*, session: Session, project: Project, source_id: int) -> StorageSource:
    """One source of the project, or NotFound."""
    source = session.get(StorageSource, source_id)
    if source is None or source.project_id != project.id:
        raise NotFound(f"storage source {source_id} not found in project '{project.name}'")
    return source


def _clean_settings(kind: str, values: dict[str, Any]) -> dict[str, str]:
    allowed = SETTINGS_FIELDS[kind]
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise InvalidInput(f"unknown setting '{unknown[0]}' for {DESCRIBED[kind]}; expected "
                           f"{', '.join(allowed)}")
    cleaned = {name: str(value).strip() for name, value in values.items()
               if value is not None and str(value).strip()}
    for name in ("endpoint_url", "account_url"):
        url = cleaned.get(name)
        if not url:
            continue
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidInput(f"{name} '{url}' must be an http(s) URL")
        # Settings are shown back to users; credentials belong in the (encrypted) secrets.
        if parts.query or parts.username or parts.password:
            raise InvalidInput(f"{name} must not carry credentials or a query string; put a "
                               "SAS token or keys in their own fields")
    return cleaned


def _clean_secrets(kind: str, values: dict[str, Any]) -> dict[str, str]:
    allowed = SECRET_FIELDS[kind]
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise InvalidInput(f"unknown secret '{unknown[0]}' for {DESCRIBED[kind]}"
                           + (f"; expected {', '.join(allowed)}" if allowed else ""))
    return {name: str(value).strip() for name, value in values.items()
            if value is not None and str(value).strip()}


def _check_complete(kind: str, config: dict[str, str], secrets: dict[str, str]) -> None:
    if not config.get(REQUIRED[kind]):
        raise InvalidInput(f"{DESCRIBED[kind]} needs a {REQUIRED[kind]}")
    if kind == "s3" and bool(secrets.get("access_key_id")) != bool(
        secrets.get("secret_access_key")
    ):
        raise InvalidInput("give both the access key id and the secret access key, or neither "
                           "(for a public bucket)")
    if kind == "azure" and not (secrets.get("connection_string") or config.get("account_url")):
        raise InvalidInput("an Azure source needs a connection string or an account URL")


def _check_kind(kind: str, user: User | None) -> None:
    if kind not in SETTINGS_FIELDS:
        raise InvalidInput(f"unknown source kind '{kind}'; expected s3, azure or folder")
    # A folder source reads the server's own disk: only an admin may point one anywhere.
    if kind == "folder" and (user is None or not user.is_admin):
        raise PermissionDenied("only an admin can add a folder source")


def create(
    *,
    session: Session,
    project: Project,
    kind: str,
    name: str,
    config: dict[str, Any],
    secrets: dict[str, Any] | None = None,
    prefix: str = "",
    remove_missing: bool = False,
    user: User | None = None,
) -> StorageSource:
    """Add a source; `config` holds the non-secret settings, `secrets` the credentials."""
    _check_kind(kind, user)
    cleaned = _clean_settings(kind, config)
    clear = _clean_secrets(kind, secrets or {})
    _check_complete(kind, cleaned, clear)
    name = " ".join(name.split()) or cleaned[REQUIRED[kind]]
    source = StorageSource(
        project_id=project.id, kind=kind, name=name[:200], settings=cleaned,
        secrets_encrypted=encrypt_secrets(clear), prefix=prefix.strip().strip("/")[:512],
        remove_missing=remove_missing,
    )
    session.add(source)
    session.commit()
    return source


def update(
    *,
    session: Session,
    source: StorageSource,
    name: str | None = None,
    config: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
    prefix: str | None = None,
    remove_missing: bool | None = None,
    user: User | None = None,
) -> StorageSource:
    """Change a source; given settings and secrets replace those of the same name ("" clears)."""
    _check_kind(source.kind, user)
    merged = dict(source.settings)
    if config is not None:
        merged.update({key: value for key, value in config.items()})
    cleaned = _clean_settings(source.kind, merged)
    clear = decrypt_secrets(source.secrets_encrypted)
    if secrets is not None:
        clear.update(_clean_secrets(source.kind, {k: v for k, v in secrets.items() if v}))
        for key, value in secrets.items():
            if value is not None and not str(value).strip():
                clear.pop(key, None)
    _check_complete(source.kind, cleaned, clear)
    source.settings = cleaned
    source.secrets_encrypted = encrypt_secrets(clear)
    if name is not None and name.strip():
        source.name = " ".join(name.split())[:200]
    if prefix is not None:
        source.prefix = prefix.strip().strip("/")[:512]
    if remove_missing is not None:
        source.remove_missing = remove_missing
    session.commit()
    return source


def delete(*, session: Session, source: StorageSource) -> None:
    """Delete a source, its sync history and cursor; imported images stay in the project."""
    session.delete(source)
    session.commit()


def open_client(source: StorageSource) -> SourceClient:
    """A read-only client for the source (raises PermanentSourceError when misconfigured)."""
    config: dict[str, Any] = dict(source.settings)
    config["prefix"] = source.prefix
    return open_source(source.kind, config, decrypt_secrets(source.secrets_encrypted))
