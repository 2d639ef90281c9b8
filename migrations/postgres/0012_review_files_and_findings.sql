-- What a review run looked at and found, so that the next push re-reviews
-- only the files whose changes differ (`file_hashes`: JSON, path → hash of
-- the file's changed lines at the reviewed head) and a recovered run's
-- check run concludes from what was found (`findings`: JSON, severity →
-- count of findings reported).
ALTER TABLE reviews ADD COLUMN file_hashes TEXT;
ALTER TABLE reviews ADD COLUMN findings TEXT;
