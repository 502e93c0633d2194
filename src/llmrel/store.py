"""ClickHouse access through clickhouse-connect: one DSN, embedded (chDB) or server, same SQL.

`connect()` opens a client; `migrate()` applies the numbered `schemas/*.sql` files, rendered
for the configured database, TTLs and (optionally) cluster, and records them in
`llmrel_schema_migrations`. Every statement is idempotent, so `migrate()` runs at each start.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from string import Template
from urllib.parse import parse_qs, urlparse

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ProgrammingError

from llmrel.cluster import distribute
from llmrel.config import Settings

_SCHEMA_FILE = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def schemas_dir() -> Path:
    """`schemas/` inside an installed wheel, else the repository's top-level folder."""
    packaged = Path(__file__).parent / "schemas"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[2] / "schemas"


def database_name(url: str) -> str:
    """The database a DSN names: `?database=` or the URL path for servers, else `default`."""
    parsed = urlparse(url)
    query_db = parse_qs(parsed.query).get("database", [None])[0]
    if query_db:
        return query_db
    if parsed.scheme in ("http", "https"):
        return parsed.path.strip("/").split("/")[0] or "default"
    return "default"


class StoreInUseError(RuntimeError):
    """The embedded store is held by another process (one engine per store)."""


_MIB = 1024 * 1024
# Server settings of the embedded engine, for a small host; they take effect when the process first opens it.
_ENGINE_OPTIONS = {
    "memory_worker_period_ms": 5000,  # how often it samples its own RSS (default 100 ms: most of its idle CPU)
    "asynchronous_metrics_update_period_s": 60,  # system.asynchronous_metrics, unused here (default every 1 s)
    "mark_cache_size": 128 * _MIB,  # caches' caps (defaults: GiBs, sized by RAM); they fill only as queries read
    "index_mark_cache_size": 64 * _MIB,
    "primary_index_cache_size": 128 * _MIB,
}
_OPENED_HERE: set[str] = set()  # embedded stores this process opened (the engine stays for the process)
_LOCK_FILE = "status"  # the engine holds an exclusive flock on it while the store is open


def _held_by_another_process(path: Path) -> bool:
    """Whether an engine in another process has the embedded store at `path` open."""
    try:
        fd = os.open(path / _LOCK_FILE, os.O_RDONLY)
    except OSError:
        return False  # a new store: nobody has it
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # also releases the probe's own lock
    return False


def _in_use_message(path: str) -> str:
    return (f"the embedded store at {path} is open in another process (a running `llmrel serve` without its "
            "ClickHouse HTTP interface?); stop it, or turn the interface on (LLMREL_CLICKHOUSE_HTTP_ENDPOINT)")


def engine_options(settings: Settings) -> dict[str, int]:
    """Server settings the embedded engine starts with (`chdb_options`)."""
    limit = {"max_server_memory_usage": settings.embedded_max_memory_mib * _MIB} if settings.embedded_max_memory_mib \
        else {}
    return {**_ENGINE_OPTIONS, **limit}


def _served_client(settings: Settings, db: str, **kwargs: object) -> Client | None:
    """A client of the ClickHouse HTTP interface of the `llmrel serve` holding the store (None if it has none)."""
    from llmrel.served_store import ADMIN_USER, published_endpoint, read_admin_secret

    path = settings.embedded_path
    endpoint = published_endpoint(path) if path is not None else None
    secret = read_admin_secret(settings)
    if endpoint is None or secret is None:
        return None
    host, port = endpoint
    tls = {"secure": True, "ca_cert": str(settings.tls_cert_file)} if settings.tls else {}
    return clickhouse_connect.get_client(host=host, port=port, username=ADMIN_USER, password=secret, database=db,
                                         autogenerate_session_id=False, **tls, **kwargs)


def connect(settings: Settings, **kwargs: object) -> Client:
    """Open a clickhouse-connect client for `settings.clickhouse_url`.

    The database is created first when it does not exist, so a fresh server works. An embedded
    store that a running `llmrel serve` holds is reached through that serve's ClickHouse HTTP
    interface (as `llmrel_admin`); `StoreInUseError` when it has none.
    """
    url = settings.clickhouse_url
    db = database_name(url)
    if not _IDENT.match(db):
        raise ValueError(f"invalid database name {db!r}")
    if settings.is_embedded:
        path = str(settings.embedded_path)
        Path(path).mkdir(parents=True, exist_ok=True)
        # Checked first: the engine would print its own `Code: 76 ... Cannot lock file` to stderr.
        if path not in _OPENED_HERE and _held_by_another_process(Path(path)):
            served = _served_client(settings, db, **kwargs)
            if served is None:
                raise StoreInUseError(_in_use_message(path))
            return served
        try:
            client = clickhouse_connect.get_client(dsn=f"chdb://{path}", chdb_options=engine_options(settings),
                                                   **kwargs)
        except ProgrammingError as exc:
            if "Unable to open the chdb engine" not in str(exc):
                raise
            raise StoreInUseError(_in_use_message(path)) from None
        _OPENED_HERE.add(path)
    else:
        bootstrap = clickhouse_connect.get_client(dsn=url, database="default", **kwargs)
        bootstrap.command(f"CREATE DATABASE IF NOT EXISTS {db}")
        bootstrap.close()
        return clickhouse_connect.get_client(dsn=url, database=db, **kwargs)
    if db != "default":
        client.command(f"CREATE DATABASE IF NOT EXISTS {db}")
        client.database = db
    return client


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()[:16]

    def statements(self) -> list[str]:
        """Statements split on `;` at line end, comments dropped."""
        body = "\n".join(line for line in self.sql.splitlines() if not line.lstrip().startswith("--"))
        return [s.strip() for s in re.split(r";\s*(?:\n|$)", body) if s.strip()]


def _ttl(column: str, days: int) -> str:
    return f"TTL toDateTime({column}) + toIntervalDay({days})" if days > 0 else ""


def template_vars(settings: Settings, db: str) -> dict[str, str]:
    """Values substituted into `schemas/*.sql` (`${db}`, `${on_cluster}`, engines, TTLs)."""
    cluster = settings.cluster
    if cluster and not _IDENT.match(cluster):
        raise ValueError(f"invalid cluster name {cluster!r}")
    replicated = "Replicated" if cluster else ""
    return {
        "db": db,
        "on_cluster": f"ON CLUSTER {cluster}" if cluster else "",
        "MergeTree": f"{replicated}MergeTree()",
        "ReplacingMergeTree": f"{replicated}ReplacingMergeTree",
        "AggregatingMergeTree": f"{replicated}AggregatingMergeTree()",
        "ttl_traces": _ttl("Timestamp", settings.traces_ttl_days),
        "ttl_trace_id_ts": _ttl("Start", settings.traces_ttl_days),
        "ttl_calls": _ttl("Timestamp", settings.calls_ttl_days),
        "ttl_findings": _ttl("DetectedAt", settings.findings_ttl_days),
        "ttl_explanations": _ttl("ComputedAt", settings.findings_ttl_days),
        "min_free_disk_bytes": str(settings.min_free_disk_mib * 1024 * 1024),
    }


def load_migrations(settings: Settings, db: str, directory: Path | None = None) -> list[Migration]:
    """Read and render every `NNN_name.sql` file in version order."""
    values = template_vars(settings, db)
    migrations = []
    for path in sorted((directory or schemas_dir()).glob("*.sql")):
        match = _SCHEMA_FILE.match(path.name)
        if not match:
            raise ValueError(f"schema file name must be NNN_name.sql: {path.name}")
        sql = Template(path.read_text()).substitute(values)
        migrations.append(Migration(int(match.group(1)), match.group(2), sql))
    if settings.cluster:
        sqls = distribute([m.sql for m in migrations], settings.cluster, db)
        migrations = [Migration(m.version, m.name, sql) for m, sql in zip(migrations, sqls, strict=True)]
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise ValueError(f"duplicate schema versions in {directory or schemas_dir()}")
    return migrations


def migrate(client: Client, settings: Settings) -> list[int]:
    """Apply all schema files (idempotent) and record new versions. Returns versions newly recorded."""
    db = client.database or database_name(settings.clickhouse_url)
    on_cluster = f"ON CLUSTER {settings.cluster}" if settings.cluster else ""
    engine = "ReplicatedReplacingMergeTree(applied_at)" if settings.cluster else "ReplacingMergeTree(applied_at)"
    client.command(
        f"CREATE TABLE IF NOT EXISTS {db}.llmrel_schema_migrations {on_cluster} "
        "(version UInt32, name String, checksum String, applied_at DateTime64(3) DEFAULT now64(3)) "
        f"ENGINE = {engine} ORDER BY version"
    )
    applied = {row[0] for row in client.query(f"SELECT version FROM {db}.llmrel_schema_migrations").result_rows}
    recorded = []
    for migration in load_migrations(settings, db):
        for statement in migration.statements():
            client.command(statement)
        if migration.version not in applied:
            client.insert(f"{db}.llmrel_schema_migrations", [(migration.version, migration.name, migration.checksum)],
                          column_names=["version", "name", "checksum"])
            recorded.append(migration.version)
    return recorded


def schema_version(client: Client) -> int:
    """Highest applied schema version, 0 on an empty database."""
    rows = client.query("SELECT max(version) FROM llmrel_schema_migrations").result_rows
    return int(rows[0][0] or 0)


def detached_parts(client: Client) -> list[tuple[str, str, int]]:
    """Parts the engine set aside in this database (broken on start, unexpected, ...): (table, reason, count).

    A detached part is data the tables no longer show; it needs an operator's attention.
    """
    rows = client.query("SELECT table, reason, count() FROM system.detached_parts "
                        "WHERE database = currentDatabase() GROUP BY table, reason ORDER BY table, reason").result_rows
    return [(str(t), str(r or "detached"), int(n)) for t, r, n in rows]
