// Package invoker calls the ingest function through the Lambda Invoke API,
// so one binary works against AWS, LocalStack, the runtime interface
// emulator and infra/devstack.
package invoker

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// Config names the function and where its Invoke API is.
type Config struct {
	Function string // function name or ARN ("function" for the RIE)
	Endpoint string // base URL; empty means AWS
	Region   string
	// MaxConns bounds the HTTP connections kept to the endpoint.
	MaxConns int
}

// Invoker invokes the ingest function synchronously.
type Invoker struct {
	client   *lambda.Client
	function string
}

// New builds the Lambda client. With an endpoint and no AWS_ACCESS_KEY_ID in
// the environment it signs with static dummy credentials, which LocalStack,
// the RIE and devstack accept.
func New(ctx context.Context, cfg Config, getenv func(string) string) (*Invoker, error) {
	opts := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithRegion(cfg.Region),
		awsconfig.WithHTTPClient(awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
			t.MaxIdleConnsPerHost = max(cfg.MaxConns, 2)
		})),
	}
	if cfg.Endpoint != "" && getenv("AWS_ACCESS_KEY_ID") == "" {
		opts = append(opts, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")))
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load AWS config: %w", err)
	}
	client := lambda.NewFromConfig(awsCfg, func(o *lambda.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		// The bridge retries with its own backoff and never gives up; the
		// SDK's retries would only hide attempts from the metrics.
		o.Retryer = aws.NopRetryer{}
	})
	return &Invoker{client: client, function: cfg.Function}, nil
}

// FunctionError is an error the function itself raised (X-Amz-Function-Error):
// a panic, a timeout or a returned error. The whole batch is retried.
type FunctionError struct {
	Kind    string // "Unhandled" or "Handled"
	Payload string
}

// Error names the kind of failure and the function's error type and message.
func (e *FunctionError) Error() string {
	var p struct {
		ErrorMessage string `json:"errorMessage"`
		ErrorType    string `json:"errorType"`
	}
	if json.Unmarshal([]byte(e.Payload), &p) == nil && p.ErrorMessage != "" {
		return fmt.Sprintf("ingest function error (%s): %s: %s", e.Kind, p.ErrorType, p.ErrorMessage)
	}
	return fmt.Sprintf("ingest function error (%s)", e.Kind)
}

// ErrTooLarge reports that the Invoke API refused a request as too large
// (HTTP 413): the same request will never pass, however often it is sent.
var ErrTooLarge = errors.New("request too large for the Invoke API")

// Invoke sends req and decodes the function's answer. An error wrapping
// ErrTooLarge means the request must be made smaller, not sent again.
func (in *Invoker) Invoke(ctx context.Context, req tempwatch.BatchRequest) (tempwatch.BatchResponse, error) {
	var resp tempwatch.BatchResponse
	payload := appendRequest(nil, req)
	out, err := in.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(in.function), Payload: payload})
	if err != nil {
		if tooLarge(err) {
			return resp, fmt.Errorf("invoke %s with %d bytes: %w: %w", in.function, len(payload), ErrTooLarge, err)
		}
		return resp, fmt.Errorf("invoke %s: %w", in.function, err)
	}
	if out.FunctionError != nil {
		return resp, &FunctionError{Kind: *out.FunctionError, Payload: string(out.Payload)}
	}
	if err := json.Unmarshal(out.Payload, &resp); err != nil {
		return resp, fmt.Errorf("decode %s response: %w", in.function, err)
	}
	return resp, nil
}

// tooLarge recognises the Invoke API's refusal of a request body: AWS names
// it RequestTooLargeException; emulators and proxies in front of them may
// answer 413 under another name or none.
func tooLarge(err error) bool {
	var tl *types.RequestTooLargeException
	if errors.As(err, &tl) {
		return true
	}
	var re *awshttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == http.StatusRequestEntityTooLarge
}

// RequestOverhead is what a request's encoding adds to the EncodedSize of
// its messages.
const RequestOverhead = len(`{"messages":[]}`)

// EncodedSize bounds from above the bytes m adds to a request's encoding,
// its separating comma included: batches are capped in encoded bytes, and
// base64, JSON escapes and the fields around a payload make it much larger
// than the payload alone.
func EncodedSize(m tempwatch.Message) int {
	n := len(`{"id":"","topic":"","payload":"","received_at":""},`) + quotedSize(m.ID) + quotedSize(m.Topic) +
		base64.StdEncoding.EncodedLen(len(m.Payload)) + maxTimeLen
	if m.Payload == nil {
		n += len("null") - len(`""`)
	}
	if m.Refused != "" {
		n += len(`,"refused":""`) + quotedSize(m.Refused)
	}
	if m.Size != 0 {
		n += len(`,"size":`) + len(strconv.Itoa(m.Size))
	}
	return n
}

// maxTimeLen is the longest RFC 3339 time with nanoseconds and an offset
// for a four-digit year.
const maxTimeLen = len("2006-01-02T15:04:05.999999999-07:00")

// quotedSize bounds the length of s quoted by jsontext.AppendQuote, quotes
// left out: a control character becomes \u00XX, an invalid byte the three
// bytes of U+FFFD, '"' and '\\' two bytes; valid UTF-8 stays as it is. It
// runs for every message received, so it looks at eight bytes at a time
// and byte by byte only at a word that may hold one of those.
func quotedSize(s string) int {
	n, i := len(s), 0
	for ; i+8 <= len(s); i += 8 {
		x := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		// A byte below 0x20, a '"' or '\\' (zero after the XOR) makes the
		// subtraction borrow into its high bit; a byte from 0x80 has it.
		// Borrows may flag a word that holds none: then it is counted.
		if ((x-ones*0x20)|(x^ones*'"'-ones)|(x^ones*'\\'-ones)|x)&highs == 0 {
			continue
		}
		for _, c := range []byte(s[i : i+8]) {
			n += int(quoteExtra[c])
		}
	}
	for ; i < len(s); i++ {
		n += int(quoteExtra[s[i]])
	}
	return n
}

const ones, highs = 0x0101010101010101, 0x8080808080808080

// quoteExtra is what quoting adds to a byte, at most.
var quoteExtra = func() (extra [256]uint8) {
	for c := range extra {
		switch {
		case c < 0x20 || c == '"' || c == '\\':
			extra[c] = uint8(len(`\u00XX`) - 1)
		case c >= utf8.RuneSelf:
			extra[c] = uint8(len("\ufffd") - 1) // at most: an invalid byte becomes U+FFFD
		}
	}
	return extra
}()

// appendRequest appends req as encoding/json would encode it (with the
// HTML characters left unescaped, which decodes the same), in one pass with
// no reflection and one allocation for a batch: encoding/json spent about
// 1 µs a message on it.
func appendRequest(dst []byte, req tempwatch.BatchRequest) []byte {
	size := len(`{"messages":[]}`)
	for _, m := range req.Messages {
		size += len(`{"id":"","topic":"","payload":"","received_at":""},`) + len(m.ID) + len(m.Topic) + 8 +
			base64.StdEncoding.EncodedLen(len(m.Payload)) + len(time.RFC3339Nano)
		if m.Refused != "" {
			size += len(`,"refused":"","size":`) + len(m.Refused) + 20
		}
	}
	dst = slices.Grow(dst, size)
	dst = append(dst, `{"messages":[`...)
	for i, m := range req.Messages {
		if i > 0 {
			dst = append(dst, ',')
		}
		// AppendQuote replaces invalid UTF-8 with U+FFFD, as encoding/json
		// does; its error only reports that it did.
		dst = append(dst, `{"id":`...)
		dst, _ = jsontext.AppendQuote(dst, m.ID)
		dst = append(dst, `,"topic":`...)
		dst, _ = jsontext.AppendQuote(dst, m.Topic)
		dst = append(dst, `,"payload":`...)
		if m.Payload == nil {
			dst = append(dst, "null"...)
		} else {
			dst = append(dst, '"')
			dst = base64.StdEncoding.AppendEncode(dst, m.Payload)
			dst = append(dst, '"')
		}
		dst = append(dst, `,"received_at":"`...)
		dst = m.ReceivedAt.AppendFormat(dst, time.RFC3339Nano)
		if m.Refused == "" && m.Size == 0 {
			dst = append(dst, `"}`...)
		} else {
			dst = appendRefusal(dst, &m)
		}
	}
	return append(dst, "]}"...)
}

// appendRefusal ends the encoding of a refused message: out of the loop
// above, which then stays as tight as it was without refusals.
func appendRefusal(dst []byte, m *tempwatch.Message) []byte {
	dst = append(dst, '"')
	if m.Refused != "" {
		dst = append(dst, `,"refused":`...)
		dst, _ = jsontext.AppendQuote(dst, m.Refused)
	}
	if m.Size != 0 {
		dst = append(dst, `,"size":`...)
		dst = strconv.AppendInt(dst, int64(m.Size), 10)
	}
	return append(dst, '}')
}
