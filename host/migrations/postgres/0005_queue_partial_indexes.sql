-- Standard queues have no groups and most messages no deduplication id: index only the
-- rows that have one, so sending, claiming and deleting such messages update one index
-- fewer. A FIFO claim looks for an earlier message of the same group (`group_id = ...`
-- implies it is not null, so the partial index serves it); a send with a deduplication
-- id looks for the same id within the window, which scanned the queue before.
DROP INDEX queue_messages_group;
CREATE INDEX queue_messages_group ON queue_messages (tenant, queue, group_id, seq)
    WHERE group_id IS NOT NULL;
CREATE INDEX queue_messages_dedup ON queue_messages (tenant, queue, dedup_id)
    WHERE dedup_id IS NOT NULL;
