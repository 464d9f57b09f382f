"""Create the bucket (S3, MinIO) or container (Azure, Azurite) that the settings name.

The `storage-init` service of docker-compose.yml runs this once before the api and the workers
start when the `minio` or `azurite` profile is on; running it again changes nothing.
Usage: `python docker/init_storage.py` (reads the POLYTAG_* settings like the app).
"""

from __future__ import annotations

import sys
from typing import Any


def ensure_storage(settings: Any) -> str:
    """Create the configured bucket or container unless it exists; say what was done."""
    backend = settings.storage_backend
    if backend == "s3":
        from botocore.exceptions import ClientError

        from app.storage.s3 import NOT_FOUND_CODES, error_code, make_s3_client

        client = make_s3_client(
            region=settings.s3_region,
            endpoint_url=settings.s3_endpoint_url,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=settings.s3_secret_access_key,
        )
        # Asked first: S3 answers 200 to re-creating one's own bucket in us-east-1.
        try:
            client.head_bucket(Bucket=settings.s3_bucket)
        except ClientError as error:
            if error_code(error) not in NOT_FOUND_CODES:
                raise
        else:
            return f"s3 bucket {settings.s3_bucket!r} already exists"
        region = settings.s3_region
        if region and region != "us-east-1":  # AWS wants other regions named on creation
            client.create_bucket(
                Bucket=settings.s3_bucket,
                CreateBucketConfiguration={"LocationConstraint": region},
            )
        else:
            client.create_bucket(Bucket=settings.s3_bucket)
        return f"created s3 bucket {settings.s3_bucket!r}"
    if backend == "azure":
        from azure.core.exceptions import ResourceExistsError

        from app.storage.azure_blob import make_container_client

        container = make_container_client(
            settings.azure_container,
            connection_string=settings.azure_connection_string,
            account_url=settings.azure_account_url,
            account_key=settings.azure_account_key,
            sas_token=settings.azure_sas_token,
        )
        try:
            container.create_container()
        except ResourceExistsError:
            return f"azure container {settings.azure_container!r} already exists"
        return f"created azure container {settings.azure_container!r}"
    return f"storage backend {backend!r} needs no bucket"


def main() -> int:
    """Entry point of the storage-init service."""
    from app.config import settings

    print(ensure_storage(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
