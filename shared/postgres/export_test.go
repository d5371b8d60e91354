package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// WithoutAlarmEvaluation returns a copy of s that writes batches as before
// alarms existed, for the benchmark's same-run reference.
func WithoutAlarmEvaluation(s *ReadingStore) *ReadingStore {
	c := *s
	c.withoutAlarms = true
	return &c
}

// ReevaluateRule re-evaluates the sensor's alarms after a change of its
// rule, as a sensor update does.
func ReevaluateRule(ctx context.Context, db *pgxpool.Pool, sensorID string) error {
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error { return reevaluateSensor(ctx, tx, sensorID, true) })
}
