-- How each change and audited action came (SPEC section 12): the client the request named,
-- the tool that ran, the route, the server-made id of the call and the W3C trace id.
ALTER TABLE changes ADD COLUMN client_name TEXT;
ALTER TABLE changes ADD COLUMN client_version TEXT;
ALTER TABLE changes ADD COLUMN tool TEXT;
ALTER TABLE changes ADD COLUMN route TEXT;
ALTER TABLE changes ADD COLUMN request_id TEXT;
ALTER TABLE changes ADD COLUMN trace_id TEXT;
CREATE INDEX changes_org_request ON changes (org_id, request_id);
CREATE INDEX changes_org_client ON changes (org_id, client_name, at, id);
CREATE INDEX changes_org_tool ON changes (org_id, tool, at, id);
CREATE INDEX changes_org_trace ON changes (org_id, trace_id);

ALTER TABLE audit_log ADD COLUMN client_name TEXT;
ALTER TABLE audit_log ADD COLUMN client_version TEXT;
ALTER TABLE audit_log ADD COLUMN tool TEXT;
ALTER TABLE audit_log ADD COLUMN route TEXT;
ALTER TABLE audit_log ADD COLUMN request_id TEXT;
ALTER TABLE audit_log ADD COLUMN trace_id TEXT;
CREATE INDEX audit_org_request ON audit_log (org_id, request_id);
