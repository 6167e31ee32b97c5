-- Deduplication ids, each remembered for its window (5 minutes from the first send, as
-- SQS FIFO queues do) whether or not its message is still queued: looking ids up among
-- the queued messages forgot an id as soon as its message was consumed. `message_id` is
-- what a repeated send answers. The host's sweeper deletes rows past `expires_at`.
CREATE TABLE queue_dedup (
    tenant     TEXT    NOT NULL,
    queue      TEXT    NOT NULL,
    dedup_id   TEXT    NOT NULL,
    message_id TEXT    NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, queue, dedup_id)
);
CREATE INDEX queue_dedup_expiry ON queue_dedup (expires_at);

-- Ids of messages sent before this table existed (the newest message per id), for what
-- remains of their window.
INSERT INTO queue_dedup (tenant, queue, dedup_id, message_id, expires_at)
SELECT m.tenant, m.queue, m.dedup_id, m.id, m.sent_at + 300000
FROM queue_messages m
WHERE m.dedup_id IS NOT NULL
  AND NOT EXISTS (
    SELECT 1 FROM queue_messages n
    WHERE n.tenant = m.tenant AND n.queue = m.queue AND n.dedup_id = m.dedup_id
      AND n.seq > m.seq);

-- A send no longer looks ids up among the messages.
DROP INDEX queue_messages_dedup;
