#!/bin/sh
# MLflow's database (runs, registry) and its auth database, owned by `mlflow`; `grafana_ro` may only read.
set -eu
psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d postgres <<SQL
CREATE ROLE mlflow LOGIN PASSWORD '${MLFLOW_DB_PASSWORD}';
CREATE ROLE grafana_ro LOGIN PASSWORD '${GRAFANA_DB_PASSWORD}';
CREATE DATABASE mlflow OWNER mlflow;
CREATE DATABASE mlflow_auth OWNER mlflow;
SQL
psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d mlflow <<SQL
GRANT CONNECT ON DATABASE mlflow TO grafana_ro;
GRANT USAGE ON SCHEMA public TO grafana_ro;
ALTER DEFAULT PRIVILEGES FOR ROLE mlflow IN SCHEMA public GRANT SELECT ON TABLES TO grafana_ro;
SQL
