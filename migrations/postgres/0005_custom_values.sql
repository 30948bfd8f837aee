-- Custom-field values, one row per value (each option of a multi-select its own), typed so
-- that a filter on a custom field is a range of one index for every tenant, not a scan of
-- JSON. `t` holds text, dates and booleans ('true'/'false'), `n` numbers and currency
-- amounts. Kept in step with each record table's `custom` by triggers that the server
-- creates at start from the entity descriptions (src/store/indexes.rs), filling the table
-- from the records the first time.
CREATE TABLE custom_values (
    entity    TEXT NOT NULL,
    record_id TEXT NOT NULL,
    key       TEXT NOT NULL,
    t         TEXT,
    n         DOUBLE PRECISION
);
CREATE INDEX custom_values_text ON custom_values (entity, key, t, record_id);
CREATE INDEX custom_values_number ON custom_values (entity, key, n, record_id);
CREATE INDEX custom_values_record ON custom_values (entity, record_id);
