-- The dashboard: a project's tasks across its sessions, newest first, read by index; and how
-- many tasks each node runs at once, so its free slots can be shown (null: a node of an
-- earlier version, which did not say).
CREATE INDEX tasks_project_newest ON tasks (project_id, id);
ALTER TABLE workers ADD COLUMN slots integer;
