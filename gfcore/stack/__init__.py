"""The production tracking stack (MLflow server, PostgreSQL, SeaweedFS), as processes without Docker."""
