-- Task tokens of callback tasks (`.waitForTaskToken`). The token itself is never stored:
-- `token_hash` is its SHA-256 (hex), so reading the table gives nothing to answer with.
-- `status` is WAITING until SendTaskSuccess (SUCCEEDED, with `output`), SendTaskFailure
-- (FAILED, with `error` and `cause`), or the executor leaving the task (CLOSED: timed
-- out, interrupted, redriven); an answer is only taken while WAITING, once.
-- `heartbeat_at` is when the task started or last had a SendTaskHeartbeat.
-- Times are milliseconds since the Unix epoch.
CREATE TABLE wf_task_tokens (
    token_hash   TEXT    PRIMARY KEY,
    tenant       TEXT    NOT NULL,
    execution_id TEXT    NOT NULL,
    state        TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    output       TEXT,
    error        TEXT,
    cause        TEXT,
    created_at   INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL
);
CREATE INDEX wf_task_tokens_execution ON wf_task_tokens (execution_id);
