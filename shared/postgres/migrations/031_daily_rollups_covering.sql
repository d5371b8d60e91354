-- Daily averages read reading_rollups_daily by (sensor, zone, day range). Its
-- rows are updated in place by every ingest batch, so they scatter over the
-- heap: one page read per day. A covering index lets the scan answer from the
-- index alone (days older than the last vacuum are all-visible).
CREATE INDEX reading_rollups_daily_covering ON reading_rollups_daily (sensor_id, timezone, day DESC)
    INCLUDE (count, sum, min, max, first_at, last_at);
