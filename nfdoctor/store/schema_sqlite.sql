-- NextFlow CRM schema v1, SQLite. Verbatim from crm-schema.md (the contract); the CRM owns
-- these tables. Times are TEXT in ISO 8601 UTC with a Z suffix and microseconds.
CREATE TABLE shops (
  id            INTEGER PRIMARY KEY,
  channel       TEXT NOT NULL CHECK (channel IN ('shopee','lazada','tiktok','facebook','zalo')),
  external_id   TEXT NOT NULL,
  name          TEXT NOT NULL,
  created_at    TEXT NOT NULL,
  UNIQUE (channel, external_id)
);
CREATE TABLE customers (
  id             INTEGER PRIMARY KEY,
  display_name   TEXT,
  phone          TEXT,
  email          TEXT,
  created_at     TEXT NOT NULL,
  merged_into_id INTEGER REFERENCES customers(id)
);
CREATE TABLE customer_identities (
  id               INTEGER PRIMARY KEY,
  customer_id      INTEGER NOT NULL REFERENCES customers(id),
  channel          TEXT NOT NULL,
  external_user_id TEXT NOT NULL,
  display_name     TEXT,
  UNIQUE (channel, external_user_id)
);
CREATE TABLE conversations (
  id                 INTEGER PRIMARY KEY,
  shop_id            INTEGER NOT NULL REFERENCES shops(id),
  customer_id        INTEGER REFERENCES customers(id),
  external_thread_id TEXT,
  status             TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open','pending','closed')),
  created_at         TEXT NOT NULL,
  last_message_at    TEXT
);
CREATE TABLE messages (
  id                 INTEGER PRIMARY KEY,
  conversation_id    INTEGER NOT NULL REFERENCES conversations(id),
  shop_id            INTEGER NOT NULL REFERENCES shops(id),
  external_id        TEXT NOT NULL,
  direction          TEXT NOT NULL CHECK (direction IN ('in','out')),
  sender_external_id TEXT,
  body               TEXT,
  sent_at            TEXT NOT NULL,
  received_at        TEXT NOT NULL,
  reply_to_id        INTEGER REFERENCES messages(id)
);
CREATE INDEX messages_shop_external ON messages (shop_id, external_id);
CREATE INDEX messages_conversation ON messages (conversation_id, sent_at);
CREATE TABLE message_attachments (
  id         INTEGER PRIMARY KEY,
  message_id INTEGER NOT NULL REFERENCES messages(id),
  kind       TEXT NOT NULL,
  url        TEXT NOT NULL
);
CREATE INDEX message_attachments_message ON message_attachments (message_id);
CREATE TABLE orders (
  id              INTEGER PRIMARY KEY,
  shop_id         INTEGER NOT NULL REFERENCES shops(id),
  external_id     TEXT NOT NULL,
  customer_id     INTEGER REFERENCES customers(id),
  platform_status TEXT NOT NULL,
  status          TEXT NOT NULL CHECK (status IN ('pending','paid','shipped','delivered','cancelled','returned')),
  total_amount    NUMERIC NOT NULL,
  currency        TEXT NOT NULL,
  created_at      TEXT NOT NULL,
  updated_at      TEXT NOT NULL,
  synced_at       TEXT NOT NULL,
  raw             TEXT,
  UNIQUE (shop_id, external_id)
);
CREATE INDEX orders_shop_created ON orders (shop_id, created_at);
-- v1.1: the tokens the CRM's integrations use. Optional: a v1 database has no such table.
CREATE TABLE channel_credentials (
  shop_id            INTEGER PRIMARY KEY REFERENCES shops(id),
  access_token       TEXT NOT NULL,
  access_expires_at  TEXT,
  refresh_token      TEXT,
  refresh_expires_at TEXT,
  updated_at         TEXT NOT NULL,
  updated_by         TEXT NOT NULL,
  version            INTEGER NOT NULL DEFAULT 1,
  lease_owner        TEXT,
  lease_until        TEXT
);
