-- How many messages each queue holds, for the depth quota's check on every send. Counting
-- the queue's rows took the single writer time in proportion to the queue's depth; this
-- counter is kept by triggers in the transaction of every insert, move and delete, so it
-- never drifts from the rows. Messages past their retention count until swept: a send the
-- counter would refuse counts the live messages before it is refused. SQLite only: on
-- PostgreSQL, one row per queue would make every consumer's delete wait for the queue's
-- senders (there the count stays, under a per-queue advisory lock).
CREATE TABLE queue_depths (
    tenant   TEXT    NOT NULL,
    queue    TEXT    NOT NULL,
    messages INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, queue)
) WITHOUT ROWID;

INSERT INTO queue_depths (tenant, queue, messages)
SELECT tenant, queue, COUNT(*) FROM queue_messages GROUP BY tenant, queue;

CREATE TRIGGER queue_depths_insert AFTER INSERT ON queue_messages
BEGIN
    INSERT OR IGNORE INTO queue_depths (tenant, queue) VALUES (NEW.tenant, NEW.queue);
    UPDATE queue_depths SET messages = messages + 1
    WHERE tenant = NEW.tenant AND queue = NEW.queue;
END;

CREATE TRIGGER queue_depths_move AFTER UPDATE OF queue ON queue_messages
WHEN NEW.queue <> OLD.queue
BEGIN
    UPDATE queue_depths SET messages = messages - 1
    WHERE tenant = OLD.tenant AND queue = OLD.queue;
    INSERT OR IGNORE INTO queue_depths (tenant, queue) VALUES (NEW.tenant, NEW.queue);
    UPDATE queue_depths SET messages = messages + 1
    WHERE tenant = NEW.tenant AND queue = NEW.queue;
END;

CREATE TRIGGER queue_depths_delete AFTER DELETE ON queue_messages
BEGIN
    UPDATE queue_depths SET messages = messages - 1
    WHERE tenant = OLD.tenant AND queue = OLD.queue;
END;
