-- Callers, teams and budgets (contract §7). A call's row says which team paid for it and with
-- which key (its public prefix: never the key). Keys are stored as SHA-256 hashes only.
ALTER TABLE calls ADD COLUMN team_id TEXT;
ALTER TABLE calls ADD COLUMN key_prefix TEXT;

CREATE TABLE IF NOT EXISTS teams (
    id                  TEXT    PRIMARY KEY,
    name                TEXT    NOT NULL UNIQUE,
    -- A JSON array of model ids, aliases or tiers; empty: the service's allow-list.
    allowed_models      TEXT    NOT NULL DEFAULT '[]',
    -- What the team may still spend, reservations of calls in flight deducted; NULL: unlimited.
    credits_usd         REAL,
    requests_per_minute INTEGER,
    tokens_per_minute   INTEGER,
    created_at          INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS api_keys (
    id         TEXT    PRIMARY KEY,
    team_id    TEXT    NOT NULL REFERENCES teams (id),
    role       TEXT    NOT NULL CHECK (role IN ('caller', 'admin')),
    name       TEXT,
    prefix     TEXT    NOT NULL,
    hash       TEXT    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);

-- Bumped by every change of teams or keys: replicas poll it each second and reload their cache
-- of keys when it moved, which is how a revocation reaches every replica within a second.
-- `keys_made` is set by the first key ever made and never cleared: auth stays on when every key
-- is later revoked or deleted with its team.
CREATE TABLE IF NOT EXISTS access_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version   INTEGER NOT NULL,
    keys_made INTEGER NOT NULL DEFAULT 0
);
INSERT OR IGNORE INTO access_version (id, version) VALUES (1, 0);
