-- Stable links carry their own authentication (a MAC under a service key): the only
-- per-link state is this list of revoked links, read into memory by every replica. A
-- revocation names the link's mount too: one made under another mount revokes nothing.
CREATE TABLE link_revocations (
    link_id     TEXT NOT NULL,
    tenant      TEXT NOT NULL,
    mount_id    TEXT NOT NULL,
    revoked_at  TEXT NOT NULL,
    revoked_by  TEXT NOT NULL,
    reason      TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (tenant, mount_id, link_id)
);
