package tempwatch

import (
	"context"
	"regexp"
	"time"

	// Lambda's provided.al2023 image has no zoneinfo; carry it in the binary.
	_ "time/tzdata"
)

// Client is a tenant: a company whose sensors we monitor.
type Client struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Slug      string    `json:"slug"`
	Timezone  string    `json:"timezone"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// ClientUpdate is a partial update: nil fields are left alone.
type ClientUpdate struct {
	Name     *string `json:"name"`
	Slug     *string `json:"slug"`
	Timezone *string `json:"timezone"`
}

// ClientFilter selects clients for a list.
type ClientFilter struct {
	// Name matches clients whose name contains it, case-insensitively.
	Name string
	// OnlyID, when set, restricts the list to that one client (tenant scope).
	OnlyID string
	Page   PageRequest
}

// ClientService stores clients.
type ClientService interface {
	CreateClient(ctx context.Context, c *Client) error
	FindClientByID(ctx context.Context, id string) (*Client, error)
	FindClients(ctx context.Context, f ClientFilter) ([]*Client, error)
	UpdateClient(ctx context.Context, id string, upd ClientUpdate) (*Client, error)
	// DeleteClient removes client id with its users, sensors and readings,
	// and returns the ids of the users removed (whose tokens end with them).
	DeleteClient(ctx context.Context, id string) (users []string, err error)
}

// ValidSlug reports whether s is a client slug as the clients table holds
// them (and as devices put them in their MQTT topic).
func ValidSlug(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// Validate checks a new client, naming each bad field.
func (c *Client) Validate() error {
	v := Validation{}
	validateClientFields(v, &c.Name, &c.Slug, &c.Timezone, true)
	return v.Err()
}

// Validate checks the fields a partial update sets.
func (u ClientUpdate) Validate() error {
	v := Validation{}
	validateClientFields(v, u.Name, u.Slug, u.Timezone, false)
	return v.Err()
}

func validateClientFields(v Validation, name, slug, tz *string, create bool) {
	if name != nil {
		switch n := len([]rune(*name)); {
		case n == 0:
			v.Add("name", "is required")
		case n > 200:
			v.Add("name", "must be at most 200 characters")
		}
	}
	if slug != nil {
		if *slug == "" && create {
			v.Add("slug", "is required")
		} else if !ValidSlug(*slug) {
			v.Add("slug", "must be 1-63 lowercase letters, digits or '-', starting with a letter or digit")
		}
	}
	if tz != nil && !ValidTimezone(*tz) {
		v.Add("timezone", "must be an IANA time zone such as Europe/Berlin or UTC")
	}
}

// ValidTimezone reports whether name is an IANA time zone.
func ValidTimezone(name string) bool {
	if name == "" || name == "Local" {
		return false
	}
	_, err := time.LoadLocation(name)
	return err == nil
}

// YearRangeMessage is the validation message of a date whose year is not
// one ValidYear accepts.
const YearRangeMessage = "must have a year from 0001 to 9999"

// ValidYear reports whether a date of year y is one the API takes: years
// 0001 to 9999. Go parses year 0000, which PostgreSQL refuses as a date
// (there is no year 0 in its calendar), and the API's dates are four-digit.
func ValidYear(y int) bool { return y >= 1 && y <= 9999 }

// IsUUID reports whether s is a canonical UUID, so handlers can answer 404 for
// ids that cannot exist without asking the database.
func IsUUID(s string) bool { return uuidPattern.MatchString(s) }

var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
