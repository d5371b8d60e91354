package tempwatch_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

const (
	clientA = "a0000000-0000-4000-8000-000000000001"
	clientB = "b0000000-0000-4000-8000-000000000002"
)

var (
	admin   = tempwatch.Principal{UserID: "u-admin", Role: tempwatch.RoleAdmin}
	adminA  = tempwatch.Principal{UserID: "u-admin-a", ClientID: clientA, Role: tempwatch.RoleClientAdmin}
	viewerA = tempwatch.Principal{UserID: "u-viewer-a", ClientID: clientA, Role: tempwatch.RoleViewer}
	adminB  = tempwatch.Principal{UserID: "u-admin-b", ClientID: clientB, Role: tempwatch.RoleClientAdmin}
	// clientless is a non-admin without a client, as no valid token says:
	// it must read nothing, not even data that belongs to no client.
	clientless = tempwatch.Principal{UserID: "u-none", Role: tempwatch.RoleClientAdmin}
)

func TestCaller(t *testing.T) {
	_, err := tempwatch.Caller(context.Background())
	assert.Equal(t, tempwatch.EUNAUTHORIZED, tempwatch.ErrorCode(err), "Caller(no principal) = %v, want EUNAUTHORIZED", err)

	p, err := tempwatch.Caller(tempwatch.WithPrincipal(context.Background(), viewerA))
	require.NoError(t, err)
	assert.Equal(t, viewerA, p)
}

func TestAuthorize(t *testing.T) {
	tests := []struct {
		name     string
		p        tempwatch.Principal
		a        tempwatch.Access
		clientID string
		want     string // error code; "" allowed
	}{
		{"admin reads A", admin, tempwatch.Read, clientA, ""},
		{"admin writes B", admin, tempwatch.Write, clientB, ""},
		{"admin reads data of no client", admin, tempwatch.Read, "", ""},
		{"client admin reads own", adminA, tempwatch.Read, clientA, ""},
		{"client admin writes own", adminA, tempwatch.Write, clientA, ""},
		{"client admin reads other", adminA, tempwatch.Read, clientB, tempwatch.ENOTFOUND},
		{"client admin writes other", adminA, tempwatch.Write, clientB, tempwatch.ENOTFOUND},
		{"client admin reads data of no client", adminA, tempwatch.Read, "", tempwatch.ENOTFOUND},
		{"viewer reads own", viewerA, tempwatch.Read, clientA, ""},
		{"viewer writes own", viewerA, tempwatch.Write, clientA, tempwatch.EFORBIDDEN},
		{"viewer reads other", viewerA, tempwatch.Read, clientB, tempwatch.ENOTFOUND},
		{"viewer writes other: not found before forbidden", viewerA, tempwatch.Write, clientB, tempwatch.ENOTFOUND},
		{"other client's admin reads A", adminB, tempwatch.Read, clientA, tempwatch.ENOTFOUND},
		{"clientless reads data of no client", clientless, tempwatch.Read, "", tempwatch.ENOTFOUND},
		{"clientless writes data of no client", clientless, tempwatch.Write, "", tempwatch.ENOTFOUND},
		{"no role reads", tempwatch.Principal{UserID: "u", ClientID: clientA}, tempwatch.Read, clientA, ""},
		{"no role writes", tempwatch.Principal{UserID: "u", ClientID: clientA}, tempwatch.Write, clientA, tempwatch.EFORBIDDEN},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tempwatch.Authorize(tt.p, tt.a, tt.clientID, "Sensor")
			assert.Equal(t, tt.want, tempwatch.ErrorCode(err), "Authorize(%s of %q, %v, %q) = %v, want %q", tt.p.Role, tt.p.ClientID, tt.a, tt.clientID, err, tt.want)
			assert.Equal(t, tt.p.CanRead(tt.clientID), tt.want != tempwatch.ENOTFOUND, "CanRead agrees with Authorize")
			if tt.a == tempwatch.Write {
				assert.Equal(t, tt.p.CanWrite(tt.clientID), tt.want == "", "CanWrite agrees with Authorize")
			}
		})
	}
	t.Run("message", func(t *testing.T) {
		assert.Equal(t, "Sensor not found.", tempwatch.ErrorMessage(tempwatch.Authorize(viewerA, tempwatch.Read, clientB, "Sensor")),
			"another tenant's data reads exactly as missing data")
		assert.Equal(t, tempwatch.ErrorMessage(tempwatch.NotFound("Sensor")), tempwatch.ErrorMessage(tempwatch.Authorize(adminB, tempwatch.Write, clientA, "Sensor")))
		assert.Contains(t, tempwatch.ErrorMessage(tempwatch.Authorize(viewerA, tempwatch.Write, clientA, "sensor")), "viewer")
	})
}

func TestAuthorizeAdmin(t *testing.T) {
	for _, p := range []tempwatch.Principal{adminA, viewerA, adminB, clientless} {
		err := tempwatch.AuthorizeAdmin(p, "create clients")
		assert.Equal(t, tempwatch.EFORBIDDEN, tempwatch.ErrorCode(err), "AuthorizeAdmin(%s of %q) = %v, want EFORBIDDEN", p.Role, p.ClientID, err)
		assert.Equal(t, "Only an admin can create clients.", tempwatch.ErrorMessage(err))
	}
	assert.NoError(t, tempwatch.AuthorizeAdmin(admin, "create clients"))
}

func TestAuthorizeUser(t *testing.T) {
	viewerOfA := &tempwatch.User{ID: "u-other-viewer-a", ClientID: clientA, Role: tempwatch.RoleViewer}
	clientAdminOfA := &tempwatch.User{ID: "u-other-admin-a", ClientID: clientA, Role: tempwatch.RoleClientAdmin}
	anAdmin := &tempwatch.User{ID: "u-other-admin", Role: tempwatch.RoleAdmin}
	self := &tempwatch.User{ID: viewerA.UserID, ClientID: clientA, Role: tempwatch.RoleViewer}
	movedSelf := &tempwatch.User{ID: viewerA.UserID, ClientID: clientB, Role: tempwatch.RoleViewer}
	tests := []struct {
		name string
		p    tempwatch.Principal
		a    tempwatch.Access
		u    *tempwatch.User
		want string
	}{
		{"admin changes an admin", admin, tempwatch.Write, anAdmin, ""},
		{"admin changes a viewer of A", admin, tempwatch.Write, viewerOfA, ""},
		{"client admin reads a viewer of A", adminA, tempwatch.Read, viewerOfA, ""},
		{"client admin changes a viewer of A", adminA, tempwatch.Write, viewerOfA, ""},
		{"client admin changes a peer", adminA, tempwatch.Write, clientAdminOfA, ""},
		{"client admin reads an admin", adminA, tempwatch.Read, anAdmin, tempwatch.ENOTFOUND},
		{"client admin changes an admin", adminA, tempwatch.Write, anAdmin, tempwatch.ENOTFOUND},
		{"client admin of B reads a viewer of A", adminB, tempwatch.Read, viewerOfA, tempwatch.ENOTFOUND},
		{"viewer reads a viewer of A", viewerA, tempwatch.Read, viewerOfA, ""},
		{"viewer changes a viewer of A", viewerA, tempwatch.Write, viewerOfA, tempwatch.EFORBIDDEN},
		{"viewer reads self", viewerA, tempwatch.Read, self, ""},
		{"viewer changes self: the route decides which fields", viewerA, tempwatch.Write, self, tempwatch.EFORBIDDEN},
		{"viewer reads self, now of another client", viewerA, tempwatch.Read, movedSelf, ""},
		{"viewer changes self, now of another client", viewerA, tempwatch.Write, movedSelf, tempwatch.EFORBIDDEN},
		{"clientless changes self", clientless, tempwatch.Write, &tempwatch.User{ID: clientless.UserID, Role: tempwatch.RoleClientAdmin},
			tempwatch.EFORBIDDEN},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tempwatch.AuthorizeUser(tt.p, tt.a, tt.u)
			assert.Equal(t, tt.want, tempwatch.ErrorCode(err), "AuthorizeUser(%s of %q, %v, %s of %q) = %v, want %q",
				tt.p.Role, tt.p.ClientID, tt.a, tt.u.Role, tt.u.ClientID, err, tt.want)
		})
	}
}

func TestAuthorizeGrant(t *testing.T) {
	a, b := clientA, clientB
	tests := []struct {
		name     string
		p        tempwatch.Principal
		role     string
		clientID *string
		want     string
	}{
		{"admin grants admin", admin, tempwatch.RoleAdmin, nil, ""},
		{"admin moves to B", admin, tempwatch.RoleViewer, &b, ""},
		{"client admin grants viewer", adminA, tempwatch.RoleViewer, nil, ""},
		{"client admin grants client admin in own client", adminA, tempwatch.RoleClientAdmin, &a, ""},
		{"client admin grants admin", adminA, tempwatch.RoleAdmin, nil, tempwatch.EFORBIDDEN},
		{"client admin moves to B", adminA, tempwatch.RoleViewer, &b, tempwatch.ENOTFOUND},
		{"client admin moves to B as admin: not found first", adminA, tempwatch.RoleAdmin, &b, tempwatch.ENOTFOUND},
		{"viewer grants viewer", viewerA, tempwatch.RoleViewer, nil, ""},
		{"viewer grants client admin", viewerA, tempwatch.RoleClientAdmin, nil, tempwatch.EFORBIDDEN},
		{"unknown role is validation's business", adminA, "root", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tempwatch.AuthorizeGrant(tt.p, tt.role, tt.clientID)
			assert.Equal(t, tt.want, tempwatch.ErrorCode(err), "AuthorizeGrant(%s of %q, %q, %v) = %v, want %q",
				tt.p.Role, tt.p.ClientID, tt.role, tt.clientID, err, tt.want)
		})
	}
}

func TestAuthorizeSensorRead(t *testing.T) {
	ownerOfA := tempwatch.SensorOwner{SensorID: "s-1", ClientID: clientA, Timezone: "Europe/Berlin"}
	found := func(context.Context, string) (tempwatch.SensorOwner, error) { return ownerOfA, nil }
	broken := errors.New("connection reset")
	tests := []struct {
		name string
		ctx  context.Context
		find func(context.Context, string) (tempwatch.SensorOwner, error)
		want string
	}{
		{"no caller", context.Background(), found, tempwatch.EUNAUTHORIZED},
		{"own sensor", tempwatch.WithPrincipal(context.Background(), viewerA), found, ""},
		{"admin", tempwatch.WithPrincipal(context.Background(), admin), found, ""},
		{"another tenant's sensor", tempwatch.WithPrincipal(context.Background(), adminB), found, tempwatch.ENOTFOUND},
		{"missing sensor", tempwatch.WithPrincipal(context.Background(), viewerA),
			func(context.Context, string) (tempwatch.SensorOwner, error) {
				return tempwatch.SensorOwner{}, tempwatch.NotFound("Sensor")
			}, tempwatch.ENOTFOUND},
		{"lookup fails", tempwatch.WithPrincipal(context.Background(), viewerA),
			func(context.Context, string) (tempwatch.SensorOwner, error) { return tempwatch.SensorOwner{}, broken }, tempwatch.EINTERNAL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var asked []string
			find := func(ctx context.Context, id string) (tempwatch.SensorOwner, error) {
				asked = append(asked, id)
				return tt.find(ctx, id)
			}
			o, err := tempwatch.AuthorizeSensorRead(tt.ctx, find, "s-1")
			assert.Equal(t, tt.want, tempwatch.ErrorCode(err), "AuthorizeSensorRead(%s) = %v, want %q", tt.name, err, tt.want)
			if tt.want == tempwatch.EUNAUTHORIZED {
				assert.Empty(t, asked, "without a caller the sensor is not looked up")
				return
			}
			assert.Equal(t, []string{"s-1"}, asked)
			if tt.want == "" {
				assert.Equal(t, ownerOfA, o)
			} else {
				assert.Zero(t, o, "a refusal returns no owner")
			}
			if tt.want == tempwatch.EINTERNAL {
				assert.ErrorIs(t, err, broken, "a lookup failure is returned as it is, for the log")
			}
		})
	}
}

func TestListScope(t *testing.T) {
	tests := []struct {
		name      string
		p         tempwatch.Principal
		asked     string
		wantScope string
		wantOK    bool
	}{
		{"admin, every client", admin, "", "", true},
		{"admin, client B", admin, clientB, clientB, true},
		{"client admin, every client", adminA, "", clientA, true},
		{"client admin, own client", adminA, clientA, clientA, true},
		{"client admin, client B", adminA, clientB, clientA, false},
		{"viewer, every client", viewerA, "", clientA, true},
		{"viewer, client B", viewerA, clientB, clientA, false},
		{"client admin of B, client A", adminB, clientA, clientB, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			scope, ok := tempwatch.ListScope(tt.p, tt.asked)
			assert.Equal(t, tt.wantScope, scope, "ListScope(%s of %q, %q) scope", tt.p.Role, tt.p.ClientID, tt.asked)
			assert.Equal(t, tt.wantOK, ok, "ListScope(%s of %q, %q) ok", tt.p.Role, tt.p.ClientID, tt.asked)
		})
	}
}
