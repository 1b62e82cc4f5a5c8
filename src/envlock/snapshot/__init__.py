"""The snapshot on object storage: a team's locked artifacts and built environments in S3, GCS,
Azure Blob or a shared file system, so a fleet builds without ever asking a package index."""
