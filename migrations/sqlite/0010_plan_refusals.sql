-- What change tools refused while a plan was made (JSON: action, resource,
-- reason), shown under its steps; NULL when nothing was refused.
ALTER TABLE plans ADD COLUMN refusals TEXT;
