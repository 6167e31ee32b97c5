-- What each tenant keeps, for its storage quotas: items and bytes per kind ('kv',
-- 'blob'). Triggers keep the kv row in the transaction of every write, so it never
-- drifts from the items it counts, whichever host or statement wrote them. Usage-plan
-- counters (scope 'usage:...') are the host's, not the tenant's, and are not counted.
CREATE TABLE storage_usage (
    tenant TEXT    NOT NULL,
    kind   TEXT    NOT NULL,
    items  INTEGER NOT NULL DEFAULT 0,
    bytes  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, kind)
) WITHOUT ROWID;

-- The blobs of every tenant and their sizes (the objects themselves are files).
CREATE TABLE blob_objects (
    tenant TEXT    NOT NULL,
    bucket TEXT    NOT NULL,
    key    TEXT    NOT NULL,
    bytes  INTEGER NOT NULL,
    PRIMARY KEY (tenant, bucket, key)
) WITHOUT ROWID;

INSERT INTO storage_usage (tenant, kind, items, bytes)
SELECT tenant, 'kv', COUNT(*), SUM(octet_length(key) + octet_length(value))
FROM kv_items WHERE substr(scope, 1, 6) <> 'usage:' GROUP BY tenant;

CREATE TRIGGER kv_items_usage_insert AFTER INSERT ON kv_items
WHEN substr(NEW.scope, 1, 6) <> 'usage:'
BEGIN
    INSERT OR IGNORE INTO storage_usage (tenant, kind) VALUES (NEW.tenant, 'kv');
    UPDATE storage_usage
    SET items = items + 1, bytes = bytes + octet_length(NEW.key) + octet_length(NEW.value)
    WHERE tenant = NEW.tenant AND kind = 'kv';
END;

CREATE TRIGGER kv_items_usage_update AFTER UPDATE OF value ON kv_items
WHEN substr(NEW.scope, 1, 6) <> 'usage:'
  AND octet_length(NEW.value) <> octet_length(OLD.value)
BEGIN
    UPDATE storage_usage
    SET bytes = bytes + octet_length(NEW.value) - octet_length(OLD.value)
    WHERE tenant = NEW.tenant AND kind = 'kv';
END;

CREATE TRIGGER kv_items_usage_delete AFTER DELETE ON kv_items
WHEN substr(OLD.scope, 1, 6) <> 'usage:'
BEGIN
    UPDATE storage_usage
    SET items = items - 1, bytes = bytes - octet_length(OLD.key) - octet_length(OLD.value)
    WHERE tenant = OLD.tenant AND kind = 'kv';
END;

CREATE TRIGGER blob_objects_usage_insert AFTER INSERT ON blob_objects
BEGIN
    INSERT OR IGNORE INTO storage_usage (tenant, kind) VALUES (NEW.tenant, 'blob');
    UPDATE storage_usage SET items = items + 1, bytes = bytes + NEW.bytes
    WHERE tenant = NEW.tenant AND kind = 'blob';
END;

CREATE TRIGGER blob_objects_usage_update AFTER UPDATE OF bytes ON blob_objects
BEGIN
    UPDATE storage_usage SET bytes = bytes + NEW.bytes - OLD.bytes
    WHERE tenant = NEW.tenant AND kind = 'blob';
END;

CREATE TRIGGER blob_objects_usage_delete AFTER DELETE ON blob_objects
BEGIN
    UPDATE storage_usage SET items = items - 1, bytes = bytes - OLD.bytes
    WHERE tenant = OLD.tenant AND kind = 'blob';
END;
