-- Audit records describe the whole access (issue 9): peer, mount, credential, keys, method,
-- TTL asked and expiry granted, gRPC status and reason. Older rows keep these defaults and
-- v = 1: their hash covers the v1 body only (audit/chain.py), so they still verify.
ALTER TABLE audit ADD COLUMN v INTEGER NOT NULL DEFAULT 1;
ALTER TABLE audit ADD COLUMN peer TEXT NOT NULL DEFAULT '';
ALTER TABLE audit ADD COLUMN mount_id TEXT NOT NULL DEFAULT '';
ALTER TABLE audit ADD COLUMN credential_id TEXT NOT NULL DEFAULT '';
-- JSON array of at most the first 64 keys; key_count and keys_sha256 cover every key.
ALTER TABLE audit ADD COLUMN keys_json TEXT NOT NULL DEFAULT '[]';
ALTER TABLE audit ADD COLUMN key_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE audit ADD COLUMN keys_sha256 TEXT NOT NULL DEFAULT '';
ALTER TABLE audit ADD COLUMN method TEXT NOT NULL DEFAULT '';
ALTER TABLE audit ADD COLUMN requested_ttl_seconds INTEGER NOT NULL DEFAULT 0;
ALTER TABLE audit ADD COLUMN expires_at TEXT;
ALTER TABLE audit ADD COLUMN status TEXT NOT NULL DEFAULT '';
ALTER TABLE audit ADD COLUMN reason TEXT NOT NULL DEFAULT '';
