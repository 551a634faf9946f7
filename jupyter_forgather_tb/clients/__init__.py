"""Code that runs in a client of the REST API: the CLI, the notebook magic, the S3 uploader."""
