"""Hydra plugins that put configs outside the package on the search path: GF_CONFIG_PATH folders in front of
conf/, and scenario files given by path (gfcore.config.searchpath)."""
