-- (session, status, id) served one query, a session's running tasks, which the running-lease
-- index answers as well (running tasks are few: at most the nodes' concurrency). Yet every
-- submit inserted into it and every claim and end moved an entry in it, on a page of its
-- own per session: a fair claim of 8 tasks of 8 sessions wrote 8 more pages.
DROP INDEX tasks_session_status;
