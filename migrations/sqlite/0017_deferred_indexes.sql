-- Indexes a large import set aside to build once at its end (`Store::defer_indexes`), kept
-- here in the transaction that drops them: an import killed half way leaves its rows, and
-- whichever process next opens the database builds these back (issue 24).
CREATE TABLE deferred_indexes (
    name TEXT PRIMARY KEY,
    ddl TEXT NOT NULL
);
