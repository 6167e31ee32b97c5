-- A delivery's own retry schedule, kept with it when it is written: SNS's
-- healthyRetryPolicy of a webhook subscription, as JSON (tenants::delivery). NULL: the
-- host's schedule (a pause that doubles, with jitter).
ALTER TABLE deliveries ADD COLUMN retry_schedule TEXT;
