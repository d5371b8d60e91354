package app_test

import (
	"context"
	"testing"

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
// reference, measured first in the same run; each case reports x-ref, its
// time over the reference's): before the cutoffs (the revocation list in
// Redis), and with them as deployed, the cutoff found in memory (most
// requests), in Redis (the first request of a user on an instance, and once
// a second after), and in PostgreSQL (Redis down).
//
//	go test -run '^$' -bench TokenCheck -count 3 ./shared/app/
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
	tok, err := auth.NewIssuer(cfg).Issue(u.Principal(), auth.NewID())
	if err != nil {
		b.Fatal(err)
	}
	log := apitest.Discard()
	const reference = "reference: signature and claims"
	revocations := redis.NewRevocations(rc)
	deployed := auth.NewVerifier(cfg).WithCutoffs(redis.NewTokenCutoffs(rc, users)).WithRevocations(revocations)

	var ref float64 // ns per check of this run's reference
	check := func(name string, v func() *auth.Verifier) {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := v().Authenticate(ctx, tok.Token, log); err != nil {
					b.Fatal(err)
				}
			}
			ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			if name == reference {
				ref = ns
			}
			b.ReportMetric(ns/ref, "x-ref")
		})
	}
	check(reference, func() *auth.Verifier { return auth.NewVerifier(cfg) })
	plain := auth.NewVerifier(cfg).WithRevocations(revocations)
	check("before: revocation list", func() *auth.Verifier { return plain })
	check("deployed: cutoff in memory", func() *auth.Verifier { return deployed })
	// A new TokenCutoffs has nothing in memory: every check reads Redis.
	check("deployed: cutoff from Redis", func() *auth.Verifier {
		return auth.NewVerifier(cfg).WithCutoffs(redis.NewTokenCutoffs(rc, users)).WithRevocations(revocations)
	})
	// Redis down: every check reads PostgreSQL (the revocation list, which
	// degrades open, is left out: it dials the dead Redis at each check).
	check("Redis down: cutoff from PostgreSQL", func() *auth.Verifier {
		return auth.NewVerifier(cfg).WithCutoffs(redis.NewTokenCutoffs(dead, users))
	})
}
