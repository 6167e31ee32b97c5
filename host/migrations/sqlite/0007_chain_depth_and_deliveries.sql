-- Recursive loops: a queue message and a workflow execution carry their place in a
-- chain of invocations the host made on plugins' behalf (0: no plugin caused them).
ALTER TABLE queue_messages ADD COLUMN depth INTEGER NOT NULL DEFAULT 0;
ALTER TABLE wf_executions ADD COLUMN depth INTEGER NOT NULL DEFAULT 0;

-- Topic and bus deliveries to plugins and webhooks not yet made: they survive a restart
-- and wait here rather than in memory. A host claims due rows (visible_at <= now) for
-- lease_ms (the receipt names the claim); a delivery done is deleted, a failed one is due
-- again after a pause until its attempts run out. Times are milliseconds since the Unix
-- epoch.
CREATE TABLE deliveries (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant     TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    target     TEXT    NOT NULL,
    event      TEXT    NOT NULL,
    depth      INTEGER NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    lease_ms   INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    visible_at INTEGER NOT NULL,
    receipt    TEXT,
    last_error TEXT
);

CREATE INDEX deliveries_due ON deliveries (visible_at, seq);
