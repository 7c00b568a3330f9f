-- When each node's federation certificate expires, as last seen by the hub.
ALTER TABLE nodes ADD COLUMN cert_expires TIMESTAMPTZ;
