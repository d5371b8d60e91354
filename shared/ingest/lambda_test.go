package ingest_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tempwatch/tempwatch/shared/ingest"
	"github.com/tempwatch/tempwatch/shared/lambdahttp"
	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// TestBatchEventHandlerUnknownEvents: what the function runs for every
// invocation answers an event of no known shape with an invocation error
// that names what it expected, never with a successful empty batch. No
// storage is reached: the service has none.
func TestBatchEventHandlerUnknownEvents(t *testing.T) {
	t.Parallel()
	svc := ingest.NewService(nil, nil, nil, nil, quietLog(), ingest.Config{})
	h := lambdahttp.NewEventsHandler(ingest.NewHandler(svc, quietLog()), ingest.BatchEventHandler(svc))
	for _, tt := range []struct {
		name, event, says string
	}{
		{"empty object", `{}`, "an empty object"},
		{"other keys", `{"detail-type":"Scheduled Event","source":"aws.events","detail":{}}`, "keys detail, detail-type, source"},
		{"S3 records", `{"Records":[{"eventSource":"aws:s3","s3":{}}]}`, `Records[0] has eventSource "aws:s3"`},
		{"SNS records", `{"Records":[{"EventSource":"aws:sns","Sns":{}}]}`, `Records[0] has eventSource "aws:sns"`},
		{"SQS amid others", `{"Records":[{"eventSource":"aws:sqs","messageId":"1","body":"{}"},{"eventSource":"aws:kinesis"}]}`, `Records[1]`},
		{"no records", `{"Records":[]}`, "Records is empty"},
		{"null messages", `{"messages":null}`, "keys messages"},
		{"both", `{"messages":[],"Records":[{"eventSource":"aws:sqs"}]}`, "both messages and Records"},
		{"messages not a list", `{"messages":{"id":"1"}}`, "cannot unmarshal"},
		{"array", `[{"messages":[]}]`, "cannot unmarshal"},
		{"null", `null`, "not a JSON object"},
		{"string", `"messages"`, "cannot unmarshal"},
		{"not JSON", `messages`, "invalid character"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, err := h.Invoke(context.Background(), []byte(tt.event))
			require.Error(t, err, "Invoke(%s) = %s, want an error", tt.event, out)
			assert.Contains(t, err.Error(), tt.says)
			assert.Contains(t, err.Error(), `{"messages":[...]}`, "the error names the bridge's batch")
			assert.Contains(t, err.Error(), `"eventSource":"aws:sqs"`, "the error names the SQS event")
			assert.Nil(t, out)
		})
	}

	out, err := h.Invoke(context.Background(), []byte(`{"messages":[]}`))
	require.NoError(t, err)
	assert.JSONEq(t, `{"accepted":0,"duplicates":0,"rejected":0,"batchItemFailures":[]}`, string(out), "an empty batch is an empty answer")
}

func TestParseIoTRuleMessage(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, body string
		want       ingest.IoTRuleMessage
		err        string
	}{
		{"rule output", `{"payload":"eyJ2YWx1ZSI6MjB9","topic":"tempwatch/acme/sensors/dev-1/readings","received_at":1767323045678}`,
			ingest.IoTRuleMessage{Payload: []byte(`{"value":20}`), Topic: "tempwatch/acme/sensors/dev-1/readings", ReceivedAt: 1767323045678}, ""},
		{"empty payload", `{"payload":"","topic":"t","received_at":1}`, ingest.IoTRuleMessage{Payload: []byte{}, Topic: "t", ReceivedAt: 1}, ""},
		{"extra fields", `{"payload":"e30=","topic":"t","received_at":1,"clientid":"dev-1"}`, ingest.IoTRuleMessage{Payload: []byte("{}"), Topic: "t", ReceivedAt: 1}, ""},
		{"raw JSON payload", `{"payload":{"value":20},"topic":"t","received_at":1}`, ingest.IoTRuleMessage{}, "not the JSON of the topic rule"},
		{"not base64", `{"payload":"{value}","topic":"t","received_at":1}`, ingest.IoTRuleMessage{}, "not the JSON of the topic rule"},
		{"no payload", `{"topic":"t","received_at":1}`, ingest.IoTRuleMessage{Topic: "t"}, "payload is missing"},
		{"no topic, no time", `{"payload":"e30="}`, ingest.IoTRuleMessage{}, "topic is missing\nreceived_at is missing"},
		{"time as text", `{"payload":"e30=","topic":"t","received_at":"1767323045678"}`, ingest.IoTRuleMessage{}, "not the JSON of the topic rule"},
		{"not JSON", `{"value":`, ingest.IoTRuleMessage{}, "not the JSON of the topic rule"},
		{"the MQTT payload itself", `{"value":20}`, ingest.IoTRuleMessage{}, "payload is missing"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ingest.ParseIoTRuleMessage(tt.body)
			if tt.err == "" {
				require.NoError(t, err)
			} else {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.err)
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

func sqsRecord(id, body string, sent time.Time) events.SQSMessage {
	return events.SQSMessage{MessageId: id, ReceiptHandle: "rh-" + id, Body: body, EventSource: "aws:sqs",
		EventSourceARN: "arn:aws:sqs:eu-west-1:123456789012:tempwatch-readings", AWSRegion: "eu-west-1",
		Attributes: map[string]string{"ApproximateReceiveCount": "1", "SentTimestamp": strconv.FormatInt(sent.UnixMilli(), 10)}}
}

func ruleBody(topic, payload string, receivedAt time.Time) string {
	b, _ := json.Marshal(map[string]any{"payload": base64.StdEncoding.EncodeToString([]byte(payload)), "topic": topic,
		"received_at": receivedAt.UnixMilli()})
	return string(b)
}

// TestSQSEvent runs SQS events, as Lambda delivers them from the topic
// rule's queue, through what the function runs for every invocation:
// readings stored, the rule's receive time used when the device sent none,
// malformed bodies and bad readings dead-lettered (deleted from the queue),
// and with PostgreSQL down a partial batch response naming every message
// to retry by messageId.
func TestSQSEvent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	svc := e.service(nil, nil, nil)
	h := lambdahttp.NewEventsHandler(ingest.NewHandler(svc, quietLog()), ingest.BatchEventHandler(svc))
	a1, g1 := topic("acme", "dev-1"), topic("globex", "dev-1")
	rcv := e.now.Add(-30 * time.Second).Truncate(time.Millisecond)
	sent := rcv.Add(20 * time.Millisecond)
	event := events.SQSEvent{Records: []events.SQSMessage{
		sqsRecord("sqs-1", ruleBody(a1, fmt.Sprintf(`{"value":20.5,"ts":%q}`, ts(e.now.Add(-time.Minute))), rcv), sent),
		sqsRecord("sqs-2", ruleBody(g1, `{"value":7}`, rcv), sent),
		sqsRecord("sqs-out-of-range", ruleBody(a1, `{"value":1000}`, rcv), sent),
		sqsRecord("sqs-not-json", `{"payload":`, sent),
		sqsRecord("sqs-no-topic", `{"payload":"e30=","received_at":1}`, sent),
		sqsRecord("sqs-unknown-device", ruleBody(topic("acme", "ghost"), `{"value":1}`, rcv), sent),
	}}
	raw, err := json.Marshal(event)
	require.NoError(t, err)
	out, err := h.Invoke(ctx, raw)
	require.NoError(t, err)
	assert.JSONEq(t, `{"batchItemFailures":[]}`, string(out))

	assert.Equal(t, 2, e.count(t, `SELECT count(*) FROM readings`))
	assert.Equal(t, 1, e.count(t, `SELECT count(*) FROM readings WHERE sensor_id = $1 AND value = 20.5 AND measured_at = $2`, e.acme1, e.now.Add(-time.Minute)))
	assert.Equal(t, 1, e.count(t, `SELECT count(*) FROM readings WHERE sensor_id = $1 AND value = 7 AND measured_at = $2`, e.globex1, rcv),
		"without a device timestamp the reading is measured when AWS IoT received it")
	e.assertPayloads(t, 2)
	dead := e.deadLetters(t)
	require.Len(t, dead, 4)
	assert.Contains(t, dead["sqs-out-of-range"].Reason, "outside the sensor's range")
	assert.Equal(t, e.acme1, dead["sqs-out-of-range"].SensorID)
	assert.Contains(t, dead["sqs-not-json"].Reason, "SQS body is not the topic rule's message")
	assert.Equal(t, []byte(`{"payload":`), dead["sqs-not-json"].Raw, "a malformed body is kept whole")
	assert.Contains(t, dead["sqs-no-topic"].Reason, "topic is missing")
	assert.Contains(t, dead["sqs-unknown-device"].Reason, "unknown device")
	assert.Equal(t, e.clientID(t, "acme"), dead["sqs-unknown-device"].ClientID)

	t.Run("redelivered", func(t *testing.T) {
		out, err := h.Invoke(ctx, raw)
		require.NoError(t, err)
		assert.JSONEq(t, `{"batchItemFailures":[]}`, string(out))
		assert.Equal(t, 2, e.count(t, `SELECT count(*) FROM readings`))
		assert.Len(t, e.deadLetters(t), 4, "the same dead letters, not new ones")
	})

	t.Run("partial batch response", func(t *testing.T) {
		viaProxy, proxy := e.proxiedPool(t)
		down := e.service(viaProxy, nil, nil)
		proxy.Cut()
		later := events.SQSEvent{Records: []events.SQSMessage{
			sqsRecord("retry-1", ruleBody(a1, `{"value":1}`, rcv.Add(time.Second)), sent),
			sqsRecord("retry-2", ruleBody(topic("acme", "dev-2"), `{"value":2}`, rcv.Add(time.Second)), sent),
			sqsRecord("malformed", `not json`, sent),
		}}
		resp := down.HandleSQS(ctx, later)
		var ids []string
		for _, f := range resp.BatchItemFailures {
			ids = append(ids, f.ItemIdentifier)
		}
		assert.ElementsMatch(t, []string{"retry-1", "retry-2"}, ids, "the malformed body is dead-lettered, not retried")
		b, err := json.Marshal(resp)
		require.NoError(t, err)
		assert.JSONEq(t, `{"batchItemFailures":[{"itemIdentifier":"retry-1"},{"itemIdentifier":"retry-2"}]}`, string(b))
		assert.Equal(t, 2, e.count(t, `SELECT count(*) FROM readings`))
		assert.Contains(t, e.deadLetters(t), "malformed")
	})
}

// The bridge's batch and the SQS event reach the same ingest: a message
// means the same whichever way it came.
func TestSQSMessageIsABridgeMessage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	rcv := e.now.Add(-time.Minute).Truncate(time.Millisecond)
	payload := `{"value":3,"battery":2.9}`
	viaSQS := e.service(nil, nil, nil).HandleSQS(ctx, events.SQSEvent{Records: []events.SQSMessage{
		sqsRecord("1", ruleBody(topic("acme", "dev-1"), payload, rcv), rcv)}})
	require.Empty(t, viaSQS.BatchItemFailures)
	viaBridge := e.service(nil, nil, nil).HandleBatch(ctx, tempwatch.BatchRequest{Messages: []tempwatch.Message{
		msg("1", topic("acme", "dev-1"), payload, rcv)}})
	assert.Equal(t, 1, viaBridge.Duplicates, "the same reading, the same natural key")
}
