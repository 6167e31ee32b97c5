-- Key-value items of every tenant. `scope` is `plugin:NAME` (a plugin's private bucket)
-- or `bucket:NAME` (a shared bucket). Times are milliseconds since the Unix epoch.
CREATE TABLE kv_items (
    tenant     TEXT    NOT NULL,
    scope      TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    value      BLOB    NOT NULL,
    version    INTEGER NOT NULL,
    expires_at INTEGER,
    PRIMARY KEY (tenant, scope, key)
) WITHOUT ROWID;

CREATE INDEX kv_items_expiry ON kv_items (expires_at) WHERE expires_at IS NOT NULL;
