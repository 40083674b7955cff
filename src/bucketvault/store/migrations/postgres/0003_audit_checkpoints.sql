-- Signed audit checkpoints (PostgreSQL): one writer's chain head, its verification marks and
-- its prune anchors. A checkpoint is only as good as its signature (audit/signing.py): the
-- table is not trusted, so it carries no foreign key to the audit rows it vouches for
-- (a checkpoint must outlive rows deleted behind its back, or a cut tail would vanish).

CREATE TABLE audit_checkpoints (
    writer_id   text NOT NULL,
    seq         bigint NOT NULL,
    hash        text NOT NULL,
    kind        text NOT NULL,
    time        timestamptz NOT NULL,
    key_id      text NOT NULL,
    signature   bytea NOT NULL,
    PRIMARY KEY (writer_id, seq, kind)
);
