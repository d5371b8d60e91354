// Package emqx serves deviceauth's decisions to EMQX 5 over its HTTP
// authentication and HTTP authorization contract:
//
//	POST /mqtt/authn  {"clientid","username","password","peerhost"}
//	POST /mqtt/authz  {"username","clientid","action","topic","qos","retain"}
//
// Both answer 200 with {"result":"allow"|"deny", "is_superuser":false}; an
// allowed CONNECT also carries the client's ACL (EMQX 5.8 and later check it
// before asking /mqtt/authz) and, for a device, when its session must end.
//
// Only the broker may call: it sends the shared secret as a bearer token.
// Anything else is a 401 problem, which EMQX treats as "ignore" and, with
// no other authenticator or authorizer, as a refusal.
package emqx

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/tempwatch/tempwatch/shared/config"
	"github.com/tempwatch/tempwatch/shared/deviceauth"
	"github.com/tempwatch/tempwatch/shared/httpapi"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// Routes of the broker's requests.
const (
	AuthnPath = "/mqtt/authn"
	AuthzPath = "/mqtt/authz"
)

// MinSecretLen is the shortest broker secret Config accepts.
const MinSecretLen = 32

// Results EMQX reads. "ignore" is never sent: no other authenticator or
// authorizer should get a say on a client this package knows nothing of.
const (
	Allow = "allow"
	Deny  = "deny"
)

// Config is what the mqttauth function reads from its environment.
type Config struct {
	// Secret is what the broker sends as its bearer token.
	Secret string
	// Bridge is the bridge's credential.
	Bridge deviceauth.Bridge
	// DeviceSession bounds how long a device stays connected on one CONNECT
	// (EMQX's expire_at): a rotated or deleted key is checked again when it
	// reconnects. Zero leaves connections open until the device ends them.
	DeviceSession time.Duration
}

// LoadConfig reads MQTT_BROKER_SECRET, the bridge's credential
// (deviceauth.LoadBridge) and MQTT_DEVICE_SESSION_MAX through r.
func LoadConfig(r *config.Reader) Config {
	return Config{
		Secret:        r.Secret("MQTT_BROKER_SECRET", MinSecretLen),
		Bridge:        deviceauth.LoadBridge(r),
		DeviceSession: r.Duration("MQTT_DEVICE_SESSION_MAX", time.Hour, 0, 7*24*time.Hour),
	}
}

// handler answers the broker.
type handler struct {
	auth      *deviceauth.Authority
	secretSum [sha256.Size]byte
	session   time.Duration
	log       *slog.Logger
	now       func() time.Time
}

// NewHandler serves cfg's broker with the decisions of auth. now is the
// clock of expire_at (nil: time.Now).
func NewHandler(auth *deviceauth.Authority, cfg Config, log *slog.Logger, now func() time.Time) (http.Handler, error) {
	if len(cfg.Secret) < MinSecretLen {
		return nil, fmt.Errorf("emqx: the broker secret must be at least %d characters", MinSecretLen)
	}
	if now == nil {
		now = time.Now
	}
	h := &handler{auth: auth, secretSum: sha256.Sum256([]byte(cfg.Secret)), session: cfg.DeviceSession,
		log: log, now: now}
	rt := httpapi.NewRouter(log)
	rt.Public("POST "+AuthnPath, h.brokerOnly(h.handleAuthn))
	rt.Public("POST "+AuthzPath, h.brokerOnly(h.handleAuthz))
	return rt, nil
}

// brokerOnly lets through requests bearing the broker's secret. Both sides
// are hashed first so the comparison takes the same time whatever the
// length of what was sent.
func (h *handler) brokerOnly(next httpapi.HandlerFunc) httpapi.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		sum := sha256.Sum256([]byte(token))
		if !ok || subtle.ConstantTimeCompare(sum[:], h.secretSum[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="tempwatch-broker"`)
			return tempwatch.Errorf(tempwatch.EUNAUTHORIZED,
				"Only the MQTT broker may call this route: send Authorization: Bearer <broker secret>.")
		}
		return next(w, r)
	}
}

// AuthnRequest is the body EMQX's HTTP authenticator sends.
type AuthnRequest struct {
	ClientID *string `json:"clientid"`
	Username *string `json:"username"`
	Password *string `json:"password"`
	PeerHost string  `json:"peerhost"`
}

// AuthnResponse is the answer to a CONNECT.
type AuthnResponse struct {
	Result      string `json:"result"`
	IsSuperuser bool   `json:"is_superuser"`
	// ExpireAt is when the broker must end the connection (Unix seconds).
	ExpireAt int64     `json:"expire_at,omitempty"`
	ACL      []ACLRule `json:"acl,omitempty"`
}

// ACLRule is one rule of EMQX's ACL in its newer format: the first rule
// matching an action decides it; an action no rule matches goes on to the
// authorizers (here /mqtt/authz).
type ACLRule struct {
	Permission string `json:"permission"`
	Action     string `json:"action"` // publish, subscribe or all
	Topic      string `json:"topic"`
}

func (h *handler) handleAuthn(w http.ResponseWriter, r *http.Request) error {
	var req AuthnRequest
	if err := httpapi.DecodeJSON(r, &req); err != nil {
		return err
	}
	v := tempwatch.Validation{}
	if req.ClientID == nil {
		v.Add("clientid", "is required (EMQX's ${clientid})")
	}
	if req.Username == nil {
		v.Add("username", "is required (EMQX's ${username})")
	}
	if req.Password == nil {
		v.Add("password", "is required (EMQX's ${password})")
	}
	if err := v.Err(); err != nil {
		return err
	}
	ctx := r.Context()
	id, err := h.auth.Connect(ctx, *req.ClientID, *req.Username, *req.Password)
	if err != nil {
		// A store failure refuses too: the device retries, and no key is
		// ever taken for good because it could not be checked.
		if errors.Is(err, deviceauth.ErrRefused) {
			h.log.InfoContext(ctx, "mqtt connect refused", "clientid", deviceauth.LogSafe(*req.ClientID), "username", deviceauth.LogSafe(*req.Username),
				"peerhost", deviceauth.LogSafe(req.PeerHost), "reason", err)
		} else {
			h.log.ErrorContext(ctx, "mqtt connect refused: the key store failed", "clientid", deviceauth.LogSafe(*req.ClientID),
				"peerhost", deviceauth.LogSafe(req.PeerHost), "error", err)
		}
		writeJSON(w, AuthnResponse{Result: Deny})
		return nil
	}
	resp := AuthnResponse{Result: Allow, ACL: ACL(id)}
	if !id.Bridge && h.session > 0 {
		resp.ExpireAt = h.now().Add(h.session).Unix()
	}
	writeJSON(w, resp)
	return nil
}

// ACL returns the rules an authenticated client gets with its CONNECT, so
// EMQX decides most packets without asking /mqtt/authz. They say no more
// than Authority.Allowed: what they leave open is asked of it.
//
// A device may publish to its own readings topic ("eq": taken literally,
// never as a filter or a placeholder) and nothing else that "#" covers;
// topics starting with '$', which "#" does not match, go to /mqtt/authz.
// The bridge publishes nothing; its subscriptions go to /mqtt/authz, whose
// filter check an ACL rule cannot express.
func ACL(id deviceauth.Identity) []ACLRule {
	if id.Bridge {
		return []ACLRule{{Permission: Deny, Action: "publish", Topic: "#"}}
	}
	return []ACLRule{
		{Permission: Allow, Action: "publish", Topic: "eq " + id.Device.Ref().Topic()},
		{Permission: Deny, Action: "all", Topic: "#"},
	}
}

// AuthzRequest is the body EMQX's HTTP authorizer sends.
type AuthzRequest struct {
	Username *string   `json:"username"`
	ClientID *string   `json:"clientid"`
	Action   string    `json:"action"`
	Topic    *string   `json:"topic"`
	QoS      wireValue `json:"qos"`
	Retain   wireValue `json:"retain"`
}

// AuthzResponse is the answer to a PUBLISH or SUBSCRIBE.
type AuthzResponse struct {
	Result string `json:"result"`
}

func (h *handler) handleAuthz(w http.ResponseWriter, r *http.Request) error {
	var req AuthzRequest
	if err := httpapi.DecodeJSON(r, &req); err != nil {
		return err
	}
	v := tempwatch.Validation{}
	if req.Username == nil {
		v.Add("username", "is required (EMQX's ${username})")
	}
	if req.ClientID == nil {
		v.Add("clientid", "is required (EMQX's ${clientid})")
	}
	if a := deviceauth.Action(req.Action); a != deviceauth.Publish && a != deviceauth.Subscribe {
		v.Add("action", "must be publish or subscribe (EMQX's ${action})")
	}
	if req.Topic == nil {
		v.Add("topic", "is required (EMQX's ${topic})")
	}
	if req.QoS.set && req.QoS.text != "0" && req.QoS.text != "1" && req.QoS.text != "2" {
		v.Add("qos", "must be 0, 1 or 2")
	}
	if req.Retain.set && req.Retain.text != "true" && req.Retain.text != "false" {
		v.Add("retain", "must be true or false")
	}
	if err := v.Err(); err != nil {
		return err
	}
	if h.auth.Allowed(*req.Username, *req.ClientID, deviceauth.Action(req.Action), *req.Topic) {
		writeJSON(w, AuthzResponse{Result: Allow})
		return nil
	}
	h.log.InfoContext(r.Context(), "mqtt "+req.Action+" denied", "clientid", deviceauth.LogSafe(*req.ClientID),
		"username", deviceauth.LogSafe(*req.Username), "topic", deviceauth.LogSafe(*req.Topic))
	writeJSON(w, AuthzResponse{Result: Deny})
	return nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Cache-Control", "no-store")
	httpapi.JSON(w, http.StatusOK, v)
}

// wireValue is a scalar EMQX may render as a JSON string, number or
// boolean, depending on how the body template quotes its placeholder.
type wireValue struct {
	set  bool
	text string
}

func (v *wireValue) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*v = wireValue{set: true, text: s}
		return nil
	}
	var scalar any
	if err := json.Unmarshal(b, &scalar); err != nil {
		return err
	}
	switch scalar.(type) {
	case float64, bool:
		*v = wireValue{set: true, text: string(b)}
		return nil
	}
	return errors.New("not a string, number or boolean")
}
