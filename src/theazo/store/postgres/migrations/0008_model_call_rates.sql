-- The model gateway's per-session rate windows, shared by every node: what a session's model
-- calls did in each bucket (a second) of the last minute. Buckets older than a minute are
-- deleted by the nodes that count calls (store.count_model_call).
CREATE TABLE model_call_rates (
    session_id  text NOT NULL,
    bucket      bigint NOT NULL,            -- seconds since the epoch / the bucket's length
    requests    integer NOT NULL DEFAULT 0,
    tokens      bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (session_id, bucket)
);
CREATE INDEX model_call_rates_bucket ON model_call_rates (bucket);
