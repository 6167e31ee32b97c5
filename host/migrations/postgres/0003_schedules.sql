-- One row per schedule tick that fired: the primary key is what makes a tick fire once
-- across every host sharing the store. Times are milliseconds since the Unix epoch.
CREATE TABLE schedule_ticks (
    tenant   TEXT    NOT NULL,
    schedule TEXT    NOT NULL,
    due_at   BIGINT  NOT NULL,
    fired_at BIGINT  NOT NULL,
    PRIMARY KEY (tenant, schedule, due_at)
);
