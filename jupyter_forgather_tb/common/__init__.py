"""Code every process uses: launch options, S3 and JSON-file rules; no Jupyter, no TensorBoard."""
