-- Keys find_duplicates groups by (SPEC 5), kept by the database itself on every write.
-- A phone number's digits whatever its notation: "+1 (555) 010-0100", "001 555 010 0100" and
-- "+1.555.010.0100" give 15550100100; a "(0)" trunk prefix goes; fewer than 6 digits is no key.
ALTER TABLE contacts ADD COLUMN phone_digits TEXT GENERATED ALWAYS AS (
    replace(replace(replace(replace(replace(replace(replace(replace(
        phone, '(0)', ''), ' ', ''), '-', ''), '(', ''), ')', ''), '.', ''), '/', ''), '+', '')
) VIRTUAL;
ALTER TABLE contacts ADD COLUMN phone_key TEXT GENERATED ALWAYS AS (
    CASE WHEN length(CASE WHEN phone_digits LIKE '00%' THEN substr(phone_digits, 3) ELSE phone_digits END) >= 6
         THEN CASE WHEN phone_digits LIKE '00%' THEN substr(phone_digits, 3) ELSE phone_digits END END
) VIRTUAL;
CREATE INDEX contacts_org_phone_key ON contacts (org_id, phone_key) WHERE deleted_at IS NULL;
CREATE INDEX contacts_org_live_email ON contacts (org_id, email) WHERE deleted_at IS NULL;
-- A company's name as people write it in any case.
ALTER TABLE companies ADD COLUMN name_key TEXT GENERATED ALWAYS AS (lower(trim(name))) VIRTUAL;
CREATE INDEX companies_org_name_key ON companies (org_id, name_key) WHERE deleted_at IS NULL;
CREATE INDEX contacts_org_company ON contacts (org_id, company_id) WHERE deleted_at IS NULL;
