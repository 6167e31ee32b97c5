-- The host registry: one row per `orquesta serve` process (its id is a UUID made when it
-- starts), written by its heartbeat. A row whose heartbeat is older than a few of its own
-- intervals is a host gone (killed, cut off); one with `stopped_at` shut down cleanly.
-- Either is kept for a while for the operator to see, then pruned by the hosts still up.
-- `tenants` is JSON (what the host serves), rewritten only when it changes.
CREATE TABLE hosts (
    id           TEXT    PRIMARY KEY,
    address      TEXT    NOT NULL,
    version      TEXT    NOT NULL,
    started_at   INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL,
    heartbeat_ms INTEGER NOT NULL,
    stopped_at   INTEGER,
    in_flight    INTEGER NOT NULL,
    tenants      TEXT    NOT NULL
);
CREATE INDEX hosts_heartbeat_at ON hosts (heartbeat_at);
