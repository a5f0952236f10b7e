-- A node holds its running tasks through one lease, on its own row, renewed by one UPDATE a
-- beat, instead of one lease per task renewed by an UPDATE of every running task. Upgrade
-- every node at once: a node of an earlier version does not renew this lease, so its tasks
-- count as lost a lease after its last start.
ALTER TABLE workers ADD COLUMN lease_expires_at timestamptz;
UPDATE workers SET lease_expires_at = heartbeat_at;
ALTER TABLE workers ALTER COLUMN lease_expires_at SET NOT NULL;
