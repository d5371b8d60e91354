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

// cutoffGone is a deleted user's (or ended session's) cutoff as Redis keeps it.
const cutoffGone = "gone"

var _ tempwatch.TokenCutoffs = (*TokenCutoffs)(nil)

// TokenCutoffs keeps the token cutoffs of another TokenCutoffs
// (PostgreSQL), the users' (NewTokenCutoffs) or the sessions' states
// (NewSessionStates), in process memory for CutoffLocalTTL and in Redis for
// CutoffTTL, since every authenticated request asks for one. Unlike the
// caches it stands in front of a security check, so it never answers
// without the record behind it: with Redis down it asks the next store, and
// that store's error (PostgreSQL down too) reaches the caller, who refuses
// the token.
//
// Cutoffs only move forward (a deleted user's, or an ended session's, is
// later than any), and every
// write keeps the later of the stored and the written value, in Redis (one
// script) and in memory: a lookup that read PostgreSQL before a change
// cannot put the old cutoff back after the change's write.
type TokenCutoffs struct {
	c    *Client
	ns   namespace
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

// namespace is what tells one kind of cutoff from another in Redis: its
// key and the names of its operations.
type namespace struct {
	what           string // what a "gone" cutoff's ENOTFOUND names
	key            func(c *Client, id string) string
	get, fill, set op
}

var (
	userCutoffs   = namespace{what: "User", key: (*Client).cutoffKey, get: opCutoffGet, fill: opCutoffFill, set: opCutoffSet}
	sessionStates = namespace{what: "Session", key: (*Client).sessionKey, get: opSessionGet, fill: opSessionFill, set: opSessionSet}
)

// NewTokenCutoffs returns next, the users' cutoffs, behind process memory
// and Redis on c.
func NewTokenCutoffs(c *Client, next tempwatch.TokenCutoffs) *TokenCutoffs {
	return newTokenCutoffs(c, userCutoffs, next)
}

// NewSessionStates returns next, the sessions' states (postgres.SessionStates),
// behind process memory and Redis on c, kept as the users' cutoffs are: a
// live session's cutoff is the epoch, an ended one's is "gone" (ENOTFOUND),
// so an end, written through by PublishGone, is never undone by a fill that
// read the session live before it. Ending a session is the one way its
// tokens stop before they expire without its user's cutoff moving (logout,
// refresh-token reuse).
func NewSessionStates(c *Client, next tempwatch.TokenCutoffs) *TokenCutoffs {
	return newTokenCutoffs(c, sessionStates, next)
}

func newTokenCutoffs(c *Client, ns namespace, next tempwatch.TokenCutoffs) *TokenCutoffs {
	return &TokenCutoffs{c: c, ns: ns, next: next, local: map[string]localCutoff{}}
}

func (t *TokenCutoffs) key(id string) string { return t.ns.key(t.c, id) }

// TokensValidAfter returns user id's cutoff (ENOTFOUND for a deleted user):
// from memory, else Redis, else the next store, keeping what it found.
func (t *TokenCutoffs) TokensValidAfter(ctx context.Context, id string) (time.Time, error) {
	if us, ok := t.fromMemory(id); ok {
		return t.result(us)
	}
	if us, ok := t.fromRedis(ctx, id); ok {
		return t.result(t.remember(id, us))
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
	if kept, ok := t.keep(ctx, t.ns.fill, map[string]int64{id: us}); ok {
		us = kept[id]
	}
	return t.result(t.remember(id, us))
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
	if kept, ok := t.keep(ctx, t.ns.set, us); ok {
		us = kept
	}
	for id, v := range us {
		t.remember(id, v)
	}
}

func (t *TokenCutoffs) result(us int64) (time.Time, error) {
	if us == usGone {
		return time.Time{}, tempwatch.NotFound(t.ns.what)
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
	err := t.c.do(ctx, t.ns.get, func(ctx context.Context, rdb *goredis.Client) error {
		var err error
		s, err = rdb.Get(ctx, t.key(id)).Result()
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

// TokenChecks answers both questions of a token check, its user's cutoff
// and its session's state (NewSessionStates), in one Redis round trip: each
// from memory when held, the others in one pipeline. Each that Redis does not
// hold, or cannot give, comes from its next store (PostgreSQL), as
// TokensValidAfter's does: Redis down never answers "accept".
type TokenChecks struct {
	cutoffs, sessions *TokenCutoffs
}

// NewTokenChecks returns the token checks over the users' cutoffs and the
// sessions' states, which share one Client.
func NewTokenChecks(cutoffs, sessions *TokenCutoffs) *TokenChecks {
	return &TokenChecks{cutoffs: cutoffs, sessions: sessions}
}

// CheckToken returns user userID's cutoff and session sessionID's state.
func (k *TokenChecks) CheckToken(ctx context.Context, userID, sessionID string) tempwatch.TokenStatus {
	asks := [2]tokenAsk{{t: k.cutoffs, id: userID}, {t: k.sessions, id: sessionID}}
	var toRedis []*tokenAsk
	for i := range asks {
		a := &asks[i]
		if a.us, a.found = a.t.fromMemory(a.id); !a.found {
			toRedis = append(toRedis, a)
		}
	}
	if len(toRedis) > 0 {
		// What Redis does not give comes from the next store below.
		_ = k.cutoffs.c.do(ctx, opTokenCheck, func(ctx context.Context, rdb *goredis.Client) error {
			p := rdb.Pipeline()
			gets := make([]*goredis.StringCmd, len(toRedis))
			for i, a := range toRedis {
				gets[i] = p.Get(ctx, a.t.key(a.id))
			}
			if _, err := p.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
				return err
			}
			for i, a := range toRedis {
				if us, ok := cutoffFound(gets[i].Val()); ok { // "" when missing
					a.us, a.found = a.t.remember(a.id, us), true
				}
			}
			return nil
		})
	}
	var st tempwatch.TokenStatus
	st.ValidAfter, st.CutoffErr = asks[0].result(ctx)
	_, st.SessionErr = asks[1].result(ctx)
	return st
}

// tokenAsk is one of a token check's two lookups.
type tokenAsk struct {
	t     *TokenCutoffs
	id    string
	us    int64
	found bool // us holds the answer, from memory or Redis
}

// result is the answer found, else the next store's.
func (a *tokenAsk) result(ctx context.Context) (time.Time, error) {
	if a.found {
		return a.t.result(a.us)
	}
	return a.t.fromNext(ctx, a.id)
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
			cmds[id] = keepLaterScript.EvalSha(ctx, p, []string{t.key(id)}, formatCutoff(us), CutoffTTL.Milliseconds())
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

// RefreshTokens returns next whose session ends write through that the
// session is gone (t holds the sessions' states: NewSessionStates): a
// logout's RevokeRefreshFamily and a reused token's rotation, each after
// PostgreSQL revoked the family.
func (t *TokenCutoffs) RefreshTokens(next tempwatch.RefreshTokenStore) tempwatch.RefreshTokenStore {
	return &sessionTokens{RefreshTokenStore: next, sessions: t}
}

type sessionTokens struct {
	tempwatch.RefreshTokenStore
	sessions *TokenCutoffs
}

func (s *sessionTokens) RotateRefreshToken(ctx context.Context, oldHash []byte, next *tempwatch.RefreshToken) (tempwatch.RefreshToken, error) {
	old, err := s.RefreshTokenStore.RotateRefreshToken(ctx, oldHash, next)
	if errors.Is(err, tempwatch.ErrRefreshReused) {
		s.sessions.PublishGone(ctx, old.FamilyID)
	}
	return old, err
}

func (s *sessionTokens) RevokeRefreshFamily(ctx context.Context, userID, familyID string) error {
	if err := s.RefreshTokenStore.RevokeRefreshFamily(ctx, userID, familyID); err != nil {
		return err
	}
	s.sessions.PublishGone(ctx, familyID)
	return nil
}
