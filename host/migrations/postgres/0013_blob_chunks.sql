-- Blob bytes in the store (the `store` blob backend, the default on PostgreSQL): each
-- write of an object is a version, its bytes in chunks; `blob_objects.version` names the
-- version the object reads, switched in the transaction that counts its size, which also
-- deletes the old version's chunks. NULL: the object's bytes live elsewhere (files, S3).
-- A version's name starts with its creation time, so chunks no row names (a write that
-- died with its host) can be swept once old.
ALTER TABLE blob_objects ADD COLUMN version TEXT;
CREATE INDEX blob_objects_version ON blob_objects (version) WHERE version IS NOT NULL;

CREATE TABLE blob_chunks (
    version TEXT    NOT NULL,
    seq     BIGINT  NOT NULL,
    data    BYTEA   NOT NULL,
    PRIMARY KEY (version, seq)
);
