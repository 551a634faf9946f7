"""Sharing one TensorBoard job with other JupyterHub users: read-only, revocable.

``authorizer`` is the Jupyter authorizer that confines a visitor to the jobs shared
with them; ``store`` keeps the shares with the jobs; ``hub`` makes them in JupyterHub;
``handlers`` is the REST API and the visitor's landing page.
"""
