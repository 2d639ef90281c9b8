-- What change tools refused while a plan was made (see migrations/sqlite).
ALTER TABLE plans ADD COLUMN refusals TEXT;
