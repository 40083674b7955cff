-- bucketvault schema v1 (PostgreSQL).
-- JSON columns are text, not jsonb: audit detail_json is hashed into the audit chain and
-- must come back byte for byte (jsonb normalises whitespace and key order).

CREATE TABLE service_keys (
    key_id      text PRIMARY KEY,
    purpose     text NOT NULL,
    suite       text NOT NULL,
    public_key  bytea NOT NULL,
    envelope    bytea NOT NULL,
    created_at  timestamptz NOT NULL,
    retired_at  timestamptz
);
CREATE INDEX service_keys_by_purpose ON service_keys (purpose, created_at, key_id);

CREATE TABLE tenants (
    tenant      text PRIMARY KEY,
    external_id text NOT NULL,
    created_at  timestamptz NOT NULL
);

CREATE TABLE credentials (
    credential_id   text PRIMARY KEY,
    tenant          text NOT NULL,
    display_name    text NOT NULL,
    kind            text NOT NULL,
    state           text NOT NULL CONSTRAINT credentials_state_check
                        CHECK (state IN ('ACTIVE', 'REVOKED')),
    fingerprint     text NOT NULL,
    metadata_json   text NOT NULL,
    warnings_json   text NOT NULL,
    created_at      timestamptz NOT NULL,
    created_by      text NOT NULL,
    record_version  integer NOT NULL,
    revoked_at      timestamptz,
    revoked_by      text NOT NULL DEFAULT '',
    revoke_reason   text NOT NULL DEFAULT '',
    -- NULL once revoked: the secret is shredded, never kept next to a REVOKED state.
    envelope        bytea CONSTRAINT credentials_shredded_check
                        CHECK (state = 'ACTIVE' OR envelope IS NULL),
    idempotency_key text NOT NULL DEFAULT '',
    request_hash    text NOT NULL DEFAULT '',
    -- Target of the mounts foreign key: a mount can only point at its own tenant's credential.
    CONSTRAINT credentials_tenant_id_key UNIQUE (tenant, credential_id)
);
CREATE UNIQUE INDEX credentials_idempotency
    ON credentials (tenant, idempotency_key) WHERE idempotency_key <> '';

CREATE TABLE mounts (
    mount_id        text PRIMARY KEY,
    tenant          text NOT NULL,
    name            text NOT NULL,
    bucket          text NOT NULL,
    prefix          text NOT NULL,
    region          text NOT NULL,
    endpoint        text NOT NULL,
    credential_id   text NOT NULL,
    max_ttl_seconds integer NOT NULL,
    allowed_methods text NOT NULL,
    version         bigint NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    CONSTRAINT mounts_tenant_name_key UNIQUE (tenant, name),
    CONSTRAINT mounts_tenant_id_key UNIQUE (tenant, mount_id),
    CONSTRAINT mounts_credential_fkey FOREIGN KEY (tenant, credential_id)
        REFERENCES credentials (tenant, credential_id)
);
CREATE INDEX mounts_by_credential ON mounts (tenant, credential_id);

CREATE TABLE audit (
    writer_id   text NOT NULL,
    seq         bigint NOT NULL,
    time        timestamptz NOT NULL,
    principal   text NOT NULL,
    tenant      text NOT NULL,
    action      text NOT NULL,
    resource    text NOT NULL,
    outcome     text NOT NULL,
    request_id  text NOT NULL,
    detail_json text NOT NULL,
    prev_hash   text NOT NULL,
    hash        text NOT NULL,
    PRIMARY KEY (writer_id, seq)
);
CREATE INDEX audit_by_time ON audit (time, writer_id, seq);
