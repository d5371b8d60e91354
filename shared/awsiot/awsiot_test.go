package awsiot_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/awsiot"
	"github.com/tempwatch/tempwatch/shared/deviceauth"
	"github.com/tempwatch/tempwatch/shared/deviceauth/deviceauthtest"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

const (
	keyA        = "twk_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	keyB        = "twk_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	bridgePass  = "bridge-secret-0123456789abcdef"
	functionARN = "arn:aws:lambda:eu-central-1:123456789012:function:tempwatch-IoTAuthFunction-x1"
)

var (
	devA = tempwatch.Device{SensorID: "0b9a4c8e-5f3d-4e2a-9c71-2d6f8b1e4a37", ClientID: "c-acme", ClientSlug: "acme", DeviceID: "cr-1"}
	devB = tempwatch.Device{SensorID: "7d0c3e1a-1111-4222-8333-944455556666", ClientID: "c-bolt", ClientSlug: "bolt", DeviceID: "truck.7"}
)

func invokedCtx(arn string) context.Context {
	return lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "r-1", InvokedFunctionArn: arn})
}

// event is the request AWS IoT Core sends, as JSON: the password travels
// base64-encoded and the runtime decodes it into the event's []byte.
func event(t *testing.T, clientID, username, password string) events.IoTCoreCustomAuthorizerRequest {
	t.Helper()
	raw := `{"token":"","signatureVerified":false,"protocols":["tls","mqtt"],
		"protocolData":{"tls":{"serverName":"abc123-ats.iot.eu-central-1.amazonaws.com"},
			"mqtt":{"username":` + quote(username) + `,"password":"` + base64.StdEncoding.EncodeToString([]byte(password)) + `","clientId":` + quote(clientID) + `}},
		"connectionMetadata":{"id":"e8b7a4c0-9f3d-4b1e-8a2c-1d2e3f4a5b6c"}}`
	var req events.IoTCoreCustomAuthorizerRequest
	require.NoError(t, json.Unmarshal([]byte(raw), &req))
	return req
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

type fixture struct {
	h    *awsiot.Handler
	keys *deviceauthtest.Keys
	logs *bytes.Buffer
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	keys := &deviceauthtest.Keys{Keys: map[string]tempwatch.Device{keyA: devA, keyB: devB}}
	auth, err := awsiot.NewAuthority(keys)
	require.NoError(t, err)
	logs := &bytes.Buffer{}
	t.Cleanup(func() {
		for _, s := range []string{keyA, keyB, bridgePass} {
			assert.NotContains(t, logs.String(), s, "a secret reached the log")
		}
	})
	return &fixture{h: awsiot.NewHandler(auth, slog.New(slog.NewTextHandler(logs, nil))), keys: keys, logs: logs}
}

func TestAllowedDeviceGetsExactlyItsPolicy(t *testing.T) {
	fx := newFixture(t)
	for _, username := range []string{
		"acme/cr-1",
		"acme/cr-1?x-amz-customauthorizer-name=tempwatch-devices",
		"acme/cr-1?SDK=Go&Version=1.2&x-amz-customauthorizer-name=tempwatch-devices",
	} {
		t.Run(username, func(t *testing.T) {
			resp, err := fx.h.Handle(invokedCtx(functionARN), event(t, "acme/cr-1", username, keyA))
			require.NoError(t, err)
			got, err := json.Marshal(resp)
			require.NoError(t, err)
			assert.JSONEq(t, `{
				"isAuthenticated": true,
				"principalId": "0b9a4c8e5f3d4e2a9c712d6f8b1e4a37",
				"disconnectAfterInSeconds": 86400,
				"refreshAfterInSeconds": 300,
				"policyDocuments": [{
					"Version": "2012-10-17",
					"Statement": [
						{"Action": ["iot:Connect"], "Effect": "Allow", "Resource": ["arn:aws:iot:eu-central-1:123456789012:client/acme/cr-1"]},
						{"Action": ["iot:Publish"], "Effect": "Allow", "Resource": ["arn:aws:iot:eu-central-1:123456789012:topic/tempwatch/acme/sensors/cr-1/readings"]}
					]
				}]
			}`, string(got))
		})
	}
}

func TestPolicyFollowsThePartition(t *testing.T) {
	fx := newFixture(t)
	resp, err := fx.h.Handle(invokedCtx("arn:aws-cn:lambda:cn-north-1:210987654321:function:iotauth:live"), event(t, "bolt/truck.7", "bolt/truck.7", keyB))
	require.NoError(t, err)
	require.True(t, resp.IsAuthenticated)
	assert.Equal(t, []string{"arn:aws-cn:iot:cn-north-1:210987654321:client/bolt/truck.7"}, resp.PolicyDocuments[0].Statement[0].Resource)
	assert.Equal(t, []string{"arn:aws-cn:iot:cn-north-1:210987654321:topic/tempwatch/bolt/sensors/truck.7/readings"}, resp.PolicyDocuments[0].Statement[1].Resource)
}

func TestRefusals(t *testing.T) {
	fx := newFixture(t)
	tests := []struct {
		name                         string
		clientID, username, password string
	}{
		{"anonymous", "acme/cr-1", "", ""},
		{"no password", "acme/cr-1", "acme/cr-1", ""},
		{"no client id", "", "acme/cr-1", keyA},
		{"wrong key", "acme/cr-1", "acme/cr-1", "twk_wrong"},
		{"not a device key", "acme/cr-1", "acme/cr-1", "hunter2"},
		{"another device's key", "acme/cr-1", "acme/cr-1", keyB},
		{"another tenant's device name with this key", "bolt/truck.7", "bolt/truck.7", keyA},
		{"wrong client id", "sensor-1", "acme/cr-1", keyA},
		{"client id with the authorizer suffix", "acme/cr-1?x-amz-customauthorizer-name=tempwatch-devices", "acme/cr-1?x-amz-customauthorizer-name=tempwatch-devices", keyA},
		{"the suffix alone", "", "?x-amz-customauthorizer-name=tempwatch-devices", keyA},
		{"bridge username, any password", "tempwatch-bridge-1", "tempwatch-bridge", bridgePass},
		{"bridge username with the suffix", "tempwatch-bridge-1", "tempwatch-bridge?x-amz-customauthorizer-name=tempwatch-devices", bridgePass},
		{"a wildcard username", "acme/+", "acme/+", keyA},
		{"the key as username and client id", keyA, keyA, keyA},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := fx.h.Handle(invokedCtx(functionARN), event(t, tt.clientID, tt.username, tt.password))
			require.NoError(t, err, "a refusal is an answer, not an invocation error")
			assert.False(t, resp.IsAuthenticated)
			assert.Empty(t, resp.PolicyDocuments)
			got, err := json.Marshal(resp)
			require.NoError(t, err)
			assert.Contains(t, string(got), `"policyDocuments":[]`)
		})
	}
	assert.Contains(t, fx.logs.String(), "iot connect refused")
	assert.Contains(t, fx.logs.String(), "e8b7a4c0-9f3d-4b1e-8a2c-1d2e3f4a5b6c", "refusals name the connection")
}

// TestBridgeIsRefusedEvenWithItsPassword: an Authority that knows the
// bridge's password still gets no bridge through this authorizer.
func TestBridgeIsRefusedEvenWithItsPassword(t *testing.T) {
	auth, err := deviceauth.New(&deviceauthtest.Keys{}, deviceauth.Bridge{Password: bridgePass})
	require.NoError(t, err)
	var logs bytes.Buffer
	h := awsiot.NewHandler(auth, slog.New(slog.NewTextHandler(&logs, nil)))
	resp, err := h.Handle(invokedCtx(functionARN), event(t, "tempwatch-bridge-1", "tempwatch-bridge", bridgePass))
	require.NoError(t, err)
	assert.False(t, resp.IsAuthenticated)
	assert.Contains(t, logs.String(), "the bridge does not connect through AWS IoT Core")
}

func TestNotMQTTIsRefused(t *testing.T) {
	fx := newFixture(t)
	for name, req := range map[string]events.IoTCoreCustomAuthorizerRequest{
		"no protocol data": {Protocols: []string{"tls", "http"}},
		"HTTP publish": {Protocols: []string{"tls", "http"}, ProtocolData: &events.IoTCoreProtocolData{
			HTTP: &events.IoTCoreHTTPContext{Headers: map[string]string{"x-device-key": keyA}}}},
	} {
		resp, err := fx.h.Handle(invokedCtx(functionARN), req)
		require.NoError(t, err, name)
		assert.False(t, resp.IsAuthenticated, name)
	}
}

func TestKeyStoreOutageRefuses(t *testing.T) {
	fx := newFixture(t)
	fx.keys.Down = true
	resp, err := fx.h.Handle(invokedCtx(functionARN), event(t, "acme/cr-1", "acme/cr-1", keyA))
	require.NoError(t, err)
	assert.False(t, resp.IsAuthenticated)
	assert.Contains(t, fx.logs.String(), "level=ERROR")
	assert.Contains(t, fx.logs.String(), "key store failed")
}

func TestNoPolicyWithoutTheFunctionARN(t *testing.T) {
	fx := newFixture(t)
	for _, ctx := range []context.Context{context.Background(), invokedCtx(""), invokedCtx("arn:aws:lambda::123:function:x"), invokedCtx("not-an-arn")} {
		resp, err := fx.h.Handle(ctx, event(t, "acme/cr-1", "acme/cr-1", keyA))
		require.NoError(t, err)
		assert.False(t, resp.IsAuthenticated, "an allowed device without a policy would be refused by AWS anyway; say so here")
	}
	assert.Contains(t, fx.logs.String(), "no policy can be built")
}

func TestPrincipalID(t *testing.T) {
	valid := regexp.MustCompile(`^[a-zA-Z0-9]{1,128}$`)
	for _, id := range []string{devA.SensorID, "ABC-def_123", strings.Repeat("a-", 200)} {
		got := awsiot.PrincipalID(tempwatch.Device{SensorID: id})
		assert.Regexp(t, valid, got, "PrincipalID(%q)", id)
	}
	assert.Equal(t, "0b9a4c8e5f3d4e2a9c712d6f8b1e4a37", awsiot.PrincipalID(devA))
}

func TestNewAuthorityKnowsNoBridgePassword(t *testing.T) {
	a, err := awsiot.NewAuthority(&deviceauthtest.Keys{})
	require.NoError(t, err)
	b, err := awsiot.NewAuthority(&deviceauthtest.Keys{})
	require.NoError(t, err)
	for _, auth := range []*deviceauth.Authority{a, b} {
		for _, pw := range []string{bridgePass, "", strings.Repeat("\x00", 43)} {
			_, err := auth.Connect(context.Background(), "tempwatch-bridge", "tempwatch-bridge", pw)
			assert.ErrorIs(t, err, deviceauth.ErrRefused)
		}
	}
}
