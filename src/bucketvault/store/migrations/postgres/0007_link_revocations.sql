-- Stable links carry their own authentication (a MAC under a service key): the only
-- per-link state is this list of revoked links, read into memory by every replica. A
-- revocation names the link's mount too: one made under another mount revokes nothing.
CREATE TABLE link_revocations (
    link_id     text NOT NULL,
    tenant      text NOT NULL,
    mount_id    text NOT NULL,
    revoked_at  timestamptz NOT NULL,
    revoked_by  text NOT NULL,
    reason      text NOT NULL DEFAULT '',
    PRIMARY KEY (tenant, mount_id, link_id)
);
