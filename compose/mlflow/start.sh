#!/bin/sh
# The basic-auth app's settings, written at start from the environment (no secret in the image or the repo).
set -eu
DB="postgresql://mlflow:${MLFLOW_DB_PASSWORD}@postgres:5432"
cat > /tmp/basic_auth.ini <<INI
[mlflow]
default_permission = READ
database_uri = ${DB}/mlflow_auth
admin_username = admin
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
# check a password hash once per minute per worker, not on every request
auth_cache_ttl_seconds = 60
INI
export MLFLOW_AUTH_CONFIG_PATH=/tmp/basic_auth.ini
exec mlflow server --backend-store-uri "${DB}/mlflow" --artifacts-destination "s3://${MLFLOW_BUCKET}" \
    --serve-artifacts --app-name basic-auth --host 0.0.0.0 --port 5000 --workers 4
