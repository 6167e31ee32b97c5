-- Deploys through the store: what the admin API (or `orquesta deploy`) deployed, for every
-- host of the store to apply. One row per plugin or tenant name: the content's SHA-256,
-- or NULL for a tenant deleted (kept, so a host started later deletes its file too).
-- The content is kept once per hash, in chunks (a Python component is tens of MiB).
CREATE TABLE deployments (
    kind        TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    hash        TEXT,
    deployed_by TEXT    NOT NULL,
    deployed_at BIGINT  NOT NULL,
    PRIMARY KEY (kind, name)
);

CREATE TABLE deploy_artifacts (
    hash TEXT    NOT NULL,
    seq  BIGINT  NOT NULL,
    data BYTEA    NOT NULL,
    PRIMARY KEY (hash, seq)
);
