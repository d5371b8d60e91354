package sim

import (
	"bytes"
	"context"
	"encoding/json"
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

// Setup creates every client and sensor of fleet that does not exist yet
// and sets each sensor's Key. A key is shown only when a sensor is created
// or its key rotated, so a sensor left from an earlier run gets a new key:
// the simulator is its only device.
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
		var created struct {
			DeviceKey string `json:"device_key"`
		}
		err := a.do(ctx, http.MethodPost, "/sensors", body, &created)
		if isConflict(err) {
			created.DeviceKey, err = a.rotateKey(ctx, id, s.DeviceID)
		}
		if err != nil {
			return fmt.Errorf("create sensor %s/%s: %w", s.ClientSlug, s.DeviceID, err)
		}
		if created.DeviceKey == "" {
			return fmt.Errorf("create sensor %s/%s: no device_key in the response", s.ClientSlug, s.DeviceID)
		}
		s.Key = created.DeviceKey
	}
	return nil
}

// rotateKey gives the existing sensor deviceID of client clientID a new key
// and returns it.
func (a *API) rotateKey(ctx context.Context, clientID, deviceID string) (string, error) {
	cursor := ""
	for {
		var page struct {
			Items []struct {
				ID       string `json:"id"`
				DeviceID string `json:"device_id"`
			} `json:"items"`
			HasMore    bool   `json:"has_more"`
			NextCursor string `json:"next_cursor"`
		}
		q := "/sensors?limit=500&client_id=" + url.QueryEscape(clientID) + "&cursor=" + url.QueryEscape(cursor)
		if err := a.do(ctx, http.MethodGet, q, nil, &page); err != nil {
			return "", fmt.Errorf("list sensors: %w", err)
		}
		for _, s := range page.Items {
			if s.DeviceID != deviceID {
				continue
			}
			var rotated struct {
				DeviceKey string `json:"device_key"`
			}
			if err := a.do(ctx, http.MethodPost, "/sensors/"+s.ID+"/rotate-key", nil, &rotated); err != nil {
				return "", fmt.Errorf("rotate key: %w", err)
			}
			return rotated.DeviceKey, nil
		}
		if !page.HasMore {
			return "", fmt.Errorf("sensor %s conflicts on create but is not listed", deviceID)
		}
		cursor = page.NextCursor
	}
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
	cursor := ""
	for {
		var page struct {
			Items []struct {
				ID   string `json:"id"`
				Slug string `json:"slug"`
			} `json:"items"`
			HasMore    bool   `json:"has_more"`
			NextCursor string `json:"next_cursor"`
		}
		if err := a.do(ctx, http.MethodGet, "/clients?limit=500&cursor="+url.QueryEscape(cursor), nil, &page); err != nil {
			return "", fmt.Errorf("list clients: %w", err)
		}
		for _, c := range page.Items {
			if c.Slug == slug {
				return c.ID, nil
			}
		}
		if !page.HasMore {
			return "", fmt.Errorf("client %s conflicts on create but is not listed", slug)
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
