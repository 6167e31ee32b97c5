-- Retry policies and dead-letter queues of deliveries, kept with each delivery when it is
-- written: its attempts in all, the time past which it is not tried again (NULL: none),
-- its dead-letter queue and what it comes from (a rule's or topic's ARN-like id). A
-- delivery that failed past its policy stays, with failed_at set, for the admin API, and
-- is never claimed again; the delivery worker deletes it after a while.
ALTER TABLE deliveries ADD COLUMN max_attempts BIGINT NOT NULL DEFAULT 3;
ALTER TABLE deliveries ADD COLUMN expires_at BIGINT;
ALTER TABLE deliveries ADD COLUMN dead_letter TEXT;
ALTER TABLE deliveries ADD COLUMN origin TEXT NOT NULL DEFAULT '';
ALTER TABLE deliveries ADD COLUMN failed_at BIGINT;

CREATE INDEX deliveries_by_tenant ON deliveries (tenant, seq);
CREATE INDEX deliveries_failed ON deliveries (failed_at) WHERE failed_at IS NOT NULL;
