package tempwatch

import "context"

// The one authorization rule. Every route asks it, through Caller and one
// of the Authorize functions, before it reads or changes data; no resource
// spells its own.

// Access is what a caller asks to do with data.
type Access int

// Accesses.
const (
	Read  Access = iota // see it
	Write               // create, change or delete it
)

// Caller returns the authenticated caller carried by ctx; EUNAUTHORIZED when
// the request reached a route without one.
func Caller(ctx context.Context) (Principal, error) {
	p, ok := PrincipalFrom(ctx)
	if !ok {
		return Principal{}, Errorf(EUNAUTHORIZED, "Authentication is required.")
	}
	return p, nil
}

// Authorize applies the tenant rule to data of clientID, named what in the
// answer: another tenant's data is ENOTFOUND, like missing data, so ids do
// not leak; a write by a role that may only read is EFORBIDDEN.
func Authorize(p Principal, a Access, clientID, what string) error {
	if !p.CanRead(clientID) {
		return NotFound(what)
	}
	if a == Write && !p.CanWrite(clientID) {
		return Errorf(EFORBIDDEN, "Your role (%s) may read but not change this %s.", p.Role, what)
	}
	return nil
}

// AuthorizeSensorRead returns the owner of sensorID, looked up with find
// once the caller of ctx is known, when that caller may read the sensor's
// data; another tenant's sensor is ENOTFOUND, like a missing one.
func AuthorizeSensorRead(ctx context.Context, find func(context.Context, string) (SensorOwner, error), sensorID string) (SensorOwner, error) {
	p, err := Caller(ctx)
	if err != nil {
		return SensorOwner{}, err
	}
	o, err := find(ctx, sensorID)
	if err != nil {
		return SensorOwner{}, err
	}
	if err := Authorize(p, Read, o.ClientID, "Sensor"); err != nil {
		return SensorOwner{}, err
	}
	return o, nil
}

// AuthorizeAdmin refuses anyone but an admin to do what (such as "create
// clients").
func AuthorizeAdmin(p Principal, what string) error {
	if !p.IsAdmin() {
		return Errorf(EFORBIDDEN, "Only an admin can %s.", what)
	}
	return nil
}

// AuthorizeUser applies the rule to user account u: everyone reads their own
// account, and reads the accounts of a client they may read; changing or
// deleting an account also needs a role at least as high as the account's.
// Which fields a user may change on their own account is the users route's
// business.
func AuthorizeUser(p Principal, a Access, u *User) error {
	if p.UserID != u.ID && !p.CanRead(u.ClientID) {
		return NotFound("User")
	}
	if a == Write && !(p.CanWrite(u.ClientID) && RoleRank(u.Role) <= RoleRank(p.Role)) {
		return Errorf(EFORBIDDEN, "You cannot change this user.")
	}
	return nil
}

// AuthorizeGrant refuses what p may not put into a user account: a role above
// p's own or, for anyone but an admin, another client (ENOTFOUND, as that
// client is invisible to p). clientID nil leaves the client as it is.
func AuthorizeGrant(p Principal, role string, clientID *string) error {
	if clientID != nil && !p.IsAdmin() && *clientID != p.ClientID {
		return NotFound("Client")
	}
	if ValidRole(role) && RoleRank(role) > RoleRank(p.Role) {
		return Errorf(EFORBIDDEN, "You cannot grant the role %s.", role)
	}
	return nil
}

// CanRead reports whether p may read data of clientID.
func (p Principal) CanRead(clientID string) bool {
	return p.IsAdmin() || (p.ClientID != "" && p.ClientID == clientID)
}

// CanWrite reports whether p may change data of clientID. Like CanRead, it
// gives a non-admin without a client nothing, not even data of no client.
func (p Principal) CanWrite(clientID string) bool {
	return p.IsAdmin() || (p.Role == RoleClientAdmin && p.ClientID != "" && p.ClientID == clientID)
}

// ListScope returns the client a list p asked for, of clientID or of every
// client (""), is limited to: an admin gets what it asked for; anyone else
// their own client, and ok false when they named another, whose list is
// then empty to them, as if that client had nothing.
func ListScope(p Principal, clientID string) (scope string, ok bool) {
	if p.IsAdmin() {
		return clientID, true
	}
	return p.ClientID, clientID == "" || clientID == p.ClientID
}

// NotFound is the answer for missing data and for another tenant's data
// alike: 404, not 403, so ids do not leak.
func NotFound(what string) error {
	return Errorf(ENOTFOUND, "%s not found.", what)
}

// AuthorizeAuditRead lets admins and client admins read the audit trail (a
// client admin only their own client's events: ListScope, Authorize);
// viewers may not.
func AuthorizeAuditRead(p Principal) error {
	if !p.IsAdmin() && p.Role != RoleClientAdmin {
		return Errorf(EFORBIDDEN, "Your role (%s) cannot read the audit trail.", p.Role)
	}
	return nil
}
