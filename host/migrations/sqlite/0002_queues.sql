-- Queue messages of every tenant. A message is visible when `visible_at` <= now; a
-- delivery sets `receipt` and pushes `visible_at` out by the visibility timeout. `seq`
-- orders the queue (and FIFO groups). Times are milliseconds since the Unix epoch.
CREATE TABLE queue_messages (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    id            TEXT    NOT NULL UNIQUE,
    tenant        TEXT    NOT NULL,
    queue         TEXT    NOT NULL,
    body          TEXT    NOT NULL,
    attributes    TEXT    NOT NULL,
    group_id      TEXT,
    dedup_id      TEXT,
    sent_at       INTEGER NOT NULL,
    visible_at    INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    receipt       TEXT,
    expires_at    INTEGER NOT NULL,
    source_queue  TEXT,
    history       TEXT    NOT NULL DEFAULT '[]'
);

CREATE INDEX queue_messages_ready ON queue_messages (tenant, queue, visible_at, seq);
CREATE INDEX queue_messages_group ON queue_messages (tenant, queue, group_id, seq);
