-- A node holds its running tasks through one lease, on its own row, renewed by one UPDATE a
-- beat, instead of one lease per task renewed by an UPDATE of every running task. A node of
-- an earlier version left no live lease here: its tasks are rescued at the next start.
ALTER TABLE workers ADD COLUMN lease_expires_at INTEGER NOT NULL DEFAULT 0;
