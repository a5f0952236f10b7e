-- What each task's sandbox sent and received through the egress proxy (all its attempts).
ALTER TABLE tasks ADD COLUMN net_sent_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN net_received_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN net_connections INTEGER NOT NULL DEFAULT 0;
