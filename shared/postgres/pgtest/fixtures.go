package pgtest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// MustClient inserts a client with slug (and timezone, "" for UTC) and returns its id.
func MustClient(tb testing.TB, db *pgxpool.Pool, slug, timezone string) string {
	tb.Helper()
	if timezone == "" {
		timezone = "UTC"
	}
	var id string
	if err := db.QueryRow(context.Background(),
		`INSERT INTO clients (name, slug, timezone) VALUES ($1, $1, $2) RETURNING id`, slug, timezone).Scan(&id); err != nil {
		tb.Fatalf("pgtest.MustClient(%q): %v", slug, err)
	}
	return id
}

// MustSensor inserts a sensor of clientID with deviceID, whose device key is
// deviceKey (stored as tempwatch.HashDeviceKey, as the sensors API does), and returns its id.
func MustSensor(tb testing.TB, db *pgxpool.Pool, clientID, deviceID, deviceKey string) string {
	tb.Helper()
	var id string
	if err := db.QueryRow(context.Background(),
		`INSERT INTO sensors (client_id, device_id, name, device_key_hash) VALUES ($1, $2, $2, $3) RETURNING id`,
		clientID, deviceID, tempwatch.HashDeviceKey(deviceKey)).Scan(&id); err != nil {
		tb.Fatalf("pgtest.MustSensor(%q): %v", deviceID, err)
	}
	return id
}

// MustSession opens a session of user userID as a login does (a refresh
// token of a new family, live for a day) and returns its id, for an access
// token that a check of the session's state accepts.
func MustSession(tb testing.TB, db *pgxpool.Pool, userID string) string {
	tb.Helper()
	_, hash := tempwatch.NewRefreshSecret()
	var id string
	if err := db.QueryRow(context.Background(), `INSERT INTO refresh_tokens (family_id, user_id, token_hash, expires_at)
		VALUES (gen_random_uuid(), $1, $2, now() + interval '1 day') RETURNING family_id`, userID, hash).Scan(&id); err != nil {
		tb.Fatalf("pgtest.MustSession(%q): %v", userID, err)
	}
	return id
}
