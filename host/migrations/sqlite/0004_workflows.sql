-- Workflow executions of every tenant. A root execution runs a tenant's state machine;
-- each Parallel branch and Map item runs as a child execution (parent_id, parent_gen,
-- parent_index) of its own sub-machine, so every level is durable the same way.
-- `cursor` is the current state, its input and its progress; `version` counts committed
-- transitions and guards every write. A host works on an execution while it holds the
-- lease (lease_owner until lease_until); `wake_at` is when it is next due.
-- Times are milliseconds since the Unix epoch.
CREATE TABLE wf_executions (
    id           TEXT    PRIMARY KEY,
    tenant       TEXT    NOT NULL,
    workflow     TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    root_id      TEXT    NOT NULL,
    parent_id    TEXT,
    parent_gen   INTEGER,
    parent_index INTEGER,
    definition   TEXT    NOT NULL,
    context      TEXT    NOT NULL,
    input        TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    output       TEXT,
    error        TEXT,
    cause        TEXT,
    cursor       TEXT    NOT NULL,
    version      INTEGER NOT NULL DEFAULT 0,
    started_at   INTEGER NOT NULL,
    stopped_at   INTEGER,
    deadline_at  INTEGER,
    wake_at      INTEGER NOT NULL,
    lease_owner  TEXT,
    lease_until  INTEGER NOT NULL DEFAULT 0,
    UNIQUE (tenant, workflow, name)
);

CREATE INDEX wf_executions_due ON wf_executions (status, wake_at);
CREATE INDEX wf_executions_children ON wf_executions (parent_id, parent_gen, parent_index);
CREATE INDEX wf_executions_root ON wf_executions (root_id);
CREATE INDEX wf_executions_list ON wf_executions (tenant, workflow, started_at);

-- What happened in an execution, in order: states entered and exited, tasks scheduled,
-- succeeded and failed, retries, caught errors, the end.
CREATE TABLE wf_history (
    execution_id TEXT    NOT NULL,
    seq          INTEGER NOT NULL,
    at           INTEGER NOT NULL,
    kind         TEXT    NOT NULL,
    state        TEXT,
    detail       TEXT    NOT NULL,
    PRIMARY KEY (execution_id, seq)
);
