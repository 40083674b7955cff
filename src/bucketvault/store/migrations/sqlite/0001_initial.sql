-- bucketvault schema v1 (SQLite).
-- Datetimes are ISO-8601 UTC text with microseconds ('YYYY-MM-DDTHH:MM:SS.ffffffZ'): fixed width,
-- so text order is time order. JSON columns are text: audit detail_json is hashed into the
-- audit chain and must come back byte for byte.

CREATE TABLE service_keys (
    key_id      TEXT PRIMARY KEY,
    purpose     TEXT NOT NULL,
    suite       TEXT NOT NULL,
    public_key  BLOB NOT NULL,
    envelope    BLOB NOT NULL,
    created_at  TEXT NOT NULL,
    retired_at  TEXT
);
CREATE INDEX service_keys_by_purpose ON service_keys (purpose, created_at, key_id);

CREATE TABLE tenants (
    tenant      TEXT PRIMARY KEY,
    external_id TEXT NOT NULL,
    created_at  TEXT NOT NULL
);

CREATE TABLE credentials (
    credential_id   TEXT PRIMARY KEY,
    tenant          TEXT NOT NULL,
    display_name    TEXT NOT NULL,
    kind            TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('ACTIVE', 'REVOKED')),
    fingerprint     TEXT NOT NULL,
    metadata_json   TEXT NOT NULL,
    warnings_json   TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    created_by      TEXT NOT NULL,
    record_version  INTEGER NOT NULL,
    revoked_at      TEXT,
    revoked_by      TEXT NOT NULL DEFAULT '',
    revoke_reason   TEXT NOT NULL DEFAULT '',
    -- NULL once revoked: the secret is shredded, never kept next to a REVOKED state.
    envelope        BLOB CHECK (state = 'ACTIVE' OR envelope IS NULL),
    idempotency_key TEXT NOT NULL DEFAULT '',
    request_hash    TEXT NOT NULL DEFAULT '',
    -- Target of the mounts foreign key: a mount can only point at its own tenant's credential.
    UNIQUE (tenant, credential_id)
);
CREATE UNIQUE INDEX credentials_idempotency
    ON credentials (tenant, idempotency_key) WHERE idempotency_key <> '';

CREATE TABLE mounts (
    mount_id        TEXT PRIMARY KEY,
    tenant          TEXT NOT NULL,
    name            TEXT NOT NULL,
    bucket          TEXT NOT NULL,
    prefix          TEXT NOT NULL,
    region          TEXT NOT NULL,
    endpoint        TEXT NOT NULL,
    credential_id   TEXT NOT NULL,
    max_ttl_seconds INTEGER NOT NULL,
    allowed_methods TEXT NOT NULL,
    version         INTEGER NOT NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    UNIQUE (tenant, name),
    UNIQUE (tenant, mount_id),
    FOREIGN KEY (tenant, credential_id) REFERENCES credentials (tenant, credential_id)
);
CREATE INDEX mounts_by_credential ON mounts (tenant, credential_id);

CREATE TABLE audit (
    writer_id   TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    time        TEXT NOT NULL,
    principal   TEXT NOT NULL,
    tenant      TEXT NOT NULL,
    action      TEXT NOT NULL,
    resource    TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    request_id  TEXT NOT NULL,
    detail_json TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL,
    PRIMARY KEY (writer_id, seq)
);
CREATE INDEX audit_by_time ON audit (time, writer_id, seq);
