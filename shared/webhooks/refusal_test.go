package webhooks_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/postgres/pgtest"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
	"github.com/tempwatch/tempwatch/shared/webhooks"
)

// TestRefusalDoesNotRevealResolvedAddress (review h-revb): CheckURL lets
// any DNS name through (only the dial checks what it resolves to), and the
// refusal's text, which client admins read in GET /webhooks/{id}/deliveries
// (attempt_log[].error, last_error), names the address the name resolved
// to. So a client admin can point a webhook at internal names (private
// hosted zones, *.internal, service discovery) and read back their private
// addresses: an internal-DNS oracle. Shown with a name that resolves to
// loopback everywhere (localhost, stored past the API as a DNS change would
// leave any name).
func TestRefusalDoesNotRevealResolvedAddress(t *testing.T) {
	fx := newFixture(t)
	fx.webhook(t, "http://localhost:8080/")
	event := pgtest.MustAlarmEvent(t, fx.db, fx.env.ClientA, fx.sensor, tempwatch.EventAlarmOpened)
	w := fx.worker(t, webhooks.NewGuard(), nil, nil, 0)
	assert.Equal(t, 1, runOnce(t, w))
	var msg string
	require.NoError(t, fx.db.QueryRow(context.Background(), `SELECT last_error FROM webhook_deliveries WHERE event_id = $1`,
		event).Scan(&msg))
	assert.Contains(t, msg, "refused")
	assert.NotContains(t, msg, "127.0.0.1", "the client-visible error names the internal address the name resolved to")
	assert.NotContains(t, msg, "::1", "the client-visible error names the internal address the name resolved to")
}
