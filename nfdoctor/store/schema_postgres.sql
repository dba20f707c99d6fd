-- NextFlow CRM schema v1, PostgreSQL: the SQLite contract in crm-schema.md with
-- id BIGSERIAL, BIGINT references, timestamptz times, numeric(18,2) amounts and jsonb raw.
-- Unqualified names: the tables land in the first schema of the connection's search_path.
CREATE TABLE shops (
  id            BIGSERIAL PRIMARY KEY,
  channel       TEXT NOT NULL CHECK (channel IN ('shopee','lazada','tiktok','facebook','zalo')),
  external_id   TEXT NOT NULL,
  name          TEXT NOT NULL,
  created_at    TIMESTAMPTZ NOT NULL,
  UNIQUE (channel, external_id)
);
CREATE TABLE customers (
  id             BIGSERIAL PRIMARY KEY,
  display_name   TEXT,
  phone          TEXT,
  email          TEXT,
  created_at     TIMESTAMPTZ NOT NULL,
  merged_into_id BIGINT REFERENCES customers(id)
);
CREATE TABLE customer_identities (
  id               BIGSERIAL PRIMARY KEY,
  customer_id      BIGINT NOT NULL REFERENCES customers(id),
  channel          TEXT NOT NULL,
  external_user_id TEXT NOT NULL,
  display_name     TEXT,
  UNIQUE (channel, external_user_id)
);
CREATE TABLE conversations (
  id                 BIGSERIAL PRIMARY KEY,
  shop_id            BIGINT NOT NULL REFERENCES shops(id),
  customer_id        BIGINT REFERENCES customers(id),
  external_thread_id TEXT,
  status             TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open','pending','closed')),
  created_at         TIMESTAMPTZ NOT NULL,
  last_message_at    TIMESTAMPTZ
);
CREATE TABLE messages (
  id                 BIGSERIAL PRIMARY KEY,
  conversation_id    BIGINT NOT NULL REFERENCES conversations(id),
  shop_id            BIGINT NOT NULL REFERENCES shops(id),
  external_id        TEXT NOT NULL,
  direction          TEXT NOT NULL CHECK (direction IN ('in','out')),
  sender_external_id TEXT,
  body               TEXT,
  sent_at            TIMESTAMPTZ NOT NULL,
  received_at        TIMESTAMPTZ NOT NULL,
  reply_to_id        BIGINT REFERENCES messages(id)
);
CREATE INDEX messages_shop_external ON messages (shop_id, external_id);
CREATE INDEX messages_conversation ON messages (conversation_id, sent_at);
CREATE TABLE message_attachments (
  id         BIGSERIAL PRIMARY KEY,
  message_id BIGINT NOT NULL REFERENCES messages(id),
  kind       TEXT NOT NULL,
  url        TEXT NOT NULL
);
CREATE INDEX message_attachments_message ON message_attachments (message_id);
CREATE TABLE orders (
  id              BIGSERIAL PRIMARY KEY,
  shop_id         BIGINT NOT NULL REFERENCES shops(id),
  external_id     TEXT NOT NULL,
  customer_id     BIGINT REFERENCES customers(id),
  platform_status TEXT NOT NULL,
  status          TEXT NOT NULL CHECK (status IN ('pending','paid','shipped','delivered','cancelled','returned')),
  total_amount    NUMERIC(18,2) NOT NULL,
  currency        TEXT NOT NULL,
  created_at      TIMESTAMPTZ NOT NULL,
  updated_at      TIMESTAMPTZ NOT NULL,
  synced_at       TIMESTAMPTZ NOT NULL,
  raw             JSONB,
  UNIQUE (shop_id, external_id)
);
CREATE INDEX orders_shop_created ON orders (shop_id, created_at);
-- v1.1: the tokens the CRM's integrations use. Optional: a v1 database has no such table.
CREATE TABLE channel_credentials (
  shop_id            BIGINT PRIMARY KEY REFERENCES shops(id),
  access_token       TEXT NOT NULL,
  access_expires_at  TIMESTAMPTZ,
  refresh_token      TEXT,
  refresh_expires_at TIMESTAMPTZ,
  updated_at         TIMESTAMPTZ NOT NULL,
  updated_by         TEXT NOT NULL,
  version            INTEGER NOT NULL DEFAULT 1,
  lease_owner        TEXT,
  lease_until        TIMESTAMPTZ
);
