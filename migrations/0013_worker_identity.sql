-- A worker id is bound to the token it registered with (issue 13): calls under that id with
-- another token are refused. Workers registered before this have none and register again.
ALTER TABLE workers ADD COLUMN key_id text;
