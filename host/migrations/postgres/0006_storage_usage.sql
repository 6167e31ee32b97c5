-- What each tenant keeps, for its storage quotas: items and bytes per kind ('kv',
-- 'blob'). Triggers keep the row in the transaction of every write, so it never drifts
-- from the items it counts, whichever host or statement wrote them; a writer that
-- checks a quota locks the row first, so hosts check one after another. Usage-plan
-- counters (scope 'usage:...') are the host's, not the tenant's, and are not counted.
CREATE TABLE storage_usage (
    tenant TEXT   NOT NULL,
    kind   TEXT   NOT NULL,
    items  BIGINT NOT NULL DEFAULT 0,
    bytes  BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, kind)
);

-- The blobs of every tenant and their sizes (the objects themselves are files).
CREATE TABLE blob_objects (
    tenant TEXT   NOT NULL,
    bucket TEXT   NOT NULL,
    key    TEXT   COLLATE "C" NOT NULL,
    bytes  BIGINT NOT NULL,
    PRIMARY KEY (tenant, bucket, key)
);

INSERT INTO storage_usage (tenant, kind, items, bytes)
SELECT tenant, 'kv', COUNT(*), SUM(octet_length(key) + octet_length(value))
FROM kv_items WHERE substr(scope, 1, 6) <> 'usage:' GROUP BY tenant;

-- Adds `items` and `bytes` to a tenant's usage of `kind`.
CREATE FUNCTION storage_usage_add(t TEXT, k TEXT, add_items BIGINT, add_bytes BIGINT)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO storage_usage AS u (tenant, kind, items, bytes)
    VALUES (t, k, add_items, add_bytes)
    ON CONFLICT (tenant, kind) DO UPDATE
    SET items = u.items + excluded.items, bytes = u.bytes + excluded.bytes;
$$;

CREATE FUNCTION kv_items_usage() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' AND substr(NEW.scope, 1, 6) <> 'usage:' THEN
        PERFORM storage_usage_add(NEW.tenant, 'kv', 1,
                                  octet_length(NEW.key) + octet_length(NEW.value));
    ELSIF TG_OP = 'UPDATE' AND substr(NEW.scope, 1, 6) <> 'usage:'
          AND octet_length(NEW.value) <> octet_length(OLD.value) THEN
        PERFORM storage_usage_add(NEW.tenant, 'kv', 0,
                                  octet_length(NEW.value) - octet_length(OLD.value));
    ELSIF TG_OP = 'DELETE' AND substr(OLD.scope, 1, 6) <> 'usage:' THEN
        PERFORM storage_usage_add(OLD.tenant, 'kv', -1,
                                  -(octet_length(OLD.key) + octet_length(OLD.value)));
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER kv_items_usage AFTER INSERT OR UPDATE OR DELETE ON kv_items
FOR EACH ROW EXECUTE FUNCTION kv_items_usage();

CREATE FUNCTION blob_objects_usage() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM storage_usage_add(NEW.tenant, 'blob', 1, NEW.bytes);
    ELSIF TG_OP = 'UPDATE' AND NEW.bytes <> OLD.bytes THEN
        PERFORM storage_usage_add(NEW.tenant, 'blob', 0, NEW.bytes - OLD.bytes);
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM storage_usage_add(OLD.tenant, 'blob', -1, -OLD.bytes);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER blob_objects_usage AFTER INSERT OR UPDATE OR DELETE ON blob_objects
FOR EACH ROW EXECUTE FUNCTION blob_objects_usage();
