package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// The daily-averages queries. Days kept in reading_rollups_daily are read
// as they are; days of any other zone are grouped from the 15-minute
// reading_rollups by local date, exact for every zone since local midnights
// fall on 15-minute boundaries. Time beyond the limits is read alike, from
// limit_rollups_daily or grouped from limit_rollups (migration 007), and
// joined to its day (d) with the sensor (s) whose limits say whether it is
// null. Parameters: $1 the zone, $2 the sensor (or client) id, $3 and $4
// the first and last local date, then for a client's days the page cursor
// ($5 day and $6 sensor; NULL on the first page), and the row limit last.
const (
	dailyColumns = `d.sensor_id, d.day::text AS day_text, d.avg, d.min, d.max, d.count, d.first_at, d.last_at,
		mkt_celsius(d.mkt_sum, d.count),
		CASE WHEN s.alert_high IS NOT NULL THEN coalesce(l.above_us, 0)::float8 / 60000000 END,
		CASE WHEN s.alert_low IS NOT NULL THEN coalesce(l.below_us, 0)::float8 / 60000000 END`
	dailyKeptFrom = `FROM (SELECT sensor_id, timezone, day, sum / count AS avg, min, max, count, first_at, last_at, mkt_sum
			FROM reading_rollups_daily) d
		JOIN sensors s ON s.id = d.sensor_id
		LEFT JOIN limit_rollups_daily l ON l.sensor_id = d.sensor_id AND l.timezone = d.timezone AND l.day = d.day`
	dailyKeptOfSensor = `SELECT ` + dailyColumns + ` ` + dailyKeptFrom + `
		WHERE d.sensor_id = $2::uuid AND d.timezone = $1 AND d.day BETWEEN $3::date AND $4::date
		ORDER BY d.day DESC LIMIT $5`
	dailyKeptOfClient = `SELECT ` + dailyColumns + ` ` + dailyKeptFrom + `
		WHERE d.sensor_id IN (SELECT id FROM sensors WHERE client_id = $2::uuid)
		  AND d.timezone = $1 AND d.day BETWEEN $3::date AND $4::date
		  AND ($5::date IS NULL OR d.day < $5::date OR (d.day = $5::date AND d.sensor_id > $6::uuid))
		ORDER BY d.day DESC, d.sensor_id LIMIT $7`
	// dailyGrouped groups the days of the sensors matched by the
	// condition on sensor_id it is given.
	dailyGrouped = `SELECT ` + dailyColumns + ` FROM (
			SELECT sensor_id, (bucket_start AT TIME ZONE $1)::date AS day, sum(sum) / sum(count) AS avg,
				min(min) AS min, max(max) AS max, sum(count)::bigint AS count, min(first_at) AS first_at, max(last_at) AS last_at,
				mkt_sum_known(array_agg(mkt_sum)) AS mkt_sum
			FROM reading_rollups
			WHERE sensor_id %[1]s
			  AND bucket_start >= ($3::date::timestamp AT TIME ZONE $1)
			  AND bucket_start < (($4::date + 1)::timestamp AT TIME ZONE $1)
			GROUP BY 1, 2) d
		JOIN sensors s ON s.id = d.sensor_id
		LEFT JOIN (
			SELECT sensor_id, (bucket_start AT TIME ZONE $1)::date AS day, sum(above_us) AS above_us, sum(below_us) AS below_us
			FROM limit_rollups
			WHERE sensor_id %[1]s
			  AND bucket_start >= ($3::date::timestamp AT TIME ZONE $1)
			  AND bucket_start < (($4::date + 1)::timestamp AT TIME ZONE $1)
			GROUP BY 1, 2) l ON l.sensor_id = d.sensor_id AND l.day = d.day`
)

var (
	dailyGroupedOfSensor = fmt.Sprintf(dailyGrouped, `= $2::uuid`) + `
		ORDER BY d.day DESC LIMIT $5`
	// An array, not IN (subquery): the planner then range-scans each
	// sensor's rows instead of hash-joining a scan of the whole table.
	dailyGroupedOfClient = fmt.Sprintf(dailyGrouped, `= ANY (ARRAY(SELECT id FROM sensors WHERE client_id = $2::uuid))`) + `
		WHERE $5::date IS NULL OR d.day < $5::date OR (d.day = $5::date AND d.sensor_id > $6::uuid)
		ORDER BY d.day DESC, d.sensor_id LIMIT $7`
)

// mktOfDaysSQL is the MKT of each sensor's local day ($1, $2, in zone $4)
// from its readings, under the ΔH whose ΔH/R in kelvin is $3: the rollups
// keep the terms of the default ΔH only. The temperature is clamped as
// mkt_term clamps it, the exponent to what float8 holds.
const mktOfDaysSQL = `
SELECT d.sensor_id::text, d.day::text,
	$3::float8 / ($3::float8 / 273.15 - ln(avg(exp(least(greatest($3::float8 / 273.15 - $3::float8 / greatest(r.value + 273.15, 20), -700), 700))))) - 273.15
FROM unnest($1::uuid[], $2::date[]) AS d(sensor_id, day)
JOIN readings r ON r.sensor_id = d.sensor_id
	AND r.measured_at >= (d.day::timestamp AT TIME ZONE $4) AND r.measured_at < ((d.day + 1)::timestamp AT TIME ZONE $4)
GROUP BY 1, 2`

// gasConstant is R in J/(mol·K), as mkt_dh_over_r has it (migration 007).
const gasConstant = 8.3144598

// DailyAverages returns up to f.Limit+1 local days (newest first; for a
// client, sensors in id order within a day) of f.SensorID or of every sensor
// of f.ClientID. Days in the client's own zone, and in up to
// max_rollup_zones() other zones it has been asked in, are kept in
// reading_rollups_daily; other zones are grouped from reading_rollups. The
// MKT under another ΔH than the default is computed from the page's
// readings, by a statement of its own: a batch written between the two can
// be in a day's MKT and not yet in its count.
func (s *ReadingStore) DailyAverages(ctx context.Context, f tempwatch.DailyAverageFilter) ([]tempwatch.DailyAverage, error) {
	out, err := s.dailyAverages(ctx, f)
	if err != nil || f.MKTDeltaH == 0 || len(out) == 0 {
		return out, err
	}
	sensors, days := make([]string, len(out)), make([]string, len(out))
	at := make(map[[2]string]*tempwatch.DailyAverage, len(out))
	for i := range out {
		d := &out[i]
		sensors[i], days[i], d.MKT = d.SensorID, d.Day, nil
		at[[2]string{d.SensorID, d.Day}] = d
	}
	rows, _ := s.db.Query(ctx, mktOfDaysSQL, sensors, days, f.MKTDeltaH*1000/gasConstant, f.Timezone)
	var sensor, day string
	var mkt float64
	_, err = pgx.ForEachRow(rows, []any{&sensor, &day, &mkt}, func() error {
		if d := at[[2]string{sensor, day}]; d != nil {
			d.MKT = new(mkt)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("daily averages: mkt: %w", err)
	}
	return out, nil
}

func (s *ReadingStore) dailyAverages(ctx context.Context, f tempwatch.DailyAverageFilter) ([]tempwatch.DailyAverage, error) {
	from, to := f.From, f.To
	var beforeDay, beforeSensor any // NULL: the first page
	if !f.BeforeDay.IsZero() {
		if f.SensorID != "" || f.BeforeSensor == "" {
			to = f.BeforeDay.AddDate(0, 0, -1)
		} else {
			to = minTime(to, f.BeforeDay)
			beforeDay, beforeSensor = f.BeforeDay.Format(time.DateOnly), f.BeforeSensor
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
	q, id := dailyKeptOfSensor, f.SensorID
	switch {
	case kept && f.SensorID == "":
		q, id = dailyKeptOfClient, f.ClientID
	case !kept && f.SensorID != "":
		q = dailyGroupedOfSensor
	case !kept:
		q, id = dailyGroupedOfClient, f.ClientID
	}
	args := []any{f.Timezone, id, from.Format(time.DateOnly), to.Format(time.DateOnly)}
	if f.SensorID == "" {
		args = append(args, beforeDay, beforeSensor)
	}
	args = append(args, f.Limit+1)
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
	const fromArg = 3 // $3, after the exec mode
	for {
		start := to.AddDate(0, 0, 1-window)
		if !start.After(from) {
			args[fromArg] = from.Format(time.DateOnly)
			return s.collectDays(ctx, q, args)
		}
		args[fromArg] = start.Format(time.DateOnly)
		out, err := s.collectDays(ctx, q, args)
		if err != nil || len(out) > f.Limit {
			return out, err
		}
		window *= 2
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// collectDays runs a daily-averages query.
func (s *ReadingStore) collectDays(ctx context.Context, q string, args []any) ([]tempwatch.DailyAverage, error) {
	rows, _ := s.db.Query(ctx, q, args...)
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (tempwatch.DailyAverage, error) {
		var d tempwatch.DailyAverage
		err := row.Scan(&d.SensorID, &d.Day, &d.Avg, &d.Min, &d.Max, &d.Count, &d.FirstAt, &d.LastAt, &d.MKT, &d.MinutesAbove, &d.MinutesBelow)
		return d, err
	})
	if err != nil {
		return nil, translateZone(err)
	}
	return out, nil
}

// keepZone reports whether the daily rollups of f's client are kept in
// f.Timezone, registering the zone (and building its days) on first use
// unless the client has the most extra zones allowed (the baseline migration).
func (s *ReadingStore) keepZone(ctx context.Context, f tempwatch.DailyAverageFilter) (bool, error) {
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
