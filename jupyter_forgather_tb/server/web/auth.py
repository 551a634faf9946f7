"""The resource name Jupyter's authorizer is asked about for every route of ours."""

AUTH_RESOURCE = "forgather_tb"
