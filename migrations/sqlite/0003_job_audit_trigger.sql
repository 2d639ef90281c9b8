-- A job that finishes (done or dead) is audited in the same statement that
-- finishes it: one write instead of a transaction of two, which matters on
-- the single SQLite writer that intake shares.
CREATE TRIGGER jobs_finished AFTER UPDATE OF state ON jobs
WHEN OLD.state = 'running' AND NEW.state IN ('done', 'dead')
BEGIN
    INSERT INTO audit (at, job_id, delivery_id, actor, action, detail)
    VALUES (
        NEW.updated_at, NEW.id, NEW.delivery_id, NULL,
        CASE NEW.state WHEN 'done' THEN 'job.completed' ELSE 'job.dead' END,
        json_object('kind', NEW.kind, 'attempt', NEW.attempts, 'error', NEW.last_error)
    );
END;
