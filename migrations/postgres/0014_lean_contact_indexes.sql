-- A contact's email was indexed twice: `contacts_org_live_email` serves every lookup of a
-- live contact, and each index a million-row import keeps up costs a random page write per
-- row. The one lookup that includes the trash (`Store::held_about`, personal-data requests)
-- reads trashed contacts through the trash index.
DROP INDEX IF EXISTS contacts_org_email;
