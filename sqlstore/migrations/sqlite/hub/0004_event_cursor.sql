-- How far the hub has carried each node's accesses into the transparency log.
CREATE TABLE node_event_cursor (
    region TEXT PRIMARY KEY,
    seq    INTEGER NOT NULL
);
