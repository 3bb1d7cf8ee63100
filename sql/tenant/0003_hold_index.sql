-- The legal-hold rule over a whole org (migration start, SPEC §8/§10) asks
-- "does any record of this org have legal_hold = 1": answered by an index,
-- not by reading every record of a large org.
ALTER TABLE contacts ADD KEY contacts_hold (org_id, legal_hold);
ALTER TABLE projects ADD KEY projects_hold (org_id, legal_hold);
ALTER TABLE offices ADD KEY offices_hold (org_id, legal_hold);
