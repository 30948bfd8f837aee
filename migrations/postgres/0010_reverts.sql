-- A revert (SPEC section 12) is itself a set of change entries, each naming the entries it
-- reverts (JSON list of ids), so that it can be reverted in turn.
ALTER TABLE changes ADD COLUMN reverts TEXT;
