package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

var _ tempwatch.DeviceStore = (*DeviceStore)(nil)

// DeviceStore looks devices (sensors as ingest and the brokers know them)
// up by topic name and by key.
type DeviceStore struct{ db *pgxpool.Pool }

// NewDeviceStore returns a DeviceStore over db.
func NewDeviceStore(db *pgxpool.Pool) *DeviceStore { return &DeviceStore{db: db} }

const deviceColumns = `s.id, s.client_id, c.slug, s.device_id, s.unit, s.min_value, s.max_value`

func scanDevice(row pgx.Row) (tempwatch.Device, error) {
	var d tempwatch.Device
	err := row.Scan(&d.SensorID, &d.ClientID, &d.ClientSlug, &d.DeviceID, &d.Unit, &d.MinValue, &d.MaxValue)
	return d, err
}

// DevicesByRef looks up all refs in one query.
func (s *DeviceStore) DevicesByRef(ctx context.Context, refs []tempwatch.DeviceRef) (map[tempwatch.DeviceRef]tempwatch.Device, error) {
	out := make(map[tempwatch.DeviceRef]tempwatch.Device, len(refs))
	if len(refs) == 0 {
		return out, nil
	}
	slugs := make([]string, len(refs))
	ids := make([]string, len(refs))
	for i, r := range refs {
		slugs[i], ids[i] = r.ClientSlug, r.DeviceID
	}
	rows, err := s.db.Query(ctx, `SELECT `+deviceColumns+`
		FROM unnest($1::text[], $2::text[]) AS want(slug, device_id)
		JOIN clients c ON c.slug = want.slug
		JOIN sensors s ON s.client_id = c.id AND s.device_id = want.device_id`, slugs, ids)
	if err != nil {
		return nil, fmt.Errorf("look up devices: %w", err)
	}
	devices, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (tempwatch.Device, error) { return scanDevice(r) })
	if err != nil {
		return nil, fmt.Errorf("look up devices: %w", err)
	}
	for _, d := range devices {
		out[d.Ref()] = d
	}
	return out, nil
}

// ClientIDsBySlug looks up all slugs in one query.
func (s *DeviceStore) ClientIDsBySlug(ctx context.Context, slugs []string) (map[string]string, error) {
	out := make(map[string]string, len(slugs))
	if len(slugs) == 0 {
		return out, nil
	}
	rows, _ := s.db.Query(ctx, `SELECT slug, id FROM clients WHERE slug = ANY($1::text[])`, slugs)
	var slug, id string
	if _, err := pgx.ForEachRow(rows, []any{&slug, &id}, func() error {
		out[slug] = id
		return nil
	}); err != nil {
		return nil, fmt.Errorf("look up clients by slug: %w", err)
	}
	return out, nil
}

// DeviceByKeyHash returns the sensor whose device key hashes to hash.
func (s *DeviceStore) DeviceByKeyHash(ctx context.Context, hash []byte) (tempwatch.Device, error) {
	d, err := scanDevice(s.db.QueryRow(ctx, `SELECT `+deviceColumns+`
		FROM sensors s JOIN clients c ON c.id = s.client_id
		WHERE s.device_key_hash = $1`, hash))
	return d, translate(err, "Device")
}
