package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// API creates the simulated clients and sensors through the REST API.
type API struct {
	BaseURL string // e.g. http://127.0.0.1:3000
	Token   string // admin bearer token
	HTTP    *http.Client
}

// Login exchanges admin credentials for an access token (POST /auth/login).
func (a *API) Login(ctx context.Context, email, password string) error {
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := a.do(ctx, http.MethodPost, "/auth/login", map[string]string{"email": email, "password": password}, &out); err != nil {
		return fmt.Errorf("login as %s: %w", email, err)
	}
	if out.AccessToken == "" {
		return fmt.Errorf("login as %s: no access_token in the response", email)
	}
	a.Token = out.AccessToken
	return nil
}

// Setup creates every client and sensor of fleet that does not exist yet,
// and gives each sensor its device key (Sensor.Key): a new sensor's comes
// with it, an existing one's is rotated, since the API never shows a key
// twice.
func (a *API) Setup(ctx context.Context, fleet []*Sensor) error {
	clientIDs := map[string]string{}
	for _, s := range fleet {
		id, ok := clientIDs[s.ClientSlug]
		if !ok {
			var err error
			if id, err = a.ensureClient(ctx, s.ClientSlug); err != nil {
				return err
			}
			clientIDs[s.ClientSlug] = id
		}
		body := map[string]any{"client_id": id, "device_id": s.DeviceID, "name": s.ClientSlug + " " + s.DeviceID,
			"location": "simulated", "unit": "C", "min_value": -40.0, "max_value": 85.0}
		var created withKey
		err := a.do(ctx, http.MethodPost, "/sensors", body, &created)
		if isConflict(err) {
			err = a.rotateKey(ctx, id, s.DeviceID, &created)
		}
		if err != nil {
			return fmt.Errorf("create sensor %s/%s: %w", s.ClientSlug, s.DeviceID, err)
		}
		if created.DeviceKey == "" {
			return fmt.Errorf("sensor %s/%s: no device_key in the response", s.ClientSlug, s.DeviceID)
		}
		s.Key = created.DeviceKey
	}
	return nil
}

// withKey is the part of a create or rotate-key answer the simulator uses.
type withKey struct {
	DeviceKey string `json:"device_key"`
}

// rotateKey gives an existing sensor of the client a new key.
func (a *API) rotateKey(ctx context.Context, clientID, deviceID string, out *withKey) error {
	id, err := a.findID(ctx, "/sensors?client_id="+url.QueryEscape(clientID)+"&name="+url.QueryEscape(deviceID),
		func(it listItem) bool { return it.DeviceID == deviceID })
	if err != nil {
		return fmt.Errorf("sensor %s: %w", deviceID, err)
	}
	return a.do(ctx, http.MethodPost, "/sensors/"+id+"/rotate-key", nil, out)
}

func (a *API) ensureClient(ctx context.Context, slug string) (string, error) {
	var created struct {
		ID string `json:"id"`
	}
	err := a.do(ctx, http.MethodPost, "/clients", map[string]string{"name": "Simulated " + slug, "slug": slug, "timezone": "Europe/Berlin"}, &created)
	if err == nil {
		return created.ID, nil
	}
	if !isConflict(err) {
		return "", fmt.Errorf("create client %s: %w", slug, err)
	}
	// It exists from an earlier run: find it.
	id, err := a.findID(ctx, "/clients?", func(it listItem) bool { return it.Slug == slug })
	if err != nil {
		return "", fmt.Errorf("client %s: %w", slug, err)
	}
	return id, nil
}

// listItem is what findID reads of a listed client or sensor.
type listItem struct {
	ID       string `json:"id"`
	Slug     string `json:"slug"`
	DeviceID string `json:"device_id"`
}

// findID pages through a list route (path with its filters) until match
// picks an item, for something that conflicted on create.
func (a *API) findID(ctx context.Context, path string, match func(listItem) bool) (string, error) {
	cursor := ""
	for {
		var page struct {
			Items      []listItem `json:"items"`
			HasMore    bool       `json:"has_more"`
			NextCursor string     `json:"next_cursor"`
		}
		if err := a.do(ctx, http.MethodGet, path+"&limit=500&cursor="+url.QueryEscape(cursor), nil, &page); err != nil {
			return "", fmt.Errorf("list: %w", err)
		}
		for _, it := range page.Items {
			if match(it) {
				return it.ID, nil
			}
		}
		if !page.HasMore {
			return "", errors.New("conflicts on create but is not listed")
		}
		cursor = page.NextCursor
	}
}

// statusError is a non-2xx answer.
type statusError struct {
	status int
	body   string
}

func (e *statusError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.status, e.body) }

func isConflict(err error) bool {
	se, ok := err.(*statusError)
	return ok && se.status == http.StatusConflict
}

func (a *API) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.BaseURL+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if a.Token != "" {
		req.Header.Set("Authorization", "Bearer "+a.Token)
	}
	hc := a.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return &statusError{status: resp.StatusCode, body: string(b)}
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}
