package mongo_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/mongo"
	"github.com/tempwatch/tempwatch/shared/mongo/mongotest"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// BenchmarkDeadLetters measures a first page of dead letters (a client's,
// and an admin's of all clients) and a sweep that finds nothing expired,
// against finding one dead letter by id in the same collection: on
// FerretDB, which pushes neither the filter nor the sort down, the list
// grows with the collection; on MongoDB the indexes serve it.
func BenchmarkDeadLetters(b *testing.B) {
	for _, size := range []struct{ n, raw int }{{1000, 1 << 10}, {10000, 1 << 10}, {1000, 64 << 10}} {
		b.Run(fmt.Sprintf("docs=%d/raw=%d", size.n, size.raw), func(b *testing.B) {
			ctx := context.Background()
			s := mongo.NewPayloadStore(mongotest.MustDatabase(b))
			require.NoError(b, s.EnsureIndexes(ctx))
			now := time.Now()
			clients := []string{clientA, clientB, ""}
			for start := 0; start < size.n; start += 500 {
				ds := make([]tempwatch.DeadLetter, 0, 500)
				for i := start; i < min(start+500, size.n); i++ {
					ds = append(ds, tempwatch.DeadLetter{MessageID: fmt.Sprint(i), ClientID: clients[i%3], Reason: "payload is not JSON",
						Topic: "t", Source: "mqtt", ReceivedAt: now.Add(-time.Duration(i) * time.Second), Raw: make([]byte, size.raw)})
				}
				require.NoError(b, s.InsertDeadLetters(ctx, ds))
			}
			page := tempwatch.PageRequest{Limit: 50}
			first, err := s.FindDeadLetters(ctx, tempwatch.DeadLetterFilter{AllClients: true, Page: page})
			require.NoError(b, err)
			id := first[0].ID
			run := func(name string, op func() error) time.Duration {
				var per time.Duration
				b.Run(name, func(b *testing.B) {
					for b.Loop() {
						require.NoError(b, op())
					}
					per = b.Elapsed() / time.Duration(b.N)
				})
				return per
			}
			ref := run("by-id", func() error { _, err := s.FindDeadLetterByID(ctx, id); return err })
			client := run("client-page", func() error {
				_, err := s.FindDeadLetters(ctx, tempwatch.DeadLetterFilter{ClientID: clientA, Since: now.Add(-tempwatch.DefaultDeadLetterTTL), Page: page})
				return err
			})
			all := run("admin-page", func() error {
				_, err := s.FindDeadLetters(ctx, tempwatch.DeadLetterFilter{AllClients: true, Since: now.Add(-tempwatch.DefaultDeadLetterTTL), Page: page})
				return err
			})
			sweep := run("sweep-none-expired", func() error {
				_, err := s.SweepDeadLetters(ctx, now.Add(-tempwatch.DefaultDeadLetterTTL), 1000)
				return err
			})
			if ref > 0 {
				b.Logf("docs=%d raw=%d: by id %s; client page %s (%.1fx); admin page %s (%.1fx); empty sweep %s (%.1fx)",
					size.n, size.raw, ref, client, float64(client)/float64(ref), all, float64(all)/float64(ref), sweep, float64(sweep)/float64(ref))
			}
		})
	}
}
