"""Code that runs in the Jupyter server: the extension, REST, proxy and job manager."""
