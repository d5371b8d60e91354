// Package awsiot serves deviceauth's CONNECT decision to AWS IoT Core as a
// custom authorizer (a Lambda function the IoT device gateway invokes when
// a device connects with a username and password).
//
// An allowed device gets a policy allowing exactly what Authority.Allowed
// allows it: connecting as its own client id and publishing to its own
// readings topic. Nothing else is granted, so nothing else is allowed. The
// bridge never connects through AWS IoT Core (there, a topic rule carries
// readings to SQS), so its username is refused here.
package awsiot

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/tempwatch/tempwatch/shared/deviceauth"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// How long an authorization lasts. AWS IoT Core asks the authorizer again
// after RefreshAfterSeconds (its shortest refresh), so a rotated or deleted
// key loses a live connection then; DisconnectAfterSeconds (its longest)
// only ends connections that outlive every refresh.
const (
	RefreshAfterSeconds    = 300
	DisconnectAfterSeconds = 86400
)

// NewAuthority returns the Authority for AWS IoT Core: devices' keys are
// checked with keys, and the bridge's password is random and never kept,
// so no one can connect as the bridge.
func NewAuthority(keys deviceauth.KeyLookup) (*deviceauth.Authority, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("awsiot: bridge password: %w", err)
	}
	return deviceauth.New(keys, deviceauth.Bridge{Password: base64.RawURLEncoding.EncodeToString(b[:])})
}

// Handler is the custom authorizer.
type Handler struct {
	auth *deviceauth.Authority
	log  *slog.Logger
}

// NewHandler returns the authorizer deciding with auth.
func NewHandler(auth *deviceauth.Authority, log *slog.Logger) *Handler {
	return &Handler{auth: auth, log: log}
}

// Handle answers one authorization request. A refusal is an answer
// (isAuthenticated false), never an error: AWS IoT Core refuses the
// CONNECT either way, and an error would hide the reason from the log.
func (h *Handler) Handle(ctx context.Context, req events.IoTCoreCustomAuthorizerRequest) (events.IoTCoreCustomAuthorizerResponse, error) {
	connID := ""
	if req.ConnectionMetadata != nil {
		connID = req.ConnectionMetadata.ID
	}
	if req.ProtocolData == nil || req.ProtocolData.MQTT == nil {
		h.log.InfoContext(ctx, "iot connect refused", "connection", connID, "reason", "not an MQTT connection with a username and password")
		return refused(), nil
	}
	m := req.ProtocolData.MQTT
	// Devices name the authorizer in the username's query string
	// (?x-amz-customauthorizer-name=...), and AWS's SDKs add their own
	// (?SDK=...&Version=...); a device username holds no '?'.
	username, _, _ := strings.Cut(m.Username, "?")
	id, err := h.auth.Connect(ctx, m.ClientID, username, string(m.Password))
	switch {
	case err == nil && id.Bridge:
		err = fmt.Errorf("%w: the bridge does not connect through AWS IoT Core", deviceauth.ErrRefused)
	case err != nil && !errors.Is(err, deviceauth.ErrRefused):
		h.log.ErrorContext(ctx, "iot connect refused: the key store failed", "connection", connID, "clientid", deviceauth.LogSafe(m.ClientID), "error", err)
		return refused(), nil
	}
	if err != nil {
		h.log.InfoContext(ctx, "iot connect refused", "connection", connID, "clientid", deviceauth.LogSafe(m.ClientID), "username", deviceauth.LogSafe(username), "reason", err)
		return refused(), nil
	}
	prefix, err := arnPrefix(ctx)
	if err != nil {
		h.log.ErrorContext(ctx, "iot connect refused: no policy can be built", "connection", connID, "error", err)
		return refused(), nil
	}
	return events.IoTCoreCustomAuthorizerResponse{
		IsAuthenticated:          true,
		PrincipalID:              PrincipalID(id.Device),
		DisconnectAfterInSeconds: DisconnectAfterSeconds,
		RefreshAfterInSeconds:    RefreshAfterSeconds,
		PolicyDocuments:          []*events.IAMPolicyDocument{Policy(prefix, id.Device)},
	}, nil
}

func refused() events.IoTCoreCustomAuthorizerResponse {
	return events.IoTCoreCustomAuthorizerResponse{PolicyDocuments: []*events.IAMPolicyDocument{}}
}

// Policy returns the IoT policy of an authenticated device: connect as its
// client id (its username), publish to its readings topic. arnPrefix is
// arn:<partition>:iot:<region>:<account>.
func Policy(arnPrefix string, d tempwatch.Device) *events.IAMPolicyDocument {
	ref := d.Ref()
	return &events.IAMPolicyDocument{
		Version: "2012-10-17",
		Statement: []events.IAMPolicyStatement{
			{Action: []string{"iot:Connect"}, Effect: "Allow", Resource: []string{arnPrefix + ":client/" + deviceauth.Username(ref)}},
			{Action: []string{"iot:Publish"}, Effect: "Allow", Resource: []string{arnPrefix + ":topic/" + ref.Topic()}},
		},
	}
}

// PrincipalID names the device in AWS IoT Core's logs: its sensor id with
// only the letters and digits AWS accepts there.
func PrincipalID(d tempwatch.Device) string {
	var b strings.Builder
	for _, c := range d.SensorID {
		if ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') {
			b.WriteRune(c)
		}
	}
	s := b.String()
	if len(s) > 128 {
		s = s[:128]
	}
	return s
}

// arnPrefix derives arn:<partition>:iot:<region>:<account> from the ARN the
// function was invoked by: the authorizer runs in the account and region of
// the IoT endpoint it serves, so nothing needs configuring.
func arnPrefix(ctx context.Context) (string, error) {
	lc, ok := lambdacontext.FromContext(ctx)
	if !ok || lc.InvokedFunctionArn == "" {
		return "", errors.New("no invoked function ARN in the Lambda context")
	}
	parts := strings.Split(lc.InvokedFunctionArn, ":")
	if len(parts) < 7 || parts[0] != "arn" || parts[2] != "lambda" || parts[1] == "" || parts[3] == "" || parts[4] == "" {
		return "", fmt.Errorf("invoked function ARN %q is not arn:<partition>:lambda:<region>:<account>:function:<name>", lc.InvokedFunctionArn)
	}
	return "arn:" + parts[1] + ":iot:" + parts[3] + ":" + parts[4], nil
}
