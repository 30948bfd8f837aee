-- SQLite is one process's file: its rate limits live in that process's memory. This file
-- keeps the migration numbers of both databases in step (PostgreSQL adds `rate_limits`).
SELECT 1;
