-- Signed audit checkpoints (SQLite): one writer's chain head, its verification marks and
-- its prune anchors. A checkpoint is only as good as its signature (audit/signing.py): the
-- table is not trusted, so it carries no foreign key to the audit rows it vouches for
-- (a checkpoint must outlive rows deleted behind its back, or a cut tail would vanish).

CREATE TABLE audit_checkpoints (
    writer_id   TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    hash        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    time        TEXT NOT NULL,
    key_id      TEXT NOT NULL,
    signature   BLOB NOT NULL,
    PRIMARY KEY (writer_id, seq, kind)
);
