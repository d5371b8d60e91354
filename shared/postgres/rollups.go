package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// DailyAverages returns up to f.Limit+1 local days (newest first; for a
// client, sensors in id order within a day) of f.SensorID or of every sensor
// of f.ClientID. Days in the client's own zone, and in up to
// max_rollup_zones() other zones it has been asked in, are read from
// reading_rollups_daily (one row per day, migrations 030 and 032); further
// zones group the 15-minute reading_rollups by local date, exact for every
// zone since local midnights fall on 15-minute boundaries.
func (s *ReadingQueryStore) DailyAverages(ctx context.Context, f tempwatch.DailyAverageFilter) ([]tempwatch.DailyAverage, error) {
	args := []any{f.Timezone}
	arg := func(v any) string { args = append(args, v); return "$" + strconv.Itoa(len(args)) }
	var sensors, clientArg string
	if f.SensorID != "" {
		sensors = `sensor_id = ` + arg(f.SensorID) + `::uuid`
	} else {
		clientArg = arg(f.ClientID)
		sensors = `sensor_id IN (SELECT id FROM sensors WHERE client_id = ` + clientArg + `::uuid)`
	}
	from, to := f.From, f.To
	cursor := ""
	if !f.BeforeDay.IsZero() {
		if f.SensorID != "" || f.BeforeSensor == "" {
			to = f.BeforeDay.AddDate(0, 0, -1)
		} else {
			if f.BeforeDay.Before(to) {
				to = f.BeforeDay
			}
			cursor = ` AND (day < ` + arg(f.BeforeDay) + `::date OR (day = ` + arg(f.BeforeDay) + `::date AND sensor_id > ` + arg(f.BeforeSensor) + `::uuid))`
		}
	}
	if to.Before(from) {
		return nil, nil
	}
	kept := f.Timezone == f.ClientTimezone
	if !kept {
		var err error
		if kept, err = s.keepZone(ctx, f); err != nil {
			return nil, err
		}
	}
	if !kept && f.SensorID == "" {
		// An array, not IN (subquery): the planner then range-scans each
		// sensor's rows instead of hash-joining a scan of the whole table.
		sensors = `sensor_id = ANY (ARRAY(SELECT id FROM sensors WHERE client_id = ` + clientArg + `::uuid))`
	}
	fromArg, toArg := arg(from.Format("2006-01-02")), arg(to.Format("2006-01-02"))
	var q string
	if kept {
		q = `SELECT sensor_id, day::text AS day_text, sum / count, min, max, count, first_at, last_at
			FROM reading_rollups_daily
			WHERE ` + sensors + ` AND timezone = $1 AND day BETWEEN ` + fromArg + `::date AND ` + toArg + `::date` + cursor
	} else {
		q = `SELECT sensor_id, day::text AS day_text, avg, min, max, count, first_at, last_at FROM (
				SELECT sensor_id, (bucket_start AT TIME ZONE $1)::date AS day, sum(sum) / sum(count) AS avg, min(min) AS min, max(max) AS max,
					sum(count)::bigint AS count, min(first_at) AS first_at, max(last_at) AS last_at
				FROM reading_rollups
				WHERE ` + sensors + `
				  AND bucket_start >= (` + fromArg + `::date::timestamp AT TIME ZONE $1)
				  AND bucket_start < ((` + toArg + `::date + 1)::timestamp AT TIME ZONE $1)
				GROUP BY 1, 2) d
			WHERE true` + cursor
	}
	q += ` ORDER BY day DESC, sensor_id LIMIT ` + arg(f.Limit+1)
	if kept {
		return s.collectDays(ctx, q, args)
	}
	// Grouping reads every 15-minute row of its range, so a page groups
	// only the newest days it can fill (a window of days, doubled while the
	// page is short), and the deepest page costs what the first costs.
	window := f.Limit + 1
	if f.SensorID == "" {
		var n int
		if err := s.db.QueryRow(ctx, `SELECT count(*) FROM sensors WHERE client_id = $1`, f.ClientID).Scan(&n); err != nil {
			return nil, fmt.Errorf("daily averages: %w", err)
		}
		window = window/max(n, 1) + 1
	}
	// Planned for each window's bounds (a generic plan cannot range-scan).
	args = append([]any{pgx.QueryExecModeExec}, args...)
	fromIdx, _ := strconv.Atoi(fromArg[1:])
	for {
		start := to.AddDate(0, 0, 1-window)
		if !start.After(from) {
			args[fromIdx] = from.Format("2006-01-02")
			return s.collectDays(ctx, q, args)
		}
		args[fromIdx] = start.Format("2006-01-02")
		out, err := s.collectDays(ctx, q, args)
		if err != nil || len(out) > f.Limit {
			return out, err
		}
		window *= 2
	}
}

// collectDays runs a daily-averages query.
func (s *ReadingQueryStore) collectDays(ctx context.Context, q string, args []any) ([]tempwatch.DailyAverage, error) {
	rows, _ := s.db.Query(ctx, q, args...)
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (tempwatch.DailyAverage, error) {
		var d tempwatch.DailyAverage
		err := row.Scan(&d.SensorID, &d.Day, &d.Avg, &d.Min, &d.Max, &d.Count, &d.FirstAt, &d.LastAt)
		return d, err
	})
	if err != nil {
		return nil, translateZone(err)
	}
	return out, nil
}

// keepZone reports whether the daily rollups of f's client are kept in
// f.Timezone, registering the zone (and building its days) on first use
// unless the client has the most extra zones allowed (migration 032).
func (s *ReadingQueryStore) keepZone(ctx context.Context, f tempwatch.DailyAverageFilter) (bool, error) {
	client := f.ClientID
	if client == "" {
		if err := s.db.QueryRow(ctx, `SELECT client_id::text FROM sensors WHERE id = $1`, f.SensorID).Scan(&client); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return false, nil // no days to show; the grouping path answers
			}
			return false, fmt.Errorf("daily averages: %w", err)
		}
	}
	var kept bool
	if err := s.db.QueryRow(ctx, `SELECT keep_rollup_zone($1, $2)`, client, f.Timezone).Scan(&kept); err != nil {
		return false, translateZone(err)
	}
	return kept, nil
}

// translateZone turns PostgreSQL's unknown-zone error into a 400 on tz.
func translateZone(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "22023" {
		return tempwatch.Invalid("tz", "is not a time zone the database knows")
	}
	return fmt.Errorf("daily averages: %w", err)
}
