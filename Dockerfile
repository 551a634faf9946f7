# JupyterLab with jupyter-forgather-tb, on the Jupyter project's own base image.
#   docker build -t forgather-tb .
#   docker run --rm -p 8888:8888 -v /data/runs:/home/jovyan/runs forgather-tb
# docs/deploy.md explains each choice; .ci/check-install runs the same install steps
# (build the wheel, install it, check the extensions) outside Docker.

# Stage 1: build the wheel. Its JupyterLab extension is compiled by npm, so this stage
# has Node.js; the image people run does not.
FROM quay.io/jupyter/base-notebook:2025-03-14 AS build
RUN mamba install --yes --quiet nodejs=20 \
    && mamba clean --all --force-pkgs-dirs --yes
COPY --chown=${NB_UID}:${NB_GID} . /tmp/src
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /tmp/wheels /tmp/src

# Stage 2: the base image plus the package (the [s3] extra adds s3fs for s3:// runs).
FROM quay.io/jupyter/base-notebook:2025-03-14
COPY --from=build --chown=${NB_UID}:${NB_GID} /tmp/wheels /tmp/wheels
RUN pip install --no-cache-dir "$(echo /tmp/wheels/jupyter_forgather_tb-*.whl)[s3]" \
    && rm -rf /tmp/wheels \
    && fix-permissions "${CONDA_DIR}" \
    && mkdir "/home/${NB_USER}/runs" \
    && fix-permissions "/home/${NB_USER}"

# Log directories are mounted at /home/jovyan/runs (or anywhere under /home/jovyan, the
# server's root, which is where log directories may be by default).

# Only Jupyter's port: every TensorBoard is served through it, at /tb/<id>/.
EXPOSE 8888
# The base image's command starts JupyterLab (start-notebook.py), with the extension
# enabled by its own config file; nothing to add.
