-- Small DICOM objects on their way into the blob store. The archive writes
-- the bytes of a small instance here, in the transaction that indexes it,
-- so that one sync of the database makes both its bytes and its index
-- entry durable; it then writes them to the blob store, makes them durable
-- there, and deletes them here. Rows left by a crash are moved at the next
-- start (archive.Archive.Recover).
CREATE TABLE archive_held_objects (
    blob_key TEXT PRIMARY KEY,  -- the object's content-addressed key, as archive_instances.blob_key
    data     BLOB NOT NULL      -- the object's bytes as received
);
