package lambdahttp

import "io"

// SetEMFOutput sends the invocations' metrics to w until restore is called.
func SetEMFOutput(w io.Writer) (restore func()) {
	old := emfOut
	emfOut = w
	return func() { emfOut = old }
}

// ServeMetrics is serveMetrics: the address it listens on.
func ServeMetrics(addr string) (string, error) { return serveMetrics(addr) }
