package app_test

import (
	"context"
	"testing"
	"time"

	"github.com/tempwatch/tempwatch/shared/apitest"
	"github.com/tempwatch/tempwatch/shared/auth"
	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/postgres/pgtest"
	"github.com/tempwatch/tempwatch/shared/redis"
	"github.com/tempwatch/tempwatch/shared/redis/redistest"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// BenchmarkTokenCheck is what every authenticated request pays for its
// token, against the token's signature and claims check alone (the
// reference, timed in the same iterations; each case reports x-ref, its
// time over the reference's, and both times): the cutoff alone found in
// memory, and as deployed (the user's cutoff and the session's state, one
// Redis round trip for those memory lacks) with both found in memory (most
// requests), in Redis (the first request of a session on an instance, and
// once a second after), and in PostgreSQL (Redis down).
//
//	go test -run '^$' -bench TokenCheck ./shared/app/
func BenchmarkTokenCheck(b *testing.B) {
	ctx := context.Background()
	db := pgtest.MustDB(b)
	rc := redistest.MustAdapter(b)
	dead, err := redis.Open(redistest.DeadURL(b), redis.Options{Prefix: "dead:"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = dead.Close() })
	users := postgres.NewUserStore(db)
	u := &tempwatch.User{Email: "bench@example.com", Role: tempwatch.RoleViewer,
		ClientID: pgtest.MustClient(b, db, "acme", ""), PasswordHash: "$argon2id$v=19$m=1,t=1,p=1$c2FsdA$a2V5"}
	if err := users.CreateUser(ctx, u); err != nil {
		b.Fatal(err)
	}
	cfg := apitest.MustJWT(b)
	tok, err := auth.NewIssuer(cfg).Issue(u.Principal(), pgtest.MustSession(b, db, u.ID))
	if err != nil {
		b.Fatal(err)
	}
	sessions := postgres.NewSessionStates(db)
	// As app.Env.HTTP builds it: cutoff and session state in one round trip.
	deployedV := func(rc *redis.Client) *auth.Verifier {
		return auth.NewVerifier(cfg).WithChecker(redis.NewTokenChecks(redis.NewTokenCutoffs(rc, users), redis.NewSessionStates(rc, sessions)))
	}
	deployed := deployedV(rc)

	refV := auth.NewVerifier(cfg)
	// check times each case interleaved with the reference, one of each per
	// iteration, so both see the same load on a shared machine.
	check := func(name string, v func() *auth.Verifier) {
		b.Run(name, func(b *testing.B) {
			var refTime, caseTime time.Duration
			for b.Loop() {
				t0 := time.Now()
				if _, err := refV.Authenticate(ctx, tok.Token); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				if _, err := v().Authenticate(ctx, tok.Token); err != nil {
					b.Fatal(err)
				}
				refTime, caseTime = refTime+t1.Sub(t0), caseTime+time.Since(t1)
			}
			b.ReportMetric(float64(caseTime.Nanoseconds())/float64(b.N), "case-ns/op")
			b.ReportMetric(float64(refTime.Nanoseconds())/float64(b.N), "ref-ns/op")
			b.ReportMetric(float64(caseTime)/float64(refTime), "x-ref")
		})
	}
	memoryOnly := auth.NewVerifier(cfg).WithCutoffs(redis.NewTokenCutoffs(rc, users))
	check("cutoff in memory, no session state", func() *auth.Verifier { return memoryOnly })
	check("deployed: both in memory", func() *auth.Verifier { return deployed })
	// New TokenCutoffs have nothing in memory: every check reads Redis.
	check("deployed: both from Redis", func() *auth.Verifier { return deployedV(rc) })
	// Redis down (a refused dial, or skipped in the backoff): every check
	// reads both from PostgreSQL.
	check("Redis down: both from PostgreSQL", func() *auth.Verifier { return deployedV(dead) })
}
