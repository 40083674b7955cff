-- Audit records describe the whole access (issue 9): peer, mount, credential, keys, method,
-- TTL asked and expiry granted, gRPC status and reason. Older rows keep these defaults and
-- v = 1: their hash covers the v1 body only (audit/chain.py), so they still verify.
ALTER TABLE audit
    ADD COLUMN v integer NOT NULL DEFAULT 1,
    ADD COLUMN peer text NOT NULL DEFAULT '',
    ADD COLUMN mount_id text NOT NULL DEFAULT '',
    ADD COLUMN credential_id text NOT NULL DEFAULT '',
    -- JSON array of at most the first 64 keys; key_count and keys_sha256 cover every key.
    ADD COLUMN keys_json text NOT NULL DEFAULT '[]',
    ADD COLUMN key_count integer NOT NULL DEFAULT 0,
    ADD COLUMN keys_sha256 text NOT NULL DEFAULT '',
    ADD COLUMN method text NOT NULL DEFAULT '',
    ADD COLUMN requested_ttl_seconds bigint NOT NULL DEFAULT 0,
    ADD COLUMN expires_at timestamptz,
    ADD COLUMN status text NOT NULL DEFAULT '',
    ADD COLUMN reason text NOT NULL DEFAULT '';
