-- What each user chose for the web pages: language (en, fa, sw), digits (latin,
-- persian) and calendar (gregorian, hijri). NULL: not chosen yet, the browser's
-- language decides.
ALTER TABLE users ADD COLUMN locale TEXT;
ALTER TABLE users ADD COLUMN digits TEXT;
ALTER TABLE users ADD COLUMN calendar TEXT;
