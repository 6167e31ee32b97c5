-- Key-value items of every tenant. `scope` is `plugin:NAME` (a plugin's private bucket)
-- or `bucket:NAME` (a shared bucket). Times are milliseconds since the Unix epoch.
-- Keys use the "C" collation: byte order, as on SQLite, so prefixes and cursors agree.
CREATE TABLE kv_items (
    tenant     TEXT   NOT NULL,
    scope      TEXT   NOT NULL,
    key        TEXT   COLLATE "C" NOT NULL,
    value      BYTEA  NOT NULL,
    version    BIGINT NOT NULL,
    expires_at BIGINT,
    PRIMARY KEY (tenant, scope, key)
);

CREATE INDEX kv_items_expiry ON kv_items (expires_at) WHERE expires_at IS NOT NULL;
