package stack

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/tempwatch/tempwatch/infra/gateway/apigw"
)

// Invoke runs one synchronous invocation of the function named by its folder
// name or logical id. funcErr reports a function error, payload then holding
// errorMessage and errorType as AWS returns them.
func (s *Stack) Invoke(ctx context.Context, function string, payload []byte) (out []byte, funcErr bool, err error) {
	p := s.pools[function]
	if p == nil {
		return nil, false, fmt.Errorf("invoke %s: %w", function, ErrNoFunction)
	}
	r, err := p.invoke(ctx, payload)
	if err != nil {
		return nil, false, fmt.Errorf("invoke %s: %w", function, err)
	}
	return r.payload, r.funcErr, nil
}

// InvokeStream runs one invocation whose answer the function streams, and
// returns that answer as it comes (InvokeWithResponseStream). A function
// that answers whole, or fails, is an error.
func (s *Stack) InvokeStream(ctx context.Context, function string, payload []byte) (io.ReadCloser, error) {
	p := s.pools[function]
	if p == nil {
		return nil, fmt.Errorf("invoke %s: %w", function, ErrNoFunction)
	}
	r, err := p.invokeStream(ctx, payload)
	switch {
	case err != nil:
		return nil, fmt.Errorf("invoke %s: %w", function, err)
	case r.stream != nil:
		return r.stream, nil
	case r.funcErr:
		return nil, fmt.Errorf("invoke %s: %w: %s", function, apigw.ErrFunction, r.payload)
	}
	return nil, fmt.Errorf("invoke %s: %w: the route streams, and the function answered whole", function, apigw.ErrFunction)
}

// ErrNoFunction is returned for a function the stack does not run.
var ErrNoFunction = fmt.Errorf("function not found")

// gatewayInvoker adapts the stack to the API Gateway's Invoker.
type gatewayInvoker struct{ s *Stack }

func (g gatewayInvoker) Invoke(ctx context.Context, function string, payload []byte) ([]byte, error) {
	out, funcErr, err := g.s.Invoke(ctx, function, payload)
	if err != nil {
		return nil, err
	}
	if funcErr {
		return nil, fmt.Errorf("invoke %s: %w: %s", function, apigw.ErrFunction, out)
	}
	return out, nil
}

func (g gatewayInvoker) InvokeStream(ctx context.Context, function string, payload []byte) (io.ReadCloser, error) {
	return g.s.InvokeStream(ctx, function, payload)
}

var _ apigw.StreamInvoker = gatewayInvoker{}

// handleInvoke serves the Lambda Invoke API as aws-sdk-go-v2 calls it.
func (s *Stack) handleInvoke(w http.ResponseWriter, r *http.Request) {
	name := functionName(r.PathValue("name"))
	p := s.pools[name]
	if p == nil {
		writeAWSError(w, http.StatusNotFound, "ResourceNotFoundException",
			"Function not found: "+functionARN(name))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxPayload+1))
	if err != nil {
		writeAWSError(w, http.StatusBadRequest, "InvalidRequestContentException", "could not read the request body")
		return
	}
	if len(body) > maxPayload {
		writeAWSError(w, http.StatusRequestEntityTooLarge, "RequestTooLargeException",
			fmt.Sprintf("Request must be smaller than %d bytes for the InvokeFunction operation", maxPayload))
		return
	}
	if len(body) == 0 {
		body = []byte("{}")
	}
	w.Header().Set("X-Amz-Executed-Version", "$LATEST")
	switch r.Header.Get("X-Amz-Invocation-Type") {
	case "DryRun":
		w.WriteHeader(http.StatusNoContent)
		return
	case "Event":
		go func() { _, _ = p.invoke(context.Background(), body) }()
		w.WriteHeader(http.StatusAccepted)
		return
	}
	res, err := p.invoke(r.Context(), body)
	if err != nil {
		writeAWSError(w, http.StatusServiceUnavailable, "ServiceException", err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if res.funcErr {
		w.Header().Set("X-Amz-Function-Error", "Unhandled")
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(res.payload)
}

// functionName accepts a name, a name with qualifier, or an ARN.
func functionName(s string) string {
	if strings.HasPrefix(s, "arn:") {
		parts := strings.Split(s, ":")
		if len(parts) >= 7 {
			s = parts[6]
		}
	} else if i := strings.IndexByte(s, ':'); i >= 0 {
		s = s[:i]
	}
	return s
}

func writeAWSError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-ErrorType", typ)
	w.WriteHeader(status)
	_, _ = fmt.Fprintf(w, `{"Type":"User","message":%q}`, msg)
}
