-- A job that finishes (done or dead) is audited in the same statement that
-- finishes it (see migrations/sqlite).
CREATE FUNCTION jobs_finished() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit (at, job_id, delivery_id, actor, action, detail)
    VALUES (
        NEW.updated_at, NEW.id, NEW.delivery_id, NULL,
        CASE NEW.state WHEN 'done' THEN 'job.completed' ELSE 'job.dead' END,
        json_build_object('kind', NEW.kind, 'attempt', NEW.attempts, 'error', NEW.last_error)::text
    );
    RETURN NEW;
END
$$;
CREATE TRIGGER jobs_finished AFTER UPDATE OF state ON jobs
FOR EACH ROW WHEN (OLD.state = 'running' AND NEW.state IN ('done', 'dead'))
EXECUTE FUNCTION jobs_finished();
