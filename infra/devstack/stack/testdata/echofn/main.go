// Command echofn is the devstack test fixture: a real aws-lambda-go function
// that echoes the API Gateway proxy event it receives, and misbehaves on
// request (slow, crash, fail) so the emulator's handling can be tested.
package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

// echo is what the fixture answers with.
type echo struct {
	Event     events.APIGatewayProxyRequest `json:"event"`
	PID       int                           `json:"pid"`
	RequestID string                        `json:"request_id"`
	ARN       string                        `json:"arn"`
	Env       map[string]string             `json:"env"`
}

// stepRan says whether the deploy step's marker existed when this process
// started.
var stepRan string

func handle(ctx context.Context, raw json.RawMessage) (any, error) {
	var ev events.APIGatewayProxyRequest
	_ = json.Unmarshal(raw, &ev)
	if ev.HTTPMethod == "" {
		// A direct invocation: {"fail": "msg"} fails, anything else echoes.
		var direct struct {
			Fail string `json:"fail"`
		}
		_ = json.Unmarshal(raw, &direct)
		if direct.Fail != "" {
			return nil, errors.New(direct.Fail)
		}
		if err := record(raw); err != nil {
			return nil, err
		}
		return map[string]any{"echo": raw, "pid": os.Getpid()}, nil
	}
	switch ev.Path {
	case "/slow":
		ms, _ := strconv.Atoi(ev.QueryStringParameters["ms"])
		// Ignores ctx on purpose: a stuck function is what the timeout is for.
		time.Sleep(time.Duration(ms) * time.Millisecond)
	case "/stream":
		return stream(ev.QueryStringParameters["gate"], ev.QueryStringParameters["fail"] != ""), nil
	case "/crash":
		os.Exit(3)
	case "/fail":
		return nil, errors.New("fixture failure")
	case "/binary":
		body := []byte(ev.Body)
		if ev.IsBase64Encoded {
			body, _ = base64.StdEncoding.DecodeString(ev.Body)
		}
		for i := range body {
			body[i] ^= 0xff
		}
		return events.APIGatewayProxyResponse{
			StatusCode:      200,
			Headers:         map[string]string{"Content-Type": "application/octet-stream"},
			Body:            base64.StdEncoding.EncodeToString(body),
			IsBase64Encoded: true,
		}, nil
	}
	lc, _ := lambdacontext.FromContext(ctx)
	out := echo{Event: ev, PID: os.Getpid(), Env: map[string]string{}}
	if lc != nil {
		out.RequestID, out.ARN = lc.AwsRequestID, lc.InvokedFunctionArn
	}
	out.Env["STEP_RAN_BEFORE"] = stepRan
	for _, k := range []string{"GREETING", "DATABASE_URL", "REDIS_URL", "MQTT_URL", "MONGODB_URL", "ECHO_SUB",
		"AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_REGION", "TEMPWATCH_EXTRA", "MQTT_BROKER_SECRET"} {
		out.Env[k] = os.Getenv(k)
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, err
	}
	return events.APIGatewayProxyResponse{
		StatusCode:        201,
		Headers:           map[string]string{"Content-Type": "application/json", "X-Echo": "1"},
		MultiValueHeaders: map[string][]string{"Set-Cookie": {"a=1", "b=2"}},
		Body:              string(b),
	}, nil
}

// stream answers as a streamed route's function does: a first line, then,
// once the test's listener at gate has taken a connection and sent a byte
// on it, a second line, or with fail a failure of the stream.
func stream(gate string, fail bool) *events.LambdaFunctionURLStreamingResponse {
	pr, pw := io.Pipe()
	go func() {
		_, _ = io.WriteString(pw, "first\n")
		conn, err := net.Dial("tcp", gate)
		if err != nil {
			_ = pw.CloseWithError(err)
			return
		}
		defer conn.Close()
		_, _ = conn.Read(make([]byte, 1))
		if fail {
			_ = pw.CloseWithError(errors.New("fixture stream failure"))
			return
		}
		_, _ = io.WriteString(pw, "second\n")
		_ = pw.Close()
	}()
	return &events.LambdaFunctionURLStreamingResponse{StatusCode: 200, Headers: map[string]string{"Content-Type": "text/plain"}, Body: pr}
}

// record appends a direct invocation's event, one line each, to the file
// ECHO_EVENTS names (when it does): what the scheduler's tests read.
func record(raw json.RawMessage) error {
	name := os.Getenv("ECHO_EVENTS")
	if name == "" {
		return nil
	}
	f, err := os.OpenFile(name, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	var line bytes.Buffer
	if err := json.Compact(&line, raw); err != nil {
		line.Reset()
		line.Write(raw)
	}
	line.WriteByte('\n')
	if _, err := f.Write(line.Bytes()); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

func main() {
	if m := os.Getenv("STEP_MARKER"); m != "" {
		_, err := os.Stat(m)
		stepRan = strconv.FormatBool(err == nil)
	}
	lambda.Start(handle)
}
