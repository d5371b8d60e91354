package redis

import (
	"context"
	"errors"
	"math"
	"strconv"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// CutoffTTL is how long a user's token cutoff stays in Redis. A change
// writes the new one through at once; only a write lost to an outage leaves
// the old one, for at most this long.
const CutoffTTL = 10 * time.Second

// CutoffLocalTTL is how long a cutoff stays in a process's memory: the
// longest another instance's change takes to reach this one.
const CutoffLocalTTL = time.Second

// maxLocalCutoffs bounds the in-process copies; past it they are all dropped.
const maxLocalCutoffs = 10_000

// cutoffGone is a deleted user's cutoff as Redis keeps it.
const cutoffGone = "gone"

var _ tempwatch.TokenCutoffs = (*TokenCutoffs)(nil)

// TokenCutoffs keeps the users' token cutoffs of another TokenCutoffs
// (PostgreSQL) in process memory for CutoffLocalTTL and in Redis for
// CutoffTTL, since every authenticated request asks for one. Unlike the
// caches it stands in front of a security check, so it never answers
// without the record behind it: with Redis down it asks the next store, and
// that store's error (PostgreSQL down too) reaches the caller, who refuses
// the token.
//
// Cutoffs only move forward (a deleted user's is later than any), and every
// write keeps the later of the stored and the written value, in Redis (one
// script) and in memory: a lookup that read PostgreSQL before a change
// cannot put the old cutoff back after the change's write.
type TokenCutoffs struct {
	c    *Client
	next tempwatch.TokenCutoffs

	mu    sync.Mutex
	local map[string]localCutoff
}

// localCutoff is a cutoff in process memory, in unix µs (gone: math.MaxInt64).
type localCutoff struct {
	us    int64
	until time.Time
}

// usGone is a deleted user's cutoff in memory.
const usGone = math.MaxInt64

// NewTokenCutoffs returns next behind process memory and Redis on c.
func NewTokenCutoffs(c *Client, next tempwatch.TokenCutoffs) *TokenCutoffs {
	return &TokenCutoffs{c: c, next: next, local: map[string]localCutoff{}}
}

// TokensValidAfter returns user id's cutoff (ENOTFOUND for a deleted user):
// from memory, else Redis, else the next store, keeping what it found.
func (t *TokenCutoffs) TokensValidAfter(ctx context.Context, id string) (time.Time, error) {
	if us, ok := t.fromMemory(id); ok {
		return cutoffResult(us)
	}
	if us, ok := t.fromRedis(ctx, id); ok {
		return cutoffResult(t.remember(id, us))
	}
	return t.fromNext(ctx, id)
}

// fromNext reads user id's cutoff from the next store and keeps it.
func (t *TokenCutoffs) fromNext(ctx context.Context, id string) (time.Time, error) {
	cutoff, err := t.next.TokensValidAfter(ctx, id)
	var us int64
	switch {
	case tempwatch.ErrorCode(err) == tempwatch.ENOTFOUND:
		us = usGone
	case err != nil:
		return cutoff, err
	default:
		us = cutoff.UnixMicro()
	}
	if kept, ok := t.keep(ctx, opCutoffFill, map[string]int64{id: us}); ok {
		us = kept[id]
	}
	return cutoffResult(t.remember(id, us))
}

// Publish writes users' new cutoffs through to Redis and memory, after the
// change that set them is committed. A write Redis does not take leaves the
// old cutoff there for at most CutoffTTL (logged as degraded).
func (t *TokenCutoffs) Publish(ctx context.Context, cutoffs map[string]time.Time) {
	us := make(map[string]int64, len(cutoffs))
	for id, c := range cutoffs {
		us[id] = c.UnixMicro()
	}
	t.publish(ctx, us)
}

// PublishGone writes through that users are deleted, as Publish does.
func (t *TokenCutoffs) PublishGone(ctx context.Context, ids ...string) {
	us := make(map[string]int64, len(ids))
	for _, id := range ids {
		us[id] = usGone
	}
	t.publish(ctx, us)
}

func (t *TokenCutoffs) publish(ctx context.Context, us map[string]int64) {
	if len(us) == 0 {
		return
	}
	if kept, ok := t.keep(ctx, opCutoffSet, us); ok {
		us = kept
	}
	for id, v := range us {
		t.remember(id, v)
	}
}

func cutoffResult(us int64) (time.Time, error) {
	if us == usGone {
		return time.Time{}, tempwatch.NotFound("User")
	}
	return time.UnixMicro(us), nil
}

func (t *TokenCutoffs) fromMemory(id string) (int64, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.local[id]
	if !ok || !time.Now().Before(e.until) {
		return 0, false
	}
	return e.us, true
}

// remember keeps the later of us and what memory holds for id, and returns it.
func (t *TokenCutoffs) remember(id string, us int64) int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	if e, ok := t.local[id]; ok && e.us > us && now.Before(e.until) {
		return e.us
	}
	if len(t.local) >= maxLocalCutoffs {
		clear(t.local)
	}
	t.local[id] = localCutoff{us: us, until: now.Add(CutoffLocalTTL)}
	return us
}

func (t *TokenCutoffs) fromRedis(ctx context.Context, id string) (int64, bool) {
	var s string
	err := t.c.do(ctx, opCutoffGet, func(ctx context.Context, rdb *goredis.Client) error {
		var err error
		s, err = rdb.Get(ctx, t.c.cutoffKey(id)).Result()
		if errors.Is(err, goredis.Nil) {
			s, err = "", nil
		}
		return err
	})
	if err != nil {
		return 0, false
	}
	return cutoffFound(s)
}

// cutoffFound parses a cutoff read from Redis; "" is a missing key.
func cutoffFound(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	us, err := parseCutoff(s)
	return us, err == nil
}

var _ tempwatch.TokenChecker = (*TokenChecks)(nil)

// TokenChecks answers both questions of a token check, the user's cutoff
// (TokenCutoffs) and whether the token or its session is revoked
// (Revocations), in one Redis round trip: the revocation keys and, unless
// memory holds it, the cutoff in one pipeline. A cutoff Redis does not hold,
// or cannot give, comes from the next store, as TokensValidAfter's does; a
// failed round trip is the revocation list's error, handed to the caller.
type TokenChecks struct {
	cutoffs *TokenCutoffs
	revoked *Revocations
}

// NewTokenChecks returns the token checks over cutoffs and revoked, which
// share one Client.
func NewTokenChecks(cutoffs *TokenCutoffs, revoked *Revocations) *TokenChecks {
	return &TokenChecks{cutoffs: cutoffs, revoked: revoked}
}

// CheckToken returns user userID's cutoff and whether any of ids is revoked.
func (k *TokenChecks) CheckToken(ctx context.Context, userID string, ids ...string) tempwatch.TokenStatus {
	t := k.cutoffs
	us, inMemory := t.fromMemory(userID)
	var cutoff string
	var n int64
	err := t.c.do(ctx, opTokenCheck, func(ctx context.Context, rdb *goredis.Client) error {
		p := rdb.Pipeline()
		var get *goredis.StringCmd
		if !inMemory {
			get = p.Get(ctx, t.c.cutoffKey(userID))
		}
		exists := p.Exists(ctx, k.revoked.keys(ids)...)
		if _, err := p.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
			return err
		}
		if get != nil {
			cutoff = get.Val() // "" when missing
		}
		n = exists.Val()
		return nil
	})
	var st tempwatch.TokenStatus
	if err != nil {
		st.RevokedErr = err
	} else {
		st.Revoked = n > 0
	}
	switch {
	case inMemory:
	case err == nil:
		var ok bool
		if us, ok = cutoffFound(cutoff); ok {
			us = t.remember(userID, us)
			break
		}
		fallthrough
	default:
		st.ValidAfter, st.CutoffErr = t.fromNext(ctx, userID)
		return st
	}
	st.ValidAfter, st.CutoffErr = cutoffResult(us)
	return st
}

func parseCutoff(s string) (int64, error) {
	if s == cutoffGone {
		return usGone, nil
	}
	return strconv.ParseInt(s, 10, 64)
}

func formatCutoff(us int64) string {
	if us == usGone {
		return cutoffGone
	}
	return strconv.FormatInt(us, 10)
}

// keepLaterScript stores ARGV[1] (unix µs, or "gone") for ARGV[2] ms unless
// the key holds a later cutoff, and returns the value kept. Lua numbers are
// doubles: exact for unix µs until the year 2255.
var keepLaterScript = goredis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur == 'gone' or (cur and ARGV[1] ~= 'gone' and tonumber(cur) >= tonumber(ARGV[1])) then
  return cur
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return ARGV[1]`)

// keep writes cutoffs to Redis, each unless a later one is there, and
// returns the values Redis kept; ok is false when Redis did not answer.
func (t *TokenCutoffs) keep(ctx context.Context, o op, cutoffs map[string]int64) (map[string]int64, bool) {
	cmds := make(map[string]*goredis.Cmd, len(cutoffs))
	err := t.c.do(ctx, o, func(ctx context.Context, rdb *goredis.Client) error {
		// Load the script first, so the pipeline's EVALSHAs find it.
		if err := keepLaterScript.Load(ctx, rdb).Err(); err != nil {
			return err
		}
		p := rdb.Pipeline()
		for id, us := range cutoffs {
			cmds[id] = keepLaterScript.EvalSha(ctx, p, []string{t.c.cutoffKey(id)}, formatCutoff(us), CutoffTTL.Milliseconds())
		}
		_, err := p.Exec(ctx)
		return err
	})
	if err != nil {
		return nil, false
	}
	kept := make(map[string]int64, len(cmds))
	for id, cmd := range cmds {
		s, err := cmd.Text()
		if err != nil {
			return nil, false
		}
		if kept[id], err = parseCutoff(s); err != nil {
			return nil, false
		}
	}
	return kept, true
}

// Users returns next whose changes write the users' new cutoffs through
// (UpdateUser when it ended the user's tokens, ChangePassword, DeleteUser).
func (t *TokenCutoffs) Users(next tempwatch.UserStore) tempwatch.UserStore {
	return &cutoffUsers{UserStore: next, cutoffs: t}
}

type cutoffUsers struct {
	tempwatch.UserStore
	cutoffs *TokenCutoffs
}

func (s *cutoffUsers) UpdateUser(ctx context.Context, u *tempwatch.User) error {
	before := u.TokensValidAfter
	if err := s.UserStore.UpdateUser(ctx, u); err != nil {
		return err
	}
	if !u.TokensValidAfter.Equal(before) {
		s.cutoffs.Publish(ctx, map[string]time.Time{u.ID: u.TokensValidAfter})
	}
	return nil
}

func (s *cutoffUsers) ChangePassword(ctx context.Context, id, oldHash, newHash string) (time.Time, error) {
	cutoff, err := s.UserStore.ChangePassword(ctx, id, oldHash, newHash)
	if err == nil {
		s.cutoffs.Publish(ctx, map[string]time.Time{id: cutoff})
	}
	return cutoff, err
}

func (s *cutoffUsers) DeleteUser(ctx context.Context, id string) error {
	if err := s.UserStore.DeleteUser(ctx, id); err != nil {
		return err
	}
	s.cutoffs.PublishGone(ctx, id)
	return nil
}

// Clients returns next whose client deletions write through that the
// client's users are gone.
func (t *TokenCutoffs) Clients(next tempwatch.ClientService) tempwatch.ClientService {
	return &cutoffClients{ClientService: next, cutoffs: t}
}

type cutoffClients struct {
	tempwatch.ClientService
	cutoffs *TokenCutoffs
}

func (s *cutoffClients) DeleteClient(ctx context.Context, id string) ([]string, error) {
	users, err := s.ClientService.DeleteClient(ctx, id)
	if err == nil {
		s.cutoffs.PublishGone(ctx, users...)
	}
	return users, err
}
