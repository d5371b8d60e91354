package users_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/tempwatch/tempwatch/shared/app"
	"github.com/tempwatch/tempwatch/shared/tempwatch"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/apitest"
	"github.com/tempwatch/tempwatch/shared/auth"
	"github.com/tempwatch/tempwatch/shared/postgres"
	"github.com/tempwatch/tempwatch/shared/postgres/pgtest"
	"github.com/tempwatch/tempwatch/shared/users"
)

const password = "correct horse battery"

type fixture struct {
	h      http.Handler
	db     *pgxpool.Pool
	cfg    auth.JWTConfig
	store  *postgres.UserStore
	a, b   string // client ids
	tokens map[string]string
	ids    map[string]string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db := pgtest.MustDB(t)
	cfg := apitest.MustJWT(t)
	f := &fixture{
		db:     db,
		cfg:    cfg,
		store:  postgres.NewUserStore(db),
		a:      pgtest.MustClient(t, db, "client-a", ""),
		b:      pgtest.MustClient(t, db, "client-b", ""),
		tokens: map[string]string{},
		ids:    map[string]string{},
	}
	f.h = app.Middleware(apitest.Discard(), auth.NewVerifier(cfg), users.NewHandler(f.store, apitest.Discard()))
	hash, err := auth.HashPassword(password)
	require.NoError(t, err)
	for _, u := range []struct{ name, role, client string }{
		{"admin", tempwatch.RoleAdmin, ""},
		{"caA", tempwatch.RoleClientAdmin, f.a},
		{"caA2", tempwatch.RoleClientAdmin, f.a},
		{"viewerA", tempwatch.RoleViewer, f.a},
		{"targetA", tempwatch.RoleViewer, f.a},
		{"caB", tempwatch.RoleClientAdmin, f.b},
		{"viewerB", tempwatch.RoleViewer, f.b},
	} {
		usr := &tempwatch.User{Email: u.name + "@example.com", Role: u.role, ClientID: u.client, PasswordHash: hash}
		require.NoError(t, f.store.CreateUser(context.Background(), usr))
		f.tokens[u.name], f.ids[u.name] = apitest.MustToken(t, cfg, usr.Principal()), usr.ID
	}
	return f
}

type result struct {
	status int
	body   map[string]any
	raw    string
}

// do serves method path as fixture user as ("" for no token).
func (f *fixture) do(t *testing.T, as, method, path, body string) result {
	t.Helper()
	resp := apitest.DoToken(t, f.h, f.tokens[as], method, path, body)
	return result{status: resp.Status, body: resp.JSON(t), raw: string(resp.Body)}
}

// expand replaces {name} with the id of fixture user name, {A}/{B} with the client ids.
func (f *fixture) expand(s string) string {
	for k, v := range f.ids {
		s = strings.ReplaceAll(s, "{"+k+"}", v)
	}
	return strings.NewReplacer("{A}", f.a, "{B}", f.b).Replace(s)
}

func TestUserRoleAndTenantRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, as, method, path, body string
		want                         int
	}{
		{"no token", "", "GET", "/users/{targetA}", "", 401},
		{"admin reads a client user", "admin", "GET", "/users/{targetA}", "", 200},
		{"client admin reads own client user", "caA", "GET", "/users/{targetA}", "", 200},
		{"viewer reads own client user", "viewerA", "GET", "/users/{targetA}", "", 200},
		{"other client admin reads: 404", "caB", "GET", "/users/{targetA}", "", 404},
		{"other client viewer reads: 404", "viewerB", "GET", "/users/{targetA}", "", 404},
		{"client admin reads an admin: 404", "caA", "GET", "/users/{admin}", "", 404},
		{"unknown id", "admin", "GET", "/users/00000000-0000-4000-8000-000000000000", "", 404},
		{"malformed id", "admin", "GET", "/users/nope", "", 404},

		{"admin renames", "admin", "PATCH", "/users/{targetA}", `{"name":"T"}`, 200},
		{"client admin renames own client user", "caA", "PATCH", "/users/{targetA}", `{"name":"T"}`, 200},
		{"client admin promotes to client_admin", "caA", "PATCH", "/users/{targetA}", `{"role":"client_admin"}`, 200},
		{"viewer changes another user: 403", "viewerA", "PATCH", "/users/{targetA}", `{"name":"T"}`, 403},
		{"other client admin changes: 404", "caB", "PATCH", "/users/{targetA}", `{"name":"T"}`, 404},
		{"client admin escalates to admin: 403", "caA", "PATCH", "/users/{targetA}", `{"role":"admin"}`, 403},
		{"client admin escalates self: 403", "caA", "PATCH", "/users/{caA}", `{"role":"admin"}`, 403},
		{"client admin moves user to other client: 404", "caA", "PATCH", "/users/{targetA}", `{"client_id":"{B}"}`, 404},
		{"client admin keeps own client: ok", "caA", "PATCH", "/users/{targetA}", `{"client_id":"{A}"}`, 200},
		{"password_hash field: 400", "caA", "PATCH", "/users/{targetA}", `{"password_hash":"$argon2id$x"}`, 400},
		{"id field: 400", "admin", "PATCH", "/users/{targetA}", `{"id":"{caB}"}`, 400},
		{"viewer changes own password: 400", "viewerA", "PATCH", "/users/{viewerA}", `{"password":"another long password"}`, 400},
		{"admin changes own password: 400", "admin", "PATCH", "/users/{admin}", `{"name":"A","password":"another long password"}`, 400},
		{"viewer changes own name", "viewerA", "PATCH", "/users/{viewerA}", `{"name":"V"}`, 200},
		{"viewer changes own role: 403", "viewerA", "PATCH", "/users/{viewerA}", `{"role":"client_admin"}`, 403},
		{"viewer changes own email: 403", "viewerA", "PATCH", "/users/{viewerA}", `{"email":"v@example.com"}`, 403},
		{"short password: 400", "admin", "PATCH", "/users/{targetA}", `{"password":"short"}`, 400},
		{"common password: 400", "admin", "PATCH", "/users/{targetA}", `{"password":"1QAZ2WSX3EDC"}`, 400},
		{"trivial password: 400", "admin", "PATCH", "/users/{targetA}", `{"password":"123456789012"}`, 400},
		{"reset to the user's own email: 400", "admin", "PATCH", "/users/{targetA}", `{"password":"targetA@example.com!"}`, 400},
		{"create with the new user's email as password: 400", "admin", "POST", "/users", `{"email":"n10@example.com","role":"admin","password":"my n10@example.com"}`, 400},
		{"admin moves a user", "admin", "PATCH", "/users/{targetA}", `{"client_id":"{B}"}`, 200},
		{"admin demotes admin without client: 400", "admin", "PATCH", "/users/{admin}", `{"role":"viewer"}`, 400},

		{"viewer creates: 403", "viewerA", "POST", "/users", `{"email":"n@example.com","password":"a long password!"}`, 403},
		{"client admin creates viewer", "caA", "POST", "/users", `{"email":"n1@example.com","role":"viewer","password":"a long password!"}`, 201},
		{"client admin creates client admin", "caA", "POST", "/users", `{"email":"n2@example.com","role":"client_admin","password":"a long password!"}`, 201},
		{"client admin creates admin: 403", "caA", "POST", "/users", `{"email":"n3@example.com","role":"admin","password":"a long password!"}`, 403},
		{"client admin creates in other client: 404", "caA", "POST", "/users", `{"email":"n4@example.com","client_id":"{B}","password":"a long password!"}`, 404},
		{"create with password_hash: 400", "caA", "POST", "/users", `{"email":"n5@example.com","password_hash":"x","password":"a long password!"}`, 400},
		{"admin creates viewer without client: 400", "admin", "POST", "/users", `{"email":"n6@example.com","role":"viewer","password":"a long password!"}`, 400},
		{"admin creates admin", "admin", "POST", "/users", `{"email":"n7@example.com","role":"admin","password":"a long password!"}`, 201},
		{"admin creates admin with client: 400", "admin", "POST", "/users", `{"email":"n8@example.com","role":"admin","client_id":"{A}","password":"a long password!"}`, 400},
		{"duplicate email any case: 409", "admin", "POST", "/users", `{"email":"TARGETA@example.com","role":"viewer","client_id":"{A}","password":"a long password!"}`, 409},
		{"another client's email, by its client admin: 201 (no oracle)", "caB", "POST", "/users", `{"email":"TargetA@example.com","role":"viewer","password":"a long password!"}`, 201},
		{"a client user's email for an admin: 201", "admin", "POST", "/users", `{"email":"targeta@example.com","role":"admin","password":"a long password!"}`, 201},
		{"bad email: 400", "admin", "POST", "/users", `{"email":"nope","role":"admin","password":"a long password!"}`, 400},

		{"viewer deletes: 403", "viewerA", "DELETE", "/users/{targetA}", "", 403},
		{"other client admin deletes: 404", "caB", "DELETE", "/users/{targetA}", "", 404},
		{"client admin deletes an admin: 404", "caA", "DELETE", "/users/{admin}", "", 404},
		{"delete self: 403", "caA", "DELETE", "/users/{caA}", "", 403},
		{"client admin deletes own client user", "caA", "DELETE", "/users/{targetA}", "", 204},
		{"admin deletes", "admin", "DELETE", "/users/{viewerB}", "", 204},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t) // each case on fresh data: cases change it
			res := f.do(t, tt.as, tt.method, f.expand(tt.path), f.expand(tt.body))
			assert.Equal(t, tt.want, res.status, "%s %s as %s: %s", tt.method, tt.path, tt.as, res.raw)
			assert.NotContains(t, res.raw, "argon2id", "password hashes never leave")
		})
	}
}

func TestUserCreateFieldsAndNoMassAssignment(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	res := f.do(t, "caA", "POST", "/users", `{"email":"new@example.com","name":"New","password":"a long password!"}`)
	require.Equal(t, 201, res.status, res.raw)
	assert.Equal(t, f.a, res.body["client_id"], "client forced to the creator's")
	assert.Equal(t, "viewer", res.body["role"], "default role")
	assert.NotContains(t, res.raw, "password")

	res = f.do(t, "admin", "POST", "/users", `{"email":"x@example.com","role":"viewer","client_id":"{A}","password":"short"}`)
	require.Equal(t, 400, res.status)
	assert.Contains(t, res.body["errors"], "password")

	// A refused escalation leaves the stored user unchanged.
	res = f.do(t, "caA", "PATCH", f.expand("/users/{targetA}"), `{"name":"changed","role":"admin"}`)
	require.Equal(t, 403, res.status)
	u, err := f.store.FindUserByID(context.Background(), f.ids["targetA"])
	require.NoError(t, err)
	assert.Equal(t, tempwatch.RoleViewer, u.Role)
	assert.Equal(t, "", u.Name)
	assert.Equal(t, f.a, u.ClientID)

	// A password change takes effect and is stored hashed.
	res = f.do(t, "admin", "PATCH", f.expand("/users/{targetA}"), `{"password":"brand new password"}`)
	require.Equal(t, 200, res.status, res.raw)
	u, err = f.store.FindUserByID(context.Background(), f.ids["targetA"])
	require.NoError(t, err)
	assert.NoError(t, auth.CheckPassword(u.PasswordHash, "brand new password"))

	// One's own password changes only through POST /auth/password, which
	// asks for the current one: the 400 names the field and the way.
	res = f.do(t, "viewerA", "PATCH", f.expand("/users/{viewerA}"), `{"password":"brand new password"}`)
	require.Equal(t, 400, res.status, res.raw)
	assert.Contains(t, res.body["errors"].(map[string]any)["password"], "POST /auth/password")
	u, err = f.store.FindUserByID(context.Background(), f.ids["viewerA"])
	require.NoError(t, err)
	assert.NoError(t, auth.CheckPassword(u.PasswordHash, password), "the password is unchanged")

	// Promoting to admin drops the client.
	res = f.do(t, "admin", "PATCH", f.expand("/users/{targetA}"), `{"role":"admin"}`)
	require.Equal(t, 200, res.status, res.raw)
	assert.Nil(t, res.body["client_id"])
}

func TestUserListScopeFiltersAndPaging(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ids := func(res result) []string {
		var out []string
		for _, it := range res.body["items"].([]any) {
			out = append(out, it.(map[string]any)["id"].(string))
		}
		return out
	}
	res := f.do(t, "caB", "GET", "/users", "")
	require.Equal(t, 200, res.status, res.raw)
	assert.ElementsMatch(t, []string{f.ids["caB"], f.ids["viewerB"]}, ids(res))

	res = f.do(t, "viewerA", "GET", "/users?client_id="+f.b, "")
	require.Equal(t, 200, res.status)
	assert.Empty(t, ids(res), "another client's users are never listed")

	res = f.do(t, "admin", "GET", "/users?client_id="+f.a+"&role=client_admin", "")
	require.Equal(t, 200, res.status)
	assert.ElementsMatch(t, []string{f.ids["caA"], f.ids["caA2"]}, ids(res))

	res = f.do(t, "admin", "GET", "/users?role=root", "")
	assert.Equal(t, 400, res.status)
	res = f.do(t, "admin", "GET", "/users?limit=501", "")
	assert.Equal(t, 400, res.status)

	// Page through everything two at a time: each user once, newest first.
	seen := map[string]bool{}
	var all []string
	next := "/users?limit=2"
	for next != "" {
		res = f.do(t, "admin", "GET", next, "")
		require.Equal(t, 200, res.status, res.raw)
		for _, id := range ids(res) {
			assert.False(t, seen[id], "user %s twice", id)
			seen[id] = true
			all = append(all, id)
		}
		next = ""
		if res.body["has_more"] == true {
			next = fmt.Sprintf("/users?limit=2&cursor=%s", res.body["next_cursor"])
		}
	}
	assert.Len(t, all, len(f.ids))
	assert.Equal(t, f.ids["viewerB"], all[0], "newest first")
}

// newAdmin adds an admin named name to the fixture and returns its id.
func (f *fixture) newAdmin(t *testing.T, name string) string {
	t.Helper()
	u := &tempwatch.User{Email: name + "@example.com", Role: tempwatch.RoleAdmin, PasswordHash: "!unusable"}
	require.NoError(t, f.store.CreateUser(context.Background(), u))
	f.tokens[name], f.ids[name] = apitest.MustToken(t, f.cfg, u.Principal()), u.ID
	return u.ID
}

func (f *fixture) admins(t *testing.T) []string {
	t.Helper()
	rows, err := f.db.Query(context.Background(), `SELECT id::text FROM users WHERE role = 'admin' ORDER BY id`)
	require.NoError(t, err)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return ids
}

func TestLastAdminCannotBeDemotedOrDeleted(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	demote := `{"role":"client_admin","client_id":"{A}"}`

	res := f.do(t, "admin", "PATCH", f.expand("/users/{admin}"), f.expand(demote))
	require.Equal(t, http.StatusConflict, res.status, res.raw)
	assert.Equal(t, "conflict", res.body["code"])
	assert.Contains(t, res.body["detail"], "last admin")
	assert.Equal(t, []string{f.ids["admin"]}, f.admins(t), "the refused demotion changed nothing")

	// With a second admin, either may go, once.
	f.newAdmin(t, "admin2")
	res = f.do(t, "admin", "PATCH", f.expand("/users/{admin2}"), f.expand(demote))
	require.Equal(t, http.StatusOK, res.status, res.raw)
	res = f.do(t, "admin", "PATCH", f.expand("/users/{admin}"), f.expand(demote))
	require.Equal(t, http.StatusConflict, res.status, "admin2 is no admin any more: %s", res.raw)

	f.newAdmin(t, "admin3")
	require.Equal(t, http.StatusNoContent, f.do(t, "admin", "DELETE", f.expand("/users/{admin3}"), "").status)
	// admin2's token still says admin (until it expires), the database does not.
	res = f.do(t, "admin2", "DELETE", f.expand("/users/{admin}"), "")
	require.Equal(t, http.StatusConflict, res.status, res.raw)
	assert.Contains(t, res.body["detail"], "last admin")
	assert.Equal(t, []string{f.ids["admin"]}, f.admins(t))

	// Changing the last admin otherwise is fine.
	res = f.do(t, "admin", "PATCH", f.expand("/users/{admin}"), `{"name":"Still in charge","role":"admin"}`)
	assert.Equal(t, http.StatusOK, res.status, res.raw)
}

// Two admins removing each other at the same moment, by demotion or delete:
// exactly one succeeds, the other gets 409, and one admin is left. Without
// the lock both read "two admins" and both succeed.
func TestConcurrentRemovalsKeepAnAdmin(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	remove := map[string]func(target string) (method, path, body string){
		"demote": func(target string) (string, string, string) {
			return "PATCH", "/users/" + target, `{"role":"viewer","client_id":"` + f.a + `"}`
		},
		"delete": func(target string) (string, string, string) { return "DELETE", "/users/" + target, "" },
	}
	pairs := [][2]string{{"demote", "demote"}, {"delete", "delete"}, {"demote", "delete"}}
	survivor := "admin"
	for round := range 12 {
		kinds := pairs[round%len(pairs)]
		other := fmt.Sprintf("round%d", round)
		f.newAdmin(t, other)
		require.Len(t, f.admins(t), 2)
		pair := [2][2]string{{survivor, other}, {other, survivor}} // {caller, target}
		statuses := make([]int, 2)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, ct := range pair {
			wg.Add(1)
			go func() {
				defer wg.Done()
				method, path, body := remove[kinds[i]](f.ids[ct[1]])
				<-start
				statuses[i] = f.do(t, ct[0], method, path, body).status
			}()
		}
		close(start)
		wg.Wait()
		ok := map[int]bool{http.StatusOK: true, http.StatusNoContent: true}
		left := f.admins(t)
		require.Len(t, left, 1, "round %d (%s by %s, %s by %s): statuses %v", round, kinds[0], pair[0][0], kinds[1], pair[1][0], statuses)
		require.True(t, ok[statuses[0]] != ok[statuses[1]], "exactly one removal may succeed: %v", statuses)
		for i, s := range statuses {
			if !ok[s] {
				assert.Equal(t, http.StatusConflict, s)
				survivor = pair[i][1] // the refused removal's target is still admin
			}
		}
		require.Equal(t, f.ids[survivor], left[0])
	}
}
